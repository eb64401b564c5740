"""Soak: many jobs through the plugin, with random faults and engine restarts; then compare with SageMaker's truth.

    python benchmarks/soak.py                # 500 jobs; about 15 s on 2 cores
    python benchmarks/soak.py --quick        # 30 jobs, a few restarts and aborts: CI runs it so that it cannot rot
    python benchmarks/soak.py --jobs 2000 --restarts 10 --aborts 50 --queued-aborts 30 --seed 7

What runs where:
- this process serves a local SageMaker on 127.0.0.1, with a time scale that makes a job live ~2.5 s, a
  failure rule that fails some jobs in Training and short MaxRuntimeInSeconds for others (Stopped, MaxRuntimeExceeded);
- the engine is a child process (`soak.py --engine WORKDIR`): one TrainingJobPlugin whose client gets random faults
  first on `before-send.sagemaker` and `before-send.s3` (10% throttled: ThrottlingException, S3's 503 SlowDown; 2%
  HTTP 500; 1% connection drops: half before the request is sent, half after the server got it and acted on it, as
  when a response is lost), driving creates, gets and deletes from a few threads. It persists what an engine persists
  (each `meta.encode()`, each delete begun and acknowledged, each terminal phase) to an append-only log, and nothing
  else survives it;
- this process SIGKILLs the engine at random moments spread over the run (`--restarts`, 5 by default) and starts a
  new one, which continues from the log alone: a task with a persisted meta is tracked (or deleted, if it is to be
  aborted and its delete was not acknowledged), a task without one is created again from the same task (same
  execution identity, hence the same job name; the plugin adopts a job it made before the kill);
- `--aborts` tasks (20) are aborted: deleted right after their create, as an engine does when a workflow is aborted;
- `--queued-aborts` tasks (10; "qabort") are aborted while queued on ResourceLimitExceeded, and their job must never
  exist. The engine plays the quota: it answers ResourceLimitExceeded to every CreateTrainingJob of such a task (before
  any random fault) until the task's delete is acknowledged in its log, and lets the creates through from then on, so
  a plugin that missed the abort would really make the job. The engine creates the task with its plugin (a queued
  meta), has a second TrainingJobPlugin (its own client and memory, the same faults: another connector replica) get it
  once (WAITING_FOR_RESOURCES), deletes it with the first (which writes the abort mark to S3), then follows it through
  the replica only: only the mark can tell the replica, or a restarted engine, that the task was aborted.

At the end the engine's reports are compared with what the local SageMaker holds (ListTrainingJobs and
DescribeTrainingJob, through a plain boto3 client that sees no fault). One JSON line:
  jobs                      tasks submitted
  duplicates                jobs beyond one per task (a job under an unexpected name, or more than one per task)
  lost                      tasks with no job (a queued abort's missing job is right), or no terminal phase reported
  wrong_terminal            tasks whose reported phase differs from the job's real end, or whose real end is not
                            the one the task was made for (success, failure, runtime limit, abort); queued aborts not
                            reported ABORTED, or whose replica said other than WAITING_FOR_RESOURCES before the delete
  left_running_after_abort  aborted tasks whose job was still running, or ended on its own, after the delete returned;
                            queued aborts whose job exists at all
  api_calls                 requests the local SageMaker received (SageMaker API), faulted-then-delivered included
  seconds                   wall time of the whole run
plus details: api_calls_by_operation, restarts, aborts, aborts_stopped (aborts that really stopped a running job),
queued_aborts and queued_aborts_never_made (reported ABORTED, and no job by that name exists), creates_resumed and
deletes_resumed (steps a kill cut short and the next engine did again), faults_injected (as the engines last reported
them; resource_limit counts the quota's refusals), s3_calls_by_operation (requests the engines sent to S3, for the
abort marks), transient_errors (calls that outlasted the retries; the engine tried again later), engine_errors (any
other exception), and the seed.
The exit status is 1 when any of the four counts is not zero.
"""

from __future__ import annotations

import argparse
import collections
import json
import logging
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

from benchmarks import data_folder  # noqa: E402

