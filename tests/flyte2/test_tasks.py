"""Flyte 2's task classes declared and serialized as Flyte 2 deploys them, then read by the connector: the same
arguments, checks and TaskTemplate custom (the message in proto3 JSON) as their flytekit twins, and the same
CreateTrainingJob rendered. No server: the plugin renders requests without calling AWS."""

from __future__ import annotations

import json
from typing import Any, Optional

import pytest

pytest.importorskip("flyte.connectors")

import flyte.io
from google.protobuf import json_format

import fly2_service
from handlers.errors import InputError
from plugin import TrainingJobPlugin, load_task
from plugin.config import parse_config
from plugin.connectors.meta import UNREADABLE_META
from plugin.flyte2 import (
    SageMakerBuiltinAlgorithmTask,
    SageMakerCustomTrainingTask,
    SageMakerHyperparameterTuningTask,
    SageMakerJobMeta,
)
from plugin.flyte2.connector import inputs_from_values, task_from_template
from plugin.message import TrainingJob
from plugin.meta import ResourceMeta
from plugin.tuning_message import HyperparameterTuningJob

XGBOOST_JOB = {
    "algorithmSpecification": {"algorithmName": "XGBOOST", "algorithmVersion": "1.7-1"},
    "trainingJobResourceConfig": {"instanceCount": "1", "instanceType": "ml.m5.xlarge", "volumeSizeInGb": "10"},
}
CUSTOM_JOB = {
    "algorithmSpecification": {"algorithmName": "CUSTOM", "inputMode": "FILE",
                               "metricDefinitions": [{"name": "loss", "regex": "loss=([0-9.]+)"}]},
    "trainingJobResourceConfig": {"instanceCount": "2", "instanceType": "ml.m5.large", "volumeSizeInGb": "30"},
}
IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/trainer:1.0"
TUNING_CONFIG = {"hyperparameterRanges": {"parameterRangeMap": {
    "eta": {"continuousParameterRange": {"minValue": 0.1, "maxValue": 0.5}}}},
    "tuningStrategy": "RANDOM", "tuningObjective": {"objectiveType": "MINIMIZE", "metricName": "validation:rmse"}}

builtin_task = SageMakerBuiltinAlgorithmTask(name="tests.fly2.xgboost", training_job=XGBOOST_JOB)
custom_task = SageMakerCustomTrainingTask(
    name="tests.fly2.custom", training_job=CUSTOM_JOB, image=IMAGE, command=["python", "-m", "trainer"],
    args=["--epochs", "3"], env={"LOG_LEVEL": "info"},
    inputs={"train": flyte.io.File, "static_hyperparameters": dict, "extra": Optional[flyte.io.Dir]})  # noqa: UP045
tuning_task = SageMakerHyperparameterTuningTask(name="tests.fly2.tune", training_task=custom_task,
                                                max_number_of_training_jobs=4, max_parallel_training_jobs=2)


@pytest.fixture(scope="module")
def plugin() -> TrainingJobPlugin:
    return TrainingJobPlugin(parse_config({"backend": "aws", "region": "eu-west-1",
                                           "role_arn": "arn:aws:iam::123456789012:role/SageMakerRole"}))


def custom_of(template: Any) -> dict[str, Any]:
    return json_format.MessageToDict(template.custom)


def test_the_builtin_template_is_the_flytekit_twins() -> None:
    template = fly2_service.serialized(builtin_task)
    assert template.type == "sagemaker_training_job_task"
    assert custom_of(template) == TrainingJob.parse(XGBOOST_JOB).to_proto3_json()  # proto3 JSON, int64 as strings
    inputs = {v.key: v.value for v in template.interface.inputs.variables}
    outputs = {v.key: v.value for v in template.interface.outputs.variables}
    assert set(inputs) == {"train", "validation", "static_hyperparameters"}
    assert inputs["train"].type.blob.dimensionality == 1  # MULTIPART: a flyte.io.Dir
    assert set(outputs) == {"model", "metrics"}
    assert list(builtin_task.native_interface.outputs) == ["model", "metrics"]  # a local call unpacks them so
    assert outputs["model"].type.blob.dimensionality == 0  # SINGLE: a flyte.io.File
    assert outputs["metrics"].type.map_value_type.simple == 2  # FLOAT


