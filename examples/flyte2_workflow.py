"""A Flyte 2 workflow with SageMaker steps: built-in XGBoost and a custom training script on the same data, a decision
on their metrics, and (with --tune) a hyperparameter tuning step.

Run it locally, no AWS account and no Flyte cluster, with one command (from the repository root):

    pip install -e '.[local,flyte2]' && python examples/flyte2_workflow.py

`flyte.init()` and `flyte.run(...)` run the workflow in this process; each SageMaker task calls the SageMaker
connector in-process, which starts a local SageMaker inside this process (stopped when it exits) unless
`$SAGEMAKER_PLUGIN_ENDPOINT_URL` or config's `local.endpoint_url` names a running one, and uploads the local folders
given as `flyte.io.Dir` to its S3 before it creates the training job. Ctrl-C stops the training jobs.

On a Flyte 2 cluster the same tasks run unchanged once the connector is deployed (docs/flyte2.md); the data then
lives in S3 and config says `backend: aws`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

import flyte
import flyte.io

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing, too

from plugin.flyte2 import (
    SageMakerBuiltinAlgorithmTask,
    SageMakerCustomTrainingTask,
    SageMakerHyperparameterTuningTask,
)

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "examples" / "data"

# The TrainingJob in proto3 JSON (camelCase keys, int64 as strings), as flytekit's SageMaker tasks write it.
XGBOOST_JOB = {
    "algorithmSpecification": {"algorithmName": "XGBOOST", "algorithmVersion": "1.7-1", "inputMode": "FILE",
                               "inputContentType": "TEXT_CSV"},
    "trainingJobResourceConfig": {"instanceCount": "1", "instanceType": "ml.m5.xlarge", "volumeSizeInGb": "10"},
}
XGBOOST_HYPERPARAMETERS = {"num_round": 20, "objective": "reg:squarederror", "max_depth": 4, "eta": 0.3}

# Your own script: the code travels as a data channel (`code`), so the same task runs the same file on SageMaker (any
# image with Python and numpy) and in the local SageMaker (the command runs on this machine with this Python).
LINEAR_JOB = {
    "algorithmSpecification": {"algorithmName": "CUSTOM", "metricDefinitions": [
        {"name": "train:loss", "regex": "final loss=([0-9\\.]+)"}]},
    "trainingJobResourceConfig": {"instanceCount": "1", "instanceType": "ml.m5.large", "volumeSizeInGb": "10"},
}

train_xgboost = SageMakerBuiltinAlgorithmTask(name="flyte2_workflow.train_xgboost", training_job=XGBOOST_JOB)
train_linear = SageMakerCustomTrainingTask(
    name="flyte2_workflow.train_linear", training_job=LINEAR_JOB,
    image="683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3",
    command=["python", "/opt/ml/input/data/code/linear.py"],
    inputs={"train": flyte.io.Dir, "code": flyte.io.Dir, "static_hyperparameters": dict})
# The XGBoost task tuned: 4 trials, 2 at a time; its input hyperparameter_tuning_job_config is the
# HyperparameterTuningJobConfig (proto3 JSON here; the task file's snake_case form works too).
tune_xgboost = SageMakerHyperparameterTuningTask(name="flyte2_workflow.tune_xgboost", training_task=train_xgboost,
                                                 max_number_of_training_jobs=4, max_parallel_training_jobs=2)
TUNING_CONFIG = {
    "hyperparameterRanges": {"parameterRangeMap": {
        "eta": {"continuousParameterRange": {"minValue": 0.05, "maxValue": 0.5, "scalingType": "LOGARITHMIC"}},
        "max_depth": {"integerParameterRange": {"minValue": "1", "maxValue": "6"}}}},
    "tuningStrategy": "RANDOM",
    "tuningObjective": {"objectiveType": "MINIMIZE", "metricName": "validation:rmse"},
}

# Connector tasks join the workflow through environments of their own (one per image), which the workflow's depends on.
xgboost_env = flyte.TaskEnvironment.from_task("sagemaker_xgboost", train_xgboost, tune_xgboost)
linear_env = flyte.TaskEnvironment.from_task("sagemaker_linear", train_linear)
env = flyte.TaskEnvironment(name="flyte2_workflow", depends_on=[xgboost_env, linear_env])


def decide(xgboost_rmse: float, linear_rmse: float, max_rmse: float) -> str:
    """The better model by RMSE, shipped when good enough."""
    name, rmse = min((("xgboost", xgboost_rmse), ("linear", linear_rmse)), key=lambda pair: pair[1])
    verdict = "deploy" if rmse <= max_rmse else "retrain"
    return (f"{verdict} {name}: xgboost validation:rmse {xgboost_rmse:.4f}, linear train rmse {linear_rmse:.4f} "
            f"(max {max_rmse})")


@env.task
async def training_workflow(max_rmse: float = 1.0) -> str:
    """Both trainings at once, then the decision on their metrics."""
    train = await flyte.io.Dir.from_local(str(DATA / "train"))
    validation = await flyte.io.Dir.from_local(str(DATA / "validation"))
    code = await flyte.io.Dir.from_local(str(ROOT / "examples" / "trainers"))
    (_, xgboost_metrics), (_, linear_metrics) = await asyncio.gather(
        train_xgboost(train=train, validation=validation, static_hyperparameters=XGBOOST_HYPERPARAMETERS),
        train_linear(train=train, code=code, static_hyperparameters={"epochs": 200, "learning_rate": 0.1}))
    return decide(xgboost_metrics["validation:rmse"], linear_metrics["train:loss"] ** 0.5, max_rmse)


@env.task
async def tuning_workflow(max_rmse: float = 1.0) -> str:
    """The XGBoost step tuned: the best trial's model and objective."""
    model, metrics = await tune_xgboost(
        train=await flyte.io.Dir.from_local(str(DATA / "train")),
        validation=await flyte.io.Dir.from_local(str(DATA / "validation")),
        static_hyperparameters={"num_round": 20, "objective": "reg:squarederror"},
        hyperparameter_tuning_job_config=TUNING_CONFIG)
    rmse = metrics["validation:rmse"]
    return f"{'deploy' if rmse <= max_rmse else 'retrain'} the best trial: validation:rmse {rmse:.4f} ({model.path})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--max-rmse", type=float, default=1.0)
    parser.add_argument("--tune", action="store_true", help="run tuning_workflow (a tuning step) instead")
    args = parser.parse_args(argv)
    flyte.init()
    run = flyte.run(tuning_workflow if args.tune else training_workflow, max_rmse=args.max_rmse)
    print(run.outputs()[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