CUSTOM = "sagemaker_custom_training_job_task"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/soak/trainer:1.0"
STOPPED_BY_TAG = "sagemaker-plugin:stopped-by"
#: the opt-in recorder of AWS operations (tests/conftest.py) reaches subprocesses through this variable
RECORD_OPS = "SAGEMAKER_PLUGIN_RECORD_OPS"
DATA_BUCKET = "soak-data"
#: the local SageMaker's timeline (timeline seconds) and the scale that makes a job live ~2.5 s of wall time
TIMELINE = {"Starting": 1.0, "Downloading": 1.0, "Training": 2.0, "Uploading": 1.0}
TIME_SCALE = 2.0
SHORT_RUNTIME = 3  # MaxRuntimeInSeconds of "limit" tasks: stopped in Training, MaxRuntimeExceeded
FAIL_REASON = "AlgorithmError: loss became NaN (soak)"
#: task kinds, the phase each is made to end in, and their shares (the rest are "ok")
EXPECTED = {"ok": "SUCCEEDED", "fail": "FAILED", "limit": "FAILED", "abort": "ABORTED", "qabort": "ABORTED"}
SHARES = {"fail": 0.05, "limit": 0.03}
POLL_SECONDS = 0.5  # the engine polls each job this often
#: the quota the engine plays for queued aborts, in AWS's words
RESOURCE_LIMIT_BODY = json.dumps({
    "__type": "ResourceLimitExceeded",
    "message": "The account-level service limit 'ml.m5.xlarge for training job usage' is 0 Instances, with current "
               "utilization of 0 Instances and a request delta of 1 Instances. Please use AWS Service Quotas to "
               "request an increase for this quota.",
}).encode()
#: S3 speaks XML: its throttle is 503 SlowDown, its 500 InternalError
S3_THROTTLE_BODY = b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
S3_500_BODY = (b"<Error><Code>InternalError</Code><Message>We encountered an internal error. Please try again."
               b"</Message></Error>")
ENGINE_START_TIMEOUT = 60.0
RUN_TIMEOUT = 1800.0


# --- the plan: tasks, faults, where the engine's log lives -----------------------------------------------------------


@dataclass(frozen=True)
class Faults:
    throttle: float = 0.10
    http_500: float = 0.02
    drop: float = 0.01  # connection drops; half of them after the server got the request


@dataclass(frozen=True)
class Plan:
    run_id: str
    endpoint: str
    tasks: list[dict[str, Any]]  # {"i", "kind", "task"}
    faults: Faults
    threads: int
    seed: int

    @property
    def aborted(self) -> set[int]:
        return {t["i"] for t in self.tasks if t["kind"] == "abort"}

    @property
    def queued_aborted(self) -> set[int]:
        return {t["i"] for t in self.tasks if t["kind"] == "qabort"}


def make_tasks(run_id: str, jobs: int, aborts: int, rng: random.Random, queued_aborts: int = 0
               ) -> list[dict[str, Any]]:
    kinds = ["ok"] * jobs
    order = list(range(jobs))
    rng.shuffle(order)
    picks = iter(order)
    chosen = (("abort", aborts), ("qabort", queued_aborts), *((k, round(jobs * share)) for k, share in SHARES.items()))
    for kind, count in chosen:
        for _ in range(min(count, jobs)):
            index = next(picks, None)
            if index is not None:
                kinds[index] = kind
    train = f"s3://{DATA_BUCKET}/{run_id}/train/"
    tasks = []
    for i, kind in enumerate(kinds):
        task: dict[str, Any] = {
            "task_type": CUSTOM,
            "training_job": {
                "algorithm_specification": {"algorithm_name": "CUSTOM"},
                "training_job_resource_config": {"instance_type": "ml.m5.xlarge", "instance_count": 1},
            },
            "container": {"image": IMAGE},
            "inputs": {"train": train, "static_hyperparameters": {"epochs": 3}},
            "execution": {"project": "soak", "domain": run_id, "name": f"{kind}-{i:05d}"},
        }
        if kind == "limit":
            task["max_runtime_seconds"] = SHORT_RUNTIME
        tasks.append({"i": i, "kind": kind, "task": task})
    return tasks


def engine_config(endpoint: str) -> dict[str, Any]:
    """The plugin's config in the engine: no client-side pacing, quick backoff, fast sweeps if a tracker is used."""
    return {
        "backend": "local",
        "local": {"endpoint_url": endpoint, "time_scale": TIME_SCALE},
        "retry": {"attempts": 8, "backoff_seconds": 0.02, "max_backoff_seconds": 0.2, "deadline_seconds": 60},
        "rate_limits": {"create_per_second": 0, "read_per_second": 0},
        "tracking": {"sweep_interval_seconds": 1.0},
    }


