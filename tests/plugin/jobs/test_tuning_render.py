"""Tuning tasks: the two messages in every encoding (fixtures written by protobuf itself), and the
CreateHyperParameterTuningJob request built from a tuning task."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from botocore.validate import ParamValidator

from handlers.errors import InputError
from handlers.job_kinds import TRAINING, TUNING
from handlers.request import FINGERPRINT_TAG, fingerprint
from handlers.service_model import member_shape, operation_model, validate_request
from plugin.config import Config
from plugin.jobs.requests import check, render
from plugin.task import TUNING_TASK, load_task
from plugin.tuning_message import (
    HyperparameterScalingType,
    HyperparameterTuningJob,
    HyperparameterTuningJobConfig,
    HyperparameterTuningStrategy,
    TrainingJobEarlyStoppingType,
)

ROOT = Path(__file__).resolve().parents[3]
PROTO3 = ROOT / "tests" / "data" / "proto3"
ENCODINGS = ("omitted", "included", "snake", "numbers")
LOCAL = Config(backend="local")
RANGES = "tuning_config.hyperparameter_ranges.parameter_range_map"


def load(name: str, encoding: str) -> Any:
    return json.loads((PROTO3 / f"{name}.{encoding}.json").read_text())


def tuning_task(**changes: Any) -> dict[str, Any]:
    """The fixtures as a task; booster (which SageMaker's XGBoost does not tune) left out of the ranges."""
    config = load("tuning_config", "omitted")
    del config["hyperparameterRanges"]["parameterRangeMap"]["booster"]
    task: dict[str, Any] = {
        "task_type": TUNING_TASK,
        "hyperparameter_tuning_job": load("tuning_job", "omitted"),
        "tuning_config": config,
        "inputs": {"train": "s3://bucket/train/", "validation": "s3://bucket/validation/",
                   "static_hyperparameters": {"num_round": 10, "objective": "reg:squarederror", "eta": 0.3}},
        "execution": {"project": "flytesnacks", "domain": "development", "name": "f3a9c2e1b0aa77", "node_id": "n0"},
    }
    task.update(changes)
    return task


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_every_encoding_of_both_messages_parses_to_the_same_value(encoding: str) -> None:
    job = HyperparameterTuningJob.parse(load("tuning_job", encoding))
    config = HyperparameterTuningJobConfig.parse(load("tuning_config", encoding))
    assert job == HyperparameterTuningJob.parse(load("tuning_job", "omitted"))
    assert config == HyperparameterTuningJobConfig.parse(load("tuning_config", "omitted"))
    assert job.max_number_of_training_jobs == 12 and job.max_parallel_training_jobs == 3
    ranges = config.hyperparameter_ranges.parameter_range_map
    assert set(ranges) == {"eta", "max_depth", "min_child_weight", "booster"}
    assert ranges["eta"].continuous_parameter_range is not None
    assert ranges["eta"].continuous_parameter_range.scaling_type == HyperparameterScalingType.LOGARITHMIC
    assert ranges["max_depth"].integer_parameter_range is not None
    assert ranges["max_depth"].integer_parameter_range.max_value == 8
    assert ranges["booster"].categorical_parameter_range is not None
    assert ranges["booster"].categorical_parameter_range.values == ("gbtree", "dart")
    assert config.tuning_strategy == HyperparameterTuningStrategy.RANDOM
    assert config.training_job_early_stopping_type == TrainingJobEarlyStoppingType.AUTO


@pytest.mark.parametrize("name, cls", [("tuning_job", HyperparameterTuningJob),
                                       ("tuning_config", HyperparameterTuningJobConfig)])
def test_messages_serialize_back_to_what_protobuf_wrote(name: str, cls: Any) -> None:
    message = cls.parse(load(name, "numbers"))
    assert message.to_proto3_json() == load(name, "omitted")
    assert message.to_proto3_json(including_defaults=True) == load(name, "included")


def test_defaults_round_trip() -> None:
    config = HyperparameterTuningJobConfig.parse(load("tuning_config_defaults", "included"))
    assert config == HyperparameterTuningJobConfig.parse(load("tuning_config_defaults", "omitted"))
    assert HyperparameterTuningJobConfig.parse(config.to_proto3_json()) == config


def test_doubles_as_strings_and_bad_values_are_named() -> None:
    config = HyperparameterTuningJobConfig.parse({"hyperparameterRanges": {"parameterRangeMap": {
        "eta": {"continuousParameterRange": {"minValue": "1e-3", "maxValue": 1}}}}})
    eta = config.hyperparameter_ranges.parameter_range_map["eta"].continuous_parameter_range
    assert eta is not None and (eta.min_value, eta.max_value) == (0.001, 1.0)
    with pytest.raises(InputError) as error:
        HyperparameterTuningJobConfig.parse({"hyperparameterRanges": {"parameterRangeMap": {
            "eta": {"continuousParameterRange": {"minValue": "low"}},
            "depth": {"integerParameterRange": {"maxValue": 2.5}}}},
            "tuningObjective": {"objectiveType": 7, "metricNam": "x"}})
    paths = [p.path for p in error.value.problems]
    prefix = "tuning_config.hyperparameter_ranges.parameter_range_map"
    assert f"{prefix}.eta.continuous_parameter_range.min_value" in paths
    assert f"{prefix}.depth.integer_parameter_range.max_value" in paths
    assert "tuning_config.tuning_objective.objective_type" in paths
    assert "tuning_config.tuning_objective.metricNam" in paths


def test_the_request_from_a_tuning_task() -> None:
    rendered = render(load_task(tuning_task()), LOCAL)
    request = rendered.request
    assert validate_request("CreateHyperParameterTuningJob", request) == []
    ParamValidator().validate(request, operation_model("CreateHyperParameterTuningJob").input_shape)
    name = rendered.job_name
    assert name == request["HyperParameterTuningJobName"]
    limit = member_shape("CreateHyperParameterTuningJob", "HyperParameterTuningJobName").metadata["max"]
    assert len(name) <= limit < 63 and name.startswith("flytesnacks-development-")
    assert re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,31}", name)
    config = request["HyperParameterTuningJobConfig"]
    assert config["Strategy"] == "Random"
    assert config["HyperParameterTuningJobObjective"] == {"Type": "Minimize", "MetricName": "validation:rmse"}
    assert config["ResourceLimits"] == {"MaxNumberOfTrainingJobs": 12, "MaxParallelTrainingJobs": 3}
    assert config["TrainingJobEarlyStoppingType"] == "Auto"
    ranges = config["ParameterRanges"]
    assert {"Name": "eta", "MinValue": "0.05", "MaxValue": "0.5", "ScalingType": "Logarithmic"} in \
        ranges["ContinuousParameterRanges"]
    assert ranges["IntegerParameterRanges"] == [{"Name": "max_depth", "MinValue": "2", "MaxValue": "8",
                                                 "ScalingType": "Linear"}]
    assert "CategoricalParameterRanges" not in ranges
    definition = request["TrainingJobDefinition"]
    # the tuned eta is left out of the statics, with a warning naming it
    assert definition["StaticHyperParameters"] == {"num_round": "10", "objective": "reg:squarederror"}
    assert [w.path for w in rendered.warnings] == ["inputs.static_hyperparameters.eta"]
    assert "MetricDefinitions" not in definition["AlgorithmSpecification"]
    assert [c["ChannelName"] for c in definition["InputDataConfig"]] == ["train", "validation"]
    tags = {t["Key"]: t["Value"] for t in request["Tags"]}
    assert tags[FINGERPRINT_TAG] == fingerprint(request)
    # the same identity gives the same name and request
    assert render(load_task(tuning_task()), LOCAL).request == request


