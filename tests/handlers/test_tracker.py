"""The status tracker's edge cases, through the real client path: botocore, our retry policy, response parsing.

A scripted SageMaker answers ListTrainingJobs and DescribeTrainingJob from a handler registered first on
`before-send.sagemaker.<Operation>` (a moto server is the endpoint, so every other operation is real). The script
controls what the tracker cannot: page shapes (short and empty pages that still carry a NextToken), List lagging
behind Describe, the server's clock, deletions. Time is fake: the test moves it, nothing waits.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSResponse

from aws_faults import response
from client_setup import quick_client
from handlers.client import ClientSettings, SageMakerClient
from handlers.errors import NotFound
from handlers.status import Phase, phase_of
from handlers.tracker import StatusTracker, common_prefix, tracker_for
from trackers import clear_trackers

ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
ARN = "arn:aws:sagemaker:us-east-1:123456789012:training-job/{}"
T0 = 1_750_000_000.0  # the server's epoch at the start of every test
INTERVAL = 30.0


# --- the scripted SageMaker -----------------------------------------------------------------------------------------


def _response(request: AWSPreparedRequest, status: int, body: dict[str, Any], server_time: float) -> AWSResponse:
    answered = response(request, status, body)
    answered.headers["date"] = formatdate(server_time, usegmt=True)
    return answered


@dataclass
class Job:
    name: str
    created: float
    status: str = "InProgress"
    secondary: str = "Starting"
    modified: float = 0.0
    listed_from: float = 0.0  # List shows the job's current state only from this server time on (eventual consistency)
    transitions: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        out = {"TrainingJobName": self.name, "TrainingJobArn": ARN.format(self.name), "CreationTime": self.created,
               "LastModifiedTime": self.modified, "TrainingJobStatus": self.status, "SecondaryStatus": self.secondary}
        if self.status in ("Completed", "Failed", "Stopped"):
            out["TrainingEndTime"] = self.modified
        return out

    def describe(self) -> dict[str, Any]:
        out = {**self.summary(), "RoleArn": ROLE, "SecondaryStatusTransitions": self.transitions,
               "AlgorithmSpecification": {"TrainingImage": "img", "TrainingInputMode": "File"},
               "StoppingCondition": {"MaxRuntimeInSeconds": 3600}}
        if self.status == "Completed":
            out["ModelArtifacts"] = {"S3ModelArtifacts": f"s3://b/{self.name}/output/model.tar.gz"}
        if self.status == "Failed":
            out["FailureReason"] = "AlgorithmError: loss became NaN"
        return out


class ScriptedSageMaker:
    """Training jobs whose state the test sets; answers List and Describe as AWS does, with knobs for its caveats.

    `page_sizes`: rows per successive page of a listing (0 = an empty page that still has a NextToken); past the list
    the page size is MaxResults. `clock_skew`: how far the tracker's wall clock is ahead of the server's.
    """

    def __init__(self, client: SageMakerClient) -> None:
        self.now = T0
        self.jobs: dict[str, Job] = {}
        self.calls: Counter[str] = Counter()
        self.describes: Counter[str] = Counter()
        self.list_requests: list[dict[str, Any]] = []
        self.page_sizes: list[int] = []
        self.trailing_empty_page = False
        self.list_fault: Callable[[AWSPreparedRequest], AWSResponse | None] | None = None  # answers first, if set
        self._lock = threading.Lock()
        self.client = client
        events: Any = client.sagemaker.meta.events
        events.register_first("before-send.sagemaker.ListTrainingJobs", self._list)
        events.register_first("before-send.sagemaker.DescribeTrainingJob", self._describe)

    # the test's side
    def create(self, name: str, secondary: str = "Starting", *, lag: float = 0.0) -> Job:
        job = Job(name, self.now, modified=self.now, listed_from=self.now + lag)
        job.transitions.append({"Status": secondary, "StartTime": self.now, "StatusMessage": f"{secondary} message"})
        job.secondary = secondary
        self.jobs[name] = job
        return job

    def change(self, name: str, secondary: str, status: str = "InProgress", *, at: float | None = None,
               lag: float = 0.0) -> None:
        job = self.jobs[name]
        when = self.now if at is None else at
        if job.transitions:
            job.transitions[-1]["EndTime"] = when
        job.transitions.append({"Status": secondary, "StartTime": when, "StatusMessage": f"{secondary} message"})
        job.status, job.secondary, job.modified, job.listed_from = status, secondary, when, when + lag

    def advance(self, seconds: float) -> None:
        self.now += seconds

    # the wire's side
    def _list(self, request: AWSPreparedRequest, **_: Any) -> AWSResponse:
        params = json.loads(request.body or b"{}")
        with self._lock:
            self.calls["ListTrainingJobs"] += 1
            faulted = self.list_fault(request) if self.list_fault else None
            if faulted is not None:
                return faulted
            self.list_requests.append(params)
            rows = [job for job in self.jobs.values() if self.now >= job.listed_from and self._matches(job, params)]
            rows.sort(key=lambda job: (job.created, job.name))
            offset = int(params.get("NextToken", "0").split(":")[0])
            page_number = int(params.get("NextToken", "0:0").split(":")[1])
            size = self.page_sizes[page_number] if page_number < len(self.page_sizes) else params["MaxResults"]
            page = rows[offset : offset + size]
            body: dict[str, Any] = {"TrainingJobSummaries": [job.summary() for job in page]}
            end = offset + len(page)
            if end < len(rows) or (self.trailing_empty_page and page):
                body["NextToken"] = f"{end}:{page_number + 1}"
            return _response(request, 200, body, self.now)

    @staticmethod
    def _matches(job: Job, params: dict[str, Any]) -> bool:
        contains = params.get("NameContains")
        if contains and contains.lower() not in job.name.lower():
            return False
        if params.get("StatusEquals") and job.status != params["StatusEquals"]:
            return False
        after = params.get("LastModifiedTimeAfter")
        return after is None or job.modified > float(after)

    def _describe(self, request: AWSPreparedRequest, **_: Any) -> AWSResponse:
        name = json.loads(request.body)["TrainingJobName"]
        with self._lock:
            self.calls["DescribeTrainingJob"] += 1
            self.describes[name] += 1
            job = self.jobs.get(name)
            if job is None:
                error = {"__type": "ValidationException", "message": "Requested resource not found."}
                return _response(request, 400, error, self.now)
            return _response(request, 200, job.describe(), self.now)


# --- fixtures (session: tests/conftest.py) --------------------------------------------------------------------------


@pytest.fixture
def client(endpoint: str, session: boto3.Session) -> Iterator[SageMakerClient]:
    with quick_client(endpoint, session, attempts=2) as made:
        yield made


@pytest.fixture
def sm(client: SageMakerClient) -> ScriptedSageMaker:
    return ScriptedSageMaker(client)


MakeTracker = Callable[..., StatusTracker]


@pytest.fixture
def make_tracker(client: SageMakerClient, sm: ScriptedSageMaker) -> MakeTracker:
    """A tracker on the scripted server's time: monotonic = seconds since T0, wall = server time + `skew`."""

    def make(interval: float = INTERVAL, *, skew: float = 0.0, **kwargs: Any) -> StatusTracker:
        kwargs.setdefault("census", False)
        return StatusTracker(client, interval, clock=lambda: sm.now - T0, wall_clock=lambda: sm.now + skew, **kwargs)

    return make


