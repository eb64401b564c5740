"""The SageMaker client layer: retries, deadline, rate limits and error classes, end to end against a moto server.

Faults are injected the way botocore would meet them: a handler registered first on `before-send.sagemaker.<Op>`
answers with a faked HTTP response (which goes through botocore's parsing) or raises a network error, so the whole
path (botocore, our retry policy, classification) runs. Sleeps and clocks are fakes, so nothing here waits.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import boto3
import botocore.exceptions as bce
import pytest
import urllib3.exceptions
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.httpsession import URLLib3Session

from aws_faults import AWS_NAME_IN_USE, AWS_NOT_FOUND, AWS_QUOTA, answer, aws_error, raising
from client_setup import UNLIMITED, FakeClock
from handlers.classify import classify, redact
from handlers.client import ClientSettings, SageMakerClient
from handlers.errors import AccessDenied, AwsError, InvalidRequest, NameInUse, NotFound, ResourceLimit, TransientError
from handlers.ratelimit import RateLimits, TokenBucket
from handlers.retry import RetrySettings, is_retryable

ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
AWS_NOT_IN_PROGRESS = "The request was rejected because the training job is in status Stopped."


# --- fixtures and fakes (session and raw: tests/conftest.py) --------------------------------------------------------


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


MakeClient = Callable[..., SageMakerClient]


def in_threads(work: Callable[[], object], count: int) -> None:
    """Runs `work` in `count` threads at once and waits for them all."""
    threads = [threading.Thread(target=work) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


@pytest.fixture
def make_client(endpoint: str, clock: FakeClock, session: boto3.Session) -> Iterator[MakeClient]:
    made: list[SageMakerClient] = []

    def make(retry: RetrySettings | None = None, rate_limits: RateLimits = UNLIMITED) -> SageMakerClient:
        settings = ClientSettings(
            endpoint_url=endpoint,
            local_credentials=True,
            retry=retry or RetrySettings(),
            rate_limits=rate_limits,
        )
        client = SageMakerClient(settings, session=session, sleep=clock.sleep, clock=clock)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def job_name(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def training_request(name: str) -> dict[str, Any]:
    return {
        "TrainingJobName": name,
        "AlgorithmSpecification": {
            "TrainingImage": "123456789012.dkr.ecr.us-east-1.amazonaws.com/t:1",
            "TrainingInputMode": "File",
        },
        "RoleArn": ROLE,
        "OutputDataConfig": {"S3OutputPath": "s3://bucket/output"},
        "ResourceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
    }


def jobs_named(raw: Any, name: str) -> list[str]:
    """Every job called `name`, all pages read (a page may be short while NextToken remains)."""
    pages = raw.get_paginator("list_training_jobs").paginate(NameContains=name)
    return [
        s["TrainingJobName"] for page in pages for s in page["TrainingJobSummaries"] if s["TrainingJobName"] == name
    ]


THROTTLE = aws_error("ThrottlingException", "Rate exceeded")
RESET = raising(lambda url: bce.ConnectionClosedError(endpoint_url=url))
READ_TIMEOUT = raising(lambda url: bce.ReadTimeoutError(endpoint_url=url))
UNREACHABLE = raising(lambda url: bce.EndpointConnectionError(endpoint_url=url))
URLLIB3_RESET = raising(
    lambda url: urllib3.exceptions.ProtocolError("Connection aborted.", ConnectionResetError(104, "reset by peer"))
)


def register_first(client: SageMakerClient, event: str, handler: Callable[..., Any]) -> None:
    """Ahead of botocore's own handlers, so a faked answer or a raised network error replaces the real send."""
    events: Any = client.sagemaker.meta.events
    events.register_first(event, handler)


class Faults:
    """Registered first on `before-send.sagemaker.<operation>`: plays `script` for the first calls, then lets calls
    through to the server; counts every call it sees (one per attempt botocore makes)."""

    def __init__(
        self,
        client: SageMakerClient,
        operation: str,
        script: Sequence[Callable[[AWSPreparedRequest], AWSResponse | None]],
        *,
        repeat_last: bool = False,
    ) -> None:
        self.script = script
        self.repeat_last = repeat_last
        self.calls = 0
        register_first(client, f"before-send.sagemaker.{operation}", self)

    def __call__(self, request: AWSPreparedRequest, **_: Any) -> AWSResponse | None:
        self.calls += 1
        if self.calls <= len(self.script):
            return self.script[self.calls - 1](request)
        if self.repeat_last and self.script:
            return self.script[-1](request)
        return None


# --- retries --------------------------------------------------------------------------------------------------------

