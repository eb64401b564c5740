"""Job events applied by the status tracker and its listener (handlers/tracker.py, handlers/tracker_events.py), with a
scripted SageMaker and queue and fake clocks: every status, duplicates, events out of order, a lost event caught by
the slow sweep, and the fallback to normal sweeps (queue missing, refused, silent), said once.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import pytest

from handlers.errors import AccessDenied, AwsError, NotFound
from handlers.tracker import StatusTracker
from handlers.tracker_events import (
    BATCH,
    MAX_PENDING_DELETES,
    TRAINING_CHANGE,
    TUNING_CHANGE,
    EventListener,
    EventSettings,
)

NAME = "evt-job"
T0 = 1_800_000_000_000  # epoch ms
STEPS = ("Starting", "Downloading", "Training", "Uploading")


def detail(secondary: str, at_ms: int, *, name: str = NAME, **extra: Any) -> dict[str, Any]:
    """A training job's event detail as SageMaker sends it: epoch-millisecond strings, Tags as a map."""
    status = {"Completed": "Completed", "Failed": "Failed", "Stopped": "Stopped", "MaxRuntimeExceeded": "Stopped",
              "Stopping": "Stopping"}.get(secondary, "InProgress")
    order = [*STEPS, secondary] if secondary not in STEPS else list(STEPS[:STEPS.index(secondary) + 1])
    transitions = [{"Status": s, "StartTime": str(T0 + i * 1000), "StatusMessage": f"{s}..."}
                   for i, s in enumerate(order)]
    return {"TrainingJobName": name, "TrainingJobArn": f"arn:aws:sagemaker:us-east-1:1:training-job/{name}",
            "TrainingJobStatus": status, "SecondaryStatus": secondary, "CreationTime": str(T0),
            "LastModifiedTime": str(at_ms), "SecondaryStatusTransitions": transitions, "Tags": {"team": "ml"}, **extra}


@dataclass
class Clock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class ScriptedSageMaker:
    """What the tracker calls of a SageMakerClient: Describe and ListTrainingJobs, answered from `jobs`."""

    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)

    def following(self) -> ScriptedSageMaker:
        return self

    def describe_training_job(self, name: str) -> dict[str, Any]:
        self.calls.append("DescribeTrainingJob")
        if name not in self.jobs:
            raise NotFound("no such job")
        return dict(self.jobs[name])

    def list_training_jobs(self, **params: Any) -> dict[str, Any]:
        self.calls.append("ListTrainingJobs")
        keys = ("TrainingJobName", "TrainingJobStatus", "SecondaryStatus", "LastModifiedTime", "CreationTime")
        return {"TrainingJobSummaries": [{k: job[k] for k in keys if k in job} for job in self.jobs.values()]}


def described(secondary: str, at_ms: int, **extra: Any) -> dict[str, Any]:
    from handlers.tracker import described_from_event

    return described_from_event(detail(secondary, at_ms, **extra))


@pytest.fixture
def sm() -> ScriptedSageMaker:
    return ScriptedSageMaker()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def make_tracker(sm: ScriptedSageMaker, clock: Clock, interval: float = 1.0, safety: float = 60.0) -> StatusTracker:
    tracker = StatusTracker(sm, interval, clock=clock, wall_clock=lambda: clock.now + 1.8e9, census=False)  # type: ignore[arg-type]
    tracker.follow_events(safety)
    return tracker


COMPLETE = {"ModelArtifacts": {"S3ModelArtifacts": "s3://b/m.tar.gz"}, "FinalMetricDataList": [],
            "TrainingTimeInSeconds": 4, "BillableTimeInSeconds": 4}


@pytest.mark.parametrize(("secondary", "extra"), [
    ("Starting", {}), ("Downloading", {}), ("Training", {}), ("Uploading", {}), ("Stopping", {}),
    ("Completed", COMPLETE), ("Failed", {"FailureReason": "AlgorithmError: boom"}), ("Stopped", {}),
    ("MaxRuntimeExceeded", {}),
])
def test_each_status_an_event_tells_is_served_without_a_call(sm: ScriptedSageMaker, clock: Clock, secondary: str,
                                                             extra: dict[str, Any]) -> None:
    tracker = make_tracker(sm, clock)
    assert tracker.apply_event(detail(secondary, T0 + 5000, **extra))
    answer = tracker.describe(NAME)
    assert answer["SecondaryStatus"] == secondary and sm.calls == []
    assert answer["LastModifiedTime"] == datetime.fromtimestamp((T0 + 5000) / 1000, timezone.utc)
    assert "Tags" not in answer  # Describe has none
    assert answer.get("FailureReason") == extra.get("FailureReason")


