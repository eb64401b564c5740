"""A job's life as DescribeTrainingJob shows it: statuses, transitions, times, seconds, tags, regions."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import pytest

from local_sagemaker import LocalSettings
from local_sagemaker.logs import unit
from local_sagemaker.testing import CUSTOM_IMAGE, LocalClients, unique_name
from server_clock import ManualClock, wait_stepping

# tests/conftest.py runs this module's local SageMaker (`server`, and `aws` on it) with LOCAL_SETTINGS.
# Starting 0.1 s, Downloading 0.1 s, Training 0.2 s, Uploading 0.1 s.
LOCAL_SETTINGS = LocalSettings(execution="simulate", time_scale=10)


def test_a_job_goes_through_every_secondary_status_to_completed(aws: LocalClients, server_clock: ManualClock) -> None:
    server_clock.hold()  # the test's polls see every 20 ms of the job's life (each phase lasts 100 ms)
    name = unique_name("life")
    arn = aws.sagemaker.create_training_job(**aws.training_request(name))["TrainingJobArn"]
    assert arn == f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{name}"
    seen: list[tuple[str, str]] = []

    def record(job: Mapping[str, Any]) -> bool:
        pair = (str(job["TrainingJobStatus"]), str(job["SecondaryStatus"]))
        if not seen or seen[-1] != pair:
            seen.append(pair)
        return bool(job["TrainingJobStatus"] != "InProgress")

    job = wait_stepping(aws, server_clock, name, until=record)
    assert seen == [
        ("InProgress", "Starting"),
        ("InProgress", "Downloading"),
        ("InProgress", "Training"),
        ("InProgress", "Uploading"),
        ("Completed", "Completed"),
    ]
    assert job["TrainingJobStatus"] == "Completed"
    assert "FailureReason" not in job


def test_transitions_and_times_are_consistent_like_aws(aws: LocalClients) -> None:
    name = unique_name("times")
    aws.sagemaker.create_training_job(**aws.training_request(name))
    job = aws.wait(name)
    transitions = job["SecondaryStatusTransitions"]
    assert [(t["Status"], t["StatusMessage"]) for t in transitions] == [
        ("Starting", "Preparing the instances for training"),
        ("Downloading", "Downloading input data"),
        ("Training", "Training image download completed. Training in progress."),
        ("Uploading", "Uploading generated training model"),
        ("Completed", "Training job completed"),
    ]
    for before, after in itertools.pairwise(transitions):
        assert before["EndTime"] == after["StartTime"]
        assert before["StartTime"] <= before["EndTime"]
    assert transitions[0]["StartTime"] == job["CreationTime"]
    assert transitions[-1]["StartTime"] == transitions[-1]["EndTime"] == job["TrainingEndTime"]
    assert job["TrainingStartTime"] == transitions[1]["StartTime"]
    assert job["LastModifiedTime"] == job["TrainingEndTime"]
    # 0.4 s of wall time from Downloading to the end is 4 timeline seconds at time_scale 10.
    elapsed = job["TrainingEndTime"] - job["TrainingStartTime"]
    assert abs(elapsed - timedelta(seconds=0.4)) < timedelta(milliseconds=5)
    assert job["TrainingTimeInSeconds"] == 4
    assert job["BillableTimeInSeconds"] == 4
    assert job["EnableManagedSpotTraining"] is False


def test_last_modified_time_moves_with_each_status(aws: LocalClients, server_clock: ManualClock) -> None:
    server_clock.hold()
    name = unique_name("lastmod")
    aws.sagemaker.create_training_job(**aws.training_request(name))
    first = aws.sagemaker.describe_training_job(TrainingJobName=name)
    assert first["LastModifiedTime"] == first["CreationTime"]
    training = wait_stepping(aws, server_clock, name, until=lambda job: job["SecondaryStatus"] == "Training")
    assert training["LastModifiedTime"] > first["LastModifiedTime"]
    assert training["LastModifiedTime"] == training["SecondaryStatusTransitions"][-1]["StartTime"]
    assert "TrainingEndTime" not in training and "TrainingTimeInSeconds" not in training
    done = wait_stepping(aws, server_clock, name)
    assert done["LastModifiedTime"] > training["LastModifiedTime"]


def test_describe_echoes_the_request_and_keeps_the_callers_metric_definitions(aws: LocalClients) -> None:
    name = unique_name("echo")
    definitions = [{"Name": "loss", "Regex": r"loss=([0-9.]+)"}, {"Name": "acc", "Regex": r"accuracy=([0-9.]+)"}]
    request = aws.training_request(
        name,
        image=CUSTOM_IMAGE,
        hyperparameters={"epochs": "4", "lr": "0.1"},
        Environment={"LOG_LEVEL": "info"},
        EnableNetworkIsolation=True,
    )
    request["AlgorithmSpecification"]["MetricDefinitions"] = definitions
    request["AlgorithmSpecification"]["ContainerEntrypoint"] = ["python", "-m", "trainer"]
    aws.sagemaker.create_training_job(**request)
    job = aws.sagemaker.describe_training_job(TrainingJobName=name)
    # EnableSageMakerMetricsTimeSeries: the service model's documented default, filled in as AWS does.
    # Members left out come back with what AWS shows for them (local_sagemaker/defaults.py says why each).
    spec = {**request["AlgorithmSpecification"], "EnableSageMakerMetricsTimeSeries": False}
    assert job["AlgorithmSpecification"] == spec
    assert job["HyperParameters"] == {"epochs": "4", "lr": "0.1"}
    assert job["Environment"] == {"LOG_LEVEL": "info"}
    channels = [{**c, "CompressionType": "None", "RecordWrapperType": "None"} for c in request["InputDataConfig"]]
    assert job["InputDataConfig"] == channels
    assert job["OutputDataConfig"] == {"KmsKeyId": "", "CompressionType": "GZIP", **request["OutputDataConfig"]}
    assert job["ResourceConfig"] == request["ResourceConfig"]
    assert job["StoppingCondition"] == request["StoppingCondition"]
    assert job["RoleArn"] == request["RoleArn"]
    assert job["EnableNetworkIsolation"] is True
    done = aws.wait(name)
    assert done["AlgorithmSpecification"]["MetricDefinitions"] == definitions
    assert [m["MetricName"] for m in done["FinalMetricDataList"]] == ["loss", "acc"]


def test_managed_spot_bills_a_stable_fraction_of_training_time(aws: LocalClients) -> None:
    name = unique_name("spot")
    request = aws.training_request(
        name,
        EnableManagedSpotTraining=True,
        StoppingCondition={"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 7200},
        CheckpointConfig={"S3Uri": "s3://local-sagemaker-data/checkpoints/"},
    )
    aws.sagemaker.create_training_job(**request)
    job = aws.wait(name)
    assert job["TrainingJobStatus"] == "Completed"
    assert job["EnableManagedSpotTraining"] is True
    assert job["CheckpointConfig"] == {"S3Uri": "s3://local-sagemaker-data/checkpoints/"}
    training, billable = job["TrainingTimeInSeconds"], job["BillableTimeInSeconds"]
    assert training == 4
    assert 0.3 * training - 1 <= billable <= 0.7 * training + 1
    assert billable == max(1, round(training * (0.3 + 0.4 * unit(name, "spot"))))


def test_tags_work_for_training_job_arns(aws: LocalClients) -> None:
    name = unique_name("tags")
    request = aws.training_request(name, Tags=[{"Key": "team", "Value": "ml"}])
    arn = aws.sagemaker.create_training_job(**request)["TrainingJobArn"]
    assert aws.sagemaker.list_tags(ResourceArn=arn)["Tags"] == [{"Key": "team", "Value": "ml"}]
    aws.sagemaker.add_tags(ResourceArn=arn, Tags=[{"Key": "stopped-by", "Value": "plugin"}])
    tags = {tag["Key"]: tag["Value"] for tag in aws.sagemaker.list_tags(ResourceArn=arn)["Tags"]}
    assert tags == {"team": "ml", "stopped-by": "plugin"}
    aws.sagemaker.delete_tags(ResourceArn=arn, TagKeys=["team"])
    assert aws.sagemaker.list_tags(ResourceArn=arn)["Tags"] == [{"Key": "stopped-by", "Value": "plugin"}]
    assert "Tags" not in aws.sagemaker.describe_training_job(TrainingJobName=name)


@pytest.mark.parametrize("region", ["eu-west-1", "ap-southeast-2"])
def test_any_region_works_and_regions_are_separate(aws: LocalClients, region: str) -> None:
    name = unique_name("region")
    elsewhere = LocalClients(aws.url, region=region)
    request = aws.training_request(name)
    arn = elsewhere.sagemaker.create_training_job(**request)["TrainingJobArn"]
    assert arn == f"arn:aws:sagemaker:{region}:123456789012:training-job/{name}"
    assert elsewhere.wait(name)["TrainingJobStatus"] == "Completed"
    names = [s["TrainingJobName"] for s in aws.sagemaker.list_training_jobs(NameContains=name)["TrainingJobSummaries"]]
    assert names == []
    # The same name is free in another region, as on AWS.
    aws.sagemaker.create_training_job(**request)


def test_jobs_run_concurrently_without_a_thread_each(aws: LocalClients) -> None:
    import threading

    before = threading.active_count()
    names = [unique_name("many") for _ in range(40)]
    for name in names:
        aws.sagemaker.create_training_job(**aws.training_request(name))
    assert threading.active_count() <= before + 3
    for name in names:
        assert aws.wait(name)["TrainingJobStatus"] == "Completed"