RETRYABLE = {
    "throttling": THROTTLE,
    "throttled-429": aws_error("TooManyRequestsException", "Too many requests", 429),
    "http-500": answer(500, b"<html><body>Internal Server Error</body></html>"),
    "http-503": aws_error("ServiceUnavailable", "Service Unavailable", 503),
    "http-502": answer(502, b""),
    "connection-reset": RESET,
    "urllib3-reset": URLLIB3_RESET,
    "read-timeout": READ_TIMEOUT,
    "endpoint-unreachable": UNREACHABLE,
}


@pytest.mark.parametrize("fault", RETRYABLE.values(), ids=RETRYABLE.keys())
def test_create_is_retried_through_faults_and_makes_one_job(
    make_client: MakeClient, raw: Any, clock: FakeClock, fault: Callable[[AWSPreparedRequest], AWSResponse]
) -> None:
    client = make_client()
    faults = Faults(client, "CreateTrainingJob", [fault, fault])
    name = job_name()

    response = client.create_training_job(training_request(name))

    assert response["TrainingJobArn"].endswith(f":training-job/{name}")
    assert faults.calls == 3
    assert client.attempts["CreateTrainingJob"] == 3
    assert len(clock.sleeps) == 2
    assert jobs_named(raw, name) == [name]


def test_describe_is_retried_when_throttled(make_client: MakeClient, raw: Any) -> None:
    client = make_client()
    name = job_name()
    raw.create_training_job(**training_request(name))
    faults = Faults(client, "DescribeTrainingJob", [THROTTLE, THROTTLE, THROTTLE])

    assert client.describe_training_job(name)["TrainingJobName"] == name
    assert faults.calls == 4
    assert client.attempts["DescribeTrainingJob"] == 4


def test_botocore_retries_are_off(make_client: MakeClient) -> None:
    client = make_client(RetrySettings(attempts=1))
    config: Any = client.sagemaker.meta.config
    assert config.retries == {"total_max_attempts": 1, "mode": "standard"}
    faults = Faults(client, "ListTrainingJobs", [answer(500, b"")], repeat_last=True)

    with pytest.raises(TransientError):
        client.list_training_jobs()
    assert faults.calls == 1  # botocore itself sent the request once: the two policies do not multiply


def test_attempts_exhausted_gives_transient_error_with_the_count(make_client: MakeClient, clock: FakeClock) -> None:
    retry = RetrySettings(attempts=5, backoff_seconds=0.5, max_backoff_seconds=3.0)
    client = make_client(retry)
    faults = Faults(client, "CreateTrainingJob", [THROTTLE], repeat_last=True)

    with pytest.raises(TransientError) as caught:
        client.create_training_job(training_request(job_name()))

    error = caught.value
    assert faults.calls == 5
    assert client.attempts["CreateTrainingJob"] == 5
    assert error.code == "ThrottlingException"
    assert error.operation == "CreateTrainingJob"
    assert "CreateTrainingJob failed after 5 attempts over" in str(error)
    assert "Rate exceeded" in str(error)
    # full jitter: each sleep is in [0, min(max, backoff * 2**n)]
    assert len(clock.sleeps) == 4
    for n, slept in enumerate(clock.sleeps):
        assert 0 <= slept <= min(3.0, 0.5 * 2**n)


def test_unreachable_endpoint_names_the_url(make_client: MakeClient, endpoint: str) -> None:
    client = make_client(RetrySettings(attempts=3))
    faults = Faults(client, "DescribeTrainingJob", [UNREACHABLE], repeat_last=True)

    with pytest.raises(TransientError) as caught:
        client.describe_training_job("anything")

    assert faults.calls == 3
    assert "failed after 3 attempts" in str(caught.value)
    assert endpoint in str(caught.value)
    assert caught.value.code == "EndpointConnectionError"


def test_nothing_listening_is_a_transient_error_naming_the_endpoint(clock: FakeClock) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    settings = ClientSettings(
        endpoint_url=url, local_credentials=True, retry=RetrySettings(attempts=2), connect_timeout=1
    )
    with SageMakerClient(settings, sleep=clock.sleep, clock=clock) as client, pytest.raises(TransientError) as caught:
        client.describe_training_job("anything")
    assert url in str(caught.value)
    assert client.attempts["DescribeTrainingJob"] == 2


