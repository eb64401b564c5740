"""Quotas: request rates per operation (ThrottlingException) and instances per type (ResourceLimitExceeded).

The server runs on a fake clock (server_clock.ManualClock): buckets refill and jobs move on only when a test moves it,
so what a test sees never depends on how fast a loaded machine answers.
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from local_sagemaker import LocalSageMaker, LocalSettings
from local_sagemaker.testing import LocalClients, unique_name
from server_clock import ManualClock

LOCAL_SETTINGS = LocalSettings(
    execution="simulate",
    time_scale=10,  # a job takes 0.5 s of the server's clock
    requests_per_second={"ListTrainingJobs": 2.0, "DescribeLogStreams": 1.0},
    instances={"ml.p3.2xlarge": 2, "ml.g5.xlarge": 0},
)
#: server-clock seconds past the end of any job's timeline (0.5 s) and stop (0.1 s)
PAST_THE_END = 5.0


@pytest.fixture(scope="module")
def server_clock() -> ManualClock:
    """Held from the start: only the tests move it (tests/conftest.py runs `server` on it, with LOCAL_SETTINGS)."""
    return ManualClock()


def later(aws: LocalClients, clock: ManualClock, name: str) -> dict[str, Any]:
    """The job as described once the server's clock has moved past the end of its timeline."""
    clock.advance(PAST_THE_END)
    job: dict[str, Any] = aws.sagemaker.describe_training_job(TrainingJobName=name)
    return job


def test_over_the_rate_is_throttling_exception_rate_exceeded(aws: LocalClients, server: LocalSageMaker,
                                                            server_clock: ManualClock) -> None:
    client = aws.client("sagemaker", retries={"total_max_attempts": 1})
    server_clock.advance(1.0)  # a full bucket
    server.reset_counts()
    outcomes = []
    for _ in range(4):
        try:
            client.list_training_jobs()
            outcomes.append("ok")
        except ClientError as error:
            response = error.response
            assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
            outcomes.append(f"{response['Error']['Code']}: {response['Error']['Message']}")
    assert outcomes == ["ok", "ok", "ThrottlingException: Rate exceeded", "ThrottlingException: Rate exceeded"]
    assert server.call_counts()["ListTrainingJobs"] == 4
    assert server.throttled_counts()["ListTrainingJobs"] == 2
    server_clock.advance(0.5)  # half a second refills one request at 2/s, and only one
    client.list_training_jobs()
    with pytest.raises(ClientError, match="Rate exceeded"):
        client.list_training_jobs()


def test_botocore_retries_throttling_on_its_own(aws: LocalClients, server: LocalSageMaker,
                                                server_clock: ManualClock) -> None:
    client = aws.client("sagemaker", retries={"mode": "standard", "total_max_attempts": 10})
    # Each request comes 0.2 s of the server's clock after the one before: 0.4 of a request refilled each time, so
    # the third call is throttled once and its retry gets through.
    client.meta.events.register("before-send.sagemaker.ListTrainingJobs", lambda **_: server_clock.advance(0.2))
    server_clock.advance(1.0)
    server.reset_counts()
    for _ in range(3):
        client.list_training_jobs()  # standard retry mode backs off and succeeds
    assert server.call_counts()["ListTrainingJobs"] == 4
    assert server.throttled_counts()["ListTrainingJobs"] == 1


def test_other_operations_and_services_are_not_limited_by_it(aws: LocalClients, server: LocalSageMaker,
                                                            server_clock: ManualClock) -> None:
    server_clock.advance(1.0)
    client = aws.client("sagemaker", retries={"total_max_attempts": 1})
    for _ in range(10):
        with pytest.raises(ClientError) as excinfo:
            client.describe_training_job(TrainingJobName=unique_name("missing"))
        assert excinfo.value.response["Error"]["Code"] == "ValidationException"
    logs = aws.client("logs", retries={"total_max_attempts": 1})
    group = unique_name("group")
    logs.create_log_group(logGroupName=group)
    with pytest.raises(ClientError) as excinfo:
        for _ in range(3):
            logs.describe_log_streams(logGroupName=group)
    assert excinfo.value.response["Error"]["Code"] == "ThrottlingException"
    assert server.call_counts("logs")["DescribeLogStreams"] >= 2


def test_an_instance_type_at_zero_refuses_with_aws_text(aws: LocalClients) -> None:
    request = aws.training_request(unique_name("quota"), instance_type="ml.g5.xlarge")
    with pytest.raises(ClientError) as excinfo:
        aws.sagemaker.create_training_job(**request)
    error = excinfo.value.response["Error"]
    assert error["Code"] == "ResourceLimitExceeded"
    assert error["Message"] == (
        "The account-level service limit 'ml.g5.xlarge for training job usage' is 0 Instances, with current "
        "utilization of 0 Instances and a request delta of 1 Instances. Please use AWS Service Quotas to request an "
        "increase for this quota. If AWS Service Quotas is not available, contact AWS support to request an increase "
        "for this quota."
    )


def test_capacity_is_held_while_jobs_run_and_freed_when_they_end(aws: LocalClients, server_clock: ManualClock
                                                                 ) -> None:
    first = unique_name("hold")
    aws.sagemaker.create_training_job(**aws.training_request(first, instance_type="ml.p3.2xlarge"))
    second = unique_name("hold")
    second_request = aws.training_request(second, instance_type="ml.p3.2xlarge", instance_count=2)
    with pytest.raises(ClientError) as excinfo:
        aws.sagemaker.create_training_job(**second_request)
    message = excinfo.value.response["Error"]["Message"]
    assert "is 2 Instances, with current utilization of 1 Instances and a request delta of 2 Instances" in message
    # Other types are not affected.
    aws.sagemaker.create_training_job(**aws.training_request(unique_name("other"), instance_type="ml.m5.large"))
    assert later(aws, server_clock, first)["TrainingJobStatus"] == "Completed"
    aws.sagemaker.create_training_job(**second_request)
    aws.sagemaker.stop_training_job(TrainingJobName=second)
    stopping = aws.sagemaker.describe_training_job(TrainingJobName=second)
    assert stopping["TrainingJobStatus"] == "Stopping"
    # A Stopping job still holds its instances.
    third_request = aws.training_request(unique_name("hold"), instance_type="ml.p3.2xlarge")
    with pytest.raises(ClientError) as excinfo:
        aws.sagemaker.create_training_job(**third_request)
    assert excinfo.value.response["Error"]["Code"] == "ResourceLimitExceeded"
    assert later(aws, server_clock, second)["TrainingJobStatus"] == "Stopped"
    aws.sagemaker.create_training_job(**third_request)


def test_a_failing_job_frees_its_capacity_too(aws: LocalClients, server_clock: ManualClock) -> None:
    server_clock.advance(PAST_THE_END)  # the jobs of the tests before have ended
    name = unique_name("fails")
    request = aws.training_request(name, instance_type="ml.p3.2xlarge", instance_count=2, channels={"train": "s3://x/"})
    aws.sagemaker.create_training_job(**request)
    with pytest.raises(ClientError, match="current utilization of 2 Instances"):
        aws.sagemaker.create_training_job(**aws.training_request(unique_name("meanwhile"),
                                                                 instance_type="ml.p3.2xlarge"))
    assert later(aws, server_clock, name)["TrainingJobStatus"] == "Failed"
    again = aws.training_request(unique_name("after"), instance_type="ml.p3.2xlarge", instance_count=2)
    aws.sagemaker.create_training_job(**again)
