"""The SageMaker Python SDK 2.x's HyperparameterTuner against `sagemaker-plugin local serve`: fit and wait, the best
training job, attach, and the tuner's analytics (ListTrainingJobsForHyperParameterTuningJob), as a user runs them."""

from __future__ import annotations

import os
from typing import Any

import pytest

from lazy_import import Lazy
from local_sagemaker import PLACEHOLDER_ROLE_ARN
from local_sagemaker.testing import unique_name
from local_serve import BUCKET, REGION, Served, sdk_client_session

os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")
# imported when this module's first test runs, not at collection (tests/support/lazy_import.py says why)
image_uris = Lazy("sagemaker.image_uris")
Estimator = Lazy("sagemaker.estimator", "Estimator")
TrainingInput = Lazy("sagemaker.inputs", "TrainingInput")
ContinuousParameter = Lazy("sagemaker.tuner", "ContinuousParameter")
HyperparameterTuner = Lazy("sagemaker.tuner", "HyperparameterTuner")
IntegerParameter = Lazy("sagemaker.tuner", "IntegerParameter")


@pytest.fixture(scope="module", autouse=True)
def sagemaker_sdk() -> Any:
    return pytest.importorskip("sagemaker")

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def tuned(served: Served, outside_lookups: list[str]) -> dict[str, Any]:
    name = unique_name("sdktune")[:32]
    with pytest.MonkeyPatch.context() as patch:
        session = sdk_client_session(served, patch)
        estimator = Estimator(image_uri=image_uris.retrieve("xgboost", REGION, "1.7-1"), role=PLACEHOLDER_ROLE_ARN,
                              instance_count=1, instance_type="ml.m5.large", sagemaker_session=session,
                              output_path=f"s3://{BUCKET}/sdk-tuning",
                              hyperparameters={"num_round": "5", "objective": "reg:squarederror"})
        tuner = HyperparameterTuner(estimator, "validation:rmse",
                                    {"eta": ContinuousParameter(0.1, 0.5), "max_depth": IntegerParameter(2, 5)},
                                    objective_type="Minimize", max_jobs=4, max_parallel_jobs=2, strategy="Bayesian")
        channels = {channel: TrainingInput(served.put_csv(f"{name}/{channel}"), content_type="text/csv")
                    for channel in ("train", "validation")}
        tuner.fit(channels, job_name=name, wait=True)
        best = tuner.best_training_job()
        attached = HyperparameterTuner.attach(name, sagemaker_session=session)
        frame = tuner.analytics().dataframe()
    return {"name": name, "best": best, "attached": attached, "frame": frame}


def test_the_tuner_fits_and_names_the_trial_with_the_lowest_objective(served: Served, tuned: dict[str, Any]) -> None:
    job = served.client("sagemaker").describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=tuned["name"])
    assert job["HyperParameterTuningJobStatus"] == "Completed"
    frame = tuned["frame"]
    assert len(frame) == 4 and set(frame["TrainingJobStatus"]) == {"Completed"}
    assert tuned["best"] == frame.sort_values("FinalObjectiveValue").iloc[0]["TrainingJobName"]
    assert frame["eta"].between(0.1, 0.5).all() and frame["max_depth"].between(2, 5).all()


def test_attach_rebuilds_the_tuner_from_describe(tuned: dict[str, Any]) -> None:
    attached = tuned["attached"]
    assert attached.objective_metric_name == "validation:rmse" and attached.strategy == "Bayesian"
    assert (attached.max_jobs, attached.max_parallel_jobs) == (4, 2)
    assert set(attached._hyperparameter_ranges) == {"eta", "max_depth"}
    assert attached.estimator.hyperparameters()["num_round"] == "5"
