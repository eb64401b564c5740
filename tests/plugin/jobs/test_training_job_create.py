"""TrainingJobPlugin.create: the meta, idempotency, lost responses, quota queueing and retries, against a moto server.

moto 5.2.5 silently replaces a job created twice under one name, where AWS answers ResourceInUse. The idempotency
tests therefore play AWS's uniqueness answer with a handler (`aws_uniqueness`) that asks the server, through a plain
client, whether the name exists; everything else (the jobs, their tags, Describe, List) is moto's own. Faults are
injected first on `before-send.sagemaker.<Op>` of the plugin's own client, so botocore's parsing and the plugin's
retry policy run end to end; the plugin's clock is injected and its backoff is tiny.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import boto3
import botocore.exceptions as bce
import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.httpsession import URLLib3Session

from aws_faults import AWS_NAME_IN_USE, AWS_NOT_FOUND, AWS_QUOTA, CUSTOM, IMAGE, Fault, answer, aws_error, raising
from handlers.client import SageMakerClient
from handlers.errors import TransientError
from plugin import InputError, Phase, ResourceMeta, TrainingJobPlugin, load_task, registry
from plugin.config import Config
from plugin.jobs.attempts import Holder, NameTaken, next_attempt
from plugin.jobs.create_queue import QUEUE_RETRY
from plugin.task import Task
from plugin_setup import START, Clock, fresh_task

FINGERPRINT_TAG = "sagemaker-plugin:fingerprint"


# --- fixtures and helpers (config, session, raw and clock: tests/conftest.py) ---------------------------------------


def jobs_named(raw: Any, name: str) -> list[str]:
    names: list[str] = []
    kwargs: dict[str, Any] = {"NameContains": name, "MaxResults": 100}
    while True:
        page = raw.list_training_jobs(**kwargs)
        names += [s["TrainingJobName"] for s in page["TrainingJobSummaries"] if s["TrainingJobName"] == name]
        if not page.get("NextToken"):
            return names
        kwargs["NextToken"] = page["NextToken"]


QUOTA = aws_error("ResourceLimitExceeded", AWS_QUOTA)


def register_first(plugin: TrainingJobPlugin, operation: str, handler: Callable[..., Any]) -> None:
    events: Any = plugin.client().sagemaker.meta.events
    events.register_first(f"before-send.sagemaker.{operation}", handler)


class Faults:
    """First on `before-send.sagemaker.<operation>`: plays `script`, then (with `repeat`) its last fault forever or
    lets calls through; `on` switches it off. Counts every call (one per attempt)."""

    def __init__(self, plugin: TrainingJobPlugin, operation: str, script: Sequence[Fault], *,
                 repeat: bool = False) -> None:
        self.script = list(script)
        self.repeat = repeat
        self.on = True
        self.calls = 0
        self.faulted = 0
        register_first(plugin, operation, self)

    def __call__(self, request: AWSPreparedRequest, **_: Any) -> AWSResponse | None:
        self.calls += 1
        if not self.on:
            return None
        if self.calls <= len(self.script) or (self.repeat and self.script):
            self.faulted += 1
            return self.script[min(self.calls, len(self.script)) - 1](request)
        return None


@pytest.fixture
def plugin(config: Config, clock: Clock, session: boto3.Session, raw: Any) -> Iterator[TrainingJobPlugin]:
    """The plugin with its client on the shared session, and AWS's name uniqueness played on CreateTrainingJob."""
    client = SageMakerClient(config.client_settings(), session=session)
    p = registry.get(CUSTOM, config=config, clock=clock, client=client)
    assert isinstance(p, TrainingJobPlugin)

    def aws_uniqueness(request: AWSPreparedRequest, **_: Any) -> AWSResponse | None:
        name = json.loads(request.body)["TrainingJobName"]  # type: ignore[arg-type]
        if jobs_named(raw, name):
            return aws_error("ResourceInUse", AWS_NAME_IN_USE.format(name=name))(request)
        return None

    register_first(p, "CreateTrainingJob", aws_uniqueness)
    yield p
    client.close()


def task(name: str | None = None, **extra: Any) -> dict[str, Any]:
    return fresh_task("plg", "create", name=name, instance_type="ml.p3.2xlarge", input_mode="FILE", **extra)


# --- create and the meta --------------------------------------------------------------------------------------------


