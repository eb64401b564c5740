"""A local SageMaker with a data folder forgets nothing: after a restart on the same folder, every job, tuning job, log
event and metric series answers as it did before; a name stays taken; a job that was running is Failed, saying why.

In-process servers that simulate their jobs (`execution: simulate`), one after the other on one folder.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from local_sagemaker import FailureRule, LocalSageMaker, LocalSettings
from local_sagemaker.testing import LocalClients
from tuning_jobs import config as tuning_config
from tuning_jobs import trials
from tuning_jobs import wait as wait_tuning

pytestmark = pytest.mark.timeout(120)

LOG_GROUP = "/aws/sagemaker/TrainingJobs"
NAMESPACE = "/aws/sagemaker/TrainingJobs"
SETTINGS = LocalSettings(execution="simulate", time_scale=20, stop_seconds=0.2,
                         failures=(FailureRule("fails-.*", "Training", "AlgorithmError: boom"),))
#: Jobs that stay in Training for minutes (a restart meets them running).
SLOW = LocalSettings(execution="simulate", time_scale=1,
                     timeline={"Starting": 0.05, "Downloading": 0.05, "Training": 600, "Uploading": 1})
XGBOOST = {"num_round": "10", "objective": "reg:squarederror"}


@contextmanager
def serving(data: Path, settings: LocalSettings = SETTINGS) -> Iterator[LocalClients]:
    with LocalSageMaker(settings, data_dir=data) as server:
        yield LocalClients(server.url, credentials=server.credentials)


def create(aws: LocalClients, name: str, **extra: Any) -> None:
    channels = {"train": aws.put_data("data/train"), "validation": aws.put_data("data/validation")}
    aws.sagemaker.create_training_job(**aws.training_request(name, channels=channels, hyperparameters=XGBOOST,
                                                             **extra))


def code_of(call: Any, **params: Any) -> str:
    with pytest.raises(ClientError) as raised:
        call(**params)
    return str(raised.value.response["Error"]["Code"])


def _plain(answer: dict[str, Any], *volatile: str) -> dict[str, Any]:
    return {key: value for key, value in answer.items() if key not in ("ResponseMetadata", *volatile)}


def _all_pages(call: Any, key: str, **params: Any) -> list[Any]:
    items, token = [], None
    while True:
        page = call(**params, **({"NextToken": token} if token else {}))
        items += page[key]
        token = page.get("NextToken")
        if not token:
            return items


def _metric(aws: LocalClients, name: str, dimension: dict[str, str]) -> dict[str, Any]:
    query = {"Id": "m", "MetricStat": {"Metric": {"Namespace": NAMESPACE, "MetricName": name,
                                                  "Dimensions": [dimension]}, "Period": 1, "Stat": "Average"}}
    answer = aws.client("cloudwatch").get_metric_data(
        MetricDataQueries=[query], StartTime=datetime.datetime(2000, 1, 1), EndTime=datetime.datetime(2200, 1, 1))
    return _plain(answer)


def training_answers(aws: LocalClients, names: list[str]) -> dict[str, Any]:
    """What a client can read of `names`: Describe, the listings (sorted, filtered, paged), tags, logs, metrics."""
    sm, logs = aws.sagemaker, aws.logs
    out: dict[str, Any] = {}
    for name in names:
        job = _plain(sm.describe_training_job(TrainingJobName=name))
        out[f"describe {name}"] = job
        out[f"tags {name}"] = sm.list_tags(ResourceArn=job["TrainingJobArn"])["Tags"]
        streams = logs.describe_log_streams(logGroupName=LOG_GROUP, logStreamNamePrefix=f"{name}/")["logStreams"]
        out[f"streams {name}"] = [_plain(stream, "uploadSequenceToken") for stream in streams]
        for stream in streams:
            page = logs.get_log_events(logGroupName=LOG_GROUP, logStreamName=stream["logStreamName"],
                                       startFromHead=True, limit=5)
            out[f"events {stream['logStreamName']}"] = _plain(page)
        filtered = logs.filter_log_events(logGroupName=LOG_GROUP, logStreamNamePrefix=f"{name}/")
        out[f"filtered {name}"] = [_plain(event, "eventId") for event in filtered["events"]]
        for metric in job.get("FinalMetricDataList") or []:
            for dimension in ({"Name": "Host", "Value": f"{name}/algo-1"}, {"Name": "TrainingJobName", "Value": name}):
                out[f"metric {name} {metric['MetricName']} {dimension['Name']}"] = _metric(
                    aws, metric["MetricName"], dimension)
    middle = out[f"describe {names[len(names) // 2]}"]["CreationTime"]
    for params in ({}, {"SortBy": "Name", "SortOrder": "Ascending"}, {"SortBy": "Status"},
                   {"StatusEquals": "Completed"}, {"NameContains": "fails"}, {"CreationTimeAfter": middle},
                   {"LastModifiedTimeBefore": middle + datetime.timedelta(seconds=1)}):
        out[f"list {params}"] = _all_pages(sm.list_training_jobs, "TrainingJobSummaries", MaxResults=2, **params)
    return out


def test_a_restart_answers_for_every_job_as_before(tmp_path: Path) -> None:
    data = tmp_path / "data"
    names = ["kept-a", "kept-b", "fails-c", "stopped-d"]
    with serving(data, replace(SETTINGS, time_scale=5)) as aws:  # 1 s a job: the stop lands while it runs
        create(aws, "stopped-d")
        aws.sagemaker.stop_training_job(TrainingJobName="stopped-d")
        for name in names[:-1]:
            create(aws, name, **({"Tags": [{"Key": "team", "Value": "ml"}]} if name == "kept-b" else {}))
        for name in names:
            aws.wait(name)
        description = aws.sagemaker.describe_training_job(TrainingJobName="kept-a")
        aws.sagemaker.add_tags(ResourceArn=description["TrainingJobArn"], Tags=[{"Key": "added", "Value": "later"}])
        before = training_answers(aws, names)
    assert [before[f"describe {name}"]["TrainingJobStatus"] for name in names] == [
        "Completed", "Completed", "Failed", "Stopped"]
    assert before["tags kept-a"] == [{"Key": "added", "Value": "later"}]
    assert before["metric kept-a validation:rmse Host"]["MetricDataResults"][0]["Values"]

    with serving(data) as aws:
        after = training_answers(aws, names)
    assert after == before


def tuning_definition(aws: LocalClients) -> dict[str, Any]:
    channels = {"train": aws.put_data("tuning/train"), "validation": aws.put_data("tuning/validation")}
    request = aws.training_request("definition", channels=channels)
    definition = {key: request[key] for key in ("RoleArn", "AlgorithmSpecification", "InputDataConfig",
                                                "OutputDataConfig", "ResourceConfig", "StoppingCondition")}
    return {**definition, "StaticHyperParameters": XGBOOST}


def create_tuning(aws: LocalClients, name: str, jobs: int = 3) -> None:
    """A tuning job of `jobs` simulated XGBoost trials, two at a time at most."""
    ranges = {"ContinuousParameterRanges": [{"Name": "eta", "MinValue": "0.1", "MaxValue": "0.5"}]}
    aws.sagemaker.create_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name, TrainingJobDefinition=tuning_definition(aws),
        HyperParameterTuningJobConfig=tuning_config("Random", jobs, min(2, jobs), "validation:rmse", **ranges),
        Tags=[{"Key": "team", "Value": "ml"}])


def tuning_answers(aws: LocalClients, name: str) -> dict[str, Any]:
    sm = aws.sagemaker
    described = _plain(sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name))
    return {
        "describe": described,
        "tags": sm.list_tags(ResourceArn=described["HyperParameterTuningJobArn"])["Tags"],
        "list": _all_pages(sm.list_hyper_parameter_tuning_jobs, "HyperParameterTuningJobSummaries", MaxResults=1),
        "trials": trials(aws, name),
        "by objective": _all_pages(sm.list_training_jobs_for_hyper_parameter_tuning_job, "TrainingJobSummaries",
                                   HyperParameterTuningJobName=name, SortBy="FinalObjectiveMetricValue",
                                   MaxResults=2),
        "trial jobs": [_plain(sm.describe_training_job(TrainingJobName=trial["TrainingJobName"]))
                       for trial in trials(aws, name)],
    }


def test_a_restart_answers_for_tuning_jobs_and_their_trials_as_before(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with serving(data) as aws:
        create_tuning(aws, "tuned")
        assert wait_tuning(aws, "tuned")["HyperParameterTuningJobStatus"] == "Completed"
        before = tuning_answers(aws, "tuned")
    assert len(before["trials"]) == 3 and before["describe"]["BestTrainingJob"]
    with serving(data) as aws:
        assert tuning_answers(aws, "tuned") == before


def test_a_name_is_taken_for_good_after_a_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with serving(data) as aws:
        create(aws, "taken")
        first = aws.wait("taken")
        create_tuning(aws, "taken-tuning", jobs=1)
        wait_tuning(aws, "taken-tuning")
    model = data / "s3" / "local-sagemaker-data" / "output" / "taken" / "output" / "model.tar.gz"
    kept = model.read_bytes()
    with serving(data) as aws:
        assert code_of(create, aws=aws, name="taken") == "ResourceInUse"
        assert code_of(create_tuning, aws=aws, name="taken-tuning") == "ResourceInUse"
        assert aws.sagemaker.describe_training_job(TrainingJobName="taken")["CreationTime"] == first["CreationTime"]
    assert model.read_bytes() == kept


def test_jobs_running_when_their_server_stopped_are_failed_saying_so(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with serving(data, SLOW) as aws:
        create(aws, "cut-short")
        create(aws, "cut-before-training", ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 2,
                                                           "VolumeSizeInGB": 10})
        create_tuning(aws, "cut-tuning", jobs=2)
        aws.wait("cut-short", until=lambda job: job["SecondaryStatus"] == "Training")
        lines_before = aws.log_messages("cut-short")
    with serving(data, SLOW) as aws:
        job = aws.sagemaker.describe_training_job(TrainingJobName="cut-short")
        tuning = aws.sagemaker.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName="cut-tuning")
        lines_after = aws.log_messages("cut-short")
    assert job["TrainingJobStatus"] == job["SecondaryStatus"] == "Failed"
    assert job["FailureReason"].startswith("InternalServerError: the local SageMaker that ran this training job ")
    assert "stopped at about 20" in job["FailureReason"]
    last = job["SecondaryStatusTransitions"][-1]
    assert (last["Status"], last["StatusMessage"]) == ("Failed", "Training job failed")
    assert job["SecondaryStatusTransitions"][-2]["Status"] == "Training"
    assert "EndTime" in job["SecondaryStatusTransitions"][-2]
    assert job["TrainingEndTime"] == last["StartTime"]
    stream = next(iter(lines_after))
    assert lines_after[stream][:-1] == lines_before[stream]
    assert lines_after[stream][-1].startswith("local SageMaker: the local SageMaker that ran this training job ")
    assert tuning["HyperParameterTuningJobStatus"] == "Failed"
    assert "the local SageMaker that ran this hyperparameter tuning job" in tuning["FailureReason"]
    assert tuning["TrainingJobStatusCounters"]["InProgress"] == 0
