"""The EventBridge events the local SageMaker sends when a job changes, as SageMaker sends them to an account.

Each change of a training job's status or secondary status ("SageMaker Training Job State Change") and of a tuning
job's status ("SageMaker HyperParameter Tuning Job State Change") becomes one event on the default bus of moto's
EventBridge, source `aws.sagemaker`, `resources` the job's ARN, `detail` shaped as the Describe answer with times as
epoch-millisecond strings and Tags as a map. A training job's detail holds the members EventBridge's schema of the
event lists (its outputs' figures, FinalMetricDataList and the training and billable seconds, are not among them) and
FailureReason when it failed. Each enabled rule of moto's whose pattern matches gets it: a standard SQS queue target
straight into the queue (moto's own SendMessage computes every attribute of the queue, a walk over all its messages,
for each message sent: thousands of jobs made it crawl), any other target through moto's `send_to_targets`. A target
that is gone loses the event, as EventBridge would after its retries.

`local.event_faults` drop, duplicate or delay some events, so tests can prove that a tracker survives what AWS may do.

A long poll of SQS (ReceiveMessage with WaitTimeSeconds) must not hold the server's lock while it waits: `long_poll`
asks moto without waiting, again and again, until a message is there or the wait is over, letting go of the lock
between two looks (each look advances the simulated jobs, so their events are sent as they fall due).
"""

from __future__ import annotations

import heapq
import io
import itertools
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from handlers.local import LocalSettings

log = logging.getLogger(__name__)

SOURCE = "aws.sagemaker"
TRAINING_CHANGE = "SageMaker Training Job State Change"
TUNING_CHANGE = "SageMaker HyperParameter Tuning Job State Change"
#: a training job's detail: the members of EventBridge's schema of the event (aws.sagemaker@SageMakerTrainingJob-
#: StateChange), plus FailureReason when the job failed
TRAINING_DETAIL = (
    "AlgorithmSpecification", "CreationTime", "FailureReason", "HyperParameters", "InputDataConfig",
    "LastModifiedTime", "ModelArtifacts", "OutputDataConfig", "ResourceConfig", "RoleArn", "SecondaryStatus",
    "SecondaryStatusTransitions", "StoppingCondition", "TrainingEndTime", "TrainingJobArn", "TrainingJobName",
    "TrainingJobStatus", "TrainingStartTime",
)
#: how often a long poll looks again while nothing arrives (a job's runner wakes it at once)
LOOK_SECONDS = 0.1

StartResponse = Callable[..., Any]


@dataclass(frozen=True)
class _Event:
    account: str
    region: str
    message: Mapping[str, Any]


class Emitter:
    """Sends the events of one engine's jobs; called under the server's lock (see engine.py)."""

    def __init__(self, settings: LocalSettings, now_ms: Callable[[], int]) -> None:
        self._settings = settings
        self._now_ms = now_ms
        self._sent: dict[str, tuple[Any, ...]] = {}  # per job ARN: the state its last event told
        self._delayed: list[tuple[int, int, _Event]] = []
        self._sequence = itertools.count()
        #: notified when an event reached a target: a long poll looks again at once
        self.arrived = threading.Condition(threading.Lock())

    def training_changed(self, job: Any) -> None:
        """A training job may have changed: an event if its status, secondary status or transitions did."""
        state = (job.training_job_status, job.secondary_status, len(job.transitions))
        if self._sent.get(job.arn) == state:
            return
        self._sent[job.arn] = state
        if not _listened(job.account_id, job.region_name):
            return
        described = job.describe()
        detail = {key: value for key, value in described.items() if key in TRAINING_DETAIL}
        detail["Tags"] = _tag_map(getattr(job, "tags", None))
        self._send(job.account_id, job.region_name, TRAINING_CHANGE, job.arn, job.training_job_name,
                   job.secondary_status, detail)

    def tuning_changed(self, job: Any) -> None:
        """A tuning job may have changed: an event if its status did."""
        if self._sent.get(job.arn) == (job.status,):
            return
        self._sent[job.arn] = (job.status,)
        if not _listened(job.account_id, job.region_name):
            return
        detail = dict(job.describe(self._now_ms()))
        detail["Tags"] = _tag_map(job.tags)
        self._send(job.account_id, job.region_name, TUNING_CHANGE, job.arn, job.name, job.status, detail)

    def run_due(self, now_ms: int) -> None:
        """Sends the delayed events whose time has come."""
        while self._delayed and self._delayed[0][0] <= now_ms:
            _, _, event = heapq.heappop(self._delayed)
            self._deliver(event)

    def clear(self) -> None:
        self._sent.clear()
        self._delayed.clear()

    def wait(self, seconds: float) -> None:
        """Until an event reaches a target, or `seconds` pass."""
        with self.arrived:
            self.arrived.wait(seconds)

    def _send(self, account: str, region: str, detail_type: str, arn: str, name: str, status: str,
              detail: Mapping[str, Any]) -> None:
        now = self._now_ms()
        message = {"version": "0", "id": str(uuid.uuid4()), "detail-type": detail_type, "source": SOURCE,
                   "account": account, "time": now / 1000, "region": region, "resources": [arn],
                   "detail": _epoch_ms(detail)}
        event = _Event(account, region, message)
        fault = self._settings.event_fault_for(name, status)
        if fault is not None and fault.fault == "drop":
            log.info("event fault: %s's %s event dropped", name, status)
            return
        if fault is not None and fault.fault == "delay":
            due = now + round(self._settings.scaled(fault.delay_seconds) * 1000)
            heapq.heappush(self._delayed, (due, next(self._sequence), event))
            return
        self._deliver(event)
        if fault is not None and fault.fault == "duplicate":
            self._deliver(event)

    def _deliver(self, event: _Event) -> None:
        """To every enabled rule of the default bus whose pattern matches; a failing target loses it."""
        from moto.events.models import events_backends

        bus = events_backends[event.account][event.region].event_buses.get("default")
        delivered = False
        for rule in list(bus.rules.values()) if bus is not None else ():
            if rule.state != "ENABLED" or not rule.event_pattern.matches_event(event.message):  # type: ignore[arg-type]
                continue
            try:
                if all(_plain_queue(target) for target in rule.targets):
                    for target in rule.targets:
                        delivered = _enqueue(str(target["Arn"]), event.message) or delivered
                else:  # moto rewrites the message's `time` only
                    rule.send_to_targets(dict(event.message), transform_input=False)  # type: ignore[arg-type]
                    delivered = True
            except Exception as error:  # a target moto refuses: EventBridge drops the event too
                log.info("event for %s not delivered by rule %s: %s", event.message["resources"], rule.name, error)
        if delivered:
            with self.arrived:
                self.arrived.notify_all()


