"""Runs a training job for real (`execution: run`): each host's processes on this machine, fed and collected as
SageMaker feeds and collects training containers.

One thread per job walks the job through what really happens: Starting (host folders and config files), Downloading
(channels and checkpoints from the local S3), Training (the processes run; their lines go to the hosts' log streams
as they are written), Uploading (model/ and output/data/ packed to S3), then the end. The thread changes the job and
touches moto only while holding the server's lock, and only for a moment; everything slow (processes, files) happens
outside it.

What runs on each host is launch.py's decision. Each host's processes see its folder at `/opt/ml` itself, in a
private mount namespace (optml.py), where the operating system allows one; the server finds out once, with its
first job, and where it does not, each job's log says that commands are rewritten instead.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shlex
import shutil
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from handlers.hosts import host_count
from handlers.local import LocalSettings
from local_sagemaker import storage
from local_sagemaker.jobs import LocalTrainingJob
from local_sagemaker.logs import LogLine
from local_sagemaker.runner import channels, mpi, pipes, processes, sdk_drivers
from local_sagemaker.runner.hostdirs import HostDirs, job_input_mode, make_hosts, write_config
from local_sagemaker.runner.launch import XGBOOST_MODULE, Plan, plan
from local_sagemaker.runner.reaper import Reaper
from local_sagemaker.runner.runjob import RunTrainingJob
from local_sagemaker.runner.toolkit_env import host_environment

#: How often the runner looks at its processes and limits, and writes the lines read since the last time.
POLL_SECONDS = 0.05
FLUSH_SECONDS = 0.25
FLUSH_LINES = 500
#: How often new checkpoint files go to CheckpointConfig's S3 URI while the job trains (and once more at the end).
CHECKPOINT_SYNC_SECONDS = 10.0
#: Lines of a failed process's error output kept for its FailureReason.
TAIL_LINES = 10
#: What a job's log says (once per host) when its processes cannot see /opt/ml itself.
REWRITING_NOTE = (
    "local SageMaker: this machine allows no private mount namespace ({reason}), so this job's processes do not see "
    "/opt/ml: they see the host's folder {root}; /opt/ml at the start of a command's argument or an Environment "
    "value is rewritten to it, but /opt/ml inside a shell string or named by a script is not"
)


def xgboost_runnable() -> bool:
    """Whether the local XGBoost algorithm is installed (else XGBoost jobs fall back to the simulation)."""
    try:
        return importlib.util.find_spec(XGBOOST_MODULE) is not None
    except (ImportError, ValueError):
        return False


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class RunContext:
    """What every job's runner shares with its server."""

    lock: threading.Lock
    settings: LocalSettings
    client_env: Callable[[], Mapping[str, str]]
    settle: Callable[[RunTrainingJob], None]  # called under the lock once a job has ended (frees its instances)
    reaper: Reaper = field(default_factory=Reaper)
    _root: Path | None = None
    _refusal: list[str | None] = field(default_factory=list)  # empty until the first job looked
    _refusal_lock: threading.Lock = field(default_factory=threading.Lock)

    def opt_ml_refusal(self) -> str | None:
        """None when jobs' processes can see their host's folder at /opt/ml, else why not (tried once per server)."""
        with self._refusal_lock:
            if not self._refusal:
                probe = self.job_dir("probe")
                self._refusal.append(processes.mount_refusal(probe))
                shutil.rmtree(probe, ignore_errors=True)
            return self._refusal[0]

    def job_dir(self, name: str) -> Path:
        if self._root is None:
            self._root = Path(tempfile.mkdtemp(prefix="local-sagemaker-"))
            self.reaper.folder(str(self._root.resolve()))  # deleted even if the server is killed outright
        path = self._root / f"{name}-{uuid.uuid4().hex[:8]}"
        path.mkdir(mode=0o700)
        return path

    def remove(self) -> None:
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None


class _Failed(Exception):
    """Ends the job as Failed with this reason."""