# --- the engine's log: all that survives a kill ----------------------------------------------------------------------


class Log:
    """Append-only JSON lines; one write(2) per record, so a SIGKILL leaves whole records (a torn one is skipped)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._lock = threading.Lock()

    def write(self, **record: Any) -> None:
        data = (json.dumps(record, separators=(",", ":")) + "\n").encode()
        with self._lock:
            os.write(self._fd, data)


def read_log(path: Path, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """Whole records from `offset` on, and the offset after the last whole line."""
    if not path.exists():
        return [], offset
    with path.open("rb") as f:
        f.seek(offset)
        data = f.read()
    end = data.rfind(b"\n") + 1
    records = []
    for line in data[:end].splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue  # torn by a kill
    return records, offset + end


@dataclass
class TaskState:
    meta: str | None = None  # the persisted ResourceMeta (JSON)
    deleted_at: float | None = None  # wall time the first delete returned
    delete_begun: bool = False  # some engine began a delete (a queued abort's mark may be written already)
    final: str | None = None  # the terminal phase reported
    message: str = ""
    errors: int = 0
    odd: list[str] = field(default_factory=list)  # a queued abort's step that went where it must not


def replay(records: Iterable[Mapping[str, Any]], jobs: int) -> list[TaskState]:
    states = [TaskState() for _ in range(jobs)]
    apply(states, records)
    return states


def apply(states: Sequence[TaskState], records: Iterable[Mapping[str, Any]]) -> None:
    for record in records:
        i = record.get("i")
        if not isinstance(i, int) or not 0 <= i < len(states):
            continue
        state, event = states[i], record.get("e")
        if event == "meta":
            state.meta = record["meta"]
        elif event == "deleting":
            state.delete_begun = True
        elif event == "deleted" and state.deleted_at is None:
            state.deleted_at = float(record["t"])
        elif event == "final":
            state.final, state.message = record["phase"], record.get("message", "")
        elif event == "error":
            state.errors += 1
        elif event == "odd":
            state.odd.append(str(record.get("what", "")))


# --- the engine (a child process) ------------------------------------------------------------------------------------


class Chaos:
    """First on `before-send.sagemaker` and `before-send.s3`: throttles, 500s and connection drops at the plan's rates.

    `refuse(job name)` plays the account's quota: a CreateTrainingJob it is true for is answered ResourceLimitExceeded
    before any random fault, so a queued abort's create never reaches SageMaker while the quota holds.
    """

    def __init__(self, faults: Faults, seed: int, refuse: Callable[[str], bool] | None = None) -> None:
        self.faults = faults
        self.refuse = refuse
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.counts: collections.Counter[str] = collections.Counter()
        self.s3_calls: collections.Counter[str] = collections.Counter()  # requests sent to S3, per operation

    def snapshot(self) -> tuple[dict[str, int], dict[str, int]]:
        """(faults injected, S3 requests) so far."""
        with self._lock:
            return dict(self.counts), dict(self.s3_calls)

    def __call__(self, request: Any, event_name: str = "", **_: Any) -> Any:
        parts = event_name.split(".")  # before-send.<service>.<operation>
        service, operation = [*parts, "", ""][1:3]
        if service == "s3":
            with self._lock:
                self.s3_calls[operation] += 1
        if operation == "CreateTrainingJob" and self.refuse is not None and self.refuse(_job_name(request)):
            with self._lock:
                self.counts["resource_limit"] += 1
            return _answer(request, 400, RESOURCE_LIMIT_BODY, "application/x-amz-json-1.1")
        with self._lock:
            roll = self._rng.random()
            late = self._rng.random() < 0.5
        f = self.faults
        xml = service == "s3"
        if roll < f.throttle:
            kind = "throttle"
            status, body = (503, S3_THROTTLE_BODY) if xml else (
                400, b'{"__type":"ThrottlingException","message":"Rate exceeded"}')
        elif roll < f.throttle + f.http_500:
            kind = "http_500"
            status, body = 500, S3_500_BODY if xml else b"<html><body>Internal Server Error</body></html>"
        elif roll < f.throttle + f.http_500 + f.drop:
            kind, status, body = ("drop_after_delivery" if late else "drop"), 0, b""
        else:
            return None
        with self._lock:
            self.counts[kind if service == "sagemaker" else f"{service}_{kind}"] += 1
        if status == 0:
            import botocore.exceptions as bce

            if late:  # the server gets the request (a create makes its job, a stop stops); the answer is lost
                from botocore.httpsession import URLLib3Session

                http = URLLib3Session()
                try:
                    http.send(request).content  # noqa: B018 - the whole answer is read, then dropped
                finally:
                    http.close()
            raise bce.ConnectionClosedError(endpoint_url=request.url)
        return _answer(request, status, body, "application/xml" if xml else "application/x-amz-json-1.1")


def _answer(request: Any, status: int, body: bytes, content_type: str) -> Any:
    """A response made up on the client's side, as botocore would have read it from the wire."""
    import io

    from botocore.awsrequest import AWSResponse
    from botocore.compat import HTTPHeaders
    from urllib3.response import HTTPResponse

    headers = HTTPHeaders()
    headers["Content-Type"] = content_type
    headers["x-amzn-RequestId"] = headers["x-amz-request-id"] = str(uuid.uuid4())
    raw = HTTPResponse(body=io.BytesIO(body), status=status, preload_content=False)  # what botocore reads from
    return AWSResponse(request.url, status, headers, raw)


