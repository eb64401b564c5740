"""Flyte workflows with SageMaker steps: make a data set, train built-in XGBoost on it (or tune it), decide on a metric.

Run it locally, no AWS account and no Flyte cluster, with one command (from the repository root):

    pip install -e '.[local,flyte]' && python examples/flyte_workflow.py

It runs the workflow through flytekit's local executor and the SageMaker connector, and prints the decision. The
training step starts a local SageMaker inside this process (stopped when it exits), unless
`$SAGEMAKER_PLUGIN_ENDPOINT_URL` or config's `local.endpoint_url` names a running one. `make_data` writes CSV files on
this machine; the connector uploads them to the local S3 before it creates the training job. `pyflyte run` works the
same way, with nothing to start first:

    pyflyte run examples/flyte_workflow.py training_workflow

`tuning_workflow` (`python examples/flyte_workflow.py --tune`) has a tuning step instead: a SageMaker hyperparameter
tuning job whose trials are the training step's task, and which returns the best trial's model and objective.

On a Flyte cluster the same workflow runs unchanged once the connector is deployed (docs/deployment.md);
the data then lives in Flyte's S3 bucket and config says `backend: aws`.
"""

from __future__ import annotations

import argparse
import random
import sys
import typing
from dataclasses import replace
from pathlib import Path

from flytekit import current_context, task, workflow
from flytekit.types.directory import FlyteDirectory
from flytekit.types.file import FlyteFile

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing, too

from plugin import load_config
from plugin.flyte import SageMakerBuiltinAlgorithmTask, SageMakerHyperparameterTuningTask, configure

# The TrainingJob as flytekit's old SageMaker tasks wrote it: proto3 JSON (camelCase keys, int64 as strings).
TRAINING_JOB = {
    "algorithmSpecification": {
        "algorithmName": "XGBOOST",
        "algorithmVersion": "1.7-1",
        "inputMode": "FILE",
        "inputContentType": "TEXT_CSV",
        # No metricDefinitions: SageMaker refuses them for built-in algorithms. XGBoost publishes its own metrics,
        # train:<eval_metric> and validation:<eval_metric> (rmse for this regression objective).
    },
    "trainingJobResourceConfig": {"instanceCount": "1", "instanceType": "ml.m5.xlarge", "volumeSizeInGb": "10"},
}

HYPERPARAMETERS = {"num_round": 20, "objective": "reg:squarederror", "max_depth": 4, "eta": 0.3}


class DataSet(typing.NamedTuple):
    train: FlyteDirectory
    validation: FlyteDirectory


@task
def make_data(rows: int = 500, seed: int = 20261126) -> DataSet:
    """A small regression data set in XGBoost's CSV format (label first, no header): y = 3*x1 - 2*x2 + 0.5*x3."""
    rng = random.Random(seed)
    root = Path(current_context().working_directory) / "data"
    folders = {}
    for name, count in (("train", rows * 4 // 5), ("validation", rows - rows * 4 // 5)):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        lines = []
        for _ in range(count):
            x = [rng.uniform(-1, 1) for _ in range(3)]
            y = 3 * x[0] - 2 * x[1] + 0.5 * x[2] + rng.gauss(0, 0.1)
            lines.append(",".join(f"{v:.5f}" for v in [y, *x]))
        (folder / f"{name}.csv").write_text("\n".join(lines) + "\n")
        folders[name] = FlyteDirectory(path=str(folder))
    return DataSet(train=folders["train"], validation=folders["validation"])


# A built-in XGBoost training job: inputs train, validation and static_hyperparameters; outputs model and metrics.
train_xgboost = SageMakerBuiltinAlgorithmTask(name="flyte_workflow.train_xgboost", training_job=TRAINING_JOB)


# The same training job tuned: 6 trials, 2 at a time; its input hyperparameter_tuning_job_config is the
# HyperparameterTuningJobConfig (here in flytekit's proto3 JSON form; the task file's snake_case form works too).
tune_xgboost = SageMakerHyperparameterTuningTask(name="flyte_workflow.tune_xgboost", training_task=train_xgboost,
                                                 max_number_of_training_jobs=6, max_parallel_training_jobs=2)
TUNING_CONFIG = {
    "hyperparameterRanges": {"parameterRangeMap": {
        "eta": {"continuousParameterRange": {"minValue": 0.05, "maxValue": 0.5, "scalingType": "LOGARITHMIC"}},
        "max_depth": {"integerParameterRange": {"minValue": "1", "maxValue": "6"}},
        "num_round": {"integerParameterRange": {"minValue": "20", "maxValue": "100"}}}},
    "tuningStrategy": "BAYESIAN",
    "tuningObjective": {"objectiveType": "MINIMIZE", "metricName": "validation:rmse"},
}


@task
def decide(metrics: dict[str, float], model: FlyteFile, max_rmse: float) -> str:
    """Ship the model when its validation RMSE is good enough, else ask for another round."""
    rmse = metrics["validation:rmse"]
    verdict, comparison = ("deploy", "<=") if rmse <= max_rmse else ("retrain", ">")
    # The model stays in S3 (model.download() would fetch it); its URI is what a deployment step needs.
    return f"{verdict}: validation:rmse {rmse:.4f} {comparison} {max_rmse} (model {model.remote_source or model.path})"


@workflow
def training_workflow(rows: int = 500, max_rmse: float = 1.0) -> str:
    data = make_data(rows=rows)
    trained = train_xgboost(train=data.train, validation=data.validation, static_hyperparameters=HYPERPARAMETERS)
    return decide(metrics=trained.metrics, model=trained.model, max_rmse=max_rmse)


@workflow
def tuning_workflow(rows: int = 500, max_rmse: float = 1.0) -> str:
    data = make_data(rows=rows)
    tuned = tune_xgboost(train=data.train, validation=data.validation,
                         static_hyperparameters={"objective": "reg:squarederror"},
                         hyperparameter_tuning_job_config=TUNING_CONFIG)
    return decide(metrics=tuned.objective, model=tuned.model, max_rmse=max_rmse)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rows", type=int, default=500)
    parser.add_argument("--max-rmse", type=float, default=1.0)
    parser.add_argument("--tune", action="store_true", help="run tuning_workflow (a tuning step) instead")
    parser.add_argument("--time-scale", type=float, default=None,
                        help="config's local.time_scale: simulated jobs (local.execution: simulate) run N times "
                             "faster; a job that really trains, as by default, takes its real time")
    args = parser.parse_args(argv)
    if args.time_scale is not None:
        config = load_config()
        configure(replace(config, local=replace(config.local, time_scale=args.time_scale)))
    decision = (tuning_workflow if args.tune else training_workflow)(rows=args.rows, max_rmse=args.max_rmse)
    print(decision)
    return 0


if __name__ == "__main__":
    sys.exit(main())
