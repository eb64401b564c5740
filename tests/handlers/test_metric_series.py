"""handlers/metric_series.py: a job's metric series per metric and host, from CloudWatch (GetMetricData) or its logs.

The series of a job cost ⌈metrics × hosts / 500⌉ GetMetricData calls per page of answers, counted at the client and
at the local SageMaker; they agree with what the job logged; the period follows CloudWatch's retention.
"""

from __future__ import annotations

import contextlib
import math
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

pytest.importorskip("moto")

from handlers.client import ClientSettings, SageMakerClient
from handlers.logs import LOG_GROUP
from handlers.metric_series import (
    MAX_QUERIES,
    NAMESPACE,
    MetricReader,
    choose_period,
    host_names,
    metric_names,
)
from handlers.ratelimit import RateLimits
from local_sagemaker import LocalSageMaker, LocalSettings
from local_sagemaker.api import metric_data
from local_sagemaker.api import patch as patch_module
from local_sagemaker.testing import LocalClients, unique_name
from metric_checks import calls_needed

LOCAL_SETTINGS = LocalSettings(execution="simulate", time_scale=10)


@pytest.fixture(scope="module")
def client(server: LocalSageMaker) -> SageMakerClient:
    return SageMakerClient(ClientSettings(endpoint_url=server.url, local_credentials=True,
                                          rate_limits=RateLimits(0, 0)))


@pytest.fixture(scope="module")
def job(aws: LocalClients) -> dict[str, Any]:
    """A finished two-host XGBoost job of 8 rounds, described."""
    name = unique_name("series")
    aws.sagemaker.create_training_job(**aws.training_request(
        name, channels={"train": aws.put_data(f"{name}/train"), "validation": aws.put_data(f"{name}/validation")},
        hyperparameters={"num_round": "8"}, instance_count=2))
    return aws.wait(name, timeout=60)


def test_choose_period_follows_cloudwatch_retention() -> None:
    minute, hour, day = timedelta(minutes=1), timedelta(hours=1), timedelta(days=1)
    assert choose_period(minute, minute) == 1
    assert choose_period(2 * hour, 30 * minute) == 5  # 1800 s in at most 1440 points
    assert choose_period(4 * hour, hour) == 60  # older than 3 hours: whole minutes
    assert choose_period(20 * day, hour) == 300
    assert choose_period(100 * day, hour) == 3600
    assert choose_period(4 * hour, 3 * day) == 180  # 3 days in at most 1440 points, a multiple of 60


def test_metric_names_and_hosts_come_from_the_description() -> None:
    description = {"AlgorithmSpecification": {"MetricDefinitions": [{"Name": "train:loss", "Regex": "x"},
                                                                    {"Name": "train:loss", "Regex": "y"}]},
                   "FinalMetricDataList": [{"MetricName": "val:acc", "Value": 1.0}],
                   "ResourceConfig": {"InstanceGroups": [{"InstanceCount": 2}, {"InstanceCount": 1}]}}
    assert metric_names(description) == ("train:loss", "val:acc")
    assert host_names(description) == ("algo-1", "algo-2", "algo-3")
    assert host_names({"ResourceConfig": {"InstanceCount": 1}}) == ("algo-1",)


def test_cloudwatch_series_are_what_the_job_logged_per_host(client: SageMakerClient, job: dict[str, Any],
                                                           aws: LocalClients) -> None:
    metrics = MetricReader(client).read(job, source="logs")
    assert metrics.metrics == ("train:rmse", "validation:rmse") and metrics.hosts == ("algo-1", "algo-2")
    logged = [line for lines in aws.log_messages(job["TrainingJobName"]).values() for line in lines]
    for series in metrics.series:
        assert len(series.values) == 8
        assert series.values[-1] == pytest.approx(metrics.final[series.metric])
        assert all(f"{series.metric.split(':')[0]}-rmse:{value:.5f}" in "\n".join(logged) for value in series.values)
    # CloudWatch holds the same values, averaged per second: each point lies within the logged range
    cloudwatch = MetricReader(client).read(job, source="cloudwatch")
    assert cloudwatch.source == "cloudwatch" and cloudwatch.period == 1
    for series in cloudwatch.series:
        logged_values = metrics.of(series.metric)[0].values
        assert 1 <= len(series.values) <= 8
        assert all(min(logged_values) <= v <= max(logged_values) for v in series.values)
    assert MetricReader(client).read(job, source="auto").source == "logs"  # the richer for a job of seconds