def test_deadline_stops_retrying_on_the_injected_clock(make_client: MakeClient, clock: FakeClock) -> None:
    """Slow attempts: each takes 4 s of the fake clock; with a 10 s deadline the third is the last."""
    client = make_client(
        RetrySettings(attempts=100, backoff_seconds=0.001, max_backoff_seconds=0.001, deadline_seconds=10)
    )

    def slow_throttle(request: AWSPreparedRequest) -> AWSResponse:
        clock.now += 4
        return THROTTLE(request)

    faults = Faults(client, "DescribeTrainingJob", [slow_throttle], repeat_last=True)

    with pytest.raises(TransientError) as caught:
        client.describe_training_job("anything")

    assert faults.calls == 3
    assert "failed after 3 attempts over 12.0 s" in str(caught.value)


def test_deadline_counts_sleeps(make_client: MakeClient, clock: FakeClock) -> None:
    """Instant attempts, long backoff: the policy gives up before a sleep would end past the deadline."""
    client = make_client(RetrySettings(attempts=1000, backoff_seconds=1, max_backoff_seconds=5, deadline_seconds=20))
    faults = Faults(client, "DescribeTrainingJob", [THROTTLE], repeat_last=True)

    with pytest.raises(TransientError):
        client.describe_training_job("anything")

    assert sum(clock.sleeps) < 20
    assert 1 < faults.calls < 1000


NOT_RETRIED = {
    "validation": (aws_error("ValidationException", "1 validation error detected"), InvalidRequest),
    "name-in-use": (aws_error("ResourceInUse", AWS_NAME_IN_USE.format(name="x")), NameInUse),
    "quota": (aws_error("ResourceLimitExceeded", AWS_QUOTA), ResourceLimit),
    "access-denied": (
        aws_error("AccessDeniedException", "User: arn:aws:iam::123456789012:user/bob is not authorized"),
        AccessDenied,
    ),
    "expired-token": (
        aws_error("ExpiredTokenException", "The security token included in the request is expired"),
        AccessDenied,
    ),
    "bad-key": (
        aws_error("UnrecognizedClientException", "The security token included in the request is invalid."),
        AccessDenied,
    ),
    "other-4xx": (aws_error("ConflictException", "conflict"), InvalidRequest),
}


@pytest.mark.parametrize(("fault", "expected"), NOT_RETRIED.values(), ids=NOT_RETRIED.keys())
def test_refusals_are_not_retried(
    make_client: MakeClient,
    clock: FakeClock,
    fault: Callable[[AWSPreparedRequest], AWSResponse],
    expected: type[AwsError],
) -> None:
    client = make_client()
    faults = Faults(client, "CreateTrainingJob", [fault], repeat_last=True)

    with pytest.raises(expected) as caught:
        client.create_training_job(training_request(job_name()))

    assert type(caught.value) is expected
    assert faults.calls == 1
    assert client.attempts["CreateTrainingJob"] == 1
    assert clock.sleeps == []
    assert str(caught.value).startswith("CreateTrainingJob")


def test_lost_create_response_meets_name_in_use_and_one_job_exists(make_client: MakeClient, raw: Any) -> None:
    """SageMaker made the job but the response was lost: the retry meets ResourceInUse, raised as NameInUse.

    moto 5.2.5 silently replaces a job of the same name, so the AWS uniqueness answer is played here by a handler
    that asks the server whether the name exists (a local SageMaker that answers it itself changes nothing).
    """
    client = make_client()

    def aws_uniqueness(request: AWSPreparedRequest, **_: Any) -> AWSResponse | None:
        assert isinstance(request.body, (bytes, str))
        name = json.loads(request.body)["TrainingJobName"]
        if jobs_named(raw, name):
            return aws_error("ResourceInUse", AWS_NAME_IN_USE.format(name=name))(request)
        return None

    def delivered_then_lost(request: AWSPreparedRequest) -> AWSResponse:
        http = URLLib3Session()
        try:
            assert http.send(request).status_code == 200  # the job is made...
        finally:
            http.close()
        raise bce.ConnectionClosedError(endpoint_url=request.url)  # ...and the answer never arrives

    register_first(client, "before-send.sagemaker.CreateTrainingJob", aws_uniqueness)
    faults = Faults(client, "CreateTrainingJob", [delivered_then_lost])
    name = job_name("lost")

    with pytest.raises(NameInUse) as caught:
        client.create_training_job(training_request(name))

    assert faults.calls == 2
    assert client.attempts["CreateTrainingJob"] == 2
    assert jobs_named(raw, name) == [name]
    assert "earlier attempt" in str(caught.value)
    assert f"training-job/{name}" in str(caught.value)  # AWS's message, with the ARN the plugin can adopt


# --- classification against the server ------------------------------------------------------------------------------