def test_create_makes_one_job_and_a_meta(plugin: TrainingJobPlugin, raw: Any, endpoint: str, clock: Clock) -> None:
    meta = plugin.create(load_task(task("first")
                                   | {"execution": {"project": "plg", "domain": "create", "name": "first",
                                                    "node_id": "n3", "retry_attempt": 2}}))

    assert meta.job_name == "plg-create-first-n3-2"  # deterministic from the execution identity
    assert meta.job_arn == raw.describe_training_job(TrainingJobName=meta.job_name)["TrainingJobArn"]
    assert meta.job_arn.endswith(":training-job/plg-create-first-n3-2")
    assert meta.region == "us-east-1"
    assert meta.endpoint_url == endpoint
    assert meta.created_at == START
    assert not meta.queued
    tags = {t["Key"]: t["Value"] for t in raw.list_tags(ResourceArn=meta.job_arn)["Tags"]}
    assert len(meta.fingerprint) == 32
    assert tags[FINGERPRINT_TAG] == meta.fingerprint
    assert jobs_named(raw, meta.job_name) == [meta.job_name]
    assert plugin.client().attempts["CreateTrainingJob"] == 1


def test_meta_encodes_to_json_bytes_and_decodes_back(plugin: TrainingJobPlugin) -> None:
    meta = plugin.create(load_task(task()))
    blob = meta.encode()
    assert isinstance(blob, bytes)
    data = json.loads(blob)
    assert data["job_name"] == meta.job_name
    assert data["job_arn"] == meta.job_arn
    assert data["fingerprint"] == meta.fingerprint
    assert ResourceMeta.decode(blob) == meta
    assert ResourceMeta.decode(blob.decode()) == meta
    assert plugin.metadata_type.decode(blob) == meta
    assert ResourceMeta.decode(meta.encode()).encode() == blob


def valid_meta_dict() -> dict[str, Any]:
    return {"job_name": "j", "region": "us-east-1", "created_at": START, "version": 1}


GARBAGE: dict[str, bytes | str] = {
    "not-json": b"this is not json",
    "not-utf8": b"\xff\xfe\xfa",
    "empty": b"",
    "a-list": b"[1, 2]",
    "null": b"null",
    "a-string": b'"meta"',
    "other-version": json.dumps(valid_meta_dict() | {"version": 2}),
    "no-version": json.dumps({k: v for k, v in valid_meta_dict().items() if k != "version"}),
    "unknown-field": json.dumps(valid_meta_dict() | {"pod": "x"}),
    "no-job-name": json.dumps({k: v for k, v in valid_meta_dict().items() if k != "job_name"}),
}


@pytest.mark.parametrize("blob", GARBAGE.values(), ids=GARBAGE.keys())
def test_decode_rejects_garbage_with_input_error(blob: bytes | str) -> None:
    with pytest.raises(InputError):
        ResourceMeta.decode(blob)


def test_decode_rejects_another_version_naming_it() -> None:
    with pytest.raises(InputError) as caught:
        ResourceMeta.decode(json.dumps(valid_meta_dict() | {"version": 7}))
    assert "7" in str(caught.value)


def test_decode_rejects_wrongly_typed_fields() -> None:
    with pytest.raises(InputError):
        ResourceMeta.decode(json.dumps(valid_meta_dict() | {"created_at": "yesterday"}))


# --- idempotency ----------------------------------------------------------------------------------------------------


def test_creating_the_same_task_twice_adopts_the_job(plugin: TrainingJobPlugin, raw: Any) -> None:
    the_task = task()
    first = plugin.create(load_task(the_task))
    second = plugin.create(load_task(the_task))

    assert second.job_arn == first.job_arn
    assert second.fingerprint == first.fingerprint
    assert jobs_named(raw, first.job_name) == [first.job_name]
    assert plugin.client().attempts["CreateTrainingJob"] == 2  # the second met ResourceInUse (not retried)...
    assert plugin.client().attempts["ListTags"] == 1  # ...and compared fingerprints
    assert plugin.get(second).phase is Phase.SUCCEEDED


