"""Local hyperparameter tuning: how good Bayesian search is next to Random, and what the tuner adds to the wall time.

    python benchmarks/tuning.py           # 5 seeds x (Bayesian, Random) x 20 trials, then one timed job: a few minutes
    python benchmarks/tuning.py --quick   # 1 seed x 8 trials, a small timed job (CI)

The problem is fixed and synthetic: a training script (run by the local SageMaker as a custom image's toolkit
program, really as a process) whose loss is a known function of three hyperparameters, minimum 0 at lr=0.01,
depth=6, momentum=0.9, logged once a round and read back through a MetricDefinition, so trials are quick and
deterministic. Each strategy gets the same seeds; `best` is the median over seeds of Bayesian's best final loss
after `--trials` trials, `median_random_best` Random's. Then one Bayesian job of slower trials is timed: wall time
from CreateHyperParameterTuningJob to the Describe that says Completed, against the ideal, the sum of its trials'
own times (CreationTime to TrainingEndTime) divided by the parallelism.

Prints one JSON line: {"trials", "parallel", "strategy", "best", "median_random_best", "wall_seconds",
"ideal_seconds", "wall_over_ideal", "bayesian_bests", "random_bests", "seeds"}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

SCRIPT = """\
import argparse, math, time
parser = argparse.ArgumentParser()
parser.add_argument("--lr", type=float)
parser.add_argument("--depth", type=int)
parser.add_argument("--momentum", type=float)
parser.add_argument("--rounds", type=int, default=2)
parser.add_argument("--pause", type=float, default=0.0)
args, _ = parser.parse_known_args()
target = (math.log10(args.lr) + 2) ** 2 + 0.1 * (args.depth - 6) ** 2 + 4 * (args.momentum - 0.9) ** 2
for step in range(args.rounds):
    time.sleep(args.pause)
    print(f"round={step} loss={target + 0.01 / (step + 1):.6f}", flush=True)
"""
RANGES = {
    "ContinuousParameterRanges": [
        {"Name": "lr", "MinValue": "0.00001", "MaxValue": "1", "ScalingType": "Logarithmic"},
        {"Name": "momentum", "MinValue": "0", "MaxValue": "0.99", "ScalingType": "Linear"},
    ],
    "IntegerParameterRanges": [{"Name": "depth", "MinValue": "1", "MaxValue": "12", "ScalingType": "Linear"}],
}


def tuning_request(aws: Any, name: str, code: Path, strategy: str, trials: int, parallel: int, seed: int,
                   static: dict[str, str]) -> dict[str, Any]:
    from local_sagemaker.testing import CUSTOM_IMAGE

    request = aws.training_request("definition", image=CUSTOM_IMAGE, channels={"train": aws.put_data("bench")})
    definition = {key: request[key] for key in ("RoleArn", "InputDataConfig", "OutputDataConfig", "ResourceConfig",
                                                "StoppingCondition")}
    definition["AlgorithmSpecification"] = {**request["AlgorithmSpecification"],
                                            "MetricDefinitions": [{"Name": "loss", "Regex": "loss=([0-9.eE+-]+)"}]}
    definition["StaticHyperParameters"] = {"sagemaker_program": "train.py", "sagemaker_submit_directory": str(code),
                                           **static}
    return {
        "HyperParameterTuningJobName": name,
        "HyperParameterTuningJobConfig": {
            "Strategy": strategy, "RandomSeed": seed, "ParameterRanges": RANGES,
            "ResourceLimits": {"MaxNumberOfTrainingJobs": trials, "MaxParallelTrainingJobs": parallel},
            "HyperParameterTuningJobObjective": {"Type": "Minimize", "MetricName": "loss"},
        },
        "TrainingJobDefinition": definition,
    }


def run_job(aws: Any, request: dict[str, Any], poll: float = 0.05) -> tuple[dict[str, Any], float]:
    """Creates the tuning job and describes it until it ends: (last answer, wall seconds)."""
    name = request["HyperParameterTuningJobName"]
    start = time.monotonic()
    aws.sagemaker.create_hyper_parameter_tuning_job(**request)
    while True:
        job = aws.sagemaker.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
        if job["HyperParameterTuningJobStatus"] in ("Completed", "Failed", "Stopped"):
            if job["HyperParameterTuningJobStatus"] != "Completed":
                raise RuntimeError(f"{name}: {job['HyperParameterTuningJobStatus']}: {job.get('FailureReason')}")
            return job, time.monotonic() - start
        time.sleep(poll)


def trial_seconds(aws: Any, name: str) -> list[float]:
    pages = aws.sagemaker.get_paginator("list_training_jobs_for_hyper_parameter_tuning_job").paginate(
        HyperParameterTuningJobName=name, PaginationConfig={"PageSize": 100})
    return [(trial["TrainingEndTime"] - trial["CreationTime"]).total_seconds()
            for page in pages for trial in page["TrainingJobSummaries"]]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 seed, 8 trials, a small timed job")
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args(argv)
    trials, seeds, timed_trials = (8, 1, 4) if args.quick else (args.trials, args.seeds, 8)

    from local_sagemaker import LocalSageMaker, LocalSettings
    from local_sagemaker.testing import LocalClients

    with tempfile.TemporaryDirectory() as folder, LocalSageMaker(LocalSettings(execution="run")) as server:
        code = Path(folder)
        (code / "train.py").write_text(SCRIPT, encoding="utf-8")
        aws = LocalClients(server.url, credentials=server.credentials)
        bests: dict[str, list[float]] = {"Bayesian": [], "Random": []}
        for seed in range(seeds):
            for strategy in bests:
                name = f"bench-{strategy.lower()}-{seed}-{int(time.time() * 1000) % 100000}"
                request = tuning_request(aws, name, code, strategy, trials, args.parallel, seed, {})
                job, _ = run_job(aws, request)
                bests[strategy].append(job["BestTrainingJob"]["FinalHyperParameterTuningJobObjectiveMetric"]["Value"])
        name = f"bench-timed-{int(time.time() * 1000) % 100000}"
        request = tuning_request(aws, name, code, "Bayesian", timed_trials, args.parallel, 99,
                                 {"rounds": "8", "pause": "0.25"})
        _, wall = run_job(aws, request)
        ideal = sum(trial_seconds(aws, name)) / args.parallel
    result = {
        "trials": trials, "parallel": args.parallel, "strategy": "Bayesian",
        "best": round(statistics.median(bests["Bayesian"]), 5),
        "median_random_best": round(statistics.median(bests["Random"]), 5),
        "wall_seconds": round(wall, 2), "ideal_seconds": round(ideal, 2), "wall_over_ideal": round(wall / ideal, 3),
        "bayesian_bests": [round(v, 5) for v in bests["Bayesian"]],
        "random_bests": [round(v, 5) for v in bests["Random"]], "seeds": seeds,
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