class JobRunner:
    """The thread that runs one job."""

    def __init__(self, job: RunTrainingJob, context: RunContext) -> None:
        self.job = job
        self.context = context
        self.request: dict[str, Any] = {**job.request, "TrainingJobName": job.training_job_name}
        self.host_count = host_count(self.request)
        self.abandoned = threading.Event()
        self._processes: list[processes.Process] = []
        self._pending: list[LogLine] = []
        self._pending_lock = threading.Lock()
        self._last_ms: dict[int, int] = {}
        self._synced: dict[Path, int] = {}  # checkpoint files already put to S3, with their modification times
        self._pipe_sources: list[channels.Source] = []
        self._pipes: pipes.Pipes | None = None
        self._thread = threading.Thread(target=self._run, name=f"job-{job.training_job_name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def abandon(self) -> None:
        """The server is going away: kill the processes now and write nothing more."""
        self.abandoned.set()
        self.job.stop_event.set()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    # ----- the job's life -----------------------------------------------------------------------------------------

    def _run(self) -> None:
        job_dir: Path | None = None
        try:
            job_dir = self.context.job_dir(self.job.training_job_name)
            self._life(job_dir)
        except _Failed as failure:
            self._close_pipes()
            self._end("Failed", str(failure))
        except Exception as error:  # a bug here must still end the job, as SageMaker's InternalServerError would
            self._close_pipes()
            self._end("Failed", f"InternalServerError: the local runner failed: {type(error).__name__}: {error}")
        finally:
            self._close_pipes()
            processes.kill(self._processes)
            for process in self._processes:
                self.context.reaper.remove(process.group)
            if job_dir is not None:
                shutil.rmtree(job_dir, ignore_errors=True)

    def _life(self, job_dir: Path) -> None:
        refusal = self.context.opt_ml_refusal()
        hosts = make_hosts(job_dir, self.host_count, mounted=refusal is None)
        for host in hosts:
            write_config(host, self.request, self.host_count)
        self._injected_failure("Starting")
        if self._stopping():
            return
        self._set("Downloading")
        self._injected_failure("Downloading")
        where = channels.Where(self.job.account_id, self.job.region_name, self.context.lock)
        for channel in self.request.get("InputDataConfig") or []:
            if self._stopping():
                return
            uri = str(((channel.get("DataSource") or {}).get("S3DataSource") or {}).get("S3Uri", ""))
            try:
                source = channels.resolve(where, channel, job_input_mode(self.request),
                                          self.job.missing_input_reason(uri))
            except channels.ChannelError as error:
                raise _Failed(str(error)) from None
            if source.mode == channels.PIPE:
                self._pipe_sources.append(source)  # streamed once Training begins
            else:
                channels.download_channel(where, source, hosts)
        checkpoints = channels.checkpoint_uri(self.request)
        if checkpoints:
            channels.download_checkpoints(where, checkpoints, hosts)
        if self._stopping():
            return
        launch = plan(self.request, hosts, job_dir, self._read)  # a failure is reported once Training has begun
        self._set("Training")
        with self.context.lock:
            if not self.abandoned.is_set():
                self.job.open_streams(self.host_count, self._now())
        self._injected_failure("Training")
        if isinstance(launch, str):
            raise _Failed(launch)
        if refusal is not None:
            for host in hosts:
                self._sink(processes.Line(host.index, self._now(),
                                          REWRITING_NOTE.format(reason=refusal, root=host.root), False))
        for index, note in launch.notes:
            self._sink(processes.Line(index, self._now(), note, False))
        self._train(launch, hosts, job_dir)
        self._close_pipes()
        self._flush()
        if self._stopping():
            self._upload(hosts, where, model_only=True)
            self._end(self.job.stop_status)
            return
        self._set("Uploading")
        self._injected_failure("Uploading")
        self._upload(hosts, where)
        self._end("Completed")

    def _train(self, launch: Plan, hosts: Sequence[HostDirs], job_dir: Path) -> None:
        client_env = dict(self.context.client_env())
        port = free_port()
        envs = {host.index: host_environment(host, self.request, self.host_count, client_env, self.job.region_name,
                                             port, self.job.arn) for host in hosts}
        if launch.own_python:
            for host in hosts:
                env = envs[host.index]
                env["PATH"] = f"{sdk_drivers.make_python(job_dir / f'{host.name}-python')}{os.pathsep}{env['PATH']}"
        if launch.mpi_per_host:
            for host in hosts:
                path = job_dir / f"{host.name}.env.json"
                path.touch(mode=0o600)
                spec = {"env": envs[host.index], "cwd": str(host.code_dir),
                        "mount": str(host.root) if host.mounted else ""}
                path.write_text(json.dumps(spec), encoding="utf-8")
        where = channels.Where(self.job.account_id, self.job.region_name, self.context.lock)
        if self._pipe_sources:
            self._pipes = pipes.Pipes(where, self._pipe_sources, hosts)
            self._pipes.start()
        for host, command, cwd in launch.commands:
            env = envs[host.index]
            if launch.mpi_per_host:
                env = {**env, **mpi.RUN_AS_ROOT}
            try:
                process = processes.start(command, host.index, env, cwd, self._sink, TAIL_LINES,
                                          host.root if host.mounted else None)
            except OSError as error:
                raise _Failed(f"AlgorithmError: cannot start {shlex.join(command)} on {host.name}: "
                              f"{error.strerror or error}") from None
            self._processes.append(process)
            self.context.reaper.add(process.group)
        last_flush = last_sync = time.monotonic()
        checkpoints = channels.checkpoint_uri(self.request)
        while True:
            self._check_limits()
            if self.job.stop_event.is_set():
                processes.terminate(self._processes, 0.0 if self.abandoned.is_set() else self._grace())
                break
            codes = [p.popen.poll() for p in self._processes]
            failed = [(p, code) for p, code in zip(self._processes, codes, strict=True) if code not in (None, 0)]
            pipe_failure = self._pipes.failure if self._pipes is not None else None
            if failed or pipe_failure:
                processes.terminate([p for p in self._processes if p.popen.returncode is None], self._grace())
                processes.finish_readers(self._processes)
                self._flush()
                raise _Failed(pipe_failure or self._failure_reason(hosts, *failed[0]))
            if all(code == 0 for code in codes):
                break
            if time.monotonic() - last_flush >= FLUSH_SECONDS or len(self._pending) >= FLUSH_LINES:
                self._flush()
                last_flush = time.monotonic()
            if checkpoints and time.monotonic() - last_sync >= CHECKPOINT_SYNC_SECONDS:
                for host in hosts:
                    channels.upload_folder(where, host.checkpoint_dir, checkpoints, self._synced)
                last_sync = time.monotonic()
            time.sleep(POLL_SECONDS)
        processes.finish_readers(self._processes)

    def _close_pipes(self) -> None:
        """The Pipe channels' writers end with the job's processes (whatever their readers do)."""
        if self._pipes is not None:
            self._pipes.close()

    def _grace(self) -> float:
        """Seconds between SIGTERM and SIGKILL: `stop_seconds`, real seconds here (time_scale is the timeline's)."""
        return float(self.context.settings.stop_seconds)

    def _read(self, bucket: str, key: str) -> bytes:
        with self.context.lock:
            return storage.get_object(self.job.account_id, self.job.region_name, bucket, key)

    # ----- outputs ----------------------------------------------------------------------------------------------

    def _upload(self, hosts: Sequence[HostDirs], where: channels.Where, model_only: bool = False) -> None:
        if self.abandoned.is_set():
            return
        output = str((self.request.get("OutputDataConfig") or {}).get("S3OutputPath", "")).rstrip("/")
        base = f"{output}/{self.job.training_job_name}/output"
        ordered = [host.model_dir for host in reversed(hosts)]  # algo-1 last: its files win a name clash
        try:
            model = storage.directory_archive(ordered)
            with self.context.lock:
                storage.put_object(self.job.account_id, self.job.region_name, f"{base}/model.tar.gz", model)
                self.job.model_written(f"{base}/model.tar.gz")
            if not model_only:
                data_dirs = [host.output_data_dir for host in reversed(hosts)]
                if any(any(folder.rglob("*")) for folder in data_dirs):
                    archive = storage.directory_archive(data_dirs)
                    with self.context.lock:
                        storage.put_object(self.job.account_id, self.job.region_name, f"{base}/output.tar.gz",
                                           archive)
            checkpoints = channels.checkpoint_uri(self.request)
            if checkpoints:
                for host in hosts:
                    channels.upload_folder(where, host.checkpoint_dir, checkpoints, self._synced)
        except Exception as error:  # moto's S3 refused (a bucket name it rejects, ...): SageMaker fails the job
            if model_only:
                return
            raise _Failed(storage.upload_failure_reason(error)) from None

    def _failure_reason(self, hosts: Sequence[HostDirs], process: processes.Process, code: int) -> str:
        for host in hosts:
            with contextlib.suppress(OSError):
                text = host.failure_file.read_text(encoding="utf-8", errors="replace").strip()
                if text:  # a built-in algorithm names its failure's kind itself (ClientError: ...)
                    return text if text.startswith(("ClientError: ", "AlgorithmError: ")) else f"AlgorithmError: {text}"
        tail = "\n".join(line for line in process.stderr_tail if line.strip())
        signal_note = f" (killed by signal {-code})" if code < 0 else ""
        return f"AlgorithmError: {tail or 'the process wrote no error output'}\nExitCode {code}{signal_note}"

    # ----- status, limits, lines --------------------------------------------------------------------------------

    def _now(self) -> int:
        return round(time.time() * 1000)

    def _set(self, status: str) -> None:
        with self.context.lock:
            if not self.abandoned.is_set():
                self.job.enter(status, self._now())

    def _end(self, status: str, reason: str | None = None) -> None:
        self._flush()
        with self.context.lock:
            if self.abandoned.is_set():
                return
            self.job.end(status, self._now(), reason)
            self.context.settle(self.job)

    def _stopping(self) -> bool:
        """Whether a stop or a limit has come; before Training (nothing to upload yet) it ends the job here."""
        self._check_limits()
        if not self.job.stop_event.is_set():
            return False
        if not self.job.streams:
            self._end(self.job.stop_status)
        return True

    def _injected_failure(self, status: str) -> None:
        rule = self.context.settings.failure_for(self.job.training_job_name)
        if rule is not None and rule.at == status:
            if self.job.streams:
                note = f"local SageMaker: this job fails at {status} (local.failures): {rule.reason}"
                self._sink(processes.Line(1, self._now(), note, True))
            raise _Failed(rule.reason)

    def _limits(self) -> list[tuple[float, str]]:
        """(deadline, status) of MaxWaitTimeInSeconds (spot) and MaxRuntimeInSeconds, earliest first.

        A spot job's runtime counts from Downloading (waiting for capacity counts against MaxWait only)."""
        stopping = self.request.get("StoppingCondition") or {}
        created = self.job.creation_ms / 1000
        limits: list[tuple[float, str]] = []
        if self.job.spot and isinstance(stopping.get("MaxWaitTimeInSeconds"), int):
            limits.append((created + stopping["MaxWaitTimeInSeconds"], "MaxWaitTimeExceeded"))
        if isinstance(stopping.get("MaxRuntimeInSeconds"), int):
            runtime_from = created
            if self.job.spot:
                started = self.job.training_start_ms
                runtime_from = started / 1000 if started is not None else float("inf")
            limits.append((runtime_from + stopping["MaxRuntimeInSeconds"], "MaxRuntimeExceeded"))
        return sorted(limits)

    def _check_limits(self) -> None:
        now = time.time()
        for deadline, status in self._limits():
            if now >= deadline:
                with self.context.lock:
                    self.job.limit(status)
                return

    def _sink(self, line: processes.Line) -> None:
        with self._pending_lock:
            stamp = max(line.timestamp_ms, self._last_ms.get(line.host, 0))
            self._last_ms[line.host] = stamp
            # SageMaker's log agent writes a tab as `#011` (the built-in algorithms' metric regexes expect it)
            self._pending.append(LogLine(line.host, stamp, line.text.replace("\t", "#011")))

    def _flush(self) -> None:
        with self._pending_lock:
            batch, self._pending = self._pending, []
        if not batch or self.abandoned.is_set():
            return
        with self.context.lock:
            if not self.job.streams:
                return
            self.job.write_lines(batch)


class Runs:
    """The runners of one server's jobs."""

    def __init__(self, context: RunContext) -> None:
        self.context = context
        self._runners: list[JobRunner] = []

    def start(self, job: RunTrainingJob) -> None:
        runner = JobRunner(job, self.context)
        self._runners = [r for r in self._runners if r.running]
        self._runners.append(runner)
        runner.start()

    def abandon_all(self) -> None:
        """Every job's processes are killed and the runners write nothing more (moto's state was reset)."""
        for runner in self._runners:
            runner.abandon()

    def shutdown(self, timeout: float = 15.0) -> None:
        """The server stops: every process killed, every runner ended, the folders and the reaper gone."""
        self.abandon_all()
        deadline = time.monotonic() + timeout
        for runner in self._runners:
            runner.join(max(0.1, deadline - time.monotonic()))
        self._runners.clear()
        self.context.reaper.close()
        self.context.remove()


def simulated_fallback(job: LocalTrainingJob) -> LocalTrainingJob:
    """An XGBoost job while local_sagemaker.xgboost is not installed: it plays the timeline, and its log says so."""
    job.note_at_training_start(f"local SageMaker: {XGBOOST_MODULE} is not installed, so this built-in XGBoost job is "
                               "simulated (its log lines, metrics and model are made up)")
    return job