def sm_client(sm: ScriptedSageMaker) -> SageMakerClient:
    return sm.client


def window_of(request: dict[str, Any]) -> float:
    return float(request["LastModifiedTimeAfter"])


def poll_all(tracker: StatusTracker, names: list[str]) -> dict[str, dict[str, Any]]:
    return {name: tracker.describe(name) for name in names}


def two_jobs_gone_training(sm: ScriptedSageMaker, make_tracker: MakeTracker) -> StatusTracker:
    """A tracker that has seen job-1 and job-2 Downloading; 5 s later both moved on to Training, unseen yet."""
    sm.create("job-1", "Downloading")
    sm.create("job-2", "Downloading")
    tracker = make_tracker()
    poll_all(tracker, ["job-1", "job-2"])
    sm.advance(5)
    sm.change("job-1", "Training")
    sm.change("job-2", "Training")
    return tracker


# --- cold start -----------------------------------------------------------------------------------------------------


def test_a_job_never_seen_is_described_then_served_from_the_cache(sm: ScriptedSageMaker, make_tracker: MakeTracker):
    sm.create("job-1")
    tracker = make_tracker()
    answer = tracker.describe("job-1")
    assert answer["TrainingJobStatus"] == "InProgress" and answer["SecondaryStatus"] == "Starting"
    assert sm.describes["job-1"] == 1
    sm.advance(5)
    assert tracker.describe("job-1") is answer  # the cached dict itself: no copy, no call
    assert sm.calls == Counter({"DescribeTrainingJob": 1})
    assert tracker.stats.hits == 1 and tracker.stats.describes == 1


def test_a_new_tracker_after_a_restart_describes_again_and_is_right(sm: ScriptedSageMaker, make_tracker: MakeTracker):
    sm.create("job-1")
    first = make_tracker()
    first.describe("job-1")
    sm.advance(10)
    sm.change("job-1", "Training")
    restarted = make_tracker()  # a restarted engine: nothing cached, no sweep history
    assert restarted.describe("job-1")["SecondaryStatus"] == "Training"
    assert sm.describes["job-1"] == 2