def test_a_trial_is_rendered_by_the_training_table() -> None:
    """The definition's members are the training request's, less the name and tags, HyperParameters renamed."""
    task = tuning_task()
    training = {"task_type": "sagemaker_training_job_task", "training_job": task["hyperparameter_tuning_job"][
        "trainingJob"], "inputs": {**task["inputs"], "static_hyperparameters": {
            "num_round": 10, "objective": "reg:squarederror"}}, "execution": task["execution"]}
    trial = render(load_task(training), LOCAL).request
    definition = render(load_task(task), LOCAL).request["TrainingJobDefinition"]
    expected = {k: v for k, v in trial.items() if k not in ("TrainingJobName", "Tags", "HyperParameters")}
    expected["StaticHyperParameters"] = trial["HyperParameters"]
    assert definition == expected


def test_custom_trials_carry_metric_definitions() -> None:
    task = tuning_task(
        hyperparameter_tuning_job={"training_job": {
            "algorithm_specification": {"algorithm_name": "CUSTOM",
                                        "metric_definitions": [{"name": "loss", "regex": "loss=([0-9.]+)"}]},
            "training_job_resource_config": {"instance_type": "ml.m5.large"}},
            "max_number_of_training_jobs": 2, "max_parallel_training_jobs": 1},
        tuning_config={"hyperparameter_ranges": {"parameter_range_map": {
            "lr": {"continuous_parameter_range": {"min_value": 0.001, "max_value": 0.1, "scaling_type": 2}},
            "optimizer": {"categorical_parameter_range": {"values": ["adam", "sgd"]}}}},
            "tuning_objective": {"metric_name": "loss"}},
        container={"image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/trainer:1.0"},
        inputs={"train": "s3://bucket/train/"}, execution=None)
    task.pop("execution")
    rendered = render(load_task(task), LOCAL)
    spec = rendered.request["TrainingJobDefinition"]["AlgorithmSpecification"]
    assert spec["MetricDefinitions"] == [{"Name": "loss", "Regex": "loss=([0-9.]+)"}]
    ranges = rendered.request["HyperParameterTuningJobConfig"]["ParameterRanges"]
    assert ranges["CategoricalParameterRanges"] == [{"Name": "optimizer", "Values": ["adam", "sgd"]}]
    assert rendered.job_name.startswith("trainer-")
    assert len(rendered.job_name) <= 32