def test_missing_job_is_not_found_as_moto_answers(make_client: MakeClient, clock: FakeClock) -> None:
    client = make_client()
    name = job_name("missing")
    with pytest.raises(NotFound) as caught:
        client.describe_training_job(name)
    assert caught.value.code == "ValidationException"
    assert caught.value.operation == "DescribeTrainingJob"
    assert "DescribeTrainingJob" in str(caught.value)
    assert isinstance(caught.value.__cause__, bce.ClientError)
    assert caught.value.__cause__.response["Error"]["Message"] in str(caught.value)  # the server's own words
    assert client.attempts["DescribeTrainingJob"] == 1
    assert clock.sleeps == []


def test_missing_job_is_not_found_as_aws_answers(make_client: MakeClient) -> None:
    client = make_client()
    Faults(client, "DescribeTrainingJob", [aws_error("ValidationException", AWS_NOT_FOUND)])
    with pytest.raises(NotFound) as caught:
        client.describe_training_job("gone")
    assert AWS_NOT_FOUND in str(caught.value)


def test_wrappers_against_the_server(make_client: MakeClient) -> None:
    client = make_client()
    name = job_name()
    arn = client.create_training_job(training_request(name))["TrainingJobArn"]

    assert client.describe_training_job(name)["TrainingJobArn"] == arn
    names: list[str] = []
    params: dict[str, Any] = {"NameContains": name}
    while True:
        page = client.list_training_jobs(**params)
        names += [s["TrainingJobName"] for s in page["TrainingJobSummaries"]]
        if not page.get("NextToken"):
            break
        params["NextToken"] = page["NextToken"]
    assert names == [name]
    client.add_tags(arn, [{"Key": "team", "Value": "ml"}, {"Key": "fingerprint", "Value": "abc"}])
    assert {t["Key"]: t["Value"] for t in client.list_tags(arn)} == {"team": "ml", "fingerprint": "abc"}
    assert client.attempts["ListTrainingJobs"] >= 1
    del client.attempts["ListTrainingJobs"]
    assert client.attempts == {"CreateTrainingJob": 1, "DescribeTrainingJob": 1, "AddTags": 1, "ListTags": 1}


def test_list_tags_follows_next_token(make_client: MakeClient) -> None:
    client = make_client()
    pages = [
        answer(200, json.dumps({"Tags": [{"Key": "a", "Value": "1"}], "NextToken": "p2"}).encode()),
        answer(200, json.dumps({"Tags": [{"Key": "b", "Value": "2"}]}).encode()),
    ]
    faults = Faults(client, "ListTags", pages)
    assert client.list_tags("arn:aws:sagemaker:us-east-1:123456789012:training-job/x") == [
        {"Key": "a", "Value": "1"},
        {"Key": "b", "Value": "2"},
    ]
    assert faults.calls == 2


def test_logs_and_s3_clients_are_built_lazily_and_work(make_client: MakeClient) -> None:
    client = make_client()
    assert set(client._clients) == {"sagemaker"}
    bucket = job_name("bucket")
    client.call("s3", "CreateBucket", Bucket=bucket)
    client.call("s3", "PutObject", Bucket=bucket, Key="data/train.csv", Body=b"1,2\n")
    keys = [o["Key"] for o in client.call("s3", "ListObjectsV2", Bucket=bucket)["Contents"]]
    assert keys == ["data/train.csv"]
    with pytest.raises(NotFound):
        client.call("s3", "HeadBucket", Bucket=bucket + "-missing")
    group = "/aws/sagemaker/TrainingJobs"
    client.call("logs", "CreateLogGroup", logGroupName=f"{group}-{bucket}")
    groups = client.call("logs", "DescribeLogGroups", logGroupNamePrefix=f"{group}-{bucket}")["logGroups"]
    assert [g["logGroupName"] for g in groups] == [f"{group}-{bucket}"]
    assert set(client._clients) == {"sagemaker", "s3", "logs"}
    assert client.s3 is client.s3


def test_unknown_service_or_operation_is_a_programming_error(make_client: MakeClient) -> None:
    client = make_client()
    with pytest.raises(ValueError, match="unknown service"):
        client.call("ec2", "DescribeInstances")
    with pytest.raises(ValueError, match="no operation"):
        client.call("sagemaker", "DescribeTrainingJobs")


def test_missing_required_parameter_is_invalid_request(make_client: MakeClient) -> None:
    client = make_client()
    with pytest.raises(InvalidRequest) as caught:
        client.call("sagemaker", "DescribeTrainingJob")
    assert caught.value.code == "ParamValidationError"
    assert client.attempts["DescribeTrainingJob"] == 1


# --- credentials ----------------------------------------------------------------------------------------------------

