"""Prometheus metrics (handlers/telemetry.py): what the client, the status tracker and the plugin count, read back
from prometheus_client's default registry (the one the connector service exposes) as differences around each act.

Faults are injected first on `before-send.sagemaker.<Op>` of the client under test (tests/support/aws_faults.py), so
botocore's parsing and the retry policy run as they do against AWS; sleeps are free.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSResponse

pytest.importorskip("prometheus_client")

import prometheus_client

from aws_faults import AWS_QUOTA, CUSTOM, Fault, answer, aws_error
from client_setup import quick_client
from handlers import telemetry
from handlers.client import SageMakerClient
from handlers.errors import NotFound, TransientError
from handlers.tracker import StatusTracker
from plugin import Phase, TrainingJobPlugin, load_task, registry
from plugin.config import Config
from plugin_setup import Clock, fresh_task

THROTTLE = aws_error("ThrottlingException", "Rate exceeded")
UNAVAILABLE = aws_error("ServiceUnavailable", "Service is unavailable", status=503)
QUOTA = aws_error("ResourceLimitExceeded", AWS_QUOTA)


def sample(name: str, **labels: str) -> float:
    return prometheus_client.REGISTRY.get_sample_value(f"{telemetry.PREFIX}{name}", labels) or 0.0


class Script:
    """First on `before-send.sagemaker.<operation>`: answers the first calls with `faults`, then lets calls through."""

    def __init__(self, client: SageMakerClient, operation: str, faults: Sequence[Fault]) -> None:
        self.faults = list(faults)
        events: Any = client.sagemaker.meta.events
        events.register_first(f"before-send.sagemaker.{operation}", self)

    def __call__(self, request: AWSPreparedRequest, **_: Any) -> AWSResponse | None:
        return self.faults.pop(0)(request) if self.faults else None


@pytest.fixture
def client(endpoint: str, session: boto3.Session) -> Iterator[SageMakerClient]:
    with quick_client(endpoint, session, attempts=3) as made:
        yield made


def counted(act: Callable[[], Any], **series: dict[str, str]) -> dict[str, float]:
    """How much each named series grew while `act` ran."""
    before = {key: sample(name, **labels) for key, (name, labels) in _series(series).items()}
    act()
    return {key: sample(name, **labels) - before[key] for key, (name, labels) in _series(series).items()}


def _series(series: dict[str, dict[str, str]]) -> dict[str, tuple[str, dict[str, str]]]:
    return {key: (labels["metric"], {k: v for k, v in labels.items() if k != "metric"})
            for key, labels in series.items()}


def test_metrics_are_on_where_prometheus_client_is_installed() -> None:
    registered = {metric.name for metric in prometheus_client.REGISTRY.collect()}
    assert {f"{telemetry.PREFIX}aws_calls", f"{telemetry.PREFIX}aws_retries"} <= registered


def test_a_call_that_was_throttled_then_answered_counts_one_ok_call_two_throttles_two_retries(
        client: SageMakerClient) -> None:
    Script(client, "ListTrainingJobs", [THROTTLE, THROTTLE])
    labels = {"service": "sagemaker", "operation": "ListTrainingJobs"}
    grew = counted(lambda: client.list_training_jobs(MaxResults=1),
                   ok={"metric": "aws_calls_total", **labels, "outcome": "ok"},
                   throttles={"metric": "aws_throttles_total", **labels},
                   retries={"metric": "aws_retries_total", **labels})
    assert grew == {"ok": 1, "throttles": 2, "retries": 2}


def test_a_call_that_gave_up_counts_its_outcome_and_its_retries(client: SageMakerClient) -> None:
    Script(client, "DescribeTrainingJob", [UNAVAILABLE, THROTTLE, UNAVAILABLE])
    labels = {"service": "sagemaker", "operation": "DescribeTrainingJob"}

    def describe() -> None:
        with pytest.raises(TransientError):
            client.describe_training_job("any")

    grew = counted(describe, gave_up={"metric": "aws_calls_total", **labels, "outcome": "TransientError"},
                   throttles={"metric": "aws_throttles_total", **labels},
                   retries={"metric": "aws_retries_total", **labels})
    assert grew == {"gave_up": 1, "throttles": 1, "retries": 2}


def test_a_refused_call_is_counted_by_its_error_class_without_retries(client: SageMakerClient) -> None:
    labels = {"service": "sagemaker", "operation": "DescribeTrainingJob"}

    def describe() -> None:
        with pytest.raises(NotFound):
            client.describe_training_job("no-such-job")

    grew = counted(describe, not_found={"metric": "aws_calls_total", **labels, "outcome": "NotFound"},
                   retries={"metric": "aws_retries_total", **labels})
    assert grew == {"not_found": 1, "retries": 0}


def test_a_sweep_is_timed_and_a_failed_sweep_counted(client: SageMakerClient) -> None:
    now = [0.0]
    tracker = StatusTracker(client, 10.0, census=False, clock=lambda: now[0])
    Script(client, "DescribeTrainingJob", [answer(200, {  # a job in progress: the sweeps follow it
        "TrainingJobName": "telemetry-sweep", "TrainingJobArn": "arn:aws:sagemaker:us-east-1:1:training-job/t",
        "TrainingJobStatus": "InProgress", "SecondaryStatus": "Training", "CreationTime": 1.0,
        "LastModifiedTime": 1.0, "AlgorithmSpecification": {"TrainingInputMode": "File"}, "RoleArn": "r",
        "StoppingCondition": {}, "ResourceConfig": {"InstanceCount": 1, "VolumeSizeInGB": 1}})])
    tracker.describe("telemetry-sweep")  # tracked from now on: the next due describe sweeps
    now[0] += 10
    grew = counted(lambda: tracker.describe("telemetry-sweep"),
                   sweeps={"metric": "status_sweep_seconds_count"},
                   failures={"metric": "status_sweep_failures_total"})
    assert grew == {"sweeps": 1, "failures": 0}
    Script(client, "ListTrainingJobs", [THROTTLE] * 3)
    now[0] += 10
    grew = counted(lambda: tracker.describe("telemetry-sweep"),
                   sweeps={"metric": "status_sweep_seconds_count"},
                   failures={"metric": "status_sweep_failures_total"})
    assert grew == {"sweeps": 0, "failures": 1}


@pytest.fixture
def plugin(config: Config, clock: Clock, session: boto3.Session) -> Iterator[TrainingJobPlugin]:
    client = SageMakerClient(config.client_settings(), session=session)
    made = registry.get(CUSTOM, config=config, clock=clock, client=client)
    assert isinstance(made, TrainingJobPlugin)
    yield made
    client.close()


def test_jobs_waiting_for_quota_are_a_gauge_that_falls_when_they_are_created_or_deleted(
        plugin: TrainingJobPlugin, clock: Clock) -> None:
    refusals = Script(plugin.client(), "CreateTrainingJob", [QUOTA] * 3)
    waiting = "jobs_waiting_for_quota"
    start = sample(waiting)
    first = plugin.create(load_task(fresh_task("tel", "quota", instance_type="ml.p3.2xlarge")))
    second = plugin.create(load_task(fresh_task("tel", "quota", instance_type="ml.p3.2xlarge")))
    assert first.queued and second.queued
    assert sample(waiting) - start == 2
    assert plugin.get(first).phase is Phase.WAITING_FOR_RESOURCES  # refused again: still waiting, counted once
    assert sample(waiting) - start == 2
    plugin.delete(second)
    assert sample(waiting) - start == 1
    assert not refusals.faults
    clock.now += 61  # past the first backoff: the next get creates the job
    assert plugin.get(first).phase is Phase.QUEUED
    assert sample(waiting) - start == 0
