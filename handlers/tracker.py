"""Track many training jobs with periodic ListTrainingJobs sweeps instead of one DescribeTrainingJob per job per poll.

SageMaker's control-plane rates are low and not adjustable: polling N jobs with Describe costs N calls per interval and
gets throttled at a few hundred jobs. A sweep asks "what changed since the last sweep?" (`LastModifiedTimeAfter`, with
`NameContains` narrowing it to our jobs), one call per 100 changed jobs, and an unchanged job costs nothing.

How an answer is kept right:
- A job the tracker knows nothing about is described for real (cold start, a restarted engine), unless a sweep or the
  cold-start census (one listing of the account's InProgress jobs, instead of one Describe per job) has just seen it,
  or this process has just made it (`created`: InProgress and Starting, as Describe says of a new job).
- Every sweep covers the window from the previous sweep's start minus `overlap_seconds` (clock skew, eventual
  consistency) to now, so coverage is continuous: a job absent from a sweep did not change since it was last known.
  Times are the server's: our wall clock corrected by the skew seen in responses' Date headers.
- A job the sweep shows changed to a non-terminal status is updated from its summary (status, secondary status, times:
  all that the phase needs); one that turned terminal (or Deleting) is described again when next asked for, for its
  outputs and FailureReason. An unchanged job is never described again.
- A job the sweep cannot vouch for (its last change is inside the window yet List does not show it, or it fell outside
  the coverage) falls back to a Describe at most once per `max_age`, i.e. about once per interval.
- A job gone from SageMaker (Describe answers NotFound) is dropped and NotFound raised.
- A Describe follows a job known to exist (`SageMakerClient.following()`): a storm of throttles is retried until the
  retry deadline, not given up at the attempt cap. A sweep keeps the cap: the describes stand in when it fails.

With EventBridge events (`follow_events`, handlers/tracker_events.py) a listener thread hands each job's state-change
event to `apply_event`: the job's answer is replaced when the event is newer (its status further on, else a later
LastModifiedTime, else more transitions), never by an older one, so duplicates and events out of order change
nothing. A terminal event that lacks what the outputs need (a Completed job's training and billable seconds and final
metrics, a Failed job's reason) makes the job stale: one Describe when next asked for. The sweeps go on at the events'
slow interval as a safety net (a lost event costs staleness, never a wrong answer); when the listener gives up
(`events_stopped`) the normal interval is back and a sweep due at once.

Sweeps run inline, in whichever caller finds one due, under a lock so only one runs; callers that find it running wait
for it (half an interval at most) rather than serve what it is about to correct, unless events keep the answers fresh.
Sweeps start early by about their own duration, so that a caller polling once per interval finds a fresh one each
time. No background thread: an idle tracker costs nothing (with events, the listener's threads are the events').
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any

from handlers import paging, telemetry
from handlers.client import SageMakerClient
from handlers.errors import AccessDenied, AwsError, NotFound
from handlers.service_model import member_shape
from handlers.status import TERMINAL_STATUSES

log = logging.getLogger(__name__)

PAGE_SIZE = int(member_shape("ListTrainingJobs", "MaxResults").metadata["max"])  # the service model's maximum
#: statuses whose full Describe is needed (outputs, FailureReason, a job on its way out); the others come from summaries
DESCRIBE_STATUSES = frozenset({*TERMINAL_STATUSES, "Deleting"})
MAX_SWEEP_PAGES = 10_000  # a guard against a server that never stops handing out tokens


@dataclass(frozen=True)
class TrackerStats:
    """Counters since the tracker was made: what it cost (sweeps, pages, describes) and what it saved (hits)."""

    sweeps: int  # completed sweeps
    pages: int  # ListTrainingJobs requests made by sweeps and the census
    describes: int  # DescribeTrainingJob requests made (cold starts, terminal jobs, fallbacks)
    hits: int  # answers served without a request
    fallbacks: int  # describes of jobs a sweep could not vouch for (a subset of `describes`)
    sweep_failures: int
    census_jobs: int  # InProgress jobs learnt from the cold-start census
    created: int  # jobs this process made, first served without a Describe
    events_applied: int  # state-change events that changed an answer (or made a sighting)
    events_ignored: int  # duplicates and events older than what was known
    sweep_caught: int  # changes a sweep found that no event had told (lost or late events)
    tracked: int  # jobs tracked now


class _Entry:
    """What the tracker knows of one job. Mutated only under the tracker's lock."""

    __slots__ = ("answer", "checked_at", "final", "lmt", "secondary", "stale", "status", "valid_since")

    def __init__(self, answer: dict[str, Any], checked_at: float, valid_since: float, *, described: bool) -> None:
        self.answer = answer  # served as is: callers must not mutate it
        self.status: str = answer.get("TrainingJobStatus", "")
        self.secondary: str = answer.get("SecondaryStatus", "")
        self.lmt = _epoch(answer.get("LastModifiedTime"))  # server epoch seconds of the last change we know
        self.final = described and self.status in TERMINAL_STATUSES  # a terminal Describe never changes again
        self.stale = not described and self.status in DESCRIBE_STATUSES  # the next describe() asks SageMaker
        self.checked_at = checked_at  # monotonic: when the answer was last known right
        self.valid_since = valid_since  # server epoch seconds: same moment, for the sweeps' coverage