FAKE_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
FAKE_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
FAKE_TOKEN = "FwoGZXIvYXdzEXAMPLEsessionTOKENvalue0123456789"


@pytest.fixture
def no_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """An environment where boto3's chain finds nothing: no AWS_* variables, no files, no instance metadata."""
    import os

    for var in list(os.environ):
        if var.startswith(("AWS_", "BOTO_")):
            monkeypatch.delenv(var)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.mark.usefixtures("no_credentials")
def test_no_credentials_is_access_denied_with_an_actionable_message(endpoint: str, clock: FakeClock) -> None:
    settings = ClientSettings(endpoint_url=endpoint, local_credentials=False)
    with SageMakerClient(settings, sleep=clock.sleep, clock=clock) as client, pytest.raises(AccessDenied) as caught:
        client.describe_training_job("anything")
    message = str(caught.value)
    assert "DescribeTrainingJob" in message
    assert "credentials were not found" in message
    assert "aws configure" in message
    assert "Unable to locate credentials" in message  # botocore's own words
    assert caught.value.code == "NoCredentialsError"
    assert client.attempts["DescribeTrainingJob"] == 1
    assert clock.sleeps == []


@pytest.mark.usefixtures("no_credentials")
def test_unknown_profile_is_access_denied_at_construction() -> None:
    with pytest.raises(AccessDenied) as caught:
        SageMakerClient(ClientSettings(profile="no-such-profile"))
    assert "no-such-profile" in str(caught.value)
    assert "aws configure --profile" in str(caught.value)


def test_rejected_credentials_never_appear_in_the_message(endpoint: str, clock: FakeClock) -> None:
    session = boto3.Session(
        aws_access_key_id=FAKE_KEY_ID, aws_secret_access_key=FAKE_SECRET, aws_session_token=FAKE_TOKEN
    )
    settings = ClientSettings(endpoint_url=endpoint, rate_limits=UNLIMITED)
    with SageMakerClient(settings, session=session, sleep=clock.sleep, clock=clock) as client:
        echo = (
            f"The security token included in the request is invalid. {FAKE_KEY_ID} aws_secret_access_key={FAKE_SECRET}"
        )
        faults = Faults(client, "CreateTrainingJob", [aws_error("UnrecognizedClientException", echo)])
        with pytest.raises(AccessDenied) as caught:
            client.create_training_job(training_request(job_name()))
    message = str(caught.value)
    assert faults.calls == 1
    assert "did not accept the credentials" in message
    for secret in (FAKE_KEY_ID, FAKE_SECRET, FAKE_TOKEN):
        assert secret not in message
    assert "The security token included in the request is invalid." in message


# --- classify on AWS's exact answers --------------------------------------------------------------------------------


def client_error(code: str, message: str, status: int = 400, operation: str = "CreateTrainingJob") -> bce.ClientError:
    response: Any = {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}
    return bce.ClientError(response, operation)


CLASSIFIED = [
    ("CreateTrainingJob", client_error("ResourceInUse", AWS_NAME_IN_USE.format(name="j")), NameInUse),
    ("DescribeTrainingJob", client_error("ValidationException", AWS_NOT_FOUND), NotFound),
    ("DescribeTrainingJob", client_error("ValidationException", "Could not find training job 'arn:x'."), NotFound),
    ("StopTrainingJob", client_error("ValidationException", "Training job j does not exist."), NotFound),
    ("CreateTrainingJob", client_error("ValidationException", "Could not find image 'x'."), InvalidRequest),
    ("StopTrainingJob", client_error("ValidationException", AWS_NOT_IN_PROGRESS), InvalidRequest),
    (
        "CreateTrainingJob",
        client_error("ValidationException", "1 validation error detected: Value 'bad_name!'"),
        InvalidRequest,
    ),
    ("CreateTrainingJob", client_error("ResourceLimitExceeded", AWS_QUOTA), ResourceLimit),
    ("DescribeTrainingJob", client_error("ResourceNotFound", "Job not found"), NotFound),
    ("CreateTrainingJob", client_error("ThrottlingException", "Rate exceeded"), TransientError),
    ("CreateTrainingJob", client_error("500", "Internal Server Error", 500), TransientError),
    ("CreateTrainingJob", client_error("InternalFailure", "An internal error occurred", 500), TransientError),
    (
        "CreateTrainingJob",
        client_error("AccessDeniedException", "User: arn:aws:iam::1:user/b is not authorized"),
        AccessDenied,
    ),
    (
        "CreateTrainingJob",
        client_error("ExpiredTokenException", "The security token included in the request is expired"),
        AccessDenied,
    ),
    (
        "CreateTrainingJob",
        client_error("UnrecognizedClientException", "The security token included in the request is invalid."),
        AccessDenied,
    ),
    (
        "CreateTrainingJob",
        client_error("InvalidClientTokenId", "The security token included in the request is invalid."),
        AccessDenied,
    ),
    ("CreateTrainingJob", client_error("InvalidSignatureException", "Signature expired"), AccessDenied),
    ("CreateTrainingJob", client_error("SomethingNew", "a new kind of error", 409), InvalidRequest),
    ("HeadBucket", client_error("404", "Not Found", 404), NotFound),
    ("HeadBucket", client_error("403", "Forbidden", 403), AccessDenied),
    (
        "DescribeLogStreams",
        client_error("ResourceNotFoundException", "The specified log group does not exist."),
        NotFound,
    ),
    ("CreateTrainingJob", client_error("SomethingNew", "a new kind of error", 501), AwsError),
]


