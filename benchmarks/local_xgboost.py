"""What a built-in XGBoost job on the local SageMaker costs over training with xgboost by hand.

    python benchmarks/local_xgboost.py           # 200,000 rows x 20 features of CSV, 50 rounds
    python benchmarks/local_xgboost.py --quick   # 20,000 rows, 10 rounds: a few seconds (CI)

The same training twice, one after the other, on the same CSV file (label first, no header):
- bare: in this process, `xgboost.DMatrix` reads the file and `xgboost.train` runs the rounds (evaluating the training
  set each round, as the algorithm does), with the algorithm's settings; the model is saved;
- local job: a local SageMaker (execution: run) already serving and the file already in its S3, the seconds from
  CreateTrainingJob to DescribeTrainingJob (every 0.25 s) saying Completed: Starting, Downloading (the file to the
  host's folder), the host's process (interpreter, imports, checks, reading, training, checkpoints, model), Uploading.

Prints one JSON line: {"rows", "rounds", "bare_seconds", "local_job_seconds", "ratio", ...}; the target is
ratio <= 1.3. On a machine shared with other work the wall seconds are noisy, so the CPU seconds are given too: this
process's for the bare training; for the local job, its host process's plus this process's (the server) meanwhile.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

FEATURES = 20
#: Describe every quarter second: the end is seen within 1% of a 25 s job, and the polls (served by this process,
#: on the same two cores) do not slow the training they measure
POLL_SECONDS = 0.25
HYPERPARAMETERS = {"objective": "reg:squarederror", "max_depth": "6", "eta": "0.3"}


def write_csv(path: Path, rows: int) -> None:
    import numpy as np

    rng = np.random.default_rng(20261128)
    features = rng.standard_normal((rows, FEATURES))
    labels = features @ rng.standard_normal(FEATURES) + rng.standard_normal(rows) * 0.1
    np.savetxt(path, np.column_stack([labels, features]), delimiter=",", fmt="%.6f")


def cpu_seconds() -> tuple[float, float]:
    """(this process, its ended children): user + system seconds."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


def bare(path: Path, rounds: int, model: Path) -> tuple[float, float]:
    import warnings

    import xgboost as xgb

    from local_sagemaker.xgboost.params import threads_per_host

    start, cpu = time.monotonic(), cpu_seconds()[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = xgb.DMatrix(f"{path}?format=csv&label_column=0")
    params = {**HYPERPARAMETERS, "nthread": threads_per_host(1)}
    booster = xgb.train(params, data, rounds, evals=[(data, "train")], verbose_eval=False)
    booster.save_model(f"{model}.ubj")
    return time.monotonic() - start, cpu_seconds()[0] - cpu


def local_job(path: Path, rounds: int) -> tuple[float, float]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    from local_sagemaker import LocalSageMaker, LocalSettings
    from local_sagemaker.testing import LocalClients

    with LocalSageMaker(LocalSettings(execution="run")) as server:
        aws = LocalClients(server.url)
        uri = aws.put_data("bench/train", body=path.read_bytes())
        name = f"bench-xgboost-{uuid.uuid4().hex[:8]}"
        request = aws.training_request(
            name, channels={"train": uri}, hyperparameters={**HYPERPARAMETERS, "num_round": str(rounds)}
        )
        aws.sagemaker.list_training_jobs(MaxResults=1)  # connected before the clock starts
        start, cpu = time.monotonic(), sum(cpu_seconds())
        aws.sagemaker.create_training_job(**request)
        job = aws.wait(name, timeout=3600, interval=POLL_SECONDS)
        seconds, cpu = time.monotonic() - start, sum(cpu_seconds()) - cpu
    if job["TrainingJobStatus"] != "Completed":
        raise SystemExit(f"the local job ended {job['TrainingJobStatus']}: {job.get('FailureReason')}")
    return seconds, cpu


def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-xgboost-") as folder:
        path = Path(folder) / "train.csv"
        write_csv(path, args.rows)
        bare_seconds, bare_cpu = bare(path, args.rounds, Path(folder) / "model")
        local_seconds, local_cpu = local_job(path, args.rounds)
    return {
        "rows": args.rows,
        "rounds": args.rounds,
        "bare_seconds": round(bare_seconds, 2),
        "local_job_seconds": round(local_seconds, 2),
        "ratio": round(local_seconds / bare_seconds, 3),
        "bare_cpu_seconds": round(bare_cpu, 2),
        "local_job_cpu_seconds": round(local_cpu, 2),
        "cpu_ratio": round(local_cpu / bare_cpu, 3),
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--quick", action="store_true", help="20,000 rows and 10 rounds (CI)")
    args = parser.parse_args(argv)
    if args.quick:
        args.rows, args.rounds = 20_000, 10
    if args.rows < 1 or args.rounds < 1:
        parser.error("--rows and --rounds must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    print(json.dumps(run(parse_args(argv))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
