"""IAM and STS of the local SageMaker as the SageMaker Python SDK v3 asks them before it trains (api/iam.py), with
boto3 against a running server: the placeholder role from the start, roles created in the local IAM, IAM's
NoSuchEntity for an unknown role, SimulatePrincipalPolicy in IAM's shape, GetCallerIdentity from the caller's key."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from local_sagemaker import LOCAL_ACCOUNT_ID, PLACEHOLDER_ROLE_ARN, LocalSageMaker, LocalSettings
from local_sagemaker.api import iam
from local_sagemaker.testing import LocalClients
from server_reset import reset_state

TRUST_EC2 = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}


@pytest.fixture(scope="module", params=["simulate", "run"])
def server(request: pytest.FixtureRequest) -> Iterator[LocalSageMaker]:
    """IAM answers alike whichever way the jobs execute."""
    with LocalSageMaker(LocalSettings(execution=request.param)) as running:
        yield running


def _code(error: pytest.ExceptionInfo[ClientError]) -> str:
    return str(error.value.response["Error"]["Code"])


def test_the_placeholder_role_exists_from_the_start_and_trusts_sagemaker(aws: LocalClients) -> None:
    role = aws.client("iam").get_role(RoleName="LocalSageMakerRole")["Role"]
    assert role["Arn"] == PLACEHOLDER_ROLE_ARN
    services = [statement["Principal"]["Service"] for statement in role["AssumeRolePolicyDocument"]["Statement"]]
    assert services == ["sagemaker.amazonaws.com"]


def test_an_unknown_role_is_no_such_entity_with_iams_words(aws: LocalClients) -> None:
    with pytest.raises(ClientError) as error:
        aws.client("iam").get_role(RoleName="NoSuchRole")
    assert _code(error) == "NoSuchEntity"
    assert error.value.response["Error"]["Message"] == "The role with name NoSuchRole cannot be found."


def test_simulate_principal_policy_allows_the_local_accounts_roles_in_iams_shape(aws: LocalClients) -> None:
    answer = aws.client("iam").simulate_principal_policy(
        PolicySourceArn=PLACEHOLDER_ROLE_ARN, ActionNames=["s3:PutObject", "sagemaker:CreateTrainingJob"],
        ResourceArns=["arn:aws:s3:::bucket/*"])
    assert answer["IsTruncated"] is False
    assert [(result["EvalActionName"], result["EvalResourceName"], result["EvalDecision"])
            for result in answer["EvaluationResults"]] == [
        ("s3:PutObject", "arn:aws:s3:::bucket/*", "allowed"),
        ("sagemaker:CreateTrainingJob", "arn:aws:s3:::bucket/*", "allowed"),
    ]


def test_simulate_principal_policy_pages_as_the_sdk_reads_them(aws: LocalClients) -> None:
    pages = list(aws.client("iam").get_paginator("simulate_principal_policy").paginate(
        PolicySourceArn=PLACEHOLDER_ROLE_ARN, ActionNames=["iam:PassRole"]))
    assert [[r["EvalResourceName"] for r in page["EvaluationResults"]] for page in pages] == [["*"]]


def test_a_role_created_in_the_local_iam_works_and_keeps_its_own_trust(aws: LocalClients) -> None:
    client = aws.client("iam")
    created = client.create_role(RoleName="MadeHere", Path="/service-role/",
                                 AssumeRolePolicyDocument=json.dumps(TRUST_EC2))["Role"]
    try:
        assert client.get_role(RoleName="MadeHere")["Role"]["AssumeRolePolicyDocument"] == TRUST_EC2
        answer = client.simulate_principal_policy(PolicySourceArn=created["Arn"], ActionNames=["s3:GetObject"])
        assert [result["EvalDecision"] for result in answer["EvaluationResults"]] == ["allowed"]
    finally:
        client.delete_role(RoleName="MadeHere")
    with pytest.raises(ClientError) as error:
        client.simulate_principal_policy(PolicySourceArn=created["Arn"], ActionNames=["s3:GetObject"])
    assert _code(error) == "NoSuchEntity"


@pytest.mark.parametrize("arn", [
    f"arn:aws:iam::{LOCAL_ACCOUNT_ID}:role/NoSuchRole",
    "arn:aws:iam::210987654321:role/LocalSageMakerRole",  # another account's
    f"arn:aws:iam::{LOCAL_ACCOUNT_ID}:user/nobody-here",
])
def test_simulate_principal_policy_of_an_unknown_principal_is_no_such_entity(aws: LocalClients, arn: str) -> None:
    with pytest.raises(ClientError) as error:
        aws.client("iam").simulate_principal_policy(PolicySourceArn=arn, ActionNames=["s3:GetObject"])
    assert _code(error) == "NoSuchEntity"


def test_simulate_principal_policy_refuses_an_arn_that_is_no_principal(aws: LocalClients) -> None:
    with pytest.raises(ClientError) as error:
        aws.client("iam").simulate_principal_policy(PolicySourceArn="arn:aws:s3:::a-bucket-not-a-role",
                                                    ActionNames=["s3:GetObject"])
    assert _code(error) == "InvalidInput"


def test_the_caller_is_a_user_of_the_local_account_derived_from_its_key(server: LocalSageMaker,
                                                                        aws: LocalClients) -> None:
    identity = aws.client("sts").get_caller_identity()
    assert identity["Account"] == LOCAL_ACCOUNT_ID
    assert identity["Arn"] == f"arn:aws:iam::{LOCAL_ACCOUNT_ID}:user/{iam.CALLER_USER_NAME}"
    assert identity["UserId"] == iam.caller_identity(server.credentials.access_key_id)["UserId"]
    # the caller's own user may simulate its policies, as IAM lets a user do
    answer = aws.client("iam").simulate_principal_policy(PolicySourceArn=identity["Arn"], ActionNames=["s3:ListBucket"])
    assert answer["EvaluationResults"][0]["EvalDecision"] == "allowed"


def test_the_caller_ids_differ_by_key_and_look_like_iams() -> None:
    first, second = (iam.caller_identity(key)["UserId"] for key in ("AKIAAAAAAAAAAAAAAAAA", "AKIABBBBBBBBBBBBBBBB"))
    assert first != second
    assert first.startswith("AIDA") and len(first) == 21 and first.isalnum() and first.isupper()


def test_the_placeholder_role_comes_back_after_a_reset_and_a_restart(tmp_path: Path) -> None:
    """Forgetting moto's state (reset, or a server started on a data folder) seeds the role again."""
    with LocalSageMaker(LocalSettings(execution="simulate"), data_dir=tmp_path / "data") as running:
        clients = LocalClients(running.url, credentials=running.credentials)
        clients.client("iam").delete_role(RoleName="LocalSageMakerRole")
    with LocalSageMaker(LocalSettings(execution="simulate"), data_dir=tmp_path / "data") as running:
        clients = LocalClients(running.url, credentials=running.credentials)
        assert clients.client("iam").get_role(RoleName="LocalSageMakerRole")["Role"]["Arn"] == PLACEHOLDER_ROLE_ARN
    with LocalSageMaker(LocalSettings(execution="simulate")) as running:
        clients = LocalClients(running.url, credentials=running.credentials)
        clients.client("iam").delete_role(RoleName="LocalSageMakerRole")
        reset_state(running)
        assert _role_names(clients) == ["LocalSageMakerRole"]


def _role_names(clients: LocalClients) -> list[Any]:
    return [role["RoleName"] for role in clients.client("iam").list_roles()["Roles"]]


def test_users_and_groups_created_in_the_local_iam_are_principals_too(aws: LocalClients) -> None:
    client = aws.client("iam")
    arns = [client.create_user(UserName="made-user")["User"]["Arn"],
            client.create_group(GroupName="made-group")["Group"]["Arn"]]
    try:
        for arn in arns:
            answer = client.simulate_principal_policy(PolicySourceArn=arn, ActionNames=["s3:GetObject"])
            assert [result["EvalDecision"] for result in answer["EvaluationResults"]] == ["allowed"]
    finally:
        client.delete_user(UserName="made-user")
        client.delete_group(GroupName="made-group")