def _job_name(request: Any) -> str:
    """TrainingJobName of a CreateTrainingJob request (JSON protocol), "" when the body cannot tell."""
    body = request.body
    if hasattr(body, "read"):  # not for SageMaker's JSON bodies, which botocore sends as bytes
        return ""
    try:
        return str(json.loads(body or b"{}").get("TrainingJobName", ""))
    except (ValueError, AttributeError):
        return ""


class Engine:
    """Drives every unfinished task to a terminal phase from a few threads, persisting to the log as it goes."""

    MAX_ERRORS = 20  # non-transient errors on one task before the engine gives up on it (it then counts as lost)

    def __init__(self, workdir: Path) -> None:
        from plugin import load_task, registry
        from plugin.config import parse_config

        plan = json.loads((workdir / "plan.json").read_text())
        self.tasks: list[dict[str, Any]] = plan["tasks"]
        self.log = Log(workdir / "engine.log")
        records, _ = read_log(workdir / "engine.log")
        self.states = replay(records, len(self.tasks))
        config = parse_config(engine_config(plan["endpoint"]))
        self.plugin = registry.get(CUSTOM, config=config)
        # another connector replica: its own client and memory (the status tracker is per process, as in the plugin,
        # and knows nothing of deletes); it learns of a queued abort only from the S3 mark
        self.replica = registry.get(CUSTOM, config=config)
        assert self.replica is not self.plugin and self.replica.client() is not self.plugin.client()
        #: queued aborts by job name: the quota refuses their creates until their delete is acknowledged
        self.queued_aborts = {self.plugin.render(load_task(entry["task"])).job_name: entry["i"]
                              for entry in self.tasks if entry["kind"] == "qabort"}
        self.chaos = Chaos(Faults(**plan["faults"]), seed=plan["seed"] * 1000 + os.getpid(), refuse=self._over_quota)
        for plugin in (self.plugin, self.replica):
            client = plugin.client()
            for service in ("sagemaker", "s3"):
                events: Any = getattr(client, service).meta.events
                events.register_first(f"before-send.{service}", self.chaos)
        self.threads = int(plan["threads"])
        self.transient: collections.Counter[str] = collections.Counter()
        self._cond = threading.Condition()
        self._due: list[tuple[float, int]] = []
        self._open = 0

    def run(self) -> None:
        import heapq

        now = time.monotonic()
        for i, state in enumerate(self.states):
            if state.final is None and state.errors < self.MAX_ERRORS:
                # an abort the last engine began and did not see through goes first: its job is running (billing)
                urgent = (self.tasks[i]["kind"] in ("abort", "qabort") and state.deleted_at is None
                          and state.meta is not None)
                heapq.heappush(self._due, (now - 1 if urgent else now, i))
                self._open += 1
        stats = threading.Thread(target=self._report_stats, daemon=True)
        stats.start()
        with ThreadPoolExecutor(self.threads) as pool:
            for _ in range(self.threads):
                pool.submit(self._work)
        self._write_stats()
        self.log.write(e="done", pid=os.getpid())

    def _work(self) -> None:
        import heapq

        while True:
            with self._cond:
                while True:
                    if self._open == 0:
                        self._cond.notify_all()
                        return
                    if self._due and self._due[0][0] <= time.monotonic():
                        _, i = heapq.heappop(self._due)
                        break
                    wait = self._due[0][0] - time.monotonic() if self._due else 0.5
                    self._cond.wait(max(0.001, wait))
            again = self._step(i)
            with self._cond:
                if again is None:
                    self._open -= 1
                else:
                    heapq.heappush(self._due, (time.monotonic() + again, i))
                self._cond.notify_all()

    def _step(self, i: int) -> float | None:
        """One move for task i; seconds until its next move, or None once it is settled."""
        from handlers.errors import TransientError
        from plugin import ResourceMeta, load_task

        state, entry = self.states[i], self.tasks[i]
        try:
            if state.meta is None:
                self.log.write(e="creating", i=i, pid=os.getpid())
                meta = self.plugin.create(load_task(entry["task"]))
                state.meta = meta.encode().decode()
                self.log.write(e="meta", i=i, meta=state.meta)
            meta = ResourceMeta.decode(state.meta)
            queued_abort = entry["kind"] == "qabort"
            if queued_abort and state.deleted_at is None:
                self._before_queued_delete(i, meta)
            if entry["kind"] in ("abort", "qabort") and state.deleted_at is None:
                self.log.write(e="deleting", i=i, pid=os.getpid())
                state.delete_begun = True
                self.plugin.delete(meta)
                state.deleted_at = time.time()
                self.log.write(e="deleted", i=i, t=state.deleted_at)
                return 0.05
            # a queued abort is followed by the replica alone, which never saw the delete
            resource = (self.replica if queued_abort else self.plugin).get(meta)
            if resource.phase.is_terminal:
                state.final = resource.phase.name
                self.log.write(e="final", i=i, phase=state.final, message=resource.message)
                return None
            return POLL_SECONDS
        except TransientError as error:  # outlasted the retries: an engine tries again next round
            with self._cond:
                self.transient[error.operation] += 1
            return 0.2
        except Exception as error:  # anything else is reported; a task that keeps failing is given up (lost)
            state.errors += 1
            self.log.write(e="error", i=i, error=f"{type(error).__name__}: {error}"[:500])
            return None if state.errors >= self.MAX_ERRORS else 0.5

    def _over_quota(self, job_name: str) -> bool:
        """The quota, for Chaos: a queued abort's create is refused until its delete is acknowledged, then let in."""
        i = self.queued_aborts.get(job_name)
        return i is not None and self.states[i].deleted_at is None

    def _before_queued_delete(self, i: int, meta: Any) -> None:
        """A queued abort before its delete: queued indeed, and the replica sees it wait (or, once some engine began
        the delete and so perhaps wrote the mark, sees it aborted)."""
        if not meta.queued:
            self._odd(i, "the create was not queued although the quota refused it")
            return
        phase = self.replica.get(meta).phase.name
        self.log.write(e="replica", i=i, phase=phase)
        if phase != "WAITING_FOR_RESOURCES" and not (phase == "ABORTED" and self.states[i].delete_begun):
            self._odd(i, f"the replica said {phase} before the delete")

    def _odd(self, i: int, what: str) -> None:
        self.states[i].odd.append(what)
        self.log.write(e="odd", i=i, what=what)

    def _write_stats(self) -> None:
        with self._cond:
            transient = dict(self.transient)
        faults, s3_calls = self.chaos.snapshot()
        self.log.write(e="stats", pid=os.getpid(), faults=faults, transient=transient, s3_calls=s3_calls)

    def _report_stats(self) -> None:
        while True:
            time.sleep(0.2)
            self._write_stats()