def _plain_queue(target: Mapping[str, Any]) -> bool:
    """A standard SQS queue that gets the event as it is (no input, no transformer, not FIFO)."""
    arn = str(target.get("Arn", ""))
    return (arn.startswith("arn:aws:sqs:") and not arn.endswith(".fifo")
            and not any(key in target for key in ("Input", "InputPath", "InputTransformer")))


def _enqueue(arn: str, message: Mapping[str, Any]) -> bool:
    """The event as EventBridge writes it to a queue (`time` in ISO 8601); False when the queue is gone."""
    from moto.sqs.models import Message, sqs_backends

    _, _, _, region, account, name = arn.split(":", 5)
    queue = sqs_backends[account][region].queues.get(name)
    if queue is None:
        log.info("event for %s lost: queue %s is gone", message["resources"], arn)
        return False
    moment = datetime.fromtimestamp(float(message["time"]), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    sent = Message(str(uuid.uuid4()), json.dumps({**message, "time": moment}))
    sent.mark_sent(delay_seconds=int(getattr(queue, "delay_seconds", 0) or 0))
    queue.add_message(sent)
    return True


def _listened(account: str, region: str) -> bool:
    """Whether any rule is on the account's default bus: without one an event costs nothing."""
    from moto.events.models import events_backends

    bus = events_backends[account][region].event_buses.get("default")
    return bool(bus is not None and bus.rules)


def _tag_map(tags: Iterable[Mapping[str, Any]] | None) -> dict[str, str]:
    return {str(tag.get("Key")): str(tag.get("Value")) for tag in tags or () if isinstance(tag, Mapping)}


def _epoch_ms(value: Any) -> Any:
    """Datetimes as epoch-millisecond strings, as the events carry them, at any depth."""
    if isinstance(value, datetime):
        return str(round(value.timestamp() * 1000))
    if isinstance(value, Mapping):
        return {key: _epoch_ms(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_epoch_ms(item) for item in value]
    return value


# --- SQS long polls ---------------------------------------------------------------------------------------------------


def long_poll(serve: Callable[[dict[str, Any], StartResponse], list[bytes]], environ: dict[str, Any],
              start_response: StartResponse, emitter: Emitter) -> list[bytes]:
    """A JSON-protocol ReceiveMessage: `serve` (moto, under the server's lock) asked with WaitTimeSeconds 0 until a
    message is there, an error answers, or the request's wait is over."""
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    try:
        request = json.loads(body)
        wait = float(request.get("WaitTimeSeconds") or 0) if isinstance(request, dict) else 0.0
    except (ValueError, TypeError):
        request, wait = None, 0.0
    if isinstance(request, dict) and 0 <= wait <= 20:
        request["WaitTimeSeconds"] = 0
        body = json.dumps(request).encode()
    else:
        wait = 0.0  # moto refuses what is out of range, without waiting
    deadline = time.monotonic() + wait
    answered: list[Any] = []

    def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
        answered[:] = [status, headers]
        return lambda data: None

    while True:
        look = {**environ, "wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body))}
        result = serve(look, capture)
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not str(answered[0]).startswith("200") or _has_messages(result):
            start_response(*answered)
            return result
        emitter.wait(min(remaining, LOOK_SECONDS))


def _has_messages(body: list[bytes]) -> bool:
    try:
        answer = json.loads(b"".join(body) or b"{}")
    except ValueError:
        return True  # not ours to judge: hand it over
    return bool(isinstance(answer, dict) and answer.get("Messages"))