def test_cold_start_census_lists_in_progress_jobs_once_instead_of_describing_each(
    sm: ScriptedSageMaker, make_tracker: MakeTracker
):
    names = [f"run-{i:03d}" for i in range(250)]
    for name in names:
        sm.create(name, "Downloading")
    sm.create("done-1")
    sm.change("done-1", "Completed", "Completed")
    tracker = make_tracker(census=True)
    answers = poll_all(tracker, names)
    assert sm.calls["DescribeTrainingJob"] == 0
    assert sm.calls["ListTrainingJobs"] == 3  # 250 InProgress jobs, 100 a page
    assert all(r["StatusEquals"] == "InProgress" for r in sm.list_requests)
    assert {a["SecondaryStatus"] for a in answers.values()} == {"Downloading"}
    assert phase_of(answers["run-000"]).phase == Phase.INITIALIZING
    # a terminal job is not in the census: its outputs need a Describe
    assert tracker.describe("done-1")["ModelArtifacts"]["S3ModelArtifacts"].endswith("model.tar.gz")
    assert sm.describes["done-1"] == 1
    assert tracker.stats.census_jobs == 250
    # the census runs once: a job created later is described
    sm.create("run-late")
    tracker.describe("run-late")
    assert sm.describes["run-late"] == 1 and sm.calls["ListTrainingJobs"] == 3


def test_a_job_this_process_made_is_served_without_a_describe_then_followed_by_sweeps(
        sm: ScriptedSageMaker, make_tracker: MakeTracker):
    sm.create("job-1")
    tracker = make_tracker(census=True)
    tracker.created("job-1", ARN.format("job-1"))
    answer = tracker.describe("job-1")
    assert (answer["TrainingJobStatus"], answer["SecondaryStatus"]) == ("InProgress", "Starting")
    assert sm.calls == Counter() and tracker.stats.created == 1  # no Describe, and no census for it either
    sm.advance(5)
    sm.change("job-1", "Training")
    sm.advance(INTERVAL)
    assert tracker.describe("job-1")["SecondaryStatus"] == "Training"
    assert sm.calls == Counter({"ListTrainingJobs": 1})


def test_a_made_job_that_a_sweep_saw_end_before_anyone_asked_is_described(sm: ScriptedSageMaker,
                                                                          make_tracker: MakeTracker):
    sm.create("job-1")
    tracker = make_tracker()
    tracker.describe("job-1")  # tracked: the sweeps run (NameContains "job-1")
    sm.create("job-10")
    tracker.created("job-10", ARN.format("job-10"))
    sm.advance(2)
    sm.change("job-10", "Failed", "Failed")
    sm.advance(INTERVAL)
    tracker.describe("job-1")  # the sweep lists job-10 Failed: what was known of it at its create is over
    answer = tracker.describe("job-10")
    assert answer["TrainingJobStatus"] == "Failed" and answer["FailureReason"]
    assert sm.describes == Counter({"job-1": 1, "job-10": 1})


@pytest.mark.parametrize("option", ["describe_changes", "describe_secondary_changes"])
def test_with_messages_a_made_job_is_described_for_its_status_message(sm: ScriptedSageMaker,
                                                                      make_tracker: MakeTracker, option: str):
    sm.create("job-1")
    tracker = make_tracker(**{option: True})
    tracker.created("job-1", ARN.format("job-1"))
    assert phase_of(tracker.describe("job-1")).message == "Starting: Starting message"
    assert sm.describes == Counter({"job-1": 1}) and tracker.stats.created == 0


def test_a_job_not_yet_visible_raises_not_found_and_is_not_tracked(sm: ScriptedSageMaker, make_tracker: MakeTracker):
    tracker = make_tracker()
    with pytest.raises(NotFound):
        tracker.describe("job-1")
    assert tracker.stats.tracked == 0
    sm.create("job-1")
    assert tracker.describe("job-1")["TrainingJobName"] == "job-1"


# --- sweeps ---------------------------------------------------------------------------------------------------------


def test_unchanged_jobs_are_never_described_again(sm: ScriptedSageMaker, make_tracker: MakeTracker):
    names = [f"exp-{i:03d}" for i in range(150)]
    for name in names:
        sm.create(name, "Training")
    sm.advance(60)  # created a while ago: the first sweep's window (from the answers, minus the overlap) is empty
    tracker = make_tracker()
    poll_all(tracker, names)
    for _ in range(20):  # 10 minutes of polling every 30 s
        sm.advance(INTERVAL)
        answers = poll_all(tracker, names)
    assert all(a["SecondaryStatus"] == "Training" for a in answers.values())
    assert set(sm.describes.values()) == {1}
    assert tracker.stats.sweeps == 20
    assert sm.calls["ListTrainingJobs"] == 20  # nothing changed: one (empty) page per sweep