def engine_main(workdir: Path) -> int:
    logging.disable(logging.WARNING)
    Engine(workdir).run()
    return 0


# --- the run (this process): the server, the kills, the truth --------------------------------------------------------


@dataclass
class Result:
    jobs: int
    duplicates: int
    lost: int
    wrong_terminal: int
    left_running_after_abort: int
    api_calls: int
    seconds: float
    api_calls_by_operation: dict[str, int] = field(default_factory=dict)
    restarts: int = 0
    aborts: int = 0
    aborts_stopped: int = 0
    queued_aborts: int = 0  # tasks aborted while queued on ResourceLimitExceeded
    queued_aborts_never_made: int = 0  # ... reported ABORTED, with no job by their name: what must happen to all
    faults_injected: dict[str, int] = field(default_factory=dict)
    s3_calls_by_operation: dict[str, int] = field(default_factory=dict)
    creates_resumed: int = 0  # tasks whose create was begun by an engine killed before it persisted the meta
    deletes_resumed: int = 0  # aborts begun by an engine killed before the delete was acknowledged
    transient_errors: int = 0
    engine_errors: int = 0
    data_folder_mb: float | None = None  # what the local SageMaker's data folder holds at the end
    problems: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.duplicates or self.lost or self.wrong_terminal or self.left_running_after_abort)


