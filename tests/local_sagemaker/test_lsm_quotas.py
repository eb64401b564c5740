"""Quotas: request rates per operation (ThrottlingException) and instances per type (ResourceLimitExceeded)."""

from __future__ import annotations

import time

import pytest
from botocore.exceptions import ClientError

from local_sagemaker import LocalSageMaker, LocalSettings
from local_sagemaker.testing import LocalClients, unique_name

# tests/conftest.py runs this module's local SageMaker (`server`, and `aws` on it) with LOCAL_SETTINGS.
LOCAL_SETTINGS = LocalSettings(
    execution="simulate",
    time_scale=10,  # a job takes 0.5 s
    requests_per_second={"ListTrainingJobs": 2.0, "DescribeLogStreams": 1.0},
    instances={"ml.p3.2xlarge": 2, "ml.g5.xlarge": 0},
)


def test_over_the_rate_is_throttling_exception_rate_exceeded(aws: LocalClients, server: LocalSageMaker) -> None:
    client = aws.client("sagemaker", retries={"total_max_attempts": 1})
    time.sleep(1.0)  # a full bucket
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
    time.sleep(0.55)  # half a second refills one request at 2/s
    client.list_training_jobs()


def test_botocore_retries_throttling_on_its_own(aws: LocalClients, server: LocalSageMaker) -> None:
    client = aws.client("sagemaker", retries={"mode": "standard", "total_max_attempts": 10})
    time.sleep(1.0)
    server.reset_counts()
    for _ in range(3):
        # standard retry mode backs off and succeeds (its jitter may retry at once: enough attempts to outlast 2/s)
        client.list_training_jobs()
    assert server.call_counts()["ListTrainingJobs"] > 3
    assert server.throttled_counts()["ListTrainingJobs"] >= 1


def test_other_operations_and_services_are_not_limited_by_it(aws: LocalClients, server: LocalSageMaker) -> None:
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


def test_capacity_is_held_while_jobs_run_and_freed_when_they_end(aws: LocalClients) -> None:
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
    aws.wait(first)
    aws.sagemaker.create_training_job(**second_request)
    aws.sagemaker.stop_training_job(TrainingJobName=second)
    stopping = aws.sagemaker.describe_training_job(TrainingJobName=second)
    assert stopping["TrainingJobStatus"] == "Stopping"
    # A Stopping job still holds its instances.
    third_request = aws.training_request(unique_name("hold"), instance_type="ml.p3.2xlarge")
    with pytest.raises(ClientError) as excinfo:
        aws.sagemaker.create_training_job(**third_request)
    assert excinfo.value.response["Error"]["Code"] == "ResourceLimitExceeded"
    aws.wait(second)
    aws.sagemaker.create_training_job(**third_request)


def test_a_failing_job_frees_its_capacity_too(aws: LocalClients) -> None:
    name = unique_name("fails")
    request = aws.training_request(name, instance_type="ml.p3.2xlarge", instance_count=2, channels={"train": "s3://x/"})
    while True:
        try:
            aws.sagemaker.create_training_job(**request)
            break
        except ClientError as error:  # the previous test's last job may still hold one instance
            assert error.response["Error"]["Code"] == "ResourceLimitExceeded"
            time.sleep(0.05)
    assert aws.wait(name)["TrainingJobStatus"] == "Failed"
    again = aws.training_request(unique_name("after"), instance_type="ml.p3.2xlarge", instance_count=2)
    aws.sagemaker.create_training_job(**again)