def test_values_logged_at_one_moment_are_all_kept_in_their_order(client: SageMakerClient, aws: LocalClients) -> None:
    """A log agent stamps the lines it reads together with one time (the local runner does too, on a busy machine:
    a real XGBoost job's rounds 14 to 19 once came with one timestamp): each line's value is still a point."""
    name = unique_name("onemoment")
    start = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(seconds=30)
    stream = f"{name}/algo-1-{int(start.timestamp())}"
    with contextlib.suppress(aws.logs.exceptions.ResourceAlreadyExistsException):
        aws.logs.create_log_group(logGroupName=LOG_GROUP)
    aws.logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName=stream)
    at = int(start.timestamp() * 1000) + 2000
    losses = [0.9, 0.7, 0.5, 0.4, 0.3]
    aws.logs.put_log_events(logGroupName=LOG_GROUP, logStreamName=stream, logEvents=[
        *({"timestamp": at, "message": f"loss={loss}"} for loss in losses[:4]),
        {"timestamp": at + 500, "message": f"loss={losses[4]}"}])
    description = {"TrainingJobName": name, "TrainingJobStatus": "Completed", "TrainingStartTime": start,
                   "TrainingEndTime": start + timedelta(seconds=10), "ResourceConfig": {"InstanceCount": 1},
                   "AlgorithmSpecification": {"MetricDefinitions": [{"Name": "train:loss", "Regex": "loss=([.0-9]+)"}]}}
    [series] = MetricReader(client).read(description, source="logs").of("train:loss")
    assert series.values == tuple(losses)
    moment = datetime.fromtimestamp(at / 1000, timezone.utc)
    assert series.timestamps == (moment,) * 4 + (moment + timedelta(milliseconds=500),)


@pytest.fixture
def served_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The GetMetricData requests the local SageMaker answered (its queries each), counted where they arrive."""
    seen: list[int] = []
    answer = metric_data.get_metric_data

    def counting(backend: Any, params: Any) -> dict[str, Any]:
        seen.append(len(params["MetricDataQueries"]))
        return answer(backend, params)

    monkeypatch.setattr(patch_module, "get_metric_data", counting)
    return seen


@pytest.mark.parametrize(("metrics", "hosts"), [(2, 2), (250, 2), (251, 2), (40, 30)])
def test_one_jobs_series_cost_one_get_metric_data_call_per_500_queries(client: SageMakerClient,
                                                                       job: dict[str, Any], served_calls: list[int],
                                                                       metrics: int, hosts: int) -> None:
    names = ["train:rmse", "validation:rmse", *(f"extra:{n}" for n in range(metrics - 2))]
    described = {**job, "ResourceConfig": {**job["ResourceConfig"], "InstanceCount": hosts}}
    reader = MetricReader(client)
    result = reader.read(described, metrics=names, source="cloudwatch")
    expected = math.ceil(metrics * hosts / MAX_QUERIES)
    assert reader.calls == result.calls == calls_needed(metrics, hosts) == expected
    assert len(served_calls) == expected and sum(served_calls) == metrics * hosts
    assert max(served_calls) <= MAX_QUERIES
    assert len(result.series) == metrics * hosts
    assert {s.host for s in result.series if s.values} == {"algo-1", "algo-2"}
    assert {s.metric for s in result.series if s.values} == {"train:rmse", "validation:rmse"}


def test_pages_of_answers_are_followed_with_next_token(client: SageMakerClient, job: dict[str, Any],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    whole = MetricReader(client).read(job, source="cloudwatch")
    monkeypatch.setattr(metric_data, "MAX_DATAPOINTS", 3)  # the local SageMaker pages at 3 points
    reader = MetricReader(client)
    paged = reader.read(job, source="cloudwatch")
    points = sum(len(s.values) for s in whole.series)
    assert points > 3
    assert reader.calls == math.ceil(points / 3)
    assert paged.series == whole.series


def test_a_window_before_the_job_has_no_points(client: SageMakerClient, job: dict[str, Any]) -> None:
    early = job["TrainingStartTime"] - timedelta(hours=1)
    metrics = MetricReader(client).read(job, start=early, end=early + timedelta(minutes=5), source="auto")
    assert metrics.with_points == [] and metrics.final  # final values come from the description


def test_the_namespace_and_dimension_are_sagemakers(client: SageMakerClient, job: dict[str, Any]) -> None:
    answer = client.call("cloudwatch", "GetMetricData", StartTime=job["TrainingStartTime"] - timedelta(minutes=1),
                         EndTime=datetime.now(timezone.utc) + timedelta(minutes=1), ScanBy="TimestampAscending",
                         MetricDataQueries=[{"Id": "a", "MetricStat": {"Metric": {
                             "Namespace": NAMESPACE, "MetricName": "train:rmse",
                             "Dimensions": [{"Name": "Host", "Value": f"{job['TrainingJobName']}/algo-2"}]},
                             "Period": 60, "Stat": "Minimum"}}])
    [result] = answer["MetricDataResults"]
    final = {m["MetricName"]: m["Value"] for m in job["FinalMetricDataList"]}
    assert result["Values"] and result["Values"][0] == pytest.approx(final["train:rmse"])  # rmse falls: min = last
