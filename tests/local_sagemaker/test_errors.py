"""AWS's error answers where moto gives none, the wrong one, or an HTTP 500."""

from __future__ import annotations

import re
from typing import Any

import pytest
from botocore.exceptions import ClientError

from local_sagemaker import LocalSettings
from local_sagemaker.testing import LocalClients, unique_name

# tests/conftest.py runs this module's local SageMaker (`server`, and `aws` on it) with LOCAL_SETTINGS.
LOCAL_SETTINGS = LocalSettings(execution="simulate", time_scale=50)


def _refusal(aws: LocalClients, operation: str, **params: Any) -> tuple[str, str, int]:
    # No retries: a 500 would otherwise be retried and hide what the server said first.
    client = aws.client("sagemaker", retries={"total_max_attempts": 1})
    with pytest.raises(ClientError) as excinfo:
        getattr(client, operation)(**params)
    response = excinfo.value.response
    return response["Error"]["Code"], response["Error"]["Message"], response["ResponseMetadata"]["HTTPStatusCode"]


def test_a_taken_name_is_resource_in_use_and_the_first_job_survives(aws: LocalClients) -> None:
    name = unique_name("dup")
    request = aws.training_request(name, hyperparameters={"num_round": "7"})
    arn = aws.sagemaker.create_training_job(**request)["TrainingJobArn"]
    other = {**request, "HyperParameters": {"num_round": "99"}}
    code, message, status = _refusal(aws, "create_training_job", **other)
    assert (code, status) == ("ResourceInUse", 400)
    assert message == (
        "Training job names must be unique within an AWS account and region, and a training job with this name "
        f"already exists ({arn})"
    )
    assert aws.sagemaker.describe_training_job(TrainingJobName=name)["HyperParameters"] == {"num_round": "7"}


def test_a_name_stays_taken_after_the_job_ended(aws: LocalClients) -> None:
    name = unique_name("ended")
    aws.sagemaker.create_training_job(**aws.training_request(name))
    aws.wait(name)
    assert _refusal(aws, "create_training_job", **aws.training_request(name))[0] == "ResourceInUse"


def test_describing_a_missing_job_is_requested_resource_not_found(aws: LocalClients) -> None:
    assert _refusal(aws, "describe_training_job", TrainingJobName=unique_name("ghost")) == (
        "ValidationException",
        "Requested resource not found.",
        400,
    )


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"TrainingJobName": "bad_name!"}, "trainingJobName"),
        ({"TrainingJobName": "x" * 64}, "trainingJobName"),
        ({"RoleArn": "arn:aws:iam::123:role/short-account"}, "roleArn"),
        ({"RoleArn": "not-an-arn-at-all-but-long"}, "roleArn"),
        (
            {"ResourceConfig": {"InstanceType": "ml.fake.huge", "InstanceCount": 1, "VolumeSizeInGB": 30}},
            "resourceConfig.instanceType",
        ),
        ({"HyperParameters": {f"k{i}": "v" for i in range(101)}}, "hyperParameters"),
        ({"HyperParameters": {"objective": "x" * 2501}}, "hyperParameters"),  # AWS reports a bad value at its map
        ({"Tags": [{"Key": f"k{i}", "Value": "v"} for i in range(51)]}, "tags"),
        ({"OutputDataConfig": {"S3OutputPath": "ftp://bucket/out"}}, "outputDataConfig.s3OutputPath"),
    ],
)
def test_what_the_service_model_forbids_is_a_validation_exception(
    aws: LocalClients, change: dict[str, Any], where: str
) -> None:
    name = unique_name("invalid")
    request = {**aws.training_request(name, channels={"train": "s3://local-sagemaker-data/unused/"}), **change}
    code, message, status = _refusal(aws, "create_training_job", **request)
    assert (code, status) == ("ValidationException", 400)
    assert re.match(r"[12] validation errors? detected: Value ", message)
    assert f" at '{where}' failed to satisfy constraint: " in message


def test_every_problem_is_reported_at_once(aws: LocalClients) -> None:
    request = aws.training_request("bad_name!", channels={"train": "s3://b/unused/"}, instance_type="ml.nope")
    code, message, _ = _refusal(aws, "create_training_job", **request)
    assert code == "ValidationException"
    assert message.startswith("2 validation errors detected: ")
    assert "Value 'bad_name!' at 'trainingJobName'" in message
    assert "Value 'ml.nope' at 'resourceConfig.instanceType'" in message


@pytest.mark.parametrize("missing", ["AlgorithmSpecification", "ResourceConfig", "StoppingCondition"])
def test_a_classic_job_without_its_sections_is_a_validation_exception_not_a_500(
    aws: LocalClients, missing: str
) -> None:
    request = aws.training_request(unique_name("partial"), channels={"train": "s3://b/unused/"})
    del request[missing]
    code, message, status = _refusal(aws, "create_training_job", **request)
    assert (code, status) == ("ValidationException", 400)
    where = missing[0].lower() + missing[1:]
    assert message == f"1 validation error detected: Value null at '{where}' failed to satisfy constraint: " + (
        "Member must not be null"
    )


def test_spot_needs_a_max_wait_at_least_the_max_runtime(aws: LocalClients) -> None:
    base = aws.training_request(unique_name("spot"), channels={"train": "s3://b/unused/"})
    too_short = {**base, "EnableManagedSpotTraining": True}
    too_short["StoppingCondition"] = {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 60}
    code, message, _ = _refusal(aws, "create_training_job", **too_short)
    assert code == "ValidationException" and "MaxWaitTimeInSeconds" in message
    no_wait = {**base, "EnableManagedSpotTraining": True}
    assert _refusal(aws, "create_training_job", **no_wait)[0] == "ValidationException"
    not_spot = {**base, "StoppingCondition": {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 7200}}
    assert _refusal(aws, "create_training_job", **not_spot)[0] == "ValidationException"


def test_duplicate_channel_names_are_refused(aws: LocalClients) -> None:
    request = aws.training_request(unique_name("chan"), channels={"train": "s3://b/unused/"})
    request["InputDataConfig"] = request["InputDataConfig"] * 2
    code, message, _ = _refusal(aws, "create_training_job", **request)
    assert code == "ValidationException" and "train" in message


def test_describe_and_stop_check_the_name_against_the_model_too(aws: LocalClients) -> None:
    code, message, _ = _refusal(aws, "describe_training_job", TrainingJobName="bad_name!")
    assert code == "ValidationException" and "at 'trainingJobName'" in message
    assert _refusal(aws, "stop_training_job", TrainingJobName="bad_name!")[0] == "ValidationException"


def test_a_refused_create_leaves_no_job_behind(aws: LocalClients) -> None:
    name = unique_name("refused")
    request = aws.training_request(name, instance_type="ml.fake.type")
    _refusal(aws, "create_training_job", **request)
    assert aws.sagemaker.list_training_jobs(NameContains=name)["TrainingJobSummaries"] == []