def test_a_restarted_engine_adopts_too(plugin: TrainingJobPlugin, config: Config, clock: Clock,
                                       session: boto3.Session, raw: Any) -> None:
    the_task = task()
    first = plugin.create(load_task(the_task))
    other = TrainingJobPlugin(config, clock=clock, client=SageMakerClient(config.client_settings(), session=session))
    events: Any = other.client().sagemaker.meta.events
    events.register_first("before-send.sagemaker.CreateTrainingJob",
                          lambda request, **_: aws_error("ResourceInUse", AWS_NAME_IN_USE.format(
                              name=first.job_name))(request))
    assert other.create(load_task(the_task)).job_arn == first.job_arn
    assert jobs_named(raw, first.job_name) == [first.job_name]
    other.client().close()


def test_a_different_task_under_a_taken_name_is_an_input_error(plugin: TrainingJobPlugin, raw: Any) -> None:
    name = f"plg-taken-{uuid.uuid4().hex[:8]}"
    first = plugin.create(load_task(task(job_name=name)))
    before = raw.describe_training_job(TrainingJobName=name)

    with pytest.raises(InputError) as caught:
        plugin.create(load_task(task(job_name=name, container={"image": IMAGE.replace("1.0", "2.0")})))

    assert [p.path for p in caught.value.problems] == ["job_name"]
    assert name in str(caught.value)
    assert first.job_arn in str(caught.value)
    after = raw.describe_training_job(TrainingJobName=name)
    assert after["AlgorithmSpecification"]["TrainingImage"] == IMAGE  # untouched
    assert after["CreationTime"] == before["CreationTime"]
    assert jobs_named(raw, name) == [name]


def test_name_holder_tells_a_free_name_this_tasks_job_and_another_tasks(plugin: TrainingJobPlugin) -> None:
    mine = plugin.create(load_task(task()))
    assert plugin.name_holder(plugin.client(), mine.job_name, mine.fingerprint) is Holder.OURS
    assert plugin.name_holder(plugin.client(), mine.job_name, "f" * 32) is Holder.THEIRS
    assert plugin.name_holder(plugin.client(), f"plg-free-{uuid.uuid4().hex[:8]}", mine.fingerprint) is Holder.FREE


def test_new_attempt_takes_the_next_free_attempt_and_then_keeps_to_its_own(plugin: TrainingJobPlugin,
                                                                          raw: Any) -> None:
    """Three versions of one task under one identity: the third, refused at attempt 0, runs as attempt 2, and run
    again finds its own job there (adopted), while the second version still finds its attempt 1."""
    identity = f"edit{uuid.uuid4().hex[:8]}"

    def version(image_tag: str) -> Task:
        return load_task(task(name=identity, container={"image": IMAGE.replace("1.0", image_tag)}))

    first = plugin.create(version("1.0"))
    with pytest.raises(NameTaken):
        plugin.create(version("2.0"))
    second_attempt, second = next_attempt(plugin, version("2.0"), plugin.render(version("2.0")))
    assert (second_attempt, second.job_name) == (1, first.job_name.removesuffix("-0") + "-1")
    plugin.create_rendered(second)

    third = version("3.0")
    looks = plugin.client().attempts["DescribeTrainingJob"]
    attempt, rendered = next_attempt(plugin, third, plugin.render(third))
    assert attempt == 2 and rendered.job_name == first.job_name.removesuffix("-0") + "-2"
    assert plugin.client().attempts["DescribeTrainingJob"] - looks == 3  # 0 and 1 taken, 2 free
    tags = {t["Key"]: t["Value"] for t in rendered.request["Tags"]}
    assert tags["sagemaker-plugin:retry-attempt"] == "2", "the request of attempt 2, its identity tags too"
    made = plugin.create_rendered(rendered)
    assert not made.adopted

    assert next_attempt(plugin, third, plugin.render(third))[0] == 2
    assert plugin.create_rendered(next_attempt(plugin, third, plugin.render(third))[1]).adopted
    assert next_attempt(plugin, version("2.0"), plugin.render(version("2.0")))[0] == 1
    assert len(jobs_named_like(raw, identity)) == 3


def test_new_attempt_with_a_given_job_name_says_to_change_the_name(plugin: TrainingJobPlugin) -> None:
    named = load_task(task(job_name=f"plg-named-{uuid.uuid4().hex[:8]}"))
    with pytest.raises(InputError) as caught:
        next_attempt(plugin, named, plugin.render(named))
    assert [p.path for p in caught.value.problems] == ["job_name"]
    assert "change job_name" in str(caught.value)


def jobs_named_like(raw: Any, part: str) -> list[str]:
    pages = raw.get_paginator("list_training_jobs").paginate(NameContains=part)
    return [s["TrainingJobName"] for page in pages for s in page["TrainingJobSummaries"]]