def test_a_sweep_updates_changed_jobs_from_summaries_and_describes_only_terminal_ones(
    sm: ScriptedSageMaker, make_tracker: MakeTracker
):
    for name in ("job-a", "job-b", "job-c"):
        sm.create(name, "Downloading")
    tracker = make_tracker()
    poll_all(tracker, ["job-a", "job-b", "job-c"])
    sm.advance(10)
    sm.change("job-a", "Training")
    sm.change("job-b", "Completed", "Completed")
    sm.advance(INTERVAL)
    a, b, c = poll_all(tracker, ["job-a", "job-b", "job-c"]).values()
    assert a["SecondaryStatus"] == "Training" and a["LastModifiedTime"].timestamp() == T0 + 10
    assert phase_of(a).message == "Training"  # not the previous status's message
    assert b["TrainingJobStatus"] == "Completed" and "ModelArtifacts" in b
    assert c["SecondaryStatus"] == "Downloading"
    assert sm.describes == Counter({"job-a": 1, "job-b": 2, "job-c": 1})
    # a terminal answer is final: served from the cache from now on, without sweeping for it
    sm.advance(INTERVAL * 3)
    assert tracker.describe("job-b") is b
    assert sm.describes["job-b"] == 2


def test_a_job_changing_twice_between_sweeps(sm: ScriptedSageMaker, make_tracker: MakeTracker):
    tracker = two_jobs_gone_training(sm, make_tracker)
    sm.advance(5)
    sm.change("job-1", "Uploading")
    sm.change("job-2", "Uploading")
    sm.advance(5)
    sm.change("job-2", "Completed", "Completed")
    sm.advance(INTERVAL)
    one, two = poll_all(tracker, ["job-1", "job-2"]).values()
    assert one["SecondaryStatus"] == "Uploading" and one["LastModifiedTime"].timestamp() == T0 + 10
    assert [t["Status"] for t in one["SecondaryStatusTransitions"]] == ["Downloading", "Uploading"]
    assert two["TrainingJobStatus"] == "Completed" and phase_of(two).phase == Phase.SUCCEEDED
    assert sm.describes == Counter({"job-1": 1, "job-2": 2})


def test_the_window_starts_at_the_previous_sweep_minus_the_overlap_in_server_time(
    sm: ScriptedSageMaker, make_tracker: MakeTracker
):
    sm.create("job-1", "Training")
    # The tracker's clock is 40 s ahead of the server's: its windows must follow the server's Date header.
    tracker = make_tracker(skew=40.0, overlap_seconds=5.0)
    tracker.describe("job-1")  # T0: the Describe's Date header teaches the tracker the server's clock
    sm.advance(INTERVAL)
    tracker.describe("job-1")  # first sweep, at T0 + 30: covers from the job's answer (T0) minus the overlap
    first_sweep_start = sm.now
    sm.advance(INTERVAL)
    tracker.describe("job-1")  # second sweep: from the first sweep's start minus the overlap
    windows = [window_of(r) for r in sm.list_requests]
    assert windows[0] == pytest.approx(T0 - 5, abs=1.0)
    assert windows[1] == pytest.approx(first_sweep_start - 5, abs=1.0)
    assert windows[1] <= first_sweep_start - 5  # never late: the estimate errs early


def _late_change_seen(sm: ScriptedSageMaker, tracker: StatusTracker) -> str:
    """A change stamped 1 s before a sweep that List only shows 3 s later: what the sweep after that one says."""
    sm.create("job-1", "Downloading")
    sm.advance(60)
    tracker.describe("job-1")
    sm.advance(INTERVAL - 1)
    sm.change("job-1", "Training", lag=3.0)
    sm.advance(1)
    assert tracker.describe("job-1")["SecondaryStatus"] == "Downloading"  # sweep 1 cannot see it yet
    sm.advance(INTERVAL)
    seen = str(tracker.describe("job-1")["SecondaryStatus"])
    assert sm.describes["job-1"] == 1
    return seen


def test_the_overlap_catches_a_change_that_reached_list_after_the_sweep_that_should_have_seen_it(
    sm: ScriptedSageMaker, make_tracker: MakeTracker
):
    # sweep 2 lists from sweep 1's start minus 5 s: the change, stamped 1 s before sweep 1, is inside
    assert _late_change_seen(sm, make_tracker(overlap_seconds=5.0)) == "Training"


def test_without_an_overlap_that_change_would_be_missed(sm: ScriptedSageMaker, make_tracker: MakeTracker):
    """The control experiment of the test above: it is the overlap that catches the change."""
    assert _late_change_seen(sm, make_tracker(overlap_seconds=0.0)) == "Downloading"