@pytest.mark.parametrize(
    ("operation", "error", "expected"), CLASSIFIED, ids=[f"{o}-{e.response['Error']['Code']}" for o, e, _ in CLASSIFIED]
)
def test_classify_client_errors(operation: str, error: bce.ClientError, expected: type[AwsError]) -> None:
    result = classify(error, operation)
    assert type(result) is expected
    assert result.code == error.response["Error"]["Code"]
    assert result.operation == operation
    assert operation in str(result)
    assert error.response["Error"]["Message"] in str(result)  # AWS's own words, whole


def test_classify_access_denied_says_what_to_grant() -> None:
    error = client_error("AccessDeniedException", "User: arn:aws:iam::123456789012:user/bob is not authorized")
    message = str(classify(error, "CreateTrainingJob"))
    assert "sagemaker:CreateTrainingJob" in message
    assert "iam:PassRole" in message
    assert "logs:GetLogEvents" in str(classify(error, "GetLogEvents", service="logs"))


def test_classify_transient_says_attempts_and_time() -> None:
    error = client_error("ThrottlingException", "Rate exceeded")
    result = classify(error, "DescribeTrainingJob", attempts=8, elapsed=42.25)
    assert (
        str(result)
        == "DescribeTrainingJob failed after 8 attempts over 42.2 s (AWS said ThrottlingException: Rate exceeded)"
    )
    assert "after 1 attempt (" in str(classify(error, "DescribeTrainingJob"))


def test_classify_tidies_an_html_page() -> None:
    page = "<!doctype html>\n<html>\n" + "<p>Internal Server Error</p>\n" * 200 + "</html>"
    message = str(classify(client_error("500", page, 500), "StopTrainingJob"))
    assert "\n" not in message
    assert len(message) <= 1000


BOTOCORE_ERRORS = [
    (bce.NoCredentialsError(), AccessDenied, "credentials were not found"),
    (
        bce.PartialCredentialsError(provider="env", cred_var="AWS_SECRET_ACCESS_KEY"),
        AccessDenied,
        "could not be loaded",
    ),
    (bce.ProfileNotFound(profile="dev"), AccessDenied, "aws configure --profile"),
    (bce.CredentialRetrievalError(provider="sso", error_msg="token expired"), AccessDenied, "could not be loaded"),
    (bce.UnauthorizedSSOTokenError(), AccessDenied, "could not be loaded"),
    (
        bce.EndpointConnectionError(endpoint_url="https://api.sagemaker.us-east-1.amazonaws.com/"),
        TransientError,
        "https://api.sagemaker.us-east-1.amazonaws.com/",
    ),
    (bce.ConnectionClosedError(endpoint_url="https://x/"), TransientError, "network error"),
    (bce.ReadTimeoutError(endpoint_url="https://x/"), TransientError, "network error"),
    (bce.ConnectTimeoutError(endpoint_url="https://x/"), TransientError, "network error"),
    (urllib3.exceptions.ProtocolError("Connection aborted."), TransientError, "network error"),
    (bce.ParamValidationError(report="Missing required parameter"), InvalidRequest, "Missing required parameter"),
    (RuntimeError("boom"), AwsError, "boom"),
]


@pytest.mark.parametrize(
    ("error", "expected", "words"), BOTOCORE_ERRORS, ids=[type(e).__name__ for e, _, _ in BOTOCORE_ERRORS]
)
def test_classify_botocore_errors(error: Exception, expected: type[AwsError], words: str) -> None:
    result = classify(error, "CreateTrainingJob", attempts=3, elapsed=1.0)
    assert type(result) is expected
    assert words in str(result)
    assert str(result).startswith("CreateTrainingJob")
    assert result.code == type(error).__name__