LOST = {
    "connection-closed": lambda url: bce.ConnectionClosedError(endpoint_url=url),
    "read-timeout": lambda url: bce.ReadTimeoutError(endpoint_url=url),
}


@pytest.mark.parametrize("lose", LOST.values(), ids=LOST.keys())
def test_a_create_whose_response_was_lost_is_adopted(plugin: TrainingJobPlugin, raw: Any,
                                                     lose: Callable[[str], BaseException]) -> None:
    """SageMaker made the job but the answer never came back: the plugin's retry meets ResourceInUse and adopts."""
    delivered: list[int] = []

    def delivered_then_lost(request: AWSPreparedRequest) -> AWSResponse:
        http = URLLib3Session()
        try:
            delivered.append(http.send(request).status_code)  # the job is made...
        finally:
            http.close()
        raise lose(request.url)  # ...and the answer is lost

    Faults(plugin, "CreateTrainingJob", [delivered_then_lost])
    the_task = task()

    meta = plugin.create(load_task(the_task))

    assert delivered == [200]
    assert jobs_named(raw, meta.job_name) == [meta.job_name]
    assert meta.job_arn == raw.describe_training_job(TrainingJobName=meta.job_name)["TrainingJobArn"]
    assert plugin.client().attempts["CreateTrainingJob"] == 2
    assert plugin.client().attempts["ListTags"] == 1
    assert plugin.get(meta).phase is Phase.SUCCEEDED


# --- quota: queued ----------------------------------------------------------------------------------------------------


