"""v3's HyperparameterTuner around a ModelTrainer of the built-in XGBoost against `local serve`: the tuning job
runs its trials for real and names the best."""

from __future__ import annotations

from typing import Any

from local_sagemaker import PLACEHOLDER_ROLE_ARN
from local_serve import BUCKET, REGION, Served
from sdk_v3_setup import CSV, require_sdk_v3

require_sdk_v3()
from sagemaker.core import image_uris  # noqa: E402
from sagemaker.core.parameter import ContinuousParameter, IntegerParameter  # noqa: E402
from sagemaker.core.training.configs import Compute, InputData, OutputDataConfig  # noqa: E402
from sagemaker.train import ModelTrainer  # noqa: E402
from sagemaker.train.tuner import HyperparameterTuner  # noqa: E402


def test_the_tuner_runs_its_trials_and_names_the_best(served: Served, v3_session: Any) -> None:
    for channel in ("train", "validation"):
        served.client("s3").put_object(Bucket=BUCKET, Key=f"sdk-v3-tuning/{channel}/data.csv", Body=CSV.encode())
    trainer = ModelTrainer(
        training_image=image_uris.retrieve("xgboost", REGION, "1.7-1"),
        role=PLACEHOLDER_ROLE_ARN,
        sagemaker_session=v3_session,
        compute=Compute(instance_type="ml.m5.large", instance_count=1),
        hyperparameters={"num_round": "5", "objective": "reg:squarederror"},
        output_data_config=OutputDataConfig(s3_output_path=f"s3://{BUCKET}/sdk-v3-tuning-output"),
        base_job_name="sdk-v3-tuned",
    )
    tuner = HyperparameterTuner(
        model_trainer=trainer,
        objective_metric_name="validation:rmse",
        objective_type="Minimize",
        hyperparameter_ranges={"eta": ContinuousParameter(0.1, 0.5), "max_depth": IntegerParameter(2, 5)},
        strategy="Random",
        max_jobs=2,
        max_parallel_jobs=2,
    )
    tuner.tune(inputs=[InputData(channel_name=channel, data_source=f"s3://{BUCKET}/sdk-v3-tuning/{channel}/",
                                 content_type="text/csv") for channel in ("train", "validation")], wait=True)
    described = tuner.describe()
    assert described.hyper_parameter_tuning_job_status == "Completed"
    assert described.training_job_status_counters.completed == 2
    trials = served.client("sagemaker").list_training_jobs_for_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=described.hyper_parameter_tuning_job_name)["TrainingJobSummaries"]
    best = min(trials, key=lambda trial: trial["FinalHyperParameterTuningJobObjectiveMetric"]["Value"])
    assert tuner.best_training_job() == best["TrainingJobName"]