def test_a_completed_event_without_the_outputs_figures_costs_one_describe(sm: ScriptedSageMaker, clock: Clock) -> None:
    """The event's schema has ModelArtifacts but not the training and billable seconds nor the final metrics."""
    tracker = make_tracker(sm, clock)
    tracker.apply_event(detail("Training", T0 + 2000))
    tracker.describe(NAME)
    sm.jobs[NAME] = {**described("Completed", T0 + 9000), **COMPLETE}
    tracker.apply_event(detail("Completed", T0 + 9000, ModelArtifacts=COMPLETE["ModelArtifacts"]))
    assert tracker.describe(NAME)["TrainingTimeInSeconds"] == 4
    assert tracker.describe(NAME)["TrainingTimeInSeconds"] == 4
    assert sm.calls == ["DescribeTrainingJob"]


def test_duplicates_and_older_events_never_move_a_job_backwards(sm: ScriptedSageMaker, clock: Clock) -> None:
    tracker = make_tracker(sm, clock)
    assert tracker.apply_event(detail("Training", T0 + 3000))
    assert not tracker.apply_event(detail("Training", T0 + 3000))  # the same event twice
    assert not tracker.apply_event(detail("Downloading", T0 + 2000))  # late
    assert tracker.describe(NAME)["SecondaryStatus"] == "Training"
    assert tracker.apply_event(detail("Failed", T0 + 4000, FailureReason="boom"))
    # an InProgress event stamped later still does not undo an end (a status is never left for an earlier one)
    assert not tracker.apply_event(detail("Uploading", T0 + 9000))
    assert tracker.describe(NAME)["TrainingJobStatus"] == "Failed"
    stats = tracker.stats
    assert (stats.events_applied, stats.events_ignored) == (2, 3) and sm.calls == []


def test_a_job_seen_by_events_before_anyone_asked_is_taken_from_them(sm: ScriptedSageMaker, clock: Clock) -> None:
    tracker = make_tracker(sm, clock)
    for i, step in enumerate(STEPS):
        tracker.apply_event(detail(step, T0 + i * 1000))
    tracker.apply_event(detail("Downloading", T0 + 1000))  # out of order: changes nothing
    assert tracker.describe(NAME)["SecondaryStatus"] == "Uploading" and sm.calls == []


def test_a_lost_event_is_caught_by_the_slow_sweep(sm: ScriptedSageMaker, clock: Clock) -> None:
    tracker = make_tracker(sm, clock, interval=1.0, safety=30.0)
    tracker.apply_event(detail("Training", T0 + 2000))
    sm.jobs[NAME] = described("Training", T0 + 2000)
    assert tracker.describe(NAME)["SecondaryStatus"] == "Training"
    sm.jobs[NAME] = described("Uploading", T0 + 6000)  # its event never comes
    clock.now += 10  # past the polling interval: events vouch, no sweep yet
    assert tracker.describe(NAME)["SecondaryStatus"] == "Training"
    assert "ListTrainingJobs" not in sm.calls
    clock.now += 25  # the safety net's sweep is due
    assert tracker.describe(NAME)["SecondaryStatus"] == "Uploading"
    assert tracker.stats.sweep_caught == 1 and "DescribeTrainingJob" not in sm.calls


# --- the listener ----------------------------------------------------------------------------------------------------


@dataclass
class ScriptedQueue:
    """What the listener calls of a SageMakerClient: ReceiveMessage and DeleteMessageBatch on one queue."""

    bodies: list[Any] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    error: AwsError | None = None

    def call(self, service: str, operation: str, **params: Any) -> dict[str, Any]:
        self.calls.append(f"{service}:{operation}")
        if self.error is not None:
            raise self.error
        if operation == "ReceiveMessage":
            assert params["MaxNumberOfMessages"] == 10 and params["WaitTimeSeconds"] == 20
            batch, self.bodies = self.bodies[:10], self.bodies[10:]
            return {"Messages": [{"ReceiptHandle": f"h{id(body)}-{i}", "Body": body} for i, body in enumerate(batch)]}
        self.deleted += [entry["ReceiptHandle"] for entry in params["Entries"]]
        return {"Successful": [{"Id": entry["Id"]} for entry in params["Entries"]]}


def event(kind: str, body: dict[str, Any]) -> str:
    return json.dumps({"version": "0", "source": "aws.sagemaker", "detail-type": kind, "detail": body})


def listener_for(tracker: StatusTracker, queue: ScriptedQueue, clock: Clock, silence: float = 100.0) -> EventListener:
    settings = EventSettings("https://sqs.us-east-1.amazonaws.com/1/q", sweep_interval_seconds=60,
                             max_silence_seconds=silence)
    return EventListener(queue, tracker, settings, clock=clock)  # type: ignore[arg-type]


