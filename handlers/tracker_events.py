"""Job changes from EventBridge: one thread per status tracker long-polls the SQS queue an EventBridge rule feeds.

SageMaker sends "SageMaker Training Job State Change" (and "... HyperParameter Tuning Job State Change") events whose
`detail` is the job's Describe answer with epoch-millisecond times; several may come for one change, out of order
(handlers/tracker.py's `apply_event` keeps the newest). The listener asks for 10 messages a call, waiting up to 20 s,
applies them and has them deleted (duplicates, stale events and messages that are not job events too: kept, they would
come back after every visibility timeout). The deletes go to a second thread, in DeleteMessageBatch calls of 10 (fewer
once the oldest has waited a second): the one receiving thread asks again as soon as it has applied a batch, so a
burst of events (a few hundred a second when thousands of jobs start together) drains at the pace of the receives,
and a receive that brought three messages does not cost a delete of three.

The tracker's sweeps go on at the slow `sweep_interval_seconds` as a safety net. The listener gives up, and the
tracker falls back to its normal sweeps (said once in the log), when the queue is missing, refuses us (AccessDenied),
keeps failing, or stays silent for `max_silence_seconds` while sweeps find changes no event told.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from handlers.client import SageMakerClient
from handlers.errors import AccessDenied, AwsError, NotFound
from handlers.tracker import StatusTracker, described_from_event

log = logging.getLogger(__name__)

SOURCE = "aws.sagemaker"
TRAINING_CHANGE = "SageMaker Training Job State Change"
TUNING_CHANGE = "SageMaker HyperParameter Tuning Job State Change"
DETAIL_TYPES = (TRAINING_CHANGE, TUNING_CHANGE)
#: SQS's own limits: 10 messages a receive, a long poll of at most 20 s
BATCH = 10
LONG_POLL_SECONDS = 20
#: after a receive that was not full, the listener waits this long before the next: SQS answers a long poll as soon as
#: one message is there, so without it a steady trickle costs a receive and a delete per message or two, not per ten
BATCH_PAUSE_SECONDS = 0.5
#: how long an applied message may wait for its delete, so that deletes go ten at a time even when the receives bring
#: fewer (well inside the visibility timeout, 30 s for the queue `events setup` makes, after which it would come back)
DELETE_GATHER_SECONDS = 1.0
#: receipt handles waiting for the deleting thread, at most: past it the receiving thread waits (the deletes failing or
#: slow must not grow memory without end)
MAX_PENDING_DELETES = 10 * BATCH
#: the SQS operations the listener makes, and the IAM action each needs (a batch is authorized by its single action)
QUEUE_ACTIONS = {"ReceiveMessage": "sqs:ReceiveMessage", "DeleteMessageBatch": "sqs:DeleteMessage"}
_MISSING_QUEUE = frozenset({"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"})


@dataclass(frozen=True)
class EventSettings:
    """config.yaml's `tracking.events` (durations in seconds of the tracker's clock)."""

    queue_url: str
    sweep_interval_seconds: float = 300.0  # the safety net's sweeps
    max_silence_seconds: float = 900.0  # no message this long while sweeps find changes: back to normal sweeps
    wait_seconds: int = LONG_POLL_SECONDS


@dataclass(frozen=True)
class TuningSighting:
    """A tuning job's Describe answer from its latest event, and when it came (monotonic)."""

    answer: dict[str, Any]
    at: float


