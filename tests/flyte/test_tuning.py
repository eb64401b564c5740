"""The Flyte tuning task: its TaskTemplate as flytekit serializes it, turned back into a tuning task and rendered into
CreateHyperParameterTuningJob (no server); and the connector serving the third task type on a local SageMaker."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

pytest.importorskip("flytekit")

from flytekit.extend.backend.base_connector import ConnectorRegistry
from flytekit.models.core import identifier
from flytekit.models.task import TaskExecutionMetadata

from fly_service import literal_map, serialized
from handlers.errors import InputError
from local_sagemaker import LocalSageMaker, LocalSettings
from plugin.config import parse_config
from plugin.flyte import (
    SageMakerBuiltinAlgorithmTask,
    SageMakerHyperparameterTuningTask,
    SageMakerTrainingConnector,
    task_from_template,
)
from plugin.jobs.tuning_job import TuningJobPlugin
from plugin.task import TUNING_TASK
from plugin_setup import make_config
from xgboost_hosts import REGRESSION

pytestmark = pytest.mark.timeout(240)
LOCAL_SETTINGS = LocalSettings(execution="run", stop_seconds=1)

XGBOOST_JOB = {"algorithmSpecification": {"algorithmName": "XGBOOST", "algorithmVersion": "1.7-1"},
               "trainingJobResourceConfig": {"instanceCount": "1", "instanceType": "ml.m5.large"}}
TUNING_CONFIG = {"hyperparameterRanges": {"parameterRangeMap": {
    "eta": {"continuousParameterRange": {"minValue": 0.1, "maxValue": 0.5}},
    "max_depth": {"integerParameterRange": {"minValue": "2", "maxValue": "5"}}}},
    "tuningStrategy": "RANDOM", "tuningObjective": {"objectiveType": "MINIMIZE", "metricName": "validation:rmse"}}

trainer = SageMakerBuiltinAlgorithmTask(name="tests.fly.tuning.trainer", training_job=XGBOOST_JOB)
tuner = SageMakerHyperparameterTuningTask(name="tests.fly.tuning", training_task=trainer,
                                          max_number_of_training_jobs=2, max_parallel_training_jobs=2)


def execution_metadata(name: str = "f3a9c2e1b0") -> Any:
    project, domain = "flytesnacks", "development"
    task_id = identifier.Identifier(identifier.ResourceType.TASK, project, domain, "tests.fly.tuning", "v1")
    workflow = identifier.WorkflowExecutionIdentifier(project, domain, name)
    ids = identifier.TaskExecutionIdentifier(task_id, identifier.NodeExecutionIdentifier("n1", workflow), 0)
    metadata = TaskExecutionMetadata(ids, f"{project}-{domain}", {}, {}, "default", {}, None)
    return TaskExecutionMetadata.from_flyte_idl(metadata.to_flyte_idl())


def inputs(**changes: Any) -> dict[str, Any]:
    return {"train": "s3://bucket/train/", "validation": "s3://bucket/validation/",
            "static_hyperparameters": {"num_round": 3, "objective": "reg:squarederror"},
            "hyperparameter_tuning_job_config": TUNING_CONFIG, **changes}


def test_the_template_renders_a_tuning_request() -> None:
    template = serialized(tuner)
    assert template.type == TUNING_TASK
    assert template.custom["trainingJob"] == XGBOOST_JOB | {"trainingJobResourceConfig": {
        "instanceCount": "1", "instanceType": "ml.m5.large"}}
    assert template.custom["maxNumberOfTrainingJobs"] == "2"
    assert set(tuner.python_interface.outputs) == {"model", "objective", "best_hyperparameters"}
    task = task_from_template(template, literal_map(tuner, inputs()), "s3://out/", execution_metadata())
    plugin = TuningJobPlugin(parse_config({"backend": "aws", "region": "us-east-1",
                                           "role_arn": "arn:aws:iam::123456789012:role/SageMakerRole",
                                           "output_prefix": "s3://bucket/out"}))
    request = plugin.render(task).request
    assert request["HyperParameterTuningJobName"].startswith("flytesnacks-development-")
    config = request["HyperParameterTuningJobConfig"]
    assert config["Strategy"] == "Random" and config["ResourceLimits"]["MaxNumberOfTrainingJobs"] == 2
    assert {r["Name"] for r in config["ParameterRanges"]["ContinuousParameterRanges"]} == {"eta"}
    assert request["TrainingJobDefinition"]["StaticHyperParameters"] == {"num_round": "3",
                                                                         "objective": "reg:squarederror"}


def test_a_bad_tuning_config_input_is_named() -> None:
    template = serialized(tuner)
    bad = dict(TUNING_CONFIG, tuningStrategy="GRIDDY")
    task = task_from_template(template, literal_map(tuner, inputs(hyperparameter_tuning_job_config=bad)))
    plugin = TuningJobPlugin(parse_config({"backend": "local"}))
    with pytest.raises(InputError, match=r"tuning_config\.tuning_strategy"):
        plugin.render(task)


def test_the_tuning_task_wants_a_training_task() -> None:
    with pytest.raises(InputError, match="training_task"):
        SageMakerHyperparameterTuningTask(name="x", training_task="nope",  # type: ignore[arg-type]
                                          max_number_of_training_jobs=1, max_parallel_training_jobs=1)


def test_the_connector_serves_tuning_on_a_local_sagemaker(server: LocalSageMaker) -> None:
    assert isinstance(ConnectorRegistry.get_connector(TUNING_TASK), SageMakerTrainingConnector)
    plugin = TuningJobPlugin(make_config(server.url))
    connector = SageMakerTrainingConnector(TUNING_TASK, plugin=plugin)
    values = inputs(train=str(REGRESSION["train"]), validation=str(REGRESSION["validation"]))
    metadata = execution_metadata(name=uuid.uuid4().hex[:12])
    meta = connector.create(serialized(tuner), inputs=literal_map(tuner, values), task_execution_metadata=metadata)
    assert meta.job is not None, meta.error
    deadline = time.monotonic() + 200
    while True:
        resource = connector.get(meta)
        if resource.phase in (3, 4, 5, 8) or time.monotonic() > deadline:  # flyteidl's terminal phases
            break
        time.sleep(0.5)
    assert resource.phase == 3, resource.message  # SUCCEEDED
    literals = resource.outputs.literals
    assert literals["model"].scalar.blob.uri.endswith("/output/model.tar.gz")
    assert list(literals["objective"].map.literals) == ["validation:rmse"]
    assert set(literals["best_hyperparameters"].map.literals) == {"eta", "max_depth"}
