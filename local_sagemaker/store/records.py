"""One local SageMaker's records in its data folder: written through as jobs change, loaded back at the next start.

`Records` sits between the engine (and its jobs and tuning jobs, which report every change under the server's lock)
and the database. A claim (CreateTrainingJob, CreateHyperParameterTuningJob) is written at once, inside the request,
because the database decides whether the name is free; everything else (states, tags, streams, events, metric points)
is queued and committed by a writer thread every `FLUSH_SECONDS`, so that a request never waits for the disk. A
server killed outright loses at most that last fraction of a second; the database stays whole.

What other servers on the folder write (and, at the start, everything kept) comes in through `sync`, which the engine
calls at the start of each request: it asks SQLite whether anyone else committed (`PRAGMA data_version`, every
`SYNC_SECONDS` at most) and only then reads what changed. Their jobs become `StoredTrainingJob`s and restored tuning
jobs: moto serves them as it serves this server's own (Describe, List, tags, logs, metrics), but only their owner
moves them: a stop for one is written to the records, and its owner stops it when it reads them.

A job still running when its server went away is ended here (Failed, with a reason that says so, a last status
transition and a line in its log streams) as soon as some server notices: at its start, and every `CHECK_SECONDS`.
A server that stops cleanly does the same for its own running jobs before it lets go of the folder.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from moto.logs.models import LogStream, logs_backends
from moto.sagemaker.models import sagemaker_backends

from handlers.local import LocalSettings
from handlers.logs import LOG_GROUP
from local_sagemaker import storage
from local_sagemaker.jobs import LocalTrainingJob
from local_sagemaker.runner.runjob import RunTrainingJob
from local_sagemaker.store import folder
from local_sagemaker.store.database import (
    DATABASE,
    Batch,
    Changes,
    Cursor,
    Database,
    Event,
    JobKey,
    JobRow,
    Recovery,
    Server,
    StoreError,
    StreamKey,
)

if TYPE_CHECKING:
    from local_sagemaker.api.engine import Engine
    from local_sagemaker.tuning.job import TuningJob

log = logging.getLogger(__name__)

FLUSH_SECONDS = 0.1
SYNC_SECONDS = 0.1
CHECK_SECONDS = 5.0
HEARTBEAT_SECONDS = 2.0
_EPOCH = datetime(1970, 1, 1)  # moto's logs keep naive UTC datetimes


class StoredTrainingJob(RunTrainingJob):
    """A training job as the records keep it: it never moves by itself (it has ended, or another server runs it)."""

    __module__ = "moto.sagemaker.models"


def restored_job(row: JobRow, settings: LocalSettings) -> StoredTrainingJob:
    job = StoredTrainingJob(row.account, row.region, {**row.request, "Tags": row.tags}, settings,
                            int(row.state["created"]))
    job.restore_state(row.state)
    return job


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def stopped_reason(noun: str, server: Server | None, at_ms: int) -> str:
    """The FailureReason of a job whose server went away while it ran."""
    who = f"the local SageMaker that ran this {noun}"
    if server is not None:
        who += f" (process {server.pid}, {server.url}, started {iso(server.started_ms)})"
    return (f"InternalServerError: {who} stopped at about {iso(at_ms)}, before the {noun} ended; a local "
            "SageMaker cannot resume it: create it again under a new name")


def _text(message: str) -> str:
    """A message SQLite can store (UTF-8): lone surrogates become U+FFFD."""
    try:
        message.encode("utf-8")
    except UnicodeEncodeError:
        return message.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return message


class Records:
    """A local SageMaker's records (see the module docstring); `open` once it serves, `close` once it stopped."""

    def __init__(self, data_dir: Path, engine: Engine) -> None:
        self.data_dir = data_dir
        self.engine = engine
        self._lease = folder.lease(data_dir)
        self.owner = self._lease.owner
        try:
            self._db = Database(data_dir / DATABASE)
            self._reader = Database(data_dir / DATABASE)
        except BaseException:
            self._lease.release()
            raise
        self._cursor = Cursor()
        self._data_version: int | None = None
        self._synced_at = float("-inf")
        self._pending = Batch()
        self._pending_lock = threading.Lock()
        self._ids: dict[JobKey, int] = {}  # this server's jobs: their row ids
        self._written: dict[JobKey, dict[str, Any]] = {}  # the last state queued for each tuning job
        self._mirrored: dict[int, tuple[str, Any]] = {}  # id(object) -> (owner, object) of others' jobs shown here
        self._mirrored_keys: dict[JobKey, Any] = {}
        self._mirrored_streams: set[StreamKey] = set()
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None

    # ----- life -----------------------------------------------------------------------------------------------------

    def open(self, url: str) -> None:
        """Registers this server, ends the running jobs of servers that are gone, loads everything kept, and starts
        writing through. Called while nothing else can reach the server yet."""
        now = self.engine.now_ms()
        try:
            self._db.register(Server(self.owner, os.getpid(), url, now, now))
            self.recover_gone()
            with self.engine.lock:
                self._sync()
        except sqlite3.Error as error:  # locked longer than SQLite waits, a disk error
            raise StoreError(f"cannot use the local SageMaker's records in {self._db.path}: {error}") from None
        self._thread = threading.Thread(target=self._write_loop, name="local-sagemaker-records", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """The server has stopped (its jobs' processes are gone): the last changes written, its running jobs
        Failed, the folder let go."""
        self._closed.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        try:
            self._flush()
            self._db.recover(self.owner, self._fail, self.owner)
        finally:
            self._db.close()
            self._reader.close()
            self._lease.release()

    # ----- what the jobs report (under the server's lock) ----------------------------------------------------------

    def claim_training(self, job: LocalTrainingJob) -> bool:
        """Takes the job's name for good; False if any server's job has it (this one now shows that job)."""
        key = ("training", job.account_id, job.region_name, job.training_job_name)
        row = self._db.claim("training", job.account_id, job.region_name, self.owner, job.request, job.state(),
                             job.tags)
        if row is None:
            self.sync(force=True)
            return False
        self._ids[key] = row
        job.records = self
        return True

    def claim_tuning(self, job: TuningJob) -> bool:
        key = ("tuning", job.account_id, job.region_name, job.name)
        request = {k: v for k, v in job.plan.request.items() if k != "Tags"}
        row = self._db.claim("tuning", job.account_id, job.region_name, self.owner, request, job.state(), job.tags)
        if row is None:
            self.sync(force=True)
            return False
        self._ids[key] = row
        self._written[key] = job.state()
        return True

    def job_changed(self, job: LocalTrainingJob) -> None:
        key = ("training", job.account_id, job.region_name, job.training_job_name)
        if key in self._ids:
            state = job.state()
            with self._pending_lock:
                self._pending.states[key] = (job.training_job_status, state)

    def tuning_changed(self, job: TuningJob) -> None:
        key = ("tuning", job.account_id, job.region_name, job.name)
        if key not in self._ids:
            return
        state = job.state()
        if state != self._written.get(key):
            self._written[key] = state
            with self._pending_lock:
                self._pending.states[key] = (job.status, state)

    def streams_opened(self, job: LocalTrainingJob, names: Sequence[str]) -> None:
        for name in names:
            found = _stream(job.account_id, job.region_name, LOG_GROUP, name)
            if found is not None:
                created = (found.creation_time - _EPOCH) // timedelta(microseconds=1)  # exact: moto rounds it itself
                with self._pending_lock:
                    self._pending.streams.setdefault((job.account_id, job.region_name, LOG_GROUP, name), created)

    def stream_mark(self, job: LocalTrainingJob, stream: str) -> int:
        found = _stream(job.account_id, job.region_name, LOG_GROUP, stream)
        return len(found.events) if found is not None else 0

    def lines_stored(self, job: LocalTrainingJob, stream: str, mark: int) -> None:
        """The events a put made on `stream` (from index `mark`), as CloudWatch Logs stored them, in their order."""
        found = _stream(job.account_id, job.region_name, LOG_GROUP, stream)
        if found is None:
            return
        key = (job.account_id, job.region_name, LOG_GROUP, stream)
        events = [Event(key, int(e.timestamp), int(e.ingestion_time), _text(str(e.message)))
                  for e in found.events[mark:]]
        with self._pending_lock:
            self._pending.events.extend(events)

    def metric_published(self, job: LocalTrainingJob, name: str, host: int, value: float, timestamp_ms: int
                         ) -> None:
        row = self._ids.get(("training", job.account_id, job.region_name, job.training_job_name))
        if row is not None:
            with self._pending_lock:
                self._pending.points.append((row, name, host, timestamp_ms, value))

    def tags_changed(self, backend: Any, arn: str) -> None:
        """AddTags or DeleteTags changed a resource's tags: a training or tuning job's are kept (any server may)."""
        kind, _, name = arn.rpartition(":")[2].partition("/")
        if kind == "training-job":
            job = backend.training_jobs.get(name)
            key = ("training", backend.account_id, backend.region_name, name)
        elif kind == "hyper-parameter-tuning-job":
            job = backend.hyper_parameter_tuning_jobs.get(name)
            key = ("tuning", backend.account_id, backend.region_name, str(getattr(job, "name", name)))
        else:
            return
        if job is not None:
            with self._pending_lock:
                self._pending.tags[key] = [dict(tag) for tag in job.tags]

    def request_stop(self, job: Any) -> None:
        """StopTrainingJob or StopHyperParameterTuningJob for a job another server runs: its owner stops it."""
        for key, mirrored in self._mirrored_keys.items():
            if mirrored is job:
                self._db.request_stop(key, self.owner)
                return

    def runs_elsewhere(self, job: Any) -> bool:
        """Whether `job` is another server's, shown here from the records."""
        mirrored = self._mirrored.get(id(job))
        return mirrored is not None and mirrored[1] is job

    # ----- what others wrote ------------------------------------------------------------------------------------------

    def sync(self, force: bool = False) -> None:
        """Shows here what other servers wrote since the last sync (everything kept, the first time). Under the
        server's lock."""
        now = time.monotonic()
        if not force and now - self._synced_at < SYNC_SECONDS:
            return
        self._synced_at = now
        try:
            self._sync(force)
        except sqlite3.Error as error:  # the request is answered from what is shown already; the next sync retries
            log.warning("local SageMaker: cannot read the records in %s: %s", self.data_dir, error)

    def _sync(self, force: bool = True) -> None:
        version = self._reader.data_version()
        if version == self._data_version and not force:
            return
        self._data_version = version
        changes = self._reader.changes(self.owner, self._cursor)
        self._cursor = changes.cursor
        self._apply(changes)

    def _apply(self, changes: Changes) -> None:
        for row in changes.jobs:
            if row.kind == "training":
                self._apply_training(row)
            else:
                self._apply_tuning(row)
        for key, creation_us in changes.streams:
            self._mirror_stream(key, creation_us)
        by_stream: dict[StreamKey, list[Event]] = {}
        for event in changes.events:
            by_stream.setdefault(event.stream, []).append(event)
        for key, events in by_stream.items():
            stream = _stream(*key) if key in self._mirrored_streams else None
            if stream is not None:
                first = len(stream.events)
                stream.put_log_events([{"timestamp": e.timestamp_ms, "message": e.message} for e in events])
                for stored, event in zip(stream.events[first:], events, strict=True):
                    stored.ingestion_time = event.ingestion_ms
                # moto shows the time truncated to milliseconds: half of one more keeps the same millisecond
                stream.last_ingestion_time = _EPOCH + timedelta(microseconds=events[-1].ingestion_ms * 1000 + 500)
        by_region: dict[tuple[str, str], list[tuple[str, str, int, float, int]]] = {}
        for point in changes.points:
            if ("training", point.account, point.region, point.job) in self._mirrored_keys:
                by_region.setdefault((point.account, point.region), []).append(
                    (point.job, point.name, point.host, point.value, point.timestamp_ms))
        for (account, region), values in by_region.items():
            storage.put_metric_values(account, region, values)

    def _apply_training(self, row: JobRow) -> None:
        backend = sagemaker_backends[row.account][row.region]
        current = backend.training_jobs.get(row.name)
        if row.owner == self.owner:  # another server changed the tags of a job of this one, or asks to stop it
            self._take_tags(row, current)
            if row.stop and isinstance(current, LocalTrainingJob) and current.training_job_status == "InProgress":
                self.engine.stop_training_job(backend, {"TrainingJobName": row.name})
            return
        mirrored = self._mirrored_keys.get(row.key)
        if current is None:
            current = restored_job(row, self.engine.settings)
            backend.training_jobs[row.name] = current
            self._mirror(row, current)
        elif current is mirrored and isinstance(current, StoredTrainingJob):
            current.restore_state(row.state)
            current.tags = row.tags
        # else: a job of another server in this same process (moto's state is per process): it shows itself

    def _apply_tuning(self, row: JobRow) -> None:
        backend = sagemaker_backends[row.account][row.region]
        current = self.engine.tuning.find(row.account, row.region, row.name)
        if row.owner == self.owner:
            self._take_tags(row, current)
            if row.stop and current is not None and current.status == "InProgress":
                self.engine.tuning.stop(backend, {"HyperParameterTuningJobName": row.name})
            return
        mirrored = self._mirrored_keys.get(row.key)
        if current is None or current is mirrored:
            job = self.engine.tuning.restore(backend, {**row.request, "Tags": row.tags}, row.state, current)
            self._mirror(row, job)

    def _take_tags(self, row: JobRow, job: Any) -> None:
        """Tags another server gave a job of this one; unless this one's own change is still to be written."""
        with self._pending_lock:
            if job is not None and row.key not in self._pending.tags:
                job.tags = row.tags

    def _mirror(self, row: JobRow, job: Any) -> None:
        self._mirrored[id(job)] = (row.owner, job)
        self._mirrored_keys[row.key] = job

    def _mirror_stream(self, key: StreamKey, creation_us: int) -> None:
        account, region, group, name = key
        backend = logs_backends[account][region]
        backend.ensure_log_group(group)
        streams = backend.groups[group].streams
        if name in streams:
            return  # this process's own (another server's in it): it writes there itself
        backend.ensure_log_stream(group, name)
        streams[name].creation_time = _EPOCH + timedelta(microseconds=creation_us)
        self._mirrored_streams.add(key)

    # ----- the writer -------------------------------------------------------------------------------------------------

    def _write_loop(self) -> None:
        checked = time.monotonic()
        beat = 0.0
        while not self._closed.wait(FLUSH_SECONDS):
            try:
                if self._flush():
                    beat = time.monotonic()
                elif time.monotonic() - beat >= HEARTBEAT_SECONDS:  # alive, and when: what a recovery says
                    self._db.write(Batch(), self.owner, self.engine.now_ms())
                    beat = time.monotonic()
                with self.engine.lock:  # others' changes, and their requests to stop this one's jobs, also when
                    self.sync()  # no request comes in
                if time.monotonic() - checked >= CHECK_SECONDS:
                    checked = time.monotonic()
                    self.recover_gone()
            except Exception as error:  # a full disk must not stop the server; the next round tries again
                log.warning("local SageMaker: cannot keep its records in %s: %s", self.data_dir, error)

    def _flush(self) -> bool:
        """Commits what is pending; whether there was anything. A failed write is kept for the next try."""
        with self._pending_lock:
            batch, self._pending = self._pending, Batch()
        if not batch:
            return False
        try:
            self._db.write(batch, self.owner, self.engine.now_ms())
        except BaseException:
            with self._pending_lock:
                later, self._pending = self._pending, batch
                self._pending.states.update(later.states)
                self._pending.tags.update(later.tags)
                self._pending.streams.update(later.streams)
                self._pending.events.extend(later.events)
                self._pending.points.extend(later.points)
            raise
        return True

    # ----- servers that are gone ------------------------------------------------------------------------------------

    def recover_gone(self) -> int:
        """Ends the running jobs of every server that is gone (its lock is free); how many jobs that ended."""
        owners = (set(self._db.servers()) | self._db.running_owners() | folder.owners(self.data_dir)) - {self.owner}
        ended = 0
        for owner in sorted(owners):
            with folder.if_gone(self.data_dir, owner) as gone:
                if gone:
                    ended += self._db.recover(owner, self._fail, self.owner)
        return ended

    def _fail(self, rows: Sequence[JobRow], server: Server | None) -> Recovery:
        """Each running job of a server that is gone: Failed at the last moment it was seen alive, and said so in its
        log streams."""
        states: dict[JobKey, tuple[str, dict[str, Any]]] = {}
        events: list[Event] = []
        now = self.engine.now_ms()
        for row in rows:
            at_ms = max(server.seen_ms if server is not None else 0, int(row.state.get("modified") or 0))
            if row.kind == "training":
                job = restored_job(row, self.engine.settings)
                reason = stopped_reason("training job", server, at_ms)
                job.end("Failed", at_ms, reason)
                states[row.key] = (job.training_job_status, job.state())
                note = "local SageMaker: " + reason.removeprefix("InternalServerError: ")
                events += [Event((row.account, row.region, LOG_GROUP, stream), at_ms, now, note)
                           for stream in job.streams.values()]
            else:
                state = dict(row.state, status="Failed", ended=at_ms, modified=at_ms,
                             failure=stopped_reason("hyperparameter tuning job", server, at_ms))
                states[row.key] = ("Failed", state)
        return Recovery(states, events)


def _stream(account: str, region: str, group_name: str, name: str) -> LogStream | None:
    group = logs_backends[account][region].groups.get(group_name)
    found: LogStream | None = group.streams.get(name) if group is not None else None
    return found