@dataclass(frozen=True)
class _Sighting:
    """A summary of a job nobody asked about yet, seen by a sweep or the census that started at `at` / `wall`; `full`:
    an event's detail, as good as a Describe (a job first asked for takes it even when it wants status messages)."""

    summary: dict[str, Any]
    at: float
    wall: float
    full: bool = False


class StatusTracker:
    """Serves DescribeTrainingJob-shaped answers for many jobs from periodic ListTrainingJobs sweeps.

    `describe(name)` has the contract of `SageMakerClient.describe_training_job`: a Describe answer or NotFound. The
    answer may come from the cache (never older than about one interval plus one sweep); for a job that is not
    terminal its status fields may come from a ListTrainingJobs summary (see the module's docstring), so a
    non-terminal answer may lack the newest secondary status's StatusMessage. Terminal answers are always a full
    Describe. Answers are shared: callers must not mutate them.

    `sweep_interval_seconds` <= 0 turns tracking off: every describe() is a real Describe.
    `describe_changes=True` describes a job again after every change the sweeps see (exact messages, more calls).
    `describe_secondary_changes=True` describes it again when its secondary status changes, so that each new status
    comes with its StatusMessage, as `run` shows it (one more Describe per status a job passes through, made when
    the job is next asked for; not per poll). With either, a job first asked for is described, never adopted from a
    summary (which has no StatusMessage), and there is no census.
    `census=False` skips the cold-start listing of InProgress jobs. `clock` (monotonic) schedules sweeps and ages
    answers; `wall_clock` (epoch seconds) dates the sweeps' windows. Thread-safe.
    """

    def __init__(
        self,
        client: SageMakerClient,
        sweep_interval_seconds: float,
        *,
        overlap_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        describe_changes: bool = False,
        describe_secondary_changes: bool = False,
        census: bool = True,
        census_max_pages: int = 50,
        page_size: int = PAGE_SIZE,
    ) -> None:
        if overlap_seconds < 0:
            raise ValueError(f"overlap_seconds must be >= 0, not {overlap_seconds}")
        if not 1 <= page_size <= PAGE_SIZE:
            raise ValueError(f"page_size must be 1..{PAGE_SIZE}, not {page_size}")
        self.client = client
        #: describes follow jobs known to exist: they retry until the deadline. Sweeps keep the attempt cap: one that
        #: fails is replaced by describes, and a patient one would hold every caller behind the sweep lock.
        self._describer = client.following()
        self.overlap_seconds = float(overlap_seconds)
        self.describe_changes = describe_changes
        self.describe_secondary_changes = describe_secondary_changes
        self.page_size = page_size
        self._clock = clock
        self._wall = wall_clock
        self._lock = threading.Lock()  # the table, the counters, the schedule
        self._sweep_lock = threading.Lock()  # one sweep (or census) at a time
        self._jobs: dict[str, _Entry] = {}
        self._sightings: dict[str, _Sighting] = {}
        self._inflight: dict[str, threading.Event] = {}  # one Describe per job at a time
        self._skew = 0.0  # server clock minus our wall clock, from the Date headers (an underestimate: safe)
        self._last_sweep_wall: float | None = None  # server time the last complete sweep started
        self._sweep_seconds = 0.0  # moving average of a sweep's duration, to start the next one that much early
        self._census_pending = census
        self._census_max_pages = census_max_pages
        self._sweeps_enabled = True
        self._counts = dict.fromkeys(("sweeps", "pages", "describes", "hits", "fallbacks", "sweep_failures",
                                      "census_jobs", "created", "events_applied", "events_ignored",
                                      "sweep_caught"), 0)
        self.sweep_interval_seconds = 0.0
        self._polling_interval = max(0.0, float(sweep_interval_seconds))  # the interval without events
        self._events_interval: float | None = None  # the safety net's, while events keep the answers fresh
        self._events_stopped_said = False
        #: told when a sweep finds a change no event told (the listener judges whether its queue went silent)
        self.on_sweep_caught: Callable[[], None] | None = None
        #: the EventListener feeding this tracker (handlers/tracker_events.py), if any
        self.listener: Any = None
        self._max_age = 0.0
        self._next_sweep_at = float("-inf")
        self.set_interval(sweep_interval_seconds)

    # --- public ---------------------------------------------------------------------------------------------------

    def set_interval(self, sweep_interval_seconds: float) -> None:
        """Change the sweep interval (the shared tracker follows its most demanding user)."""
        interval = max(0.0, float(sweep_interval_seconds))
        with self._lock:
            self.sweep_interval_seconds = interval
            # An answer a sweep vouched for is at most interval + one sweep old; past this it is not trusted.
            self._max_age = interval + max(1.0, interval / 2)

    def ask_interval(self, sweep_interval_seconds: float) -> None:
        """A user's polling interval: the shared tracker sweeps at the smallest asked, unless events keep it fresh."""
        with self._lock:
            self._polling_interval = min(self._polling_interval, max(0.0, float(sweep_interval_seconds)))
            interval = self._events_interval if self._events_interval is not None else self._polling_interval
        if interval < self.sweep_interval_seconds or self._events_interval is not None:
            self.set_interval(interval)

    @property
    def follows_events(self) -> bool:
        return self._events_interval is not None

    def follow_events(self, safety_sweep_interval_seconds: float) -> None:
        """Events now keep the answers fresh: the sweeps slow down to the safety net's interval."""
        with self._lock:
            self._events_interval = max(self._polling_interval, float(safety_sweep_interval_seconds))
        self.set_interval(self._events_interval)

    def events_stopped(self, reason: str) -> None:
        """The listener gave up: back to the polling interval, a sweep due now, said once."""
        with self._lock:
            said, self._events_stopped_said = self._events_stopped_said, True
            self._events_interval = None
            self._next_sweep_at = float("-inf")
        self.set_interval(self._polling_interval)
        if not said:
            log.warning("job events: %s; tracking falls back to ListTrainingJobs sweeps every %g s",
                        reason, self._polling_interval)

    def apply_event(self, detail: Mapping[str, Any]) -> bool:
        """A "SageMaker Training Job State Change" event's detail (a Describe answer with epoch-millisecond
        times): True when it told something new. Never moves a job backwards."""
        answer = described_from_event(detail)
        name = answer.get("TrainingJobName")
        if not isinstance(name, str) or not name or not isinstance(answer.get("TrainingJobStatus"), str):
            return False
        complete = _complete(answer)
        now, wall = self._clock(), self._wall() + self._skew
        with self._lock:
            entry = self._jobs.get(name)
            if entry is None:
                sighting = self._sightings.get(name)
                if sighting is not None and _progress(sighting.summary) >= _progress(answer):
                    self._counts["events_ignored"] += 1
                    return False
                self._sightings[name] = _Sighting(answer, now, wall, full=complete)
                self._counts["events_applied"] += 1
                return True
            if entry.final or _progress(entry.answer) >= _progress(answer):
                self._counts["events_ignored"] += 1
                return False
            self._jobs[name] = _Entry(answer, now, max(wall, entry.valid_since), described=complete)
            self._counts["events_applied"] += 1
            return True

    def describe(self, job_name: str) -> dict[str, Any]:
        """The job's DescribeTrainingJob answer, from the cache when the sweeps vouch for it; NotFound if missing.

        The returned dict is shared with the cache and other callers: read it, do not change it.
        """
        if self.sweep_interval_seconds <= 0:
            return self._describe_now(job_name, self._clock())
        now = self._clock()
        if now >= self._next_sweep_at:
            self._sweep_when_due()
        with self._lock:
            answer = self._fresh(self._jobs.get(job_name), now)
            if answer is not None:
                self._counts["hits"] += 1
                return answer
        return self._refresh(job_name)

    def created(self, job_name: str, arn: str) -> None:
        """A job this process has just made (CreateTrainingJob answered): its first describe() serves what Describe
        says of a new job, InProgress and Starting, without asking; events or sweeps tell what follows.

        Its LastModifiedTime is left out (ours would be a guess): any event or summary of the job is newer, and the
        sweeps cover it from this moment, less their overlap."""
        if self.sweep_interval_seconds <= 0 or self._wants_messages:
            return  # every get describes, or each status needs its StatusMessage
        now, wall = self._clock(), self._wall() + self._skew
        summary = {"TrainingJobName": job_name, "TrainingJobArn": arn, "TrainingJobStatus": "InProgress",
                   "SecondaryStatus": "Starting", "CreationTime": datetime.fromtimestamp(wall, timezone.utc)}
        with self._lock:
            if job_name not in self._jobs and job_name not in self._sightings:
                self._sightings[job_name] = _Sighting(summary, now, wall)
                self._counts["created"] += 1

    def forget(self, job_name: str) -> None:
        """Stop tracking a job (its terminal phase was reported, or it was deleted); a later describe() starts over."""
        with self._lock:
            self._jobs.pop(job_name, None)
            self._sightings.pop(job_name, None)

    @property
    def stats(self) -> TrackerStats:
        with self._lock:
            return TrackerStats(**self._counts, tracked=len(self._jobs))

    def __repr__(self) -> str:
        return f"StatusTracker({self.client!r}, every {self.sweep_interval_seconds:g} s, {len(self._jobs)} jobs)"

    # --- answers --------------------------------------------------------------------------------------------------

    def _refresh(self, name: str) -> dict[str, Any]:
        """The slow path: adopt a sighting, wait for a running sweep, run the census, or describe the job."""
        while True:
            now = self._clock()
            with self._lock:
                entry = self._jobs.get(name)
                answer = self._fresh(entry, now)
                if answer is not None:
                    self._counts["hits"] += 1
                    return answer
                if entry is None:
                    adopted = self._adopt_sighting(name, now)
                    if adopted is not None:
                        self._counts["hits"] += 1
                        return adopted
                census = entry is None and self._census_pending and self._sweeps_enabled and not self._wants_messages
                waiting = entry is not None and not entry.stale and self._sweep_lock.locked()
            if census:
                self._run_census()
                continue
            if waiting:  # a sweep is on its way: it will most likely vouch for this job
                if self._sweep_lock.acquire(timeout=self._max_age):
                    self._sweep_lock.release()
                now = self._clock()
            return self._describe_now(name, now, fallback=entry is not None and not entry.stale)

    @property
    def _wants_messages(self) -> bool:
        """Every status must come with its StatusMessage: what a summary (sighting, census) says is not enough."""
        return self.describe_changes or self.describe_secondary_changes

    def _fresh(self, entry: _Entry | None, now: float) -> dict[str, Any] | None:
        """The entry's answer if it can be served as it is (lock held)."""
        if entry is not None and (entry.final or (not entry.stale and now - entry.checked_at <= self._max_age)):
            return entry.answer
        return None

    def _adopt_sighting(self, name: str, now: float) -> dict[str, Any] | None:
        """Track a job a recent sweep or the census listed, from its summary (lock held)."""
        sighting = self._sightings.pop(name, None)
        if sighting is None or now - sighting.at > self._max_age:
            return None
        if sighting.full:  # an event's detail: as a Describe would answer
            entry = _Entry(sighting.summary, sighting.at, sighting.wall, described=True)
            self._jobs[name] = entry
            return entry.answer
        if sighting.summary.get("TrainingJobStatus") in DESCRIBE_STATUSES:
            return None  # its outputs or reason are needed: describe it
        if self._wants_messages:
            return None  # a summary has no StatusMessage: the words of the status it is in need a Describe
        entry = _Entry(sighting.summary, sighting.at, sighting.wall, described=False)
        self._jobs[name] = entry
        return entry.answer

    def _describe_now(self, name: str, now: float, *, fallback: bool = False) -> dict[str, Any]:
        """A real DescribeTrainingJob, one per job at a time; the answer replaces the cached one."""
        if self.sweep_interval_seconds <= 0:
            with self._lock:
                self._counts["describes"] += 1
            return self._describer.describe_training_job(name)
        with self._lock:
            fresh = self._fresh(self._jobs.get(name), now)
            if fresh is not None:  # another caller's Describe has just landed
                self._counts["hits"] += 1
                return fresh
            event = self._inflight.get(name)
            leader = event is None
            if leader:
                event = self._inflight[name] = threading.Event()
                self._counts["describes"] += 1
                self._counts["fallbacks"] += fallback
        assert event is not None
        if not leader:  # someone is describing this job right now: use their answer
            event.wait(timeout=self.client.settings.retry.deadline_seconds)
            return self._describe_now(name, self._clock(), fallback=fallback)  # theirs, or ask again if it failed
        try:
            start, start_local = self._clock(), self._wall()
            try:
                answer = self._describer.describe_training_job(name)
            except NotFound:
                with self._lock:  # gone from SageMaker (or not there yet): nothing to track
                    self._jobs.pop(name, None)
                    self._sightings.pop(name, None)
                raise
            self._observe_date(answer)
            answer.pop("ResponseMetadata", None)
            start_wall = start_local + self._skew  # with the skew this very answer taught, if it was the first
            with self._lock:
                current = self._jobs.get(name)
                lmt = _epoch(answer.get("LastModifiedTime"))
                if current is not None and current.lmt is not None and lmt is not None and lmt < current.lmt:
                    log.info("%s: DescribeTrainingJob answered older than the last sweep; will ask again", name)
                else:
                    self._jobs[name] = _Entry(answer, start, start_wall, described=True)
            return answer
        finally:
            with self._lock:
                self._inflight.pop(name, None)
            event.set()

    # --- sweeps ---------------------------------------------------------------------------------------------------

    def _sweep_when_due(self) -> None:
        """Run the due sweep, or wait (boundedly) for the one another caller is running: its answer is fresher. Not
        while events keep the answers fresh: the safety net's sweep (thousands of jobs' pages) would hold every caller
        for what the events have already told."""
        if self._sweep_lock.acquire(blocking=False):
            try:
                if self._clock() >= self._next_sweep_at:
                    self._sweep()
            finally:
                self._sweep_lock.release()
        elif not self.follows_events and self._sweep_lock.acquire(timeout=max(1.0, self.sweep_interval_seconds / 2)):
            self._sweep_lock.release()

    def _sweep(self) -> None:
        """One sweep (sweep lock held). The next one is scheduled only when this one is over: until then callers
        find it due and wait for it instead of serving what it is about to correct."""
        start, start_local = self._clock(), self._wall()
        try:
            self._sweep_once(start, start_local)
        finally:
            interval = self.sweep_interval_seconds  # after a failure too: retry in an interval, do not hammer
            with self._lock:
                # Due a little early (about a sweep's duration): a caller polling once per interval, on the same beat
                # as the caller that ran this sweep, then finds the next one due, not a hair later.
                self._next_sweep_at = start + interval - min(interval / 4, self._sweep_seconds + interval / 50)

    def _sweep_once(self, start: float, start_local: float) -> None:
        """List what changed since the last sweep; update or mark the tracked jobs."""
        with self._lock:
            targets = {name: entry for name, entry in self._jobs.items() if not entry.final}
            self._prune_sightings(start)
            if not targets:
                self._last_sweep_wall = None  # nothing to cover: the next sweep starts from its jobs' own answers
                return
            if not self._sweeps_enabled:
                return
            since = self._last_sweep_wall
            if since is None:  # the first sweep covers from the oldest answer it must vouch for
                since = min(entry.valid_since for entry in targets.values())
            window = round(since - self.overlap_seconds, 3)
        prefix = common_prefix(targets)
        params: dict[str, Any] = {"LastModifiedTimeAfter": datetime.fromtimestamp(window, timezone.utc)}
        if prefix:
            params["NameContains"] = prefix
        try:
            rows = self._list_all(params, max_pages=MAX_SWEEP_PAGES, partial_ok=False)
        except AwsError as error:
            self._sweep_failed(error)
            return
        start_wall = start_local + self._skew
        with self._lock:
            caught = self._counts["sweep_caught"]
            for name, entry in targets.items():
                if self._jobs.get(name) is entry and not entry.final:
                    self._apply(entry, rows.get(name), window, start, start_wall)
            for name, row in rows.items():
                if name in self._jobs:
                    continue
                known = self._sightings.get(name)
                if row.get("TrainingJobStatus") in DESCRIBE_STATUSES:  # its outputs or reason need a Describe
                    if known is not None and _progress(row) > _progress(known.summary):
                        del self._sightings[name]  # what was seen of it before is over
                elif known is None or not known.full or _progress(row) > _progress(known.summary):
                    self._sightings[name] = _Sighting(row, start, start_wall)
            caught = self._counts["sweep_caught"] > caught
            self._last_sweep_wall = start_wall
            self._counts["sweeps"] += 1
            took = self._clock() - start
            self._sweep_seconds = took if self._counts["sweeps"] == 1 else 0.8 * self._sweep_seconds + 0.2 * took
        telemetry.sweep_finished(took)
        hook = self.on_sweep_caught
        if caught and hook is not None and self.follows_events:
            hook()

    def _apply(self, entry: _Entry, row: dict[str, Any] | None, window: float, start: float, start_wall: float) -> None:
        """What one sweep says about one tracked job (lock held)."""
        if row is None:
            if entry.valid_since < window:
                return  # known right only before this sweep's window: a change may have been missed
            if entry.lmt is not None and entry.lmt > window:
                return  # changed inside the window, yet not listed: List lags, the sweep cannot vouch for it
        else:
            lmt = _epoch(row.get("LastModifiedTime"))
            status, secondary = row.get("TrainingJobStatus", ""), row.get("SecondaryStatus", "")
            if entry.lmt is not None and lmt is not None and lmt < entry.lmt:
                return  # older than what a Describe made during this sweep already told us
            if lmt != entry.lmt or status != entry.status or secondary != entry.secondary:
                self._counts["sweep_caught"] += self._events_interval is not None
                if (entry.stale or self.describe_changes or status in DESCRIBE_STATUSES
                        or (self.describe_secondary_changes and secondary != entry.secondary)):
                    entry.stale = True
                    entry.status, entry.secondary, entry.lmt = status, secondary, lmt
                    return
                entry.answer = _merged(entry.answer, row)
                entry.status, entry.secondary, entry.lmt = status, secondary, lmt
        entry.checked_at = max(entry.checked_at, start)
        entry.valid_since = max(entry.valid_since, start_wall)

    def _run_census(self) -> None:
        """Cold start: one listing of the account's InProgress jobs, so that the first get of each needs no Describe.

        Callers that miss meanwhile wait for it on the sweep lock (the census is pending until it is over)."""
        with self._sweep_lock:
            with self._lock:
                if not self._census_pending:
                    return
            start, start_local = self._clock(), self._wall()
            try:
                rows = self._list_all({"StatusEquals": "InProgress"}, max_pages=self._census_max_pages,
                                      partial_ok=True)
            except AwsError as error:
                self._sweep_failed(error)
                rows = {}
            start_wall = start_local + self._skew
            with self._lock:
                self._census_pending = False
                for name, row in rows.items():
                    if name not in self._jobs:
                        self._sightings[name] = _Sighting(row, start, start_wall)
                self._counts["census_jobs"] += len(rows)

    def _list_all(self, params: Mapping[str, Any], *, max_pages: int, partial_ok: bool) -> dict[str, dict[str, Any]]:
        """Every page of ListTrainingJobs, by creation time (stable while jobs change); a page may be short or empty
        while NextToken is still there (AWS's caveat), so only a missing token ends it."""
        request: dict[str, Any] = {**params, "MaxResults": self.page_size, "SortBy": "CreationTime",
                                   "SortOrder": "Ascending"}
        rows: dict[str, dict[str, Any]] = {}
        for page in paging.pages(self.client.list_training_jobs, "ListTrainingJobs", request, max_pages=max_pages):
            with self._lock:
                self._counts["pages"] += 1
            self._observe_date(page)
            for summary in page.get("TrainingJobSummaries") or ():
                name = summary.get("TrainingJobName")
                if not name:
                    continue
                known = rows.get(name)
                if known is None or _later(summary, known):
                    rows[name] = summary
            if not page.get("NextToken"):
                return rows
        if not partial_ok:  # a sweep that did not see everything cannot vouch for anything
            raise AwsError(f"ListTrainingJobs: still more pages after {max_pages}", operation="ListTrainingJobs")
        log.info("ListTrainingJobs: stopped after %d pages; later requests describe the rest", max_pages)
        return rows

    def _sweep_failed(self, error: AwsError) -> None:
        telemetry.sweep_finished(0.0, failed=True)
        with self._lock:
            self._counts["sweep_failures"] += 1
            if isinstance(error, AccessDenied):
                # Describe may be allowed where List is not: track with per-job describes from now on.
                self._sweeps_enabled = False
                self._census_pending = False
        if isinstance(error, AccessDenied):
            log.warning("ListTrainingJobs is not allowed (%s): tracking falls back to one Describe per job per "
                        "interval; grant sagemaker:ListTrainingJobs to save calls", error)
        else:
            log.warning("status sweep failed, jobs are described one by one until the next one works: %s", error)

    def _prune_sightings(self, now: float) -> None:
        old = [name for name, s in self._sightings.items() if now - s.at > self._max_age]
        for name in old:
            del self._sightings[name]

    # --- time -----------------------------------------------------------------------------------------------------

    def _observe_date(self, response: Mapping[str, Any]) -> None:
        """Learn the server's clock from a response's Date header.

        The header is cut to the second and stamped before the answer travelled, so the estimate is low by up to a
        second plus the latency: windows start a little early, never late (the overlap covers the rest).
        """
        headers = (response.get("ResponseMetadata") or {}).get("HTTPHeaders") or {}
        date = headers.get("date")
        if not date:
            return
        try:
            server = parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError):
            return
        self._skew = server - self._wall()