def test_the_listener_applies_ten_a_call_and_deletes_every_message(sm: ScriptedSageMaker, clock: Clock) -> None:
    tracker = make_tracker(sm, clock)
    queue = ScriptedQueue([event(TRAINING_CHANGE, detail(step, T0 + i)) for i, step in enumerate(STEPS)])
    queue.bodies += [event(TRAINING_CHANGE, detail("Training", T0 + 2)), "not json", json.dumps([1]),
                     json.dumps({"source": "aws.ec2", "detail-type": TRAINING_CHANGE, "detail": {}}),
                     event(TRAINING_CHANGE, {"TrainingJobName": 5}), event(TUNING_CHANGE, "x"),  # type: ignore[arg-type]
                     event(TUNING_CHANGE, {"HyperParameterTuningJobName": "tune", "LastModifiedTime": str(T0),
                                           "HyperParameterTuningJobStatus": "InProgress"})]
    listener = listener_for(tracker, queue, clock)
    assert listener.poll_once() == 10 and listener.poll_once() == 1 and listener.poll_once() == 0
    assert len(queue.deleted) == 11
    assert queue.calls.count("sqs:DeleteMessageBatch") == 2
    assert tracker.describe(NAME)["SecondaryStatus"] == "Uploading" and sm.calls == []
    answer = listener.tuning_answer("tune", max_age=60)
    assert answer is not None and answer["HyperParameterTuningJobStatus"] == "InProgress"
    clock.now += 61
    assert listener.tuning_answer("tune", max_age=60) is None  # too old to stand for a Describe


@pytest.mark.parametrize("error", [
    AwsError("The specified queue does not exist.", code="AWS.SimpleQueueService.NonExistentQueue"),
    AwsError("gone", code="QueueDoesNotExist"),
    AccessDenied("not authorized to perform sqs:ReceiveMessage", code="AccessDenied"),
], ids=["missing", "missing-query", "refused"])
def test_a_missing_or_refused_queue_falls_back_to_normal_sweeps_said_once(
        sm: ScriptedSageMaker, clock: Clock, error: AwsError, caplog: pytest.LogCaptureFixture) -> None:
    tracker = make_tracker(sm, clock, interval=1.0, safety=60.0)
    assert tracker.sweep_interval_seconds == 60.0
    queue = ScriptedQueue(error=error)
    listener = listener_for(tracker, queue, clock)
    with caplog.at_level(logging.WARNING, logger="handlers.tracker"):
        for _ in range(3):
            listener.poll_once()
    assert not listener.active and queue.calls == ["sqs:ReceiveMessage"]
    assert tracker.sweep_interval_seconds == 1.0 and not tracker.follows_events
    lines = [r.getMessage() for r in caplog.records if r.name == "handlers.tracker"]
    assert len(lines) == 1 and "falls back" in lines[0]


def test_a_queue_that_stays_silent_while_sweeps_find_changes_is_given_up(sm: ScriptedSageMaker, clock: Clock,
                                                                           caplog: pytest.LogCaptureFixture) -> None:
    tracker = make_tracker(sm, clock, interval=1.0, safety=30.0)
    listener = listener_for(tracker, ScriptedQueue(), clock, silence=50.0)
    sm.jobs[NAME] = described("Training", T0 + 2000)
    tracker.describe(NAME)  # described: no event told it
    for step, at in (("Uploading", 6000), ("Completed", 9000)):
        sm.jobs[NAME] = {**described(step, T0 + at), **COMPLETE}
        clock.now += 31
        listener.poll_once()  # nothing comes
        tracker.describe(NAME)
    assert tracker.stats.sweep_caught >= 1
    assert not listener.active and tracker.sweep_interval_seconds == 1.0
    assert "no event for" in (listener.stopped_reason or "")


def test_a_queue_that_fails_a_while_is_retried_then_given_up(sm: ScriptedSageMaker, clock: Clock) -> None:
    tracker = make_tracker(sm, clock)
    queue = ScriptedQueue(error=AwsError("throttled", code="ThrottlingException"))
    listener = listener_for(tracker, queue, clock, silence=50.0)
    listener.poll_once()
    clock.now += 30
    listener.poll_once()
    assert listener.active
    clock.now += 30
    listener.poll_once()
    assert not listener.active and tracker.sweep_interval_seconds == 1.0


