"""TrainingJobPlugin.delete: stops a running job once, marks it, and is idempotent, against a moto server.

moto makes every job Completed at once and lacks StopTrainingJob, so a running job is played by a DescribeTrainingJob
answer injected first on the plugin's own client, and StopTrainingJob by an injected 200 `{}` (or AWS's refusal).
AddTags and ListTags go to moto itself: the stopped-by mark is checked on the server.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSResponse

from aws_faults import AWS_NOT_FOUND, CUSTOM, IMAGE, STOPPED_BY_TAG, response
from handlers.client import SageMakerClient
from plugin import Phase, ResourceMeta, TrainingJobPlugin, load_task, registry
from plugin.config import Config
from plugin_setup import START, fresh_task

AWS_NOT_IN_PROGRESS = "The request was rejected because the training job is in status Stopping."


# --- fixtures and helpers (config, session and raw: tests/conftest.py) ----------------------------------------------


class Sent:
    """First on `before-send.sagemaker.<operation>`: records each request's parameters, answers with `self.reply`
    (status, body) when set, else lets it through to moto."""

    def __init__(self, plugin: TrainingJobPlugin, operation: str, reply: tuple[int, dict[str, Any]] | None = None):
        self.reply = reply
        self.requests: list[dict[str, Any]] = []
        events: Any = plugin.client().sagemaker.meta.events
        events.register_first(f"before-send.sagemaker.{operation}", self)

    def __call__(self, request: AWSPreparedRequest, **_: Any) -> AWSResponse | None:
        self.requests.append(json.loads(request.body or b"{}"))  # type: ignore[arg-type]
        if self.reply is None:
            return None
        return response(request, *self.reply)


class Spy:
    """What the plugin sent while deleting: Describe (faked while `describe.reply` is set), AddTags (to moto),
    StopTrainingJob (answered 200 `{}` unless told otherwise)."""

    def __init__(self, plugin: TrainingJobPlugin) -> None:
        self.describe = Sent(plugin, "DescribeTrainingJob")
        self.add_tags = Sent(plugin, "AddTags")
        self.stop = Sent(plugin, "StopTrainingJob", (200, {}))

    def running(self, meta: ResourceMeta, status: str = "InProgress", secondary: str = "Training") -> None:
        self.describe.reply = (200, {
            "TrainingJobName": meta.job_name, "TrainingJobArn": meta.job_arn, "TrainingJobStatus": status,
            "SecondaryStatus": secondary, "CreationTime": START,
            "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File"},
            "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        })


@pytest.fixture
def plugin(config: Config, session: boto3.Session) -> Iterator[TrainingJobPlugin]:
    client = SageMakerClient(config.client_settings(), session=session)
    p = registry.get(CUSTOM, config=config, clock=lambda: START, client=client)
    assert isinstance(p, TrainingJobPlugin)
    yield p
    client.close()


@pytest.fixture
def spy(plugin: TrainingJobPlugin) -> Spy:
    return Spy(plugin)


def task() -> dict[str, Any]:
    return fresh_task("plg", "delete")


def tags_on_server(raw: Any, arn: str) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in raw.list_tags(ResourceArn=arn)["Tags"]}


# --- tests ----------------------------------------------------------------------------------------------------------


def test_delete_of_a_running_job_marks_it_then_stops_it(plugin: TrainingJobPlugin, spy: Spy, raw: Any) -> None:
    meta = plugin.create(load_task(task()))
    spy.running(meta)

    plugin.delete(meta)

    assert spy.add_tags.requests == [{"ResourceArn": meta.job_arn,
                                      "Tags": [{"Key": STOPPED_BY_TAG, "Value": "sagemaker-plugin"}]}]
    assert spy.stop.requests == [{"TrainingJobName": meta.job_name}]
    assert tags_on_server(raw, meta.job_arn)[STOPPED_BY_TAG] == "sagemaker-plugin"
    assert plugin.client().attempts["AddTags"] == 1
    assert plugin.client().attempts["StopTrainingJob"] == 1


def test_the_mark_is_on_the_job_before_the_stop_is_sent(plugin: TrainingJobPlugin, spy: Spy, raw: Any) -> None:
    """Tag first: a process that sees Stopped must already find the mark, whatever happens after the stop."""
    meta = plugin.create(load_task(task()))
    spy.running(meta)
    seen_at_stop: list[dict[str, str]] = []

    def stop(request: AWSPreparedRequest, **_: Any) -> AWSResponse:
        seen_at_stop.append(tags_on_server(raw, meta.job_arn))
        return response(request, 200, {})

    events: Any = plugin.client().sagemaker.meta.events
    events.register_first("before-send.sagemaker.StopTrainingJob", stop)

    plugin.delete(meta)

    assert len(seen_at_stop) == 1
    assert STOPPED_BY_TAG in seen_at_stop[0]


def test_delete_then_stopped_reads_aborted(plugin: TrainingJobPlugin, spy: Spy) -> None:
    meta = plugin.create(load_task(task()))
    spy.running(meta)
    plugin.delete(meta)
    spy.running(meta, "Stopping", "Stopping")
    assert plugin.get(meta).phase is Phase.RUNNING
    spy.running(meta, "Stopped", "Stopped")
    assert plugin.get(meta).phase is Phase.ABORTED


def test_delete_of_a_finished_job_sends_nothing(plugin: TrainingJobPlugin, spy: Spy, raw: Any) -> None:
    """No injection on Describe: moto's own Completed job."""
    meta = plugin.create(load_task(task()))

    plugin.delete(meta)

    assert len(spy.describe.requests) == 1
    assert spy.add_tags.requests == []
    assert spy.stop.requests == []
    assert STOPPED_BY_TAG not in tags_on_server(raw, meta.job_arn)
    assert plugin.get(meta).phase is Phase.SUCCEEDED