def test_short_and_empty_pages_with_a_next_token_are_followed_to_the_end(
    sm: ScriptedSageMaker, make_tracker: MakeTracker
):
    names = [f"job-{i:02d}" for i in range(12)]
    for name in names:
        sm.create(name, "Downloading")
    tracker = make_tracker()
    poll_all(tracker, names)
    sm.advance(5)
    for name in names:
        sm.change(name, "Training")
    sm.page_sizes = [3, 0, 1, 0, 0, 2]  # then MaxResults
    sm.trailing_empty_page = True  # and one more empty page after the last row
    sm.advance(INTERVAL)
    answers = poll_all(tracker, names)
    assert {a["SecondaryStatus"] for a in answers.values()} == {"Training"}
    assert sm.calls["ListTrainingJobs"] == 8
    assert [r.get("NextToken") is None for r in sm.list_requests] == [True] + [False] * 7
    assert all(r["MaxResults"] == 100 and r["SortBy"] == "CreationTime" for r in sm.list_requests)
    assert sm.calls["DescribeTrainingJob"] == 12


def test_name_contains_is_the_tracked_jobs_common_prefix(sm: ScriptedSageMaker, make_tracker: MakeTracker):
    for name in ("team-a-nightly-1", "team-a-nightly-2", "team-a-adhoc", "team-b-other", "zz-someone-else"):
        sm.create(name, "Training")
    tracker = make_tracker()
    poll_all(tracker, ["team-a-nightly-1", "team-a-nightly-2"])
    sm.advance(INTERVAL)
    tracker.describe("team-a-nightly-1")
    assert sm.list_requests[-1]["NameContains"] == "team-a-nightly-"
    tracker.describe("team-a-adhoc")
    sm.advance(INTERVAL)
    tracker.describe("team-a-adhoc")
    assert sm.list_requests[-1]["NameContains"] == "team-a-"
    tracker.describe("zz-someone-else")
    sm.advance(INTERVAL)
    tracker.describe("zz-someone-else")
    assert "NameContains" not in sm.list_requests[-1]  # nothing shared: no filter


def test_common_prefix() -> None:
    assert common_prefix([]) == ""
    assert common_prefix(["abc"]) == "abc"
    assert common_prefix(["p-d-x-1", "p-d-y-2", "p-d-x-3"]) == "p-d-"
    assert common_prefix(["a1", "b1"]) == ""


def test_finished_jobs_leave_the_sweep_and_an_idle_tracker_makes_no_calls(
    sm: ScriptedSageMaker, make_tracker: MakeTracker
):
    sm.create("job-1")
    sm.change("job-1", "Completed", "Completed")
    tracker = make_tracker()
    tracker.describe("job-1")
    for _ in range(5):
        sm.advance(INTERVAL)
        tracker.describe("job-1")
    assert sm.calls == Counter({"DescribeTrainingJob": 1})  # nothing left to sweep for


# --- jobs the sweep cannot vouch for --------------------------------------------------------------------------------


def test_a_job_list_does_not_show_falls_back_to_at_most_one_describe_per_interval(
    sm: ScriptedSageMaker, make_tracker: MakeTracker
):
    sm.create("job-1", "Training")
    sm.create("job-hidden", "Starting", lag=10_000.0)  # Describe sees it, List will not for hours
    tracker = make_tracker()
    seen: list[str] = []
    for step in range(36):  # 6 minutes, polled every 10 s; the hidden job changes every 10 s
        poll_all(tracker, ["job-1", "job-hidden"])
        seen.append(tracker.describe("job-hidden")["SecondaryStatus"])
        sm.advance(INTERVAL / 3)
        sm.change("job-hidden", "Training" if step % 2 else "Downloading", lag=10_000.0)
    assert sm.describes["job-1"] == 1
    # never vouched for by a sweep (its changes are inside every window, yet never listed): described again once
    # its answer is older than the interval plus a margin, so at most once per interval
    assert 5 <= sm.describes["job-hidden"] <= 1 + 360 / INTERVAL
    assert tracker.stats.fallbacks == sm.describes["job-hidden"] - 1


def test_a_job_list_shows_late_is_described_once_and_then_vouched_for(
    sm: ScriptedSageMaker, make_tracker: MakeTracker
):
    sm.create("job-new", "Starting", lag=40.0)  # just created: List lags behind Describe for 40 s
    tracker = make_tracker()
    for _ in range(36):
        tracker.describe("job-new")
        sm.advance(INTERVAL / 3)
    assert sm.describes["job-new"] == 2 and tracker.stats.fallbacks == 1


