"""Workflows run locally by flytekit, the SageMaker steps through the connector, on the local SageMaker.

The example workflow end to end (its metrics reach the downstream task) and a workflow with the custom training task.
The example's one documented command in a fresh process is tests/test_docs.py's (its output is the page's sample).
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

pytest.importorskip("flytekit")
pytest.importorskip("moto")

from flytekit import task, workflow
from flytekit.types.file import FlyteFile

from local_sagemaker import LocalSageMaker, LocalSettings
from local_sagemaker.testing import LocalClients
from plugin.config import parse_config
from plugin.flyte import SageMakerCustomTrainingTask, configure

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "flyte_workflow.py"
DECISION = re.compile(r"^(deploy|retrain): validation:rmse (\d+\.\d{4}) (<=|>) ([0-9.]+) "
                      r"\(model (s3://sagemaker-plugin-local/outputs/[^ ]+/output/model\.tar\.gz)\)$")

# of the module's `server` and `aws` (tests/conftest.py)
LOCAL_SETTINGS = LocalSettings(execution="simulate", time_scale=20)


@pytest.fixture(autouse=True)
def shared_plugin(server: LocalSageMaker, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("SAGEMAKER_PLUGIN_ENDPOINT_URL", raising=False)  # it would win over config's endpoint
    configure(parse_config({"backend": "local", "local": {"endpoint_url": server.url},
                            "rate_limits": {"create_per_second": 0, "read_per_second": 0}}))
    yield
    configure()


@pytest.fixture(scope="module")
def example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("flyte_workflow", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def job_of(aws: LocalClients, model_uri: str) -> dict[str, Any]:
    name = model_uri.split("/outputs/", 1)[1].split("/", 1)[0]
    return dict(aws.sagemaker.describe_training_job(TrainingJobName=name))


def decided(decision: str, aws: LocalClients) -> tuple[str, str, str, dict[str, Any]]:
    """The decision's verdict, rmse and model, and the training job that made the model."""
    match = DECISION.match(decision)
    assert match, decision
    verdict, rmse, _, _, model = match.groups()
    return verdict, rmse, model, job_of(aws, model)


def test_example_workflow_metrics_reach_the_downstream_task(example: ModuleType, aws: LocalClients) -> None:
    verdict, rmse, model, job = decided(example.training_workflow(rows=200, max_rmse=1.0), aws)
    assert job["TrainingJobStatus"] == "Completed"
    metrics = {m["MetricName"]: m["Value"] for m in job["FinalMetricDataList"]}
    assert float(rmse) == pytest.approx(metrics["validation:rmse"], abs=1e-4)
    assert verdict == ("deploy" if metrics["validation:rmse"] <= 1.0 else "retrain")
    assert job["ModelArtifacts"]["S3ModelArtifacts"] == model
    assert job["HyperParameters"] == {"num_round": "20", "objective": "reg:squarederror", "max_depth": "4",
                                      "eta": "0.3"}
    # make_data's CSV files, written on this machine, were uploaded to the local S3 by the plugin
    for channel in job["InputDataConfig"]:
        uri = channel["DataSource"]["S3DataSource"]["S3Uri"]
        bucket, prefix = uri[len("s3://"):].split("/", 1)
        keys = [o["Key"] for o in aws.s3.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]]
        assert [k.rsplit("/", 1)[-1] for k in keys] == [f"{channel['ChannelName']}.csv"]
        body = aws.s3.get_object(Bucket=bucket, Key=keys[0])["Body"].read().decode()
        assert len(body.splitlines()) == (160 if channel["ChannelName"] == "train" else 40)


def test_example_tuning_workflow_decides_on_the_best_trial(example: ModuleType, aws: LocalClients) -> None:
    _, rmse, _, trial = decided(example.tuning_workflow(rows=200, max_rmse=1.0), aws)
    tuning_name = trial["TuningJobArn"].rsplit("/", 1)[1]
    tuning = aws.sagemaker.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=tuning_name)
    assert tuning["HyperParameterTuningJobStatus"] == "Completed"
    assert tuning["HyperParameterTuningJobConfig"]["ResourceLimits"]["MaxNumberOfTrainingJobs"] == 6
    best = tuning["BestTrainingJob"]
    assert best["TrainingJobName"] == trial["TrainingJobName"]
    assert float(rmse) == pytest.approx(best["FinalHyperParameterTuningJobObjectiveMetric"]["Value"], abs=1e-4)
    assert set(best["TunedHyperParameters"]) == {"eta", "max_depth", "num_round"}
    assert trial["HyperParameters"]["objective"] == "reg:squarederror"


custom_training = SageMakerCustomTrainingTask(
    name="tests.fly.workflow.custom",
    training_job={"algorithmSpecification": {"metricDefinitions": [{"name": "loss", "regex": "loss=([0-9.]+)"}]},
                  "trainingJobResourceConfig": {"instanceCount": "1", "instanceType": "ml.m5.xlarge"}},
    image="123456789012.dkr.ecr.us-east-1.amazonaws.com/team/trainer:1.0",
    command=["python", "-m", "trainer"], args=["--epochs", "3"], env={"LOG_LEVEL": "info"},
    inputs={"train": FlyteFile, "static_hyperparameters": dict},
)


@task
def write_rows() -> FlyteFile:
    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"fly-rows-{os.getpid()}.csv"
    path.write_text("1,2,3\n4,5,6\n")
    return FlyteFile(str(path))


@task
def report(metrics: dict[str, float], model: FlyteFile) -> str:
    return f"loss {metrics['loss']:.4f} model {model.remote_source}"


@workflow
def custom_workflow() -> str:
    trained = custom_training(train=write_rows(), static_hyperparameters={"epochs": 3, "lr": 0.01})
    return report(metrics=trained.metrics, model=trained.model)


def test_custom_training_task_in_a_local_workflow(aws: LocalClients) -> None:
    result = custom_workflow()
    match = re.fullmatch(r"loss (\d+\.\d{4}) model (s3://\S+/model\.tar\.gz)", result)
    assert match, result
    job = job_of(aws, match.group(2))
    assert job["AlgorithmSpecification"]["TrainingImage"] == custom_training.get_container(None).image
    assert float(match.group(1)) == pytest.approx(job["FinalMetricDataList"][0]["Value"], abs=1e-4)
    assert job["HyperParameters"] == {"epochs": "3", "lr": "0.01"}