def test_classify_keeps_an_already_classified_error() -> None:
    error = NotFound("DescribeTrainingJob: gone", code="ValidationException", operation="DescribeTrainingJob")
    assert classify(error, "Other") is error


def test_retry_predicate() -> None:
    assert is_retryable(client_error("ThrottlingException", "Rate exceeded"))
    assert is_retryable(client_error("RequestThrottled", "x"))
    assert is_retryable(client_error("ProvisionedThroughputExceededException", "x"))
    assert is_retryable(client_error("Whatever", "x", 503))
    assert is_retryable(client_error("TooManyRequests", "x", 429))
    assert is_retryable(bce.ConnectionClosedError(endpoint_url="u"))
    assert is_retryable(urllib3.exceptions.ProtocolError("Connection aborted."))
    assert not is_retryable(client_error("ValidationException", "x"))
    assert not is_retryable(client_error("ResourceInUse", "x"))
    assert not is_retryable(client_error("ResourceLimitExceeded", "x"))
    assert not is_retryable(client_error("AccessDeniedException", "x", 403))
    assert not is_retryable(client_error("NotImplemented", "x", 501))
    assert not is_retryable(bce.NoCredentialsError())


def test_redact() -> None:
    text = f"key {FAKE_KEY_ID}; aws_secret_access_key={FAKE_SECRET}; X-Amz-Security-Token: {FAKE_TOKEN}"
    cleaned = redact(text)
    for secret in (FAKE_KEY_ID, FAKE_SECRET, FAKE_TOKEN):
        assert secret not in cleaned
    assert "AKIA****************" in cleaned
    assert redact("arn:aws:iam::123456789012:role/SageMakerRole") == "arn:aws:iam::123456789012:role/SageMakerRole"


# --- settings, partition --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("region", "partition"),
    [
        ("us-east-1", "aws"),
        ("eu-west-1", "aws"),
        ("cn-north-1", "aws-cn"),
        ("us-gov-west-1", "aws-us-gov"),
        ("xx-nowhere-9", "aws"),
    ],
)
def test_partition_from_botocore(session: boto3.Session, region: str, partition: str) -> None:
    client = SageMakerClient(ClientSettings(region=region, local_credentials=True), session=session)
    assert client.region == region
    assert client.partition == partition
    assert client.sagemaker.meta.region_name == region


def test_settings_defaults(session: boto3.Session) -> None:
    settings = ClientSettings()
    assert settings.retry == RetrySettings(
        attempts=8, backoff_seconds=0.5, max_backoff_seconds=20.0, deadline_seconds=300.0
    )
    assert settings.rate_limits == RateLimits(create_per_second=1.0, read_per_second=10.0)
    assert (settings.region, settings.endpoint_url, settings.profile, settings.local_credentials) == (
        "us-east-1",
        None,
        None,
        False,
    )
    client = SageMakerClient(ClientSettings(local_credentials=True, connect_timeout=3, read_timeout=7), session=session)
    config: Any = client.sagemaker.meta.config
    assert (config.connect_timeout, config.read_timeout) == (3, 7)


# --- rate limits ----------------------------------------------------------------------------------------------------


def test_bucket_unlimited() -> None:
    clock = FakeClock()
    for rate in (None, 0, -1):
        bucket = TokenBucket(rate, clock=clock, sleep=clock.sleep)
        assert bucket.unlimited
        assert [bucket.acquire() for _ in range(100)] == [0.0] * 100
    assert clock.sleeps == []


def test_bucket_rate_is_respected() -> None:
    clock = FakeClock()
    bucket = TokenBucket(2.0, burst=1, clock=clock, sleep=clock.sleep)
    start = clock.now
    times = []
    for _ in range(5):
        bucket.acquire()
        times.append(clock.now - start)
    assert times == pytest.approx([0.0, 0.5, 1.0, 1.5, 2.0])
    assert bucket.acquired == 5
    assert bucket.waited_seconds == pytest.approx(2.0)


def test_bucket_burst_then_refill_capped() -> None:
    clock = FakeClock()
    bucket = TokenBucket(1.0, burst=3, clock=clock, sleep=clock.sleep)
    assert [bucket.acquire() for _ in range(4)] == pytest.approx([0, 0, 0, 1.0])
    clock.now += 100  # idle: the bucket fills up to its burst, not to 100 tokens
    assert [bucket.acquire() for _ in range(4)] == pytest.approx([0, 0, 0, 1.0])


