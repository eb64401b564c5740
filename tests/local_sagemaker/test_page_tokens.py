"""local_sagemaker/page_tokens.py: a token that is not one of ours, whatever its shape, reads as None (the API then
answers as AWS does, 400), never as a server error."""

from __future__ import annotations

import base64

import pytest
from botocore.exceptions import ClientError

from handlers.logs import LOG_GROUP
from local_sagemaker import page_tokens
from local_sagemaker.testing import LocalClients

PREFIX = "lsmf1."


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


MALFORMED = ["", "é", PREFIX + "é", PREFIX + "🙂" * 10, PREFIX + b64(b"[" * 20_000), PREFIX + b64(b"{" * 5000),
             PREFIX + b64(b"\xff\xfe"), PREFIX + b64(b'{"a": 1}'), PREFIX + "x" * 40_000, PREFIX + "%ff%00",
             PREFIX + "===", "\x00" + PREFIX]


@pytest.mark.parametrize("token", MALFORMED)
def test_a_malformed_token_reads_as_none(token: str) -> None:
    assert page_tokens.decode(PREFIX, token) is None


def test_a_token_reads_back() -> None:
    assert page_tokens.decode(PREFIX, page_tokens.encode(PREFIX, [1, "é", [2]])) == [1, "é", [2]]


def test_the_api_answers_a_malformed_token_as_aws_does(aws: LocalClients) -> None:
    logs = aws.client("logs", retries={"total_max_attempts": 1})
    try:
        logs.create_log_group(logGroupName=LOG_GROUP)
    except ClientError as error:
        assert error.response["Error"]["Code"] == "ResourceAlreadyExistsException"
    sagemaker = aws.client("sagemaker", retries={"total_max_attempts": 1})
    for token in [t for t in MALFORMED if t]:
        with pytest.raises(ClientError) as refused:
            logs.filter_log_events(logGroupName=LOG_GROUP, nextToken=token)
        assert (refused.value.response["Error"]["Code"], refused.value.response["ResponseMetadata"]["HTTPStatusCode"]) \
            == ("InvalidParameterException", 400), token[:20]
        with pytest.raises(ClientError) as refused:
            sagemaker.list_training_jobs(NextToken=token[:8192])
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400, token[:20]