# --- the process's trackers -------------------------------------------------------------------------------------------

_TRACKERS: dict[tuple[Any, ...], StatusTracker] = {}
_TRACKERS_LOCK = threading.Lock()


def _identity(client: SageMakerClient) -> tuple[Any, ...]:
    """Who asks where: the credentials' source (a local SageMaker's key pair or a profile), region and endpoint."""
    settings = client.settings
    keys = client.local_keys  # a local SageMaker restarted on the same endpoint has a new key pair
    who = f"local:{keys.access_key_id}" if keys is not None else f"profile:{settings.profile or ''}"
    return (who, client.region, client.endpoint_url)


def tracker_for(client: SageMakerClient, sweep_interval_seconds: float, *, messages: bool = False,
                events: Callable[[StatusTracker], None] | None = None) -> StatusTracker:
    """The one tracker of this process for the client's (credentials, region, endpoint), made on first use.

    All plugin instances share it, so a job is swept once however many of them poll it. The first client seen for a
    key makes the requests; a smaller interval asked for later lowers the shared tracker's interval, and `messages`
    (describe on each secondary status change) asked for once stays on. An interval <= 0 (tracking off) gets a
    tracker of its own that describes every time, and leaves the shared one alone. `events` starts following job
    events for a tracker made now (handlers/tracker_events.py's `listen`): one listener per tracker, so one thread per
    process and endpoint.
    """
    if sweep_interval_seconds <= 0:
        return StatusTracker(client, 0)
    key = _identity(client)
    with _TRACKERS_LOCK:
        tracker = _TRACKERS.get(key)
        if tracker is None:
            tracker = _TRACKERS[key] = StatusTracker(client, sweep_interval_seconds,
                                                     describe_secondary_changes=messages)
            if events is not None:
                events(tracker)
        else:
            tracker.ask_interval(sweep_interval_seconds)
            tracker.describe_secondary_changes = tracker.describe_secondary_changes or messages
        return tracker