def test_the_custom_template_carries_the_container_and_renders(plugin: TrainingJobPlugin) -> None:
    template = fly2_service.serialized(custom_task)
    assert template.type == "sagemaker_custom_training_job_task"
    assert template.container.image == IMAGE
    task = task_from_template(template, {"train": flyte.io.File(path="s3://data/train.csv"), "extra": None,
                                         "static_hyperparameters": {"epochs": 3.0, "rate": 0.5}},
                              "s3://flyte-bucket/metadata/abc", config=plugin.config)
    assert task["container"] == {"image": IMAGE, "command": ["python", "-m", "trainer"], "args": ["--epochs", "3"],
                                 "env": {"LOG_LEVEL": "info"}}
    assert task["inputs"] == {"train": "s3://data/train.csv", "static_hyperparameters": {"epochs": 3, "rate": 0.5}}
    request = plugin.render(load_task(task, ignore_unknown=True)).request
    algorithm = request["AlgorithmSpecification"]
    assert algorithm["TrainingImage"] == IMAGE
    assert algorithm["ContainerEntrypoint"] == ["python", "-m", "trainer"]
    assert algorithm["ContainerArguments"] == ["--epochs", "3"]
    assert request["Environment"] == {"LOG_LEVEL": "info"}
    assert [c["ChannelName"] for c in request["InputDataConfig"]] == ["train"]  # Optional left out: no channel


def test_the_tuning_template_is_the_tuning_message() -> None:
    template = fly2_service.serialized(tuning_task)
    assert template.type == "sagemaker_hyperparameter_tuning_job_task"
    assert custom_of(template) == tuning_task.tuning_job.to_proto3_json()
    assert HyperparameterTuningJob.read(custom_of(template))[0].max_number_of_training_jobs == 4
    assert template.container.image == IMAGE  # the trials' image
    inputs = {v.key for v in template.interface.inputs.variables}
    assert inputs == {"train", "extra", "static_hyperparameters", "hyperparameter_tuning_job_config"}
    task = task_from_template(template, {"train": "s3://data/train.csv",
                                         "static_hyperparameters": {"epochs": 3},
                                         "hyperparameter_tuning_job_config": TUNING_CONFIG})
    assert task["tuning_config"] == TUNING_CONFIG and "hyperparameter_tuning_job_config" not in task["inputs"]


def test_declaration_errors_are_the_twins() -> None:
    with pytest.raises(InputError, match=r"algorithm_name.*SageMakerCustomTrainingTask"):
        SageMakerBuiltinAlgorithmTask(name="t2.bad1", training_job=CUSTOM_JOB)
    with pytest.raises(InputError, match="SageMakerBuiltinAlgorithmTask"):
        SageMakerCustomTrainingTask(name="t2.bad2", training_job=XGBOOST_JOB, image=IMAGE)
    with pytest.raises(InputError, match=r"container\.image"):
        SageMakerCustomTrainingTask(name="t2.bad3", training_job=CUSTOM_JOB, image="")
    with pytest.raises(InputError, match="instanceTyp"):
        SageMakerBuiltinAlgorithmTask(name="t2.bad4", training_job={
            "algorithmSpecification": {"algorithmName": "XGBOOST"},
            "trainingJobResourceConfig": {"instanceTyp": "ml.m5.xlarge"}})
    with pytest.raises(InputError, match=r"inputs\.train"):
        SageMakerBuiltinAlgorithmTask(name="t2.bad5", training_job=XGBOOST_JOB, inputs={"validation": flyte.io.Dir})
    with pytest.raises(InputError) as caught:
        SageMakerBuiltinAlgorithmTask(name="t2.bad6", training_job=XGBOOST_JOB,
                                      inputs={"train": int, "static_hyperparameters": str})
    assert {p.path for p in caught.value.problems} == {"inputs.train", "inputs.static_hyperparameters"}
    assert "flyte.io.File, flyte.io.Dir or str" in str(caught.value)
    with pytest.raises(InputError, match="training_task"):
        SageMakerHyperparameterTuningTask(name="t2.bad7", training_task="nope",  # type: ignore[arg-type]
                                          max_number_of_training_jobs=2, max_parallel_training_jobs=1)


def test_optional_inputs_default_to_none_and_others_are_required() -> None:
    interface = custom_task.native_interface
    assert interface.inputs["extra"][1] is None
    assert sorted(interface.required_inputs()) == ["static_hyperparameters", "train"]


def test_python_values_become_channels_or_problems_naming_the_input() -> None:
    assert inputs_from_values({"b": flyte.io.Dir(path="s3://x/b/"), "a": "file:///data/a"}) == {
        "a": "/data/a", "b": "s3://x/b/"}
    with pytest.raises(InputError) as caught:
        inputs_from_values({"train": 3, "static_hyperparameters": ["eta"]})
    assert {p.path for p in caught.value.problems} == {"inputs.train", "inputs.static_hyperparameters"}


def test_the_meta_is_the_shared_json() -> None:
    meta = SageMakerJobMeta(job=ResourceMeta(job_name="j-1", region="us-east-1", created_at=1.5, fingerprint="f"))
    encoded = meta.encode()
    assert set(json.loads(encoded)) == {"job", "error"}
    assert SageMakerJobMeta.decode(encoded) == meta
    assert SageMakerJobMeta.decode(b"\x80garbage").error.startswith(UNREADABLE_META)