class EventListener:
    """Feeds one tracker from one queue, in a daemon thread (`start`), or a receive at a time (`poll_once`)."""

    def __init__(self, client: SageMakerClient, tracker: StatusTracker, settings: EventSettings, *,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        self.client = client
        self.tracker = tracker
        self.settings = settings
        self._clock = clock
        self._sleep = sleep
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._deleter: threading.Thread | None = None
        self._deletes = threading.Condition()  # guards the two below
        self._pending: list[str] = []  # receipt handles of applied messages, for the deleting thread
        self._pending_since = 0.0  # time.monotonic() when the oldest of them came
        self._closing = False  # no more handles will come: the deleting thread empties `_pending` and ends
        self._lock = threading.Lock()
        self._last_heard = clock()  # the last message, or the start
        self._failing_since: float | None = None
        self.stopped_reason: str | None = None
        self.received = 0
        self._tuning: dict[str, TuningSighting] = {}
        tracker.on_sweep_caught = self._sweep_caught
        tracker.follow_events(settings.sweep_interval_seconds)

    @property
    def active(self) -> bool:
        return self.stopped_reason is None

    def start(self) -> EventListener:
        self._deleter = threading.Thread(target=self._delete_pending, name="job-events-delete", daemon=True)
        self._deleter.start()
        self._thread = threading.Thread(target=self._run, name="job-events", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Ends the threads after the current receive and the deletes it left (the tracker keeps its interval: this
        is a shutdown)."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._close_deletes()
        if self._deleter is not None:
            self._deleter.join(timeout)

    def tuning_answer(self, name: str, max_age: float) -> dict[str, Any] | None:
        """A tuning job's answer from its latest event, while the events flow and it is younger than `max_age`."""
        with self._lock:
            seen = self._tuning.get(name)
        if not self.active or seen is None or self._clock() - seen.at > max_age:
            return None
        return seen.answer

    def _run(self) -> None:
        try:
            while not self._stopping.is_set() and self.active:
                if 0 < self.poll_once() < BATCH:
                    self._stopping.wait(BATCH_PAUSE_SECONDS)
        except Exception as error:  # a bug must not leave the tracker trusting events that no longer come
            log.exception("job events: the listener failed")
            self._give_up(f"the listener failed ({error!r})")
        finally:
            self._close_deletes()

    def poll_once(self) -> int:
        """One long poll: the messages applied and deleted; 0 after a failure (waited on) or once given up."""
        if not self.active:
            return 0
        try:
            answer = self.client.call("sqs", "ReceiveMessage", QueueUrl=self.settings.queue_url,
                                      MaxNumberOfMessages=BATCH, WaitTimeSeconds=self.settings.wait_seconds)
        except AwsError as error:
            if not self._stopping.is_set():  # a shutdown's last receive fails as its endpoint goes: not a fallback
                self._failed(error)
            return 0
        self._failing_since = None
        messages = [m for m in answer.get("Messages") or () if isinstance(m, Mapping)]
        if not messages:
            return 0
        self._last_heard = self._clock()
        for message in messages:
            try:
                self._apply(message.get("Body"))
            except (ValueError, TypeError, RecursionError):  # hostile or broken: ignored, deleted with the rest
                log.debug("job events: a message that cannot be read, deleted")
        self._hand_over([str(m["ReceiptHandle"]) for m in messages if m.get("ReceiptHandle")])
        self.received += len(messages)
        return len(messages)

    def _hand_over(self, handles: list[str]) -> None:
        """Applied messages to delete: to the deleting thread when it runs (waiting while it is far behind), else
        deleted now."""
        deleter = self._deleter
        if deleter is None or not deleter.is_alive():
            self._delete(handles)
            return
        with self._deletes:
            while len(self._pending) >= MAX_PENDING_DELETES and not self._closing and deleter.is_alive():
                self._deletes.wait(1.0)
            if not self._pending:
                self._pending_since = time.monotonic()
            self._pending.extend(handles)
            self._deletes.notify_all()

    def _delete_pending(self) -> None:
        """The deleting thread: DeleteMessageBatch calls of 10 handles, or fewer once the oldest has waited
        DELETE_GATHER_SECONDS, until closed and emptied."""
        try:
            while True:
                with self._deletes:
                    while not self._closing and len(self._pending) < BATCH:
                        if not self._pending:
                            self._deletes.wait()
                            continue
                        left = self._pending_since + DELETE_GATHER_SECONDS - time.monotonic()
                        if left <= 0:
                            break
                        self._deletes.wait(left)
                    if not self._pending:
                        return
                    batch, self._pending = self._pending[:BATCH], self._pending[BATCH:]
                    self._pending_since = time.monotonic()
                    self._deletes.notify_all()  # room for the receiving thread
                self._delete(batch)
        except Exception:  # the messages come back after their visibility timeout: applied again, changing nothing
            log.exception("job events: deleting applied messages failed")

    def _delete(self, handles: list[str]) -> None:
        entries = [{"Id": str(i), "ReceiptHandle": handle} for i, handle in enumerate(handles)]
        try:
            if entries:
                self.client.call("sqs", "DeleteMessageBatch", QueueUrl=self.settings.queue_url, Entries=entries)
        except AwsError as error:  # they come back after the visibility timeout: applied again, changing nothing
            if not self._stopping.is_set():
                self._failed(error)

    def _close_deletes(self) -> None:
        with self._deletes:
            self._closing = True
            self._deletes.notify_all()

    def _apply(self, body: Any) -> None:
        """One message: a job event applied; anything else (hostile, malformed, another source) ignored."""
        try:
            event = json.loads(body) if isinstance(body, str) else None
        except ValueError:
            event = None
        if not isinstance(event, dict) or event.get("source") != SOURCE:
            log.debug("job events: a message that is not a SageMaker event, deleted")
            return
        detail = event.get("detail")
        if not isinstance(detail, dict):
            return
        if event.get("detail-type") == TRAINING_CHANGE:
            self.tracker.apply_event(detail)
        elif event.get("detail-type") == TUNING_CHANGE:
            self._apply_tuning(described_from_event(detail))

    def _apply_tuning(self, answer: dict[str, Any]) -> None:
        name = answer.get("HyperParameterTuningJobName")
        if not isinstance(name, str):
            return
        with self._lock:
            known = self._tuning.get(name)
            if known is None or _tuning_progress(answer) > _tuning_progress(known.answer):
                self._tuning[name] = TuningSighting(answer, self._clock())

    def _failed(self, error: AwsError) -> None:
        if isinstance(error, AccessDenied):
            self._give_up(f"the queue refuses us ({error}); grant {', '.join(sorted(set(QUEUE_ACTIONS.values())))}")
            return
        if isinstance(error, NotFound) or error.code in _MISSING_QUEUE:
            self._give_up(f"the queue {self.settings.queue_url} does not exist ({error})")
            return
        now = self._clock()
        if self._failing_since is None:
            self._failing_since = now
        if now - self._failing_since > self.settings.max_silence_seconds:
            self._give_up(f"the queue has failed for {now - self._failing_since:.0f} s ({error})")
            return
        log.info("job events: %s; trying again", error)
        if self._thread is not None:  # the thread's pause; a caller of poll_once decides its own
            self._stopping.wait(min(5.0, self.settings.wait_seconds or 1.0))

    def _sweep_caught(self) -> None:
        """A sweep found a change no event told: lost events happen, but silence this long means none come."""
        silent = self._clock() - self._last_heard
        if silent > self.settings.max_silence_seconds:
            self._give_up(f"no event for {silent:.0f} s while sweeps found jobs that changed")

    def _give_up(self, reason: str) -> None:
        with self._lock:
            if self.stopped_reason is not None:
                return
            self.stopped_reason = reason
        self.tracker.events_stopped(reason)


def _tuning_progress(answer: Mapping[str, Any]) -> tuple[int, float]:
    status = answer.get("HyperParameterTuningJobStatus")
    rank = {"InProgress": 0, "Stopping": 1}.get(status, 2) if isinstance(status, str) else 0
    modified = answer.get("LastModifiedTime")
    return rank, modified.timestamp() if isinstance(modified, datetime) else 0.0


def listen(client: SageMakerClient, settings: EventSettings) -> Callable[[StatusTracker], None]:
    """What `tracker_for(events=...)` calls on a tracker it makes: a listener thread started for it."""

    def start(tracker: StatusTracker) -> None:
        tracker.listener = EventListener(client, tracker, settings).start()

    return start
