"""What a person sees while a call is retried, and how fast a dead local endpoint is given up on.

A closed loopback port refuses at once: the client retries once, briefly (a server may be starting), then gives up;
each retry is said on the `handlers.client` logger as it happens. Sleeps and clocks are fakes.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator

import boto3
import botocore.exceptions as bce
import pytest

from client_setup import UNLIMITED, FakeClock
from handlers.client import ClientSettings, SageMakerClient
from handlers.errors import TransientError
from handlers.loopback import REFUSED_ATTEMPTS, is_loopback
from handlers.retry import RetrySettings


@pytest.fixture
def closed_url() -> Iterator[str]:
    with socket.socket() as sock:  # bound, never listening: connections are refused, nobody else gets the port
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


def client_for(url: str, clock: FakeClock, attempts: int = 8) -> SageMakerClient:
    settings = ClientSettings(endpoint_url=url, local_credentials=True, rate_limits=UNLIMITED,
                              retry=RetrySettings(attempts=attempts, backoff_seconds=0.5))
    return SageMakerClient(settings, session=boto3.Session(region_name="us-east-1"), sleep=clock.sleep, clock=clock)


def retry_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "handlers.client" and r.levelno >= logging.INFO]


@pytest.mark.parametrize("following", [False, True], ids=["plain", "following"])
def test_a_refused_loopback_connection_is_retried_once_then_given_up(closed_url: str, following: bool,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    """However patient the call (a read that follows a job retries until the deadline): nothing listens there."""
    clock = FakeClock()
    client = client_for(closed_url, clock)
    client = client.following() if following else client
    with caplog.at_level(logging.INFO, logger="handlers.client"), pytest.raises(TransientError) as caught:
        client.describe_training_job("some-job")
    assert client.attempts["DescribeTrainingJob"] == REFUSED_ATTEMPTS == 2
    assert sum(clock.sleeps) < 1.0, clock.sleeps
    assert "failed after 2 attempts" in str(caught.value)
    assert "local SageMaker is running" in str(caught.value) and "sagemaker-plugin local serve" in str(caught.value)
    assert retry_lines(caplog) == [
        f"retrying DescribeTrainingJob in 0.2 s: connection refused by {closed_url} (attempt 2 of 2)"]


def test_other_network_errors_keep_the_whole_policy_and_say_each_retry(caplog: pytest.LogCaptureFixture) -> None:
    """A refused connection to a remote endpoint (a load balancer restarting) is retried like any network fault."""
    clock = FakeClock()
    url = "https://sagemaker.example.test"
    client = client_for(url, clock, attempts=4)

    def refuse(request: object, **_: object) -> None:
        raise bce.EndpointConnectionError(endpoint_url=url, error=ConnectionRefusedError(111, "Connection refused"))

    client.sagemaker.meta.events.register_first("before-send.sagemaker.DescribeTrainingJob", refuse)
    with caplog.at_level(logging.INFO, logger="handlers.client"), pytest.raises(TransientError):
        client.describe_training_job("some-job")
    assert client.attempts["DescribeTrainingJob"] == 4
    lines = retry_lines(caplog)
    assert len(lines) == 3
    for number, line in enumerate(lines, start=2):
        assert line.startswith("retrying DescribeTrainingJob in ")
        assert line.endswith(f": connection refused by {url} (attempt {number} of 4)")


def test_a_throttled_call_says_what_aws_answered(caplog: pytest.LogCaptureFixture, closed_url: str) -> None:
    clock = FakeClock()
    client = client_for(closed_url, clock, attempts=2)

    def throttle(request: object, **_: object) -> None:
        raise bce.ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"},
                               "ResponseMetadata": {"HTTPStatusCode": 400}}, "DescribeTrainingJob")

    client.sagemaker.meta.events.register_first("before-send.sagemaker.DescribeTrainingJob", throttle)
    with caplog.at_level(logging.INFO, logger="handlers.client"), pytest.raises(TransientError):
        client.describe_training_job("some-job")
    [line] = retry_lines(caplog)
    assert line.endswith(": ThrottlingException: Rate exceeded (attempt 2 of 2)"), line


@pytest.mark.parametrize(("url", "expected"), [
    ("http://127.0.0.1:4566", True), ("http://127.9.9.9:1", True), ("http://localhost:80", True),
    ("http://[::1]:4566", True), ("https://api.sagemaker.us-east-1.amazonaws.com", False),
    ("http://10.0.0.1:4566", False), (None, False),
])
def test_which_endpoints_are_loopback(url: str | None, expected: bool) -> None:
    assert is_loopback(url) is expected