@pytest.mark.parametrize(("status", "secondary"), [("Failed", "Failed"), ("Stopped", "Stopped"),
                                                   ("Stopping", "Stopping"), ("Stopped", "MaxRuntimeExceeded")])
def test_delete_of_a_job_not_in_progress_sends_no_stop(plugin: TrainingJobPlugin, spy: Spy, status: str,
                                                        secondary: str) -> None:
    meta = plugin.create(load_task(task()))
    spy.running(meta, status, secondary)
    plugin.delete(meta)
    assert spy.add_tags.requests == []
    assert spy.stop.requests == []


def test_delete_of_a_missing_job_as_moto_answers_is_not_an_error(plugin: TrainingJobPlugin, spy: Spy,
                                                                 endpoint: str) -> None:
    meta = ResourceMeta(job_name=f"plg-never-{uuid.uuid4().hex[:8]}", region="us-east-1", created_at=START,
                        endpoint_url=endpoint)
    plugin.delete(meta)
    assert len(spy.describe.requests) == 1
    assert spy.add_tags.requests == []
    assert spy.stop.requests == []


def test_delete_of_a_missing_job_as_aws_answers_is_not_an_error(plugin: TrainingJobPlugin, spy: Spy) -> None:
    meta = plugin.create(load_task(task()))
    spy.describe.reply = (400, {"__type": "ValidationException", "message": AWS_NOT_FOUND})
    plugin.delete(meta, grace_seconds=0)  # past the grace a job made moments ago would have shown by now
    assert spy.stop.requests == []


def test_deleting_twice_stops_once(plugin: TrainingJobPlugin, spy: Spy) -> None:
    meta = plugin.create(load_task(task()))
    spy.running(meta)
    plugin.delete(meta)
    spy.running(meta, "Stopping", "Stopping")
    plugin.delete(meta)
    spy.running(meta, "Stopped", "Stopped")
    plugin.delete(meta)
    assert len(spy.stop.requests) == 1
    assert len(spy.add_tags.requests) == 1


def test_a_second_delete_that_races_the_stop_is_not_an_error(plugin: TrainingJobPlugin, spy: Spy) -> None:
    """Describe still says InProgress, but the job is already stopping: AWS refuses the stop; delete shrugs."""
    meta = plugin.create(load_task(task()))
    spy.running(meta)
    plugin.delete(meta)
    spy.stop.reply = (400, {"__type": "ValidationException", "message": AWS_NOT_IN_PROGRESS})
    plugin.delete(meta)
    assert len(spy.stop.requests) == 2  # a refusal is not retried


def test_delete_from_a_restarted_engine(plugin: TrainingJobPlugin, config: Config, session: boto3.Session,
                                        raw: Any) -> None:
    meta = plugin.create(load_task(task()))
    other = TrainingJobPlugin(config, client=SageMakerClient(config.client_settings(), session=session))
    other_spy = Spy(other)
    other_spy.running(meta)

    other.delete(ResourceMeta.decode(meta.encode()))

    assert other_spy.stop.requests == [{"TrainingJobName": meta.job_name}]
    assert STOPPED_BY_TAG in tags_on_server(raw, meta.job_arn)
    other.client().close()
