"""Tuning-job requests for tests: a quick custom training script whose objective is a known function of its
hyperparameters (run by the image's training toolkit via sagemaker_program), and waiting for a tuning job."""

from __future__ import annotations

import os
import textwrap
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from local_sagemaker.testing import CUSTOM_IMAGE, LocalClients

#: loss = (lr - 0.3)^2 + the kind's penalty + 1/(round+1): printed once a round, `--rounds` rounds.
SCRIPT = """\
import argparse, time
parser = argparse.ArgumentParser()
parser.add_argument("--lr", type=float, default=0.3)
parser.add_argument("--depth", type=int, default=3)
parser.add_argument("--kind", default="good")
parser.add_argument("--rounds", type=int, default=4)
parser.add_argument("--epochs", type=int, default=0)
parser.add_argument("--pause", type=float, default=0.02)
args, _ = parser.parse_known_args()
penalty = {"good": 0.0, "fair": 0.5, "bad": 5.0}.get(args.kind, 1.0) + 0.01 * abs(args.depth - 4)
for step in range(args.epochs or args.rounds):
    loss = (args.lr - 0.3) ** 2 + penalty + 1.0 / (step + 1)
    print(f"round={step} loss={loss:.6f}", flush=True)
    time.sleep(args.pause)
"""
LOSS = {"Name": "loss", "Regex": "loss=([0-9.eE+-]+)"}


def write_script(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.py").write_text(textwrap.dedent(SCRIPT), encoding="utf-8")
    return folder


def definition(aws: LocalClients, code: Path, static: Mapping[str, str] | None = None,
               image: str = CUSTOM_IMAGE, metrics: bool = True) -> dict[str, Any]:
    """A TrainingJobDefinition of the script in `code`, with `static` hyperparameters besides the toolkit's."""
    request = aws.training_request("definition", image=image)
    out = {key: request[key] for key in ("RoleArn", "InputDataConfig", "OutputDataConfig", "ResourceConfig",
                                         "StoppingCondition")}
    out["AlgorithmSpecification"] = dict(request["AlgorithmSpecification"])
    if metrics:
        out["AlgorithmSpecification"]["MetricDefinitions"] = [LOSS]
    out["StaticHyperParameters"] = {"sagemaker_program": "train.py", "sagemaker_submit_directory": str(code),
                                    **(static or {})}
    return out


def config(strategy: str = "Random", jobs: int | None = 4, parallel: int = 2, metric: str = "loss",
           objective: str = "Minimize", **ranges: Any) -> dict[str, Any]:
    limits: dict[str, int] = {"MaxParallelTrainingJobs": parallel}
    if jobs is not None:
        limits["MaxNumberOfTrainingJobs"] = jobs
    return {"Strategy": strategy, "ResourceLimits": limits, "ParameterRanges": ranges,
            "HyperParameterTuningJobObjective": {"Type": objective, "MetricName": metric}}


def describe(aws: LocalClients, name: str) -> dict[str, Any]:
    answer: dict[str, Any] = aws.sagemaker.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
    return answer


def wait(aws: LocalClients, name: str, timeout: float = 90.0,
         watch: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Describes the tuning job until it has ended (`watch` sees every answer); TimeoutError otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        job = describe(aws, name)
        if watch is not None:
            watch(job)
        if job["HyperParameterTuningJobStatus"] in ("Completed", "Failed", "Stopped"):
            return job
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name}: still {job['HyperParameterTuningJobStatus']}")
        time.sleep(0.25)


def trials(aws: LocalClients, name: str, **params: Any) -> list[dict[str, Any]]:
    """Every trial's summary, following NextToken."""
    out: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        extra = {"NextToken": token} if token else {}
        page = aws.sagemaker.list_training_jobs_for_hyper_parameter_tuning_job(
            HyperParameterTuningJobName=name, **params, **extra)
        out += page["TrainingJobSummaries"]
        token = page.get("NextToken")
        if not token:
            return out


def processes_running(marker: str) -> list[int]:
    """Processes of this machine whose command line or environment mentions `marker` (read from /proc): a job's
    processes name `/opt/ml`, not their job, on their command line, but carry `TRAINING_JOB_NAME`."""
    found = []
    wanted = marker.encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        for part in ("cmdline", "environ"):
            try:
                with open(f"/proc/{entry}/{part}", "rb") as handle:
                    if wanted in handle.read():
                        found.append(int(entry))
                        break
            except OSError:
                continue
    return found