class EngineProcess:
    def __init__(self, workdir: Path, keys: dict[str, str]) -> None:
        """`keys`: the local SageMaker's key pair, as environment variables (it takes no other)."""
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("AWS_", "SAGEMAKER_PLUGIN_")) or k == RECORD_OPS}
        env.update(AWS_EC2_METADATA_DISABLED="true", AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull,
                   **keys)
        self.stderr = workdir / "engine.stderr"
        with self.stderr.open("ab") as err:
            self.popen = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--engine", str(workdir)],
                                          stdout=subprocess.DEVNULL, stderr=err, env=env, cwd=workdir)

    def kill(self) -> None:
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait()


def run(jobs: int, restarts: int, aborts: int, threads: int, seed: int, faults: Faults,
        workdir: Path, queued_aborts: int = 0, data_dir: Path | None = None) -> Result:
    from local_sagemaker import FailureRule, LocalSageMaker, LocalSettings
    from local_sagemaker.testing import LocalClients

    started = time.monotonic()
    rng = random.Random(seed)
    run_id = f"r{uuid.uuid4().hex[:8]}"
    settings = LocalSettings(execution="simulate", timeline=TIMELINE, time_scale=TIME_SCALE,
                             failures=(FailureRule(rf"soak-{run_id}-fail-.*", "Training", FAIL_REASON),))
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with LocalSageMaker(settings, data_dir=data_dir) as server:
        aws = LocalClients(server.url)
        aws.put_data(f"{run_id}/train", bucket=DATA_BUCKET)
        plan = Plan(run_id, server.url, make_tasks(run_id, jobs, aborts, rng, queued_aborts), faults, threads, seed)
        (workdir / "plan.json").write_text(json.dumps({**asdict(plan), "faults": asdict(faults)}))
        server.reset_counts()

        done_restarts = drive(workdir, jobs, restarts, rng, server.credentials.env())

        counts = server.call_counts("sagemaker")  # before the truth is read
        records, _ = read_log(workdir / "engine.log")
        states = replay(records, jobs)
        result = compare(plan, states, aws)
    result.api_calls_by_operation = dict(sorted(counts.items()))
    result.api_calls = sum(counts.values())
    result.restarts = done_restarts
    stats: dict[int, Mapping[str, Any]] = {}
    for record in records:
        if record.get("e") == "stats":
            stats[record["pid"]] = record  # the last one each engine wrote
    faults_injected: collections.Counter[str] = collections.Counter()
    s3_calls: collections.Counter[str] = collections.Counter()
    for last in stats.values():
        faults_injected.update(last.get("faults", {}))
        s3_calls.update(last.get("s3_calls", {}))
        result.transient_errors += sum(last.get("transient", {}).values())
    result.faults_injected = dict(sorted(faults_injected.items()))
    result.s3_calls_by_operation = dict(sorted(s3_calls.items()))
    result.engine_errors = sum(1 for record in records if record.get("e") == "error")
    result.creates_resumed = resumed(records, "creating")
    result.deletes_resumed = resumed(records, "deleting")
    result.problems += [r["error"] for r in records if r.get("e") == "error"][:5]
    result.seconds = round(time.monotonic() - started, 1)
    result.data_folder_mb = data_folder.size_mb(data_dir)
    return result


def resumed(records: Iterable[Mapping[str, Any]], event: str) -> int:
    """Tasks on which more than one engine began `event`: the step was cut by a kill and done again by the next."""
    engines: dict[int, set[int]] = collections.defaultdict(set)
    for record in records:
        if record.get("e") == event:
            engines[record["i"]].add(record["pid"])
    return sum(1 for pids in engines.values() if len(pids) > 1)


def progress(states: Sequence[TaskState]) -> float:
    """Share of the work persisted: a meta and a terminal phase per task."""
    done = sum((s.meta is not None) + (s.final is not None) for s in states)
    return done / (2 * len(states))