def test_a_job_deleted_from_sagemaker_raises_not_found_and_is_dropped(sm: ScriptedSageMaker, make_tracker: MakeTracker):
    sm.create("job-1", "Training")
    sm.create("job-2", "Training")
    tracker = make_tracker()
    poll_all(tracker, ["job-1", "job-2"])
    sm.advance(5)
    sm.change("job-1", "Deleting", "Deleting")
    sm.advance(INTERVAL)
    tracker.describe("job-2")  # the sweep sees job-1 on its way out: the next describe of it asks SageMaker...
    del sm.jobs["job-1"]  # ...which says it is gone
    with pytest.raises(NotFound):
        tracker.describe("job-1")
    assert tracker.stats.tracked == 1  # job-2 alone
    with pytest.raises(NotFound):  # and stays gone: asked again, not served from a cache
        tracker.describe("job-1")
    assert sm.describes["job-1"] == 3


def test_a_job_that_vanished_without_a_trace_is_found_gone_by_the_fallback(
    sm: ScriptedSageMaker, make_tracker: MakeTracker
):
    sm.create("job-1", "Training")
    tracker = make_tracker()
    tracker.describe("job-1")
    del sm.jobs["job-1"]  # List no longer shows it: its last change (creation) is inside the next window
    sm.advance(INTERVAL)
    tracker.describe("job-1")  # sweep 1 cannot vouch for it, but the answer is still young enough
    sm.advance(INTERVAL)
    with pytest.raises(NotFound):
        tracker.describe("job-1")
    assert tracker.stats.tracked == 0


# --- options, failures, sharing -------------------------------------------------------------------------------------


def test_describe_changes_describes_again_after_every_change(sm: ScriptedSageMaker, make_tracker: MakeTracker):
    sm.create("job-1", "Downloading")
    tracker = make_tracker(describe_changes=True)
    tracker.describe("job-1")
    sm.advance(5)
    sm.change("job-1", "Training")
    sm.advance(INTERVAL)
    answer = tracker.describe("job-1")
    assert phase_of(answer).message == "Training: Training message"  # the real StatusMessage
    assert sm.describes["job-1"] == 2


def test_describe_secondary_changes_describes_once_per_new_status_not_per_change(sm: ScriptedSageMaker,
                                                                               make_tracker: MakeTracker):
    sm.create("job-1", "Downloading")
    tracker = make_tracker(describe_secondary_changes=True)
    assert phase_of(tracker.describe("job-1")).message == "Downloading: Downloading message"
    sm.advance(5)
    sm.change("job-1", "Training")
    sm.advance(INTERVAL)
    answer = tracker.describe("job-1")
    assert phase_of(answer).message == "Training: Training message"  # the real StatusMessage, not the bare status
    assert sm.describes["job-1"] == 2
    sm.jobs["job-1"].modified = sm.now  # changed again, same secondary status: the summary is enough
    sm.advance(INTERVAL)
    for _ in range(3):
        assert phase_of(tracker.describe("job-1")).message == "Training: Training message"
        sm.advance(INTERVAL)
    assert sm.describes["job-1"] == 2


@pytest.mark.parametrize("option", ["describe_secondary_changes", "describe_changes"])
def test_with_messages_a_job_first_seen_by_the_census_or_a_sweep_is_described_for_its_status_message(
        sm: ScriptedSageMaker, make_tracker: MakeTracker, option: str):
    """A job already in Training when first asked for (a real local job gets there in a blink): the census's or a
    sweep's summary has its status but not the words `run` shows; with messages on, the first answer has them."""
    sm.create("job-1", "Training")
    tracker = make_tracker(census=True, **{option: True})
    assert phase_of(tracker.describe("job-1")).message == "Training: Training message"
    assert sm.calls == Counter({"DescribeTrainingJob": 1})  # no census: it would list summaries only
    sm.advance(5)
    sm.create("job-10", "Training")  # listed by the next sweep (NameContains "job-1") before anyone asks
    sm.advance(INTERVAL)
    tracker.describe("job-1")
    assert sm.calls["ListTrainingJobs"] == 1
    assert phase_of(tracker.describe("job-10")).message == "Training: Training message"
    assert sm.describes == Counter({"job-1": 1, "job-10": 1})


def test_without_messages_a_job_the_census_listed_is_served_from_its_summary(sm: ScriptedSageMaker,
                                                                            make_tracker: MakeTracker):
    sm.create("job-1", "Training")
    tracker = make_tracker(census=True)
    assert phase_of(tracker.describe("job-1")).message == "Training"  # the bare status, at no Describe
    assert sm.calls == Counter({"ListTrainingJobs": 1})


def test_the_shared_tracker_keeps_messages_on_once_a_user_asks(client: SageMakerClient):
    clear_trackers()
    try:
        assert not tracker_for(client, INTERVAL).describe_secondary_changes
        assert tracker_for(client, INTERVAL, messages=True).describe_secondary_changes
        assert tracker_for(client, INTERVAL).describe_secondary_changes
    finally:
        clear_trackers()