def test_bucket_burst_queues_instead_of_failing() -> None:
    """With time frozen, each caller reserves the next slot: waits grow by 1/rate, nobody is refused."""
    frozen = FakeClock()
    waits: list[float] = []
    bucket = TokenBucket(4.0, burst=2, clock=frozen, sleep=waits.append)
    assert [bucket.acquire() for _ in range(6)] == pytest.approx([0, 0, 0.25, 0.5, 0.75, 1.0])
    assert waits == pytest.approx([0.25, 0.5, 0.75, 1.0])


def test_bucket_is_thread_safe() -> None:
    """Many threads, time frozen: the waits handed out are exactly the slots 1/rate apart, none given twice."""
    frozen = FakeClock()
    bucket = TokenBucket(10.0, burst=5, clock=frozen, sleep=lambda _: None)
    results: list[float] = []
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        for _ in range(25):
            waited = bucket.acquire()
            with lock:
                results.append(waited)

    in_threads(worker, 8)

    assert bucket.acquired == 200
    assert sorted(results) == pytest.approx([0.0] * 5 + [k / 10 for k in range(1, 196)])


def test_bucket_paces_real_threads() -> None:
    bucket = TokenBucket(100.0, burst=1)
    start = time.monotonic()
    in_threads(lambda: [bucket.acquire() for _ in range(5)], 4)
    assert time.monotonic() - start >= 19 / 100 - 0.01
    assert bucket.acquired == 20


def test_bucket_rejects_a_burst_below_one() -> None:
    with pytest.raises(ValueError, match="burst"):
        TokenBucket(1.0, burst=0.5)


def test_client_paces_writes_and_reads_apart(make_client: MakeClient, clock: FakeClock) -> None:
    client = make_client(rate_limits=RateLimits(create_per_second=1.0, read_per_second=10.0))
    names = [job_name() for _ in range(3)]
    for name in names:
        client.create_training_job(training_request(name))
    assert client.write_bucket.acquired == 3
    assert client.write_bucket.waited_seconds == pytest.approx(2.0)  # 1 a second: the 2nd and 3rd waited 1 s each
    assert client.read_bucket.acquired == 0

    for name in names:
        client.describe_training_job(name)
    client.list_training_jobs()
    assert client.read_bucket.acquired == 4
    assert client.write_bucket.acquired == 3
    assert client.read_bucket.waited_seconds == 0  # 4 reads fit in the read bucket's burst of 10


def test_every_attempt_takes_a_token(make_client: MakeClient) -> None:
    client = make_client(rate_limits=RateLimits(create_per_second=1.0, read_per_second=10.0))
    Faults(client, "CreateTrainingJob", [THROTTLE, THROTTLE])
    client.create_training_job(training_request(job_name()))
    assert client.write_bucket.acquired == 3
    assert client.attempts["CreateTrainingJob"] == 3


def test_bucket_choice_by_operation(make_client: MakeClient) -> None:
    client = make_client()
    assert client.bucket_for("sagemaker", "CreateTrainingJob") is client.write_bucket
    assert client.bucket_for("sagemaker", "StopTrainingJob") is client.write_bucket
    assert client.bucket_for("sagemaker", "AddTags") is client.write_bucket
    assert client.bucket_for("sagemaker", "DescribeTrainingJob") is client.read_bucket
    assert client.bucket_for("sagemaker", "ListTrainingJobs") is client.read_bucket
    assert client.bucket_for("sagemaker", "ListTags") is client.read_bucket
    assert client.bucket_for("logs", "GetLogEvents") is client.read_bucket
    assert client.bucket_for("logs", "DescribeLogStreams") is client.read_bucket
    assert client.bucket_for("s3", "PutObject") is None


def test_concurrent_calls_count_every_attempt(make_client: MakeClient, raw: Any) -> None:
    client = make_client()
    name = job_name()
    raw.create_training_job(**training_request(name))

    def work() -> None:
        for _ in range(5):
            client.describe_training_job(name)

    in_threads(work, 6)
    assert client.attempts["DescribeTrainingJob"] == 30


def test_what_is_retried_is_our_table_joined_with_botocores_public_retry_data() -> None:
    """botocore's public retry data adds its codes to our table; our table is the standard mode's (where this botocore
    still names its private lists, they agree), and its statuses are the retry data's 5xx but 509."""
    from botocore.retries import standard as botocore_standard

    from handlers import retry

    checker = retry.standard_checker()
    codes, statuses = retry.botocore_retry_data()
    assert codes and codes <= checker.throttling_codes
    assert checker.transient_statuses == statuses - {509}
    private = getattr(botocore_standard.ThrottledRetryableChecker, "_THROTTLED_ERROR_CODES", None)
    assert private is None or frozenset(private) == checker.throttling_codes