def drive(workdir: Path, jobs: int, restarts: int, rng: random.Random, keys: dict[str, str]) -> int:
    """Run engines until every task is settled, SIGKILLing one at each of `restarts` random points of the run."""
    points = sorted(rng.uniform(0.05, 0.85) for _ in range(restarts))
    log = workdir / "engine.log"
    states = [TaskState() for _ in range(jobs)]
    offset = 0
    killed = 0
    deadline = time.monotonic() + RUN_TIMEOUT
    engine = EngineProcess(workdir, keys)
    while True:
        finished = engine.popen.poll() is not None
        new, offset = read_log(log, offset)
        apply(states, new)
        if finished:
            done = any(r.get("e") == "done" and r.get("pid") == engine.popen.pid for r in read_log(log)[0])
            if engine.popen.returncode != 0 or not done:
                raise RuntimeError(f"the engine exited {engine.popen.returncode} unfinished: see {engine.stderr}")
            return killed
        if killed < len(points) and progress(states) >= points[killed]:
            engine.kill()
            killed += 1
            engine = EngineProcess(workdir, keys)
        if time.monotonic() > deadline:
            engine.kill()
            raise RuntimeError(f"the run did not finish in {RUN_TIMEOUT} s")
        time.sleep(0.02)


def real_phase(job: Mapping[str, Any], tags: Mapping[str, str]) -> str:
    """The phase the job really ended in, from SageMaker's own fields (mapped here, independently of the plugin)."""
    status, secondary = job["TrainingJobStatus"], job.get("SecondaryStatus")
    if status == "Completed":
        return "SUCCEEDED"
    if status == "Failed":
        return "FAILED"
    if status == "Stopped":
        if secondary == "Stopped" and STOPPED_BY_TAG in tags:
            return "ABORTED"
        return "FAILED"  # MaxRuntimeExceeded, or stopped by someone else
    return "RUNNING"


def _epoch(value: Any) -> float | None:
    return value.timestamp() if isinstance(value, datetime) else None


def compare(plan: Plan, states: Sequence[TaskState], aws: Any) -> Result:
    from plugin import TrainingJobPlugin, load_task
    from plugin.config import parse_config

    renderer = TrainingJobPlugin(parse_config(engine_config(plan.endpoint)))
    expected_names = {renderer.render(load_task(entry["task"])).job_name: entry["i"] for entry in plan.tasks}
    pages = aws.sagemaker.get_paginator("list_training_jobs").paginate(NameContains=f"soak-{plan.run_id}-")
    listed = collections.Counter(s["TrainingJobName"] for page in pages for s in page["TrainingJobSummaries"])
    duplicates = sum(n for name, n in listed.items() if name not in expected_names)
    duplicates += sum(n - 1 for name, n in listed.items() if name in expected_names and n > 1)

    result = Result(jobs=len(plan.tasks), duplicates=duplicates, lost=0, wrong_terminal=0,
                    left_running_after_abort=0, api_calls=0, seconds=0.0, aborts=len(plan.aborted),
                    queued_aborts=len(plan.queued_aborted))

    def check(name: str) -> tuple[int, str | None, dict[str, Any] | None]:
        i = expected_names[name]
        if name not in listed:
            return i, None, None
        job: dict[str, Any] = aws.sagemaker.describe_training_job(TrainingJobName=name)
        tags: dict[str, str] = {}
        if job["TrainingJobStatus"] == "Stopped":
            tags = {t["Key"]: t["Value"] for t in aws.sagemaker.list_tags(ResourceArn=job["TrainingJobArn"])["Tags"]}
        return i, real_phase(job, tags), job

    with ThreadPoolExecutor(4) as pool:
        checked = list(pool.map(check, expected_names))
    for i, real, job in checked:
        state, kind = states[i], plan.tasks[i]["kind"]
        if kind == "qabort":
            check_queued_abort(result, i, state, real, job)
            continue
        if job is None or state.final is None:
            result.lost += 1
            result.problems.append(f"task {i} ({kind}): job {'missing' if job is None else 'present'}, "
                                   f"reported {state.final}")
            continue
        allowed = {EXPECTED[kind]}
        if kind == "abort":
            if state.deleted_at is None:
                result.wrong_terminal += 1
                result.problems.append(f"task {i}: to be aborted, but no delete was acknowledged")
                continue
            ended = _epoch(job.get("TrainingEndTime")) or _epoch(job.get("LastModifiedTime"))
            if real == "ABORTED":
                result.aborts_stopped += 1
            elif real == "RUNNING" or (ended is not None and ended > state.deleted_at):
                result.left_running_after_abort += 1
                result.problems.append(f"task {i}: {real} after the delete returned")
            elif real is not None:
                allowed.add(real)  # it had ended on its own before the abort reached it: its own end is right
        if state.final != real or real not in allowed:
            result.wrong_terminal += 1
            result.problems.append(f"task {i} ({kind}): reported {state.final}, really {real}")
    return result