def test_hostile_messages_are_deleted_and_change_nothing(sm: ScriptedSageMaker, clock: Clock) -> None:
    tracker = make_tracker(sm, clock)
    deep = '{"a":' * 50_000 + "1" + "}" * 50_000
    hostile = [
        f'{{"source": "aws.sagemaker", "detail-type": "{TRAINING_CHANGE}", "detail": {deep}}}',
        event(TRAINING_CHANGE, {**detail("Training", T0), "LastModifiedTime": "nan", "CreationTime": "1e400"}),
        event(TRAINING_CHANGE, {**detail("Uploading", T0), "SecondaryStatusTransitions": "not a list"}),
        event(TRAINING_CHANGE, {"TrainingJobName": NAME, "TrainingJobStatus": ["InProgress"]}),
    ]
    queue = ScriptedQueue(hostile)
    listener = listener_for(tracker, queue, clock)
    assert listener.poll_once() == 4 and len(queue.deleted) == 4 and listener.active
    assert tracker.describe(NAME)["SecondaryStatus"] in ("Training", "Uploading") and sm.calls == []


@dataclass
class HeldDeletes(ScriptedQueue):
    """A queue whose DeleteMessageBatch waits until `release` is set; an empty receive waits a little, as a long
    poll would."""

    release: threading.Event = field(default_factory=threading.Event)

    def call(self, service: str, operation: str, **params: Any) -> dict[str, Any]:
        if operation == "DeleteMessageBatch":
            assert 1 <= len(params["Entries"]) <= 10
            self.release.wait(30)
        elif not self.bodies:
            time.sleep(0.01)
        return super().call(service, operation, **params)


def wait_for(condition: Callable[[], bool], seconds: float = 30.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    return condition()


def test_the_listener_receives_on_while_its_deletes_are_slow_then_deletes_them_all(sm: ScriptedSageMaker,
                                                                                  clock: Clock) -> None:
    tracker = make_tracker(sm, clock)
    bodies = [event(TRAINING_CHANGE, detail(step, T0 + i, name=f"job-{k}")) for k in range(9)
              for i, step in enumerate(STEPS)]
    queue = HeldDeletes(bodies)
    listener = listener_for(tracker, queue, clock).start()
    try:
        assert wait_for(lambda: listener.received == len(bodies))  # while no delete has been answered
        assert queue.deleted == []
        assert all(tracker.describe(f"job-{k}")["SecondaryStatus"] == "Uploading" for k in range(9))
        queue.release.set()
        assert wait_for(lambda: len(queue.deleted) == len(bodies))
        assert sorted(queue.deleted) == sorted(set(queue.deleted))
    finally:
        queue.release.set()
        listener.stop()
    assert not any(t.name.startswith("job-events") for t in threading.enumerate())
    assert sm.calls == []


def test_the_receiving_thread_waits_while_too_many_deletes_are_behind(sm: ScriptedSageMaker, clock: Clock) -> None:
    tracker = make_tracker(sm, clock)
    queue = HeldDeletes([event(TRAINING_CHANGE, detail("Training", T0 + i, name=f"job-{i}")) for i in range(300)])
    listener = listener_for(tracker, queue, clock).start()
    try:
        assert wait_for(lambda: listener.received >= MAX_PENDING_DELETES)
        time.sleep(0.5)
        assert listener.received <= MAX_PENDING_DELETES + 2 * BATCH  # a batch held in its delete, one handed over
        queue.release.set()
        assert wait_for(lambda: len(queue.deleted) == 300)
    finally:
        queue.release.set()
        listener.stop()


@dataclass
class Trickle(ScriptedQueue):
    """A queue whose receives bring three messages at most, as a long poll does while events come one by one."""

    def call(self, service: str, operation: str, **params: Any) -> dict[str, Any]:
        if operation == "ReceiveMessage":
            if not self.bodies:
                time.sleep(0.01)
            held, self.bodies = self.bodies[3:], self.bodies[:3]
            try:
                return super().call(service, operation, **params)
            finally:
                self.bodies = held
        return super().call(service, operation, **params)


def test_deletes_are_gathered_ten_at_a_time_when_receives_bring_fewer(sm: ScriptedSageMaker, clock: Clock) -> None:
    tracker = make_tracker(sm, clock)
    queue = Trickle([event(TRAINING_CHANGE, detail("Training", T0 + i, name=f"job-{i}")) for i in range(30)])
    listener = listener_for(tracker, queue, clock).start()
    try:
        assert wait_for(lambda: len(queue.deleted) == 30)
    finally:
        listener.stop()
    receives = [c for c in queue.calls if c == "sqs:ReceiveMessage"]
    deletes = queue.calls.count("sqs:DeleteMessageBatch")
    assert len(receives) >= 10 and deletes < 10  # ten receives of three; their deletes gathered