# --- summaries --------------------------------------------------------------------------------------------------------


def common_prefix(names: Iterable[str]) -> str:
    """The longest prefix all names share ("" for none): the sweep's NameContains."""
    listed = list(names)
    if not listed:
        return ""
    first, last = min(listed), max(listed)  # what the smallest and largest share, all share
    size = 0
    while size < min(len(first), len(last)) and first[size] == last[size]:
        size += 1
    return first[:size]


def _epoch(value: Any) -> float | None:
    """Epoch seconds of a botocore timestamp (datetime), or of a number; None when absent."""
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).timestamp()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def _later(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    la, lb = _epoch(a.get("LastModifiedTime")), _epoch(b.get("LastModifiedTime"))
    return la is not None and (lb is None or la >= lb)


def _merged(answer: Mapping[str, Any], summary: Mapping[str, Any]) -> dict[str, Any]:
    """A Describe answer brought up to date with a newer summary: status, secondary status and times.

    A new secondary status gets a transition of its own (without StatusMessage, which only Describe has), so that the
    message shown is the new status rather than the old status's message.
    """
    out = dict(answer)
    for key in ("TrainingJobStatus", "SecondaryStatus", "LastModifiedTime", "TrainingEndTime"):
        if key in summary:
            out[key] = summary[key]
    secondary = summary.get("SecondaryStatus")
    if secondary and secondary != answer.get("SecondaryStatus"):
        transitions = [dict(t) for t in _transitions(answer.get("SecondaryStatusTransitions"))]
        if transitions and "EndTime" not in transitions[-1] and "LastModifiedTime" in summary:
            transitions[-1]["EndTime"] = summary["LastModifiedTime"]
        transition: dict[str, Any] = {"Status": secondary}
        if "LastModifiedTime" in summary:
            transition["StartTime"] = summary["LastModifiedTime"]
        out["SecondaryStatusTransitions"] = [*transitions, transition]
    return out


def _transitions(value: Any) -> Iterable[Mapping[str, Any]]:
    return [t for t in value if isinstance(t, Mapping)] if isinstance(value, list) else []


# --- events -----------------------------------------------------------------------------------------------------------

#: how far on a status is: a job never goes back to an earlier one
_STATUS_RANK = {"InProgress": 0, "Stopping": 1, "Completed": 2, "Failed": 2, "Stopped": 2, "Deleting": 3}


def _progress(answer: Mapping[str, Any]) -> tuple[int, float, int]:
    """Orders what is known of one job: status first, then LastModifiedTime, then the transitions seen."""
    status = answer.get("TrainingJobStatus")
    rank = _STATUS_RANK.get(status, 0) if isinstance(status, str) else 0
    transitions = answer.get("SecondaryStatusTransitions")
    return rank, _epoch(answer.get("LastModifiedTime")) or 0.0, len(transitions) if isinstance(transitions, list) else 0


def _complete(answer: Mapping[str, Any]) -> bool:
    """Whether an event's detail holds all a Describe would for the job's phase and outputs: a Completed job's training
    and billable seconds and final metrics (the event's schema has none of them), a Failed job's reason."""
    status = answer.get("TrainingJobStatus")
    if status == "Completed":
        return all(key in answer for key in ("ModelArtifacts", "FinalMetricDataList", "TrainingTimeInSeconds",
                                             "BillableTimeInSeconds"))
    if status == "Failed":
        return "FailureReason" in answer
    return status != "Deleting"


def described_from_event(detail: Mapping[str, Any]) -> dict[str, Any]:
    """An event's detail as a Describe answer: epoch-millisecond times (strings or numbers) as datetimes, without the
    Tags map (Describe has no Tags)."""
    return {str(key): _event_value(str(key), value) for key, value in detail.items() if key != "Tags"}


def _event_value(key: str, value: Any) -> Any:
    if key.endswith("Time") and isinstance(value, (str, int, float)) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(float(value) / 1000, timezone.utc)
        except (ValueError, OverflowError, OSError):
            return value
    if isinstance(value, Mapping):
        return {str(k): _event_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list):
        return [_event_value(key, item) for item in value]
    return value