def test_resource_limit_queues_then_creates_once_the_quota_frees(plugin: TrainingJobPlugin, raw: Any, clock: Clock,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("handlers.retry.random.uniform", lambda low, high: high)  # full jitter, pinned to its top
    quota = Faults(plugin, "CreateTrainingJob", [QUOTA], repeat=True)
    meta = plugin.create(load_task(task()))

    assert meta.queued
    assert meta.job_arn == ""
    assert meta.created_at == START
    assert AWS_QUOTA in meta.queued_message
    assert ResourceMeta.decode(meta.encode()) == meta  # a queued meta persists too
    assert quota.calls == 1  # ResourceLimitExceeded is not retried in the client

    waiting = plugin.get(meta)  # retries the create at once: still refused
    assert waiting.phase is Phase.WAITING_FOR_RESOURCES
    assert AWS_QUOTA in waiting.message
    assert waiting.log_links == ()
    assert quota.calls == 2

    quota.on = False
    clock.now += 1
    in_backoff = plugin.get(meta)  # backing off: no create sent
    assert in_backoff.phase is Phase.WAITING_FOR_RESOURCES
    assert AWS_QUOTA in in_backoff.message
    assert quota.calls == 2
    assert jobs_named(raw, meta.job_name) == []

    clock.now = START + QUEUE_RETRY.backoff_seconds + 0.01  # past the first backoff (5 s)
    created = plugin.get(meta)
    assert created.phase is Phase.QUEUED
    assert quota.calls == 3
    assert jobs_named(raw, meta.job_name) == [meta.job_name]

    done = plugin.get(meta)
    assert done.phase is Phase.SUCCEEDED
    assert done.outputs["training_job_name"] == meta.job_name
    assert quota.calls == 3
    assert jobs_named(raw, meta.job_name) == [meta.job_name]


def test_resource_limit_backoff_grows(plugin: TrainingJobPlugin, clock: Clock,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries of a refused create back off exponentially (5, 10, 20 s... with jitter pinned to its top)."""
    monkeypatch.setattr("handlers.retry.random.uniform", lambda low, high: high)
    quota = Faults(plugin, "CreateTrainingJob", [QUOTA], repeat=True)
    meta = plugin.create(load_task(task()))
    retried_at = []
    for second in range(40):  # one poll a second
        before = quota.calls
        assert plugin.get(meta).phase is Phase.WAITING_FOR_RESOURCES
        if quota.calls > before:
            retried_at.append(second)
        clock.now += 1

    assert retried_at == [0, 5, 15, 35]
    assert quota.calls == 1 + 4


def test_resource_wait_runs_out_as_failed_with_aws_message(plugin: TrainingJobPlugin, raw: Any,
                                                           clock: Clock) -> None:
    quota = Faults(plugin, "CreateTrainingJob", [QUOTA], repeat=True)
    meta = plugin.create(load_task(task()))
    clock.now = START + plugin.config.limits.resource_wait_seconds + 1

    resource = plugin.get(meta)

    assert resource.phase is Phase.FAILED
    assert AWS_QUOTA in resource.message
    assert "resource_wait_seconds" in resource.message
    assert quota.calls == 1  # no create once the wait ran out
    assert jobs_named(raw, meta.job_name) == []


def test_delete_while_queued_never_creates(plugin: TrainingJobPlugin, raw: Any, clock: Clock) -> None:
    quota = Faults(plugin, "CreateTrainingJob", [QUOTA], repeat=True)
    meta = plugin.create(load_task(task()))
    plugin.delete(meta)
    quota.on = False
    clock.now += 3600

    resource = plugin.get(meta)

    assert resource.phase is Phase.ABORTED
    assert quota.calls == 1
    assert jobs_named(raw, meta.job_name) == []


def test_a_queued_job_just_created_but_not_yet_visible_is_queued(plugin: TrainingJobPlugin, raw: Any,
                                                                 clock: Clock) -> None:
    quota = Faults(plugin, "CreateTrainingJob", [QUOTA])
    meta = plugin.create(load_task(task()))
    assert meta.queued
    assert plugin.get(meta).phase is Phase.QUEUED  # the retried create went through
    assert jobs_named(raw, meta.job_name) == [meta.job_name]
    assert quota.calls == 2
    Faults(plugin, "DescribeTrainingJob", [aws_error("ValidationException", AWS_NOT_FOUND)], repeat=True)

    resource = plugin.get(meta)  # docs/phases.md: just created, not yet visible to Describe -> QUEUED

    assert resource.phase is Phase.QUEUED
    assert jobs_named(raw, meta.job_name) == [meta.job_name]


# --- retries through the plugin -------------------------------------------------------------------------------------

RETRYABLE: dict[str, Fault] = {
    "throttling": aws_error("ThrottlingException", "Rate exceeded"),
    "http-500": answer(500, b"<html><body>Internal Server Error</body></html>"),
    "http-503": aws_error("ServiceUnavailable", "Service Unavailable", 503),
    "connection-closed": raising(lambda url: bce.ConnectionClosedError(endpoint_url=url)),
    "read-timeout": raising(lambda url: bce.ReadTimeoutError(endpoint_url=url)),
}


@pytest.mark.parametrize("fault", RETRYABLE.values(), ids=RETRYABLE.keys())
def test_create_is_retried_through_faults_and_makes_one_job(plugin: TrainingJobPlugin, raw: Any,
                                                            fault: Fault) -> None:
    faults = Faults(plugin, "CreateTrainingJob", [fault, fault])

    meta = plugin.create(load_task(task()))

    assert faults.calls == 3
    assert faults.faulted == 2
    assert plugin.client().attempts["CreateTrainingJob"] == 3
    assert jobs_named(raw, meta.job_name) == [meta.job_name]
    assert meta.job_arn == raw.describe_training_job(TrainingJobName=meta.job_name)["TrainingJobArn"]
    assert plugin.client().attempts["ListTags"] == 0  # made, not adopted


@pytest.mark.parametrize("fault", RETRYABLE.values(), ids=RETRYABLE.keys())
def test_faults_that_outlast_the_retries_are_transient_errors(plugin: TrainingJobPlugin, raw: Any,
                                                              fault: Fault) -> None:
    faults = Faults(plugin, "CreateTrainingJob", [fault], repeat=True)
    the_task = load_task(task())
    name = plugin.render(the_task).job_name
    attempts = plugin.config.retry.attempts

    with pytest.raises(TransientError) as caught:
        plugin.create(the_task)

    assert faults.calls == attempts == 8
    assert f"after {attempts} attempts" in str(caught.value)
    assert caught.value.operation == "CreateTrainingJob"
    assert jobs_named(raw, name) == []


def test_get_is_retried_through_throttling(plugin: TrainingJobPlugin) -> None:
    meta = plugin.create(load_task(task()))
    throttle = Faults(plugin, "DescribeTrainingJob", [aws_error("ThrottlingException", "Rate exceeded")] * 3)
    assert plugin.get(meta).phase is Phase.SUCCEEDED
    assert throttle.calls == 4