def test_a_zero_interval_turns_tracking_off(sm: ScriptedSageMaker, make_tracker: MakeTracker):
    sm.create("job-1")
    tracker = make_tracker(0)
    for _ in range(3):
        tracker.describe("job-1")
    assert sm.calls == Counter({"DescribeTrainingJob": 3})


def test_a_failing_sweep_degrades_to_describes_and_recovers(sm: ScriptedSageMaker, make_tracker: MakeTracker):
    names = ["job-1", "job-2"]
    for name in names:
        sm.create(name, "Training")
    tracker = make_tracker()
    poll_all(tracker, names)
    throttled = {"on": True}

    def throttle(request: AWSPreparedRequest) -> AWSResponse | None:
        if throttled["on"]:
            return _response(request, 400, {"__type": "ThrottlingException", "message": "Rate exceeded"}, sm.now)
        return None

    sm.list_fault = throttle
    sm.advance(INTERVAL)
    poll_all(tracker, names)  # the sweep fails after its retries; the answers are still young enough
    assert tracker.stats.sweep_failures == 1 and sm.calls["DescribeTrainingJob"] == 2
    sm.advance(INTERVAL)
    poll_all(tracker, names)  # fails again; now the answers are too old: described
    assert tracker.stats.sweep_failures == 2 and sm.calls["DescribeTrainingJob"] == 4
    throttled["on"] = False
    sm.advance(5)
    sm.change("job-1", "Uploading")
    sm.advance(INTERVAL)
    answers = poll_all(tracker, names)
    assert answers["job-1"]["SecondaryStatus"] == "Uploading"
    assert sm.calls["DescribeTrainingJob"] == 4 and tracker.stats.sweeps == 1


def test_list_not_allowed_turns_sweeps_off_for_good(sm: ScriptedSageMaker, make_tracker: MakeTracker):
    sm.create("job-1", "Training")
    tracker = make_tracker(census=True)

    sm.list_fault = lambda request: _response(
        request, 400, {"__type": "AccessDeniedException", "message": "not authorized"}, sm.now
    )
    tracker.describe("job-1")  # the census is refused: the job is described
    for _ in range(4):
        sm.advance(INTERVAL)
        assert tracker.describe("job-1")["SecondaryStatus"] == "Training"
    assert sm.calls["ListTrainingJobs"] == 1
    assert 2 <= sm.describes["job-1"] <= 5


def test_forget_stops_tracking(sm: ScriptedSageMaker, make_tracker: MakeTracker):
    sm.create("job-1")
    tracker = make_tracker()
    tracker.describe("job-1")
    tracker.forget("job-1")
    tracker.forget("never-seen")
    assert tracker.stats.tracked == 0
    sm.advance(INTERVAL)
    tracker.describe("job-1")
    assert sm.describes["job-1"] == 2


def test_sweeps_start_a_little_early_so_a_poll_every_interval_sees_a_fresh_sweep(
    sm: ScriptedSageMaker, make_tracker: MakeTracker
):
    sm.create("job-1", "Training")
    ticks = [0.0]

    def ticking() -> float:  # every reading of the clock takes 1 ms, as real work would
        ticks[0] += 0.001
        return sm.now - T0 + ticks[0]

    tracker = StatusTracker(sm_client(sm), INTERVAL, clock=ticking, wall_clock=lambda: sm.now, census=False)
    tracker.describe("job-1")
    for _ in range(10):
        sm.advance(INTERVAL)  # a poll every interval finds a sweep due every time, not every other time
        tracker.describe("job-1")
    assert tracker.stats.sweeps == 10


def hold_lists(sm: ScriptedSageMaker) -> tuple[threading.Event, threading.Event]:
    """ListTrainingJobs held until the test sets the second event; the first is set once one is held."""
    in_list, release = threading.Event(), threading.Event()

    def slow(request: AWSPreparedRequest) -> None:
        in_list.set()
        release.wait(10)

    sm.list_fault = slow
    return in_list, release


def test_a_caller_arriving_during_a_sweep_waits_for_it_rather_than_serve_what_it_corrects(
    sm: ScriptedSageMaker, make_tracker: MakeTracker
):
    tracker = two_jobs_gone_training(sm, make_tracker)
    sm.advance(INTERVAL)
    in_list, release = hold_lists(sm)
    answers: dict[str, str] = {}

    def get(name: str) -> None:
        answers[name] = tracker.describe(name)["SecondaryStatus"]

    sweeper = threading.Thread(target=get, args=("job-1",))
    sweeper.start()
    assert in_list.wait(10)
    waiter = threading.Thread(target=get, args=("job-2",))
    waiter.start()
    waiter.join(timeout=0.3)
    assert waiter.is_alive()  # waiting for the sweep, not answering "Downloading"
    release.set()
    sweeper.join(10)
    waiter.join(10)
    assert answers == {"job-1": "Training", "job-2": "Training"}
    assert sm.calls["DescribeTrainingJob"] == 2