def test_service_model_problems_come_back_at_task_paths() -> None:
    task = tuning_task(job_name="x" * 40, tags={"team": "a" * 300})
    with pytest.raises(InputError) as error:
        check(task, LOCAL)
    by_path = {p.path: p.message for p in error.value.problems}
    assert "HyperParameterTuningJobName" in by_path["job_name"]
    assert "tags.team" in by_path


def test_a_trial_problem_is_at_its_tuning_path() -> None:
    task = tuning_task()
    task["hyperparameter_tuning_job"] = json.loads(json.dumps(task["hyperparameter_tuning_job"]))
    task["hyperparameter_tuning_job"]["trainingJob"]["trainingJobResourceConfig"]["instanceType"] = "ml.nope"
    task["inputs"]["static_hyperparameters"]["num_round"] = -3
    with pytest.raises(InputError) as error:
        check(task, LOCAL)
    paths = [p.path for p in error.value.problems]
    assert "hyperparameter_tuning_job.training_job.training_job_resource_config.instance_type" in paths
    assert "inputs.static_hyperparameters.num_round" in paths


def test_tuned_values_are_not_checked_as_statics() -> None:
    """num_round is required by XGBoost: tuning it (and leaving it out of the statics) is valid."""
    task = tuning_task(tuning_config={"hyperparameter_ranges": {"parameter_range_map": {
        "num_round": {"integer_parameter_range": {"min_value": 5, "max_value": 20}}}},
        "tuning_objective": {"metric_name": "validation:rmse"}})
    task["inputs"]["static_hyperparameters"] = {"objective": "reg:squarederror"}
    request = render(load_task(task), LOCAL).request
    assert "num_round" not in request["TrainingJobDefinition"]["StaticHyperParameters"]


def test_a_rendered_request_names_its_kind_and_both_kinds_resolve_alike(tmp_path: Path) -> None:
    """One render pipeline: the job kind (not a member name) tells what a request creates; the name, role, output
    prefix and uploads of a tuning job are resolved as a training job's are, and refused by the same words."""
    data = tmp_path / "train.csv"
    data.write_text("1,2\n")
    task = tuning_task(job_name="tune-me", inputs={**tuning_task()["inputs"], "train": str(data)})
    tuned = render(load_task(task), LOCAL)
    trained = render(load_task(as_training(task)), LOCAL)
    assert (tuned.kind, trained.kind) == (TUNING, TRAINING)
    assert tuned.job_name == tuned.request["HyperParameterTuningJobName"] == trained.job_name == "tune-me"
    assert [u.channel for u in tuned.uploads] == [u.channel for u in trained.uploads] == ["train"]
    assert tuned.uploads[0].s3_uri == trained.uploads[0].s3_uri
    aws = Config(backend="aws", region="us-east-1")
    for kind_task in (task, as_training(task)):
        with pytest.raises(InputError) as refused:
            render(load_task({**kind_task, "inputs": tuning_task()["inputs"]}), aws)
        paths = {p.path: p.message for p in refused.value.problems}
        assert paths["role_arn"] == "is required with the aws backend (in the task or in config)"
        assert paths["output_prefix"] == "is required with the aws backend (in the task or in config)"


def as_training(task: dict[str, Any]) -> dict[str, Any]:
    """The tuning task's trial as a training task of its own."""
    out = {k: v for k, v in task.items() if k not in ("hyperparameter_tuning_job", "tuning_config")}
    return {**out, "task_type": "sagemaker_training_job_task",
            "training_job": task["hyperparameter_tuning_job"]["trainingJob"]}
