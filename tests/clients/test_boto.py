"""boto3 as AWS's own users drive it (waiters, paginators, ClientError) against `sagemaker-plugin local serve`.

Each test names the deviation from AWS it keeps fixed. Where AWS's exact behaviour is not published, the test says so
and holds the local SageMaker to the service model's documentation.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable
from typing import Any

import botocore.session
import pytest
from botocore.exceptions import ClientError, WaiterError

from local_sagemaker import LOG_GROUP
from local_sagemaker.testing import unique_name
from local_serve import BUCKET, FAILING, REGION, Served

FAST = {"Delay": 1, "MaxAttempts": 60}  # the waiter's own delay is 120 s


def error_of(call: Callable[..., Any], **params: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as info:
        call(**params)
    return info.value.response["Error"]["Code"], info.value.response["Error"]["Message"]


def wait_for(served: Served, name: str, until: Callable[[dict[str, Any]], bool], timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job: dict[str, Any] = served.client("sagemaker").describe_training_job(TrainingJobName=name)
        if until(job) or time.monotonic() > deadline:
            return job
        time.sleep(0.05)


def completed(served: Served, prefix: str = "job", **changes: Any) -> str:
    name = unique_name(prefix)
    sagemaker = served.client("sagemaker")
    sagemaker.create_training_job(**served.request(name, **changes))
    sagemaker.get_waiter("training_job_completed_or_stopped").wait(TrainingJobName=name, WaiterConfig=FAST)
    return name


# --- 1. DescribeTrainingJob returns what AWS returns, defaults included ----------------------------------------------

def test_describe_fills_in_what_aws_shows_for_members_left_out(served: Served) -> None:
    """Before: OutputDataConfig.KmsKeyId was missing (the SDK's Estimator.attach failed with KeyError 'KmsKeyId'),
    and StoppingCondition, VolumeSizeInGB and the channels' defaults came back as sent."""
    name = unique_name("defaults")
    request = served.request(name, StoppingCondition={})
    del request["ResourceConfig"]["VolumeSizeInGB"]
    sagemaker = served.client("sagemaker")
    sagemaker.create_training_job(**request)
    job = sagemaker.describe_training_job(TrainingJobName=name)
    output = {"S3OutputPath": f"s3://{BUCKET}/output", "KmsKeyId": "", "CompressionType": "GZIP"}
    assert job["OutputDataConfig"] == output
    assert job["StoppingCondition"] == {"MaxRuntimeInSeconds": 86400}  # the model: "The default value is 1 day."
    assert job["ResourceConfig"] == {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 30}
    (channel,) = job["InputDataConfig"]
    assert channel["CompressionType"] == "None" and channel["RecordWrapperType"] == "None"
    assert channel["DataSource"]["S3DataSource"]["S3DataDistributionType"] == "FullyReplicated"
    assert (job["EnableNetworkIsolation"], job["EnableInterContainerTrafficEncryption"],
            job["EnableManagedSpotTraining"]) == (False, False, False)
    assert job["AlgorithmSpecification"]["EnableSageMakerMetricsTimeSeries"] is False
    # A built-in algorithm shows its own metric definitions (the SDK's TrainingJobAnalytics reads their names).
    assert [d["Name"] for d in job["AlgorithmSpecification"]["MetricDefinitions"]] == ["train:rmse"]
    assert job["ProfilingStatus"] == "Disabled"
    assert "ModelArtifacts" not in job and "TrainingEndTime" not in job  # not before the model is uploaded
    sagemaker.get_waiter("training_job_completed_or_stopped").wait(TrainingJobName=name, WaiterConfig=FAST)
    done = sagemaker.describe_training_job(TrainingJobName=name)
    assert done["ModelArtifacts"] == {"S3ModelArtifacts": f"s3://{BUCKET}/output/{name}/output/model.tar.gz"}


def test_describe_echoes_what_was_given_over_the_defaults(served: Served) -> None:
    name = unique_name("given")
    request = served.request(name)
    request["OutputDataConfig"] = {"S3OutputPath": f"s3://{BUCKET}/o", "KmsKeyId": "alias/mine",
                                   "CompressionType": "NONE"}
    request["EnableNetworkIsolation"] = True
    served.client("sagemaker").create_training_job(**request)
    job = served.client("sagemaker").describe_training_job(TrainingJobName=name)
    assert job["OutputDataConfig"] == request["OutputDataConfig"]
    assert job["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600}
    assert job["ResourceConfig"]["VolumeSizeInGB"] == 10
    assert job["EnableNetworkIsolation"] is True


# --- 2. FilterLogEvents honours logStreamNamePrefix, names, times, patterns; paging as AWS gives it ------------------

@pytest.fixture(scope="module")
def two_jobs(served: Served) -> tuple[str, str]:
    return completed(served, "logs-a"), completed(served, "logs-b", ResourceConfig={
        "InstanceType": "ml.m5.large", "InstanceCount": 2, "VolumeSizeInGB": 10})


def _stream_events(served: Served, job: str) -> list[dict[str, Any]]:
    logs = served.client("logs")
    events = []
    for stream in logs.describe_log_streams(logGroupName=LOG_GROUP, logStreamNamePrefix=f"{job}/")["logStreams"]:
        got = logs.get_log_events(logGroupName=LOG_GROUP, logStreamName=stream["logStreamName"], startFromHead=True)
        events += [{**event, "logStreamName": stream["logStreamName"]} for event in got["events"]]
    return events


def test_filter_log_events_with_a_jobs_prefix_returns_that_jobs_events_only(served: Served,
                                                                           two_jobs: tuple[str, str]) -> None:
    """Before: moto ignored logStreamNamePrefix and returned every job's events (`aws logs tail
    --log-stream-name-prefix <job>` showed all jobs)."""
    first, second = two_jobs
    logs = served.client("logs")
    for job in (first, second):
        answer = logs.filter_log_events(logGroupName=LOG_GROUP, logStreamNamePrefix=job)
        expected = _stream_events(served, job)
        assert expected and {e["logStreamName"].split("/")[0] for e in answer["events"]} == {job}
        assert sorted(e["message"] for e in answer["events"]) == sorted(e["message"] for e in expected)
        stamps = [e["timestamp"] for e in answer["events"]]
        assert stamps == sorted(stamps)  # every stream's events merged in time order
        assert "nextToken" not in answer  # none when nothing remains


def test_filter_log_events_pages_with_next_token_until_it_is_gone(served: Served, two_jobs: tuple[str, str]) -> None:
    job = two_jobs[1]
    logs = served.client("logs")
    whole = logs.filter_log_events(logGroupName=LOG_GROUP, logStreamNamePrefix=job)["events"]
    pages = list(logs.get_paginator("filter_log_events").paginate(
        logGroupName=LOG_GROUP, logStreamNamePrefix=job, PaginationConfig={"PageSize": 4}))
    assert all(len(page["events"]) <= 4 for page in pages) and len(pages) == -(-len(whole) // 4)
    assert [e["eventId"] for page in pages for e in page["events"]] == [e["eventId"] for e in whole]
    assert "nextToken" not in pages[-1]


def test_filter_log_events_honours_names_times_and_patterns(served: Served, two_jobs: tuple[str, str]) -> None:
    job = two_jobs[1]
    logs = served.client("logs")
    whole = logs.filter_log_events(logGroupName=LOG_GROUP, logStreamNamePrefix=job)["events"]
    stream = whole[0]["logStreamName"]
    named = logs.filter_log_events(logGroupName=LOG_GROUP, logStreamNames=[stream])["events"]
    assert named and {e["logStreamName"] for e in named} == {stream}
    middle = whole[len(whole) // 2]["timestamp"]
    later = logs.filter_log_events(logGroupName=LOG_GROUP, logStreamNamePrefix=job, startTime=middle)["events"]
    assert later == [e for e in whole if e["timestamp"] >= middle]  # startTime and endTime are inclusive
    earlier = logs.filter_log_events(logGroupName=LOG_GROUP, logStreamNamePrefix=job, endTime=middle)["events"]
    assert earlier == [e for e in whole if e["timestamp"] <= middle]
    rounds = logs.filter_log_events(logGroupName=LOG_GROUP, logStreamNamePrefix=job, filterPattern="train-rmse")
    assert rounds["events"] and all("train-rmse" in e["message"] for e in rounds["events"])
    assert len(rounds["events"]) == sum("train-rmse" in e["message"] for e in whole)
    either = logs.filter_log_events(logGroupName=LOG_GROUP, logStreamNamePrefix=job,
                                    filterPattern='?"Single node" ?"Distributed node"')["events"]
    assert either and all("node training" in e["message"] for e in either)
    without = logs.filter_log_events(logGroupName=LOG_GROUP, logStreamNamePrefix=job, filterPattern="INFO -files")
    assert without["events"] and all("files" not in e["message"] for e in without["events"])
    code, _ = error_of(logs.filter_log_events, logGroupName=LOG_GROUP, logStreamNames=[stream],
                       logStreamNamePrefix=job)
    assert code == "InvalidParameterException"


def test_describe_log_streams_pages_a_jobs_streams(served: Served, two_jobs: tuple[str, str]) -> None:
    job = two_jobs[1]
    pages = list(served.client("logs").get_paginator("describe_log_streams").paginate(
        logGroupName=LOG_GROUP, logStreamNamePrefix=f"{job}/", PaginationConfig={"PageSize": 1}))
    names = [s["logStreamName"] for page in pages for s in page["logStreams"]]
    assert [name.rsplit("-", 1)[0] for name in names] == [f"{job}/algo-1", f"{job}/algo-2"]


# --- 3. SageMaker never creates buckets ------------------------------------------------------------------------------

def _buckets(served: Served) -> set[str]:
    return {b["Name"] for b in served.client("s3").list_buckets()["Buckets"]}


def test_a_missing_output_bucket_fails_the_job_and_is_not_created(served: Served) -> None:
    """Before: the job completed and the bucket appeared. AWS's wording for this case is not published; the reason
    follows the form AWS gives for other upload failures ("ClientError: Artifact upload failed:Unable to upload file
    to <uri> (<S3 error code>: <S3 message>)") with S3's own NoSuchBucket text."""
    name = unique_name("nobucket")
    bucket = f"missing-{name}"
    sagemaker = served.client("sagemaker")
    sagemaker.create_training_job(**served.request(name, OutputDataConfig={"S3OutputPath": f"s3://{bucket}/out"}))
    with pytest.raises(WaiterError):
        sagemaker.get_waiter("training_job_completed_or_stopped").wait(TrainingJobName=name, WaiterConfig=FAST)
    job = sagemaker.describe_training_job(TrainingJobName=name)
    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"] == (
        f"ClientError: Artifact upload failed:Unable to upload file to s3://{bucket}/out/{name}/output/model.tar.gz "
        "(NoSuchBucket: The specified bucket does not exist)")
    assert "ModelArtifacts" not in job
    assert bucket not in _buckets(served)


def test_a_missing_input_bucket_fails_the_job_in_downloading(served: Served) -> None:
    name = unique_name("noinput")
    bucket = f"missing-{name}"
    request = served.request(name)
    request["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] = f"s3://{bucket}/train/"
    sagemaker = served.client("sagemaker")
    sagemaker.create_training_job(**request)
    job = wait_for(served, name, lambda j: j["TrainingJobStatus"] != "InProgress")
    assert job["TrainingJobStatus"] == "Failed"
    assert [t["Status"] for t in job["SecondaryStatusTransitions"]] == ["Starting", "Downloading", "Failed"]
    assert job["FailureReason"].startswith(f'ClientError: No S3 objects found under S3 URL "s3://{bucket}/train/"')
    assert bucket not in _buckets(served)


# --- 4. CloudWatch metrics, as SageMaker publishes them --------------------------------------------------------------

def _logged(served: Served, job: str, metric: str) -> dict[str, list[float]]:
    """Each host's values of a metric as the job's log lines carry them (`[i]#011train-rmse:<v>...`)."""
    values: dict[str, list[float]] = {}
    for event in sorted(_stream_events(served, job), key=lambda e: e["timestamp"]):
        host = event["logStreamName"].split("/")[1].rsplit("-", 1)[0]
        for part in event["message"].split("#011")[1:]:
            name, _, value = part.partition(":")
            if name == metric:
                values.setdefault(host, []).append(float(value))
    return values


def test_metrics_are_published_per_host_and_per_job(served: Served, two_jobs: tuple[str, str]) -> None:
    """Before: nothing was published to CloudWatch metrics."""
    job = two_jobs[1]
    described = served.client("sagemaker").describe_training_job(TrainingJobName=job)
    # EndTime is exclusive and CloudWatch works in whole seconds at best: a minute more, as the SDK's analytics add.
    window = {"StartTime": described["TrainingStartTime"],
              "EndTime": described["TrainingEndTime"] + datetime.timedelta(minutes=1)}
    logged = _logged(served, job, "train-rmse")
    assert sorted(logged) == ["algo-1", "algo-2"]
    cloudwatch = served.client("cloudwatch")
    for host, values in logged.items():
        stats = cloudwatch.get_metric_statistics(
            Namespace="/aws/sagemaker/TrainingJobs", MetricName="train:rmse", Period=3600,
            Dimensions=[{"Name": "Host", "Value": f"{job}/{host}"}],
            Statistics=["SampleCount", "Minimum", "Maximum"], **window)["Datapoints"]
        assert sum(p["SampleCount"] for p in stats) == len(values)
        assert min(p["Minimum"] for p in stats) == pytest.approx(min(values))
        assert max(p["Maximum"] for p in stats) == pytest.approx(max(values))
    query = {"Id": "m", "MetricStat": {"Metric": {
        "Namespace": "/aws/sagemaker/TrainingJobs", "MetricName": "train:rmse",
        "Dimensions": [{"Name": "TrainingJobName", "Value": job}]}, "Period": 3600, "Stat": "SampleCount"}}
    (result,) = cloudwatch.get_metric_data(MetricDataQueries=[query], **window)["MetricDataResults"]
    assert sum(result["Values"]) == sum(len(v) for v in logged.values())


# --- 5. Validation errors in AWS's words -----------------------------------------------------------------------------

def _model_pattern(shape_name: str) -> str:
    model = botocore.session.get_session().get_service_model("sagemaker")
    return str(model.shape_for(shape_name).metadata["pattern"])


def test_a_bad_name_is_refused_in_aws_words(served: Served) -> None:
    """Before: "'bad_name!' does not match SageMaker's pattern ...". AWS quotes the pattern of its model; botocore's
    copy of the model is the reference here."""
    sagemaker = served.client("sagemaker")
    code, message = error_of(sagemaker.create_training_job, **served.request("bad_name!"))
    assert code == "ValidationException"
    assert message == (
        "1 validation error detected: Value 'bad_name!' at 'trainingJobName' failed to satisfy constraint: "
        f"Member must satisfy regular expression pattern: {_model_pattern('TrainingJobName')}")
    code, message = error_of(sagemaker.create_training_job, **served.request("a" * 64))
    # Both constraints fail; AWS lists each as its own error (their order on AWS is not published).
    assert message.startswith("2 validation errors detected: ")
    assert f"Value '{'a' * 64}' at 'trainingJobName' failed to satisfy constraint: Member must have length less " \
           "than or equal to 63" in message


def test_enum_range_and_null_constraints_are_worded_as_aws_words_them(served: Served) -> None:
    sagemaker = served.client("sagemaker")
    request = served.request(unique_name("enum"))
    request["ResourceConfig"] = {**request["ResourceConfig"], "InstanceType": "ml.fake.huge"}
    _, message = error_of(sagemaker.create_training_job, **request)
    prefix = ("1 validation error detected: Value 'ml.fake.huge' at 'resourceConfig.instanceType' failed to satisfy "
              "constraint: Member must satisfy enum value set: [")
    assert message.startswith(prefix) and message.endswith("]") and "ml.m5.large" in message
    request = served.request(unique_name("range"))
    request["ResourceConfig"] = {**request["ResourceConfig"], "KeepAlivePeriodInSeconds": 21601}
    _, message = error_of(sagemaker.create_training_job, **request)
    assert message == ("1 validation error detected: Value '21601' at 'resourceConfig.keepAlivePeriodInSeconds' "
                       "failed to satisfy constraint: Member must have value less than or equal to 21600")
    request = served.request(unique_name("null"))
    del request["StoppingCondition"]
    _, message = error_of(sagemaker.create_training_job, **request)
    assert message == ("1 validation error detected: Value null at 'stoppingCondition' failed to satisfy constraint: "
                       "Member must not be null")
    request = served.request(unique_name("hp"), HyperParameters={"num_round": "x" * 2501})
    _, message = error_of(sagemaker.create_training_job, **request)
    assert message.endswith("at 'hyperParameters' failed to satisfy constraint: Map value must satisfy constraint: "
                            "[Member must have length less than or equal to 2500, Member must have length greater "
                            "than or equal to 0, Member must satisfy regular expression pattern: .*]")


def test_other_errors_carry_aws_codes_and_messages(served: Served) -> None:
    sagemaker = served.client("sagemaker")
    assert error_of(sagemaker.describe_training_job, TrainingJobName=unique_name("nobody")) == (
        "ValidationException", "Requested resource not found.")
    name = completed(served, "twice")
    code, message = error_of(sagemaker.create_training_job, **served.request(name))
    assert code == "ResourceInUse"
    assert message == ("Training job names must be unique within an AWS account and region, and a training job with "
                       f"this name already exists (arn:aws:sagemaker:{REGION}:123456789012:training-job/{name})")
    assert error_of(sagemaker.stop_training_job, TrainingJobName=name) == (
        "ValidationException", "The request was rejected because the training job is in status Completed.")


# --- 6. ListTrainingJobs defaults as the service model documents them -------------------------------------------------

def test_list_training_jobs_defaults_to_oldest_first_and_pages(served: Served) -> None:
    """Before: Descending without SortOrder; the model documents "The default is Ascending." (and CreationTime)."""
    marker = unique_name("order")
    sagemaker = served.client("sagemaker")
    names = []
    for index in range(3):
        names.append(f"{marker}-{index}")
        sagemaker.create_training_job(**served.request(names[-1]))
    listed = [s["TrainingJobName"] for s in sagemaker.list_training_jobs(NameContains=marker)["TrainingJobSummaries"]]
    assert listed == names
    pages = list(sagemaker.get_paginator("list_training_jobs").paginate(
        NameContains=marker, PaginationConfig={"PageSize": 1}))
    assert [s["TrainingJobName"] for page in pages for s in page["TrainingJobSummaries"]] == names
    newest = sagemaker.list_training_jobs(NameContains=marker, SortOrder="Descending")["TrainingJobSummaries"]
    assert [s["TrainingJobName"] for s in newest] == names[::-1]


# --- botocore's waiter on every ending --------------------------------------------------------------------------------

def test_the_waiter_returns_on_completed_and_stopped_and_raises_on_failed(served: Served) -> None:
    sagemaker = served.client("sagemaker")
    waiter = sagemaker.get_waiter("training_job_completed_or_stopped")
    done = completed(served, "waited")
    assert sagemaker.describe_training_job(TrainingJobName=done)["TrainingJobStatus"] == "Completed"

    stopped = unique_name("stopped")
    sagemaker.create_training_job(**served.request(stopped))
    wait_for(served, stopped, lambda job: job["SecondaryStatus"] == "Training")
    sagemaker.stop_training_job(TrainingJobName=stopped)
    waiter.wait(TrainingJobName=stopped, WaiterConfig=FAST)
    job = sagemaker.describe_training_job(TrainingJobName=stopped)
    assert (job["TrainingJobStatus"], job["SecondaryStatus"]) == ("Stopped", "Stopped")

    failed = f"{FAILING}{unique_name('waiter')}"
    sagemaker.create_training_job(**served.request(failed))
    with pytest.raises(WaiterError) as info:
        waiter.wait(TrainingJobName=failed, WaiterConfig=FAST)
    assert "terminal failure state" in str(info.value)
    assert info.value.last_response["FailureReason"] == "AlgorithmError: injected by the client tests"

    with pytest.raises(WaiterError) as missing:
        waiter.wait(TrainingJobName=unique_name("ghost"), WaiterConfig=FAST)
    assert missing.value.last_response["Error"]["Code"] == "ValidationException"