def test_with_events_a_caller_arriving_during_the_safety_sweep_is_served_at_once(sm: ScriptedSageMaker,
                                                                              make_tracker: MakeTracker):
    """The events keep the answers fresh: a slow safety sweep (thousands of jobs' pages) holds only its own caller."""
    tracker = two_jobs_gone_training(sm, make_tracker)
    tracker.follow_events(INTERVAL)
    for name in ("job-1", "job-2"):
        tracker.apply_event({**sm.jobs[name].describe(), "LastModifiedTime": str(int(sm.now * 1000))})
    sm.advance(INTERVAL)
    in_list, release = hold_lists(sm)
    sweeper = threading.Thread(target=tracker.describe, args=("job-1",))
    sweeper.start()
    try:
        assert in_list.wait(10)
        assert tracker.describe("job-2")["SecondaryStatus"] == "Training"  # while the sweep is still listing
        assert sweeper.is_alive()
    finally:
        release.set()
        sweeper.join(10)
    assert sm.calls["DescribeTrainingJob"] == 2  # the two first describes, none since


def test_many_threads_share_one_sweep_and_one_describe_per_job(sm: ScriptedSageMaker, make_tracker: MakeTracker):
    names = [f"job-{i:03d}" for i in range(120)]
    for name in names:
        sm.create(name, "Downloading")
    tracker = make_tracker()
    errors: list[BaseException] = []
    seen: dict[str, set[str]] = {name: set() for name in names}
    barrier = threading.Barrier(12)

    def worker(offset: int) -> None:
        try:
            for round_ in range(6):
                barrier.wait()
                for i in range(len(names)):
                    name = names[(i + offset * 10) % len(names)]
                    seen[name].add(tracker.describe(name)["SecondaryStatus"])
                barrier.wait()
                if offset == 0:  # one thread moves the world between rounds
                    if round_ == 2:
                        for name in names[::2]:
                            sm.change(name, "Training")
                    sm.advance(INTERVAL)
        except BaseException as error:  # reported below
            errors.append(error)
            barrier.abort()

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    assert set(sm.describes.values()) == {1} and len(sm.describes) == len(names)  # no duplicate Describe
    assert tracker.stats.sweeps == 5  # rounds 2..6, one sweep each, however many threads found it due
    assert all(seen[name] == {"Downloading", "Training"} for name in names[::2])
    assert all(seen[name] == {"Downloading"} for name in names[1::2])


def test_tracker_for_shares_one_tracker_per_identity_region_and_endpoint(endpoint: str, session: boto3.Session):
    clear_trackers()
    try:
        def make(region: str = "us-east-1", url: str = endpoint) -> SageMakerClient:
            settings = ClientSettings(region=region, endpoint_url=url, local_credentials=True)
            return SageMakerClient(settings, session=session)

        first, second = make(), make()
        made: list[StatusTracker] = []
        threads = [threading.Thread(target=lambda: made.append(tracker_for(first, 30))) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len({id(t) for t in made}) == 1
        shared = made[0]
        assert tracker_for(second, 30) is shared  # another plugin instance, same identity: the same tracker
        assert tracker_for(make("eu-west-1"), 30) is not shared
        assert tracker_for(make(url=endpoint + "/"), 30) is not shared
        assert tracker_for(second, 10) is shared and shared.sweep_interval_seconds == 10
        assert tracker_for(second, 60).sweep_interval_seconds == 10
        off = tracker_for(second, 0)  # tracking off: a pass-through of its own, the shared one untouched
        assert off is not shared and off.sweep_interval_seconds == 0 and shared.sweep_interval_seconds == 10
    finally:
        clear_trackers()


def test_against_moto_itself(client: SageMakerClient) -> None:
    """The real wire end to end: moto's jobs (Completed at once), its NotFound, its ListTrainingJobs."""
    request = {
        "TrainingJobName": "moto-job-1",
        "AlgorithmSpecification": {"TrainingImage": "img", "TrainingInputMode": "File"},
        "RoleArn": ROLE,
        "OutputDataConfig": {"S3OutputPath": "s3://b/o"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
        "StoppingCondition": {"MaxRuntimeInSeconds": 100},
    }
    client.create_training_job(request)
    tracker = StatusTracker(client, 1.0, census=True)
    answer = tracker.describe("moto-job-1")
    assert answer["TrainingJobStatus"] == "Completed" and tracker.stats.describes == 1
    assert tracker.describe("moto-job-1") is answer
    with pytest.raises(NotFound):
        tracker.describe("moto-no-such-job")