def check_queued_abort(result: Result, i: int, state: TaskState, real: str | None, job: Mapping[str, Any] | None
                       ) -> None:
    """A queued abort is right only if its job was never made and the engine reported ABORTED."""
    if job is not None:  # the quota let its create in only after the delete: some process missed the abort
        result.left_running_after_abort += 1
        result.problems.append(f"task {i} (qabort): its job was made after the delete; it is {real} "
                               f"({job['TrainingJobStatus']}/{job.get('SecondaryStatus')}), reported {state.final}")
        return
    if state.final is None:
        result.lost += 1
        result.problems.append(f"task {i} (qabort): job missing (right), no terminal phase reported")
        return
    wrong = [f"reported {state.final}"] if state.final != EXPECTED["qabort"] else []
    if state.deleted_at is None:
        wrong.append("no delete was acknowledged")
    wrong += state.odd[:2]
    if wrong:
        result.wrong_terminal += 1
        result.problems.append(f"task {i} (qabort): " + "; ".join(wrong))
        return
    result.queued_aborts_never_made += 1


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=None, help="tasks to run (default 500; 30 with --quick)")
    parser.add_argument("--quick", action="store_true",
                        help="a small run for CI: 30 jobs, 5 restarts, 5 aborts, 3 queued aborts")
    parser.add_argument("--restarts", type=int, default=5, help="engine SIGKILLs and restarts (default 5)")
    parser.add_argument("--aborts", type=int, default=None, help="tasks aborted (default 20; 5 with --quick)")
    parser.add_argument("--queued-aborts", type=int, default=None,
                        help="tasks aborted while queued on ResourceLimitExceeded (the engine plays the quota); "
                             "their job must never exist (default 10; 3 with --quick)")
    parser.add_argument("--threads", type=int, default=4, help="engine threads driving creates and gets")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: random, printed)")
    parser.add_argument("--throttle", type=float, default=Faults.throttle, help="share of calls throttled")
    parser.add_argument("--http-500", type=float, default=Faults.http_500, help="share of calls answered HTTP 500")
    parser.add_argument("--drop", type=float, default=Faults.drop, help="share of calls whose connection drops")
    parser.add_argument("--details", action="store_true", help="also print the details line (problems found)")
    parser.add_argument("--engine", metavar="WORKDIR", help=argparse.SUPPRESS)
    data_folder.add_arguments(parser)
    args = parser.parse_args(argv)
    if args.jobs is None:
        args.jobs = 30 if args.quick else 500
    if args.aborts is None:
        args.aborts = 5 if args.quick else 20
    if args.queued_aborts is None:
        args.queued_aborts = 3 if args.quick else 10
    if args.seed is None:
        args.seed = random.randrange(1 << 30)
    if args.jobs < 1 or args.aborts < 0 or args.queued_aborts < 0 or args.restarts < 0 or args.threads < 1:
        parser.error("--jobs and --threads must be at least 1, --aborts, --queued-aborts and --restarts at least 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.engine:
        return engine_main(Path(args.engine))
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp, data_folder.root(args) as data:
        aborts = min(args.aborts, args.jobs)
        result = run(args.jobs, args.restarts, aborts, args.threads, args.seed,
                     Faults(args.throttle, args.http_500, args.drop), Path(tmp),
                     queued_aborts=min(args.queued_aborts, args.jobs - aborts), data_dir=data and data / "server")
    body = asdict(result)
    problems = body.pop("problems")
    print(json.dumps({**body, "seed": args.seed}), flush=True)
    if args.details or not result.clean:
        print(json.dumps({"problems": problems[:50]}), file=sys.stderr)
    return 0 if result.clean else 1


if __name__ == "__main__":
    sys.exit(main())
