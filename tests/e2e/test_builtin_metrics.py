"""Metric definitions and built-in algorithms (SPEC 3): SageMaker refuses them, so an XGBoost request never has them.

Every example renders a request that botocore's own validation, the project's service-model validation and a local
SageMaker accept; the local SageMaker refuses MetricDefinitions on every built-in XGBoost image with AWS's words; a
TrainingJob that carries them stays valid, and the command line and the plugin say that they are left out.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from botocore.exceptions import ClientError

import sample_tasks as F
from handlers import xgboost_algorithm
from image_registry import ImageRegistry
from local_sagemaker import LocalSageMaker
from local_sagemaker.errors import BUILT_IN_METRICS
from local_sagemaker.testing import CUSTOM_IMAGE, LocalClients, unique_name
from plugin.config import Config
from plugin.jobs.requests import check
from plugin.jobs.training_job import TrainingJobPlugin
from plugin.task import BUILTIN_TASK
from plugin_setup import make_config

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
SCRIPT = Path(sys.executable).with_name("sagemaker-plugin")
WARNING = ("warning: training_job.algorithm_specification.metric_definitions: left out of the request: SageMaker "
           "refuses metric definitions for its built-in algorithms; built-in XGBoost publishes its own metrics "
           "(train:rmse, validation:auc, ... after its eval_metric)")
AWS_TEXT = ("You can't override the metric definitions for Amazon SageMaker algorithms. Please retry the request "
            "without specifying metric definitions.")


def _flyte_example_task() -> dict[str, Any]:
    """The built-in task of examples/flyte_workflow.py, in task-file form (its TrainingJob and hyperparameters)."""
    pytest.importorskip("flytekit")
    spec = importlib.util.spec_from_file_location("flyte_workflow_example", EXAMPLES / "flyte_workflow.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # flytekit resolves the tasks' annotations through it
    spec.loader.exec_module(module)
    return {"task_type": BUILTIN_TASK, "training_job": module.TRAINING_JOB,
            "inputs": {"train": "s3://bucket/train/", "validation": "s3://bucket/validation/",
                       "static_hyperparameters": module.HYPERPARAMETERS},
            "execution": {"project": "examples", "domain": "development", "name": "flyte-workflow", "node_id": "n0"}}


EXAMPLE_TASKS = [*(pytest.param(str(p), id=p.name) for p in sorted(EXAMPLES.glob("*.yaml"))
                   if p.name != "tuning.yaml"),  # a tuning task: test_tuning_render.py, test_tuning.py
                 pytest.param("flyte_workflow.py", id="flyte_workflow.py")]


def _example(name: str) -> Any:
    return _flyte_example_task() if name == "flyte_workflow.py" else name


def test_the_xgboost_example_renders_no_metric_definitions_and_no_warning() -> None:
    _, rendered = check(str(EXAMPLES / "xgboost.yaml"), Config())
    assert rendered.request["AlgorithmSpecification"] == {
        "TrainingImage": ImageRegistry.default().uri("xgboost", "1.7-1", "us-east-1"), "TrainingInputMode": "File"}
    assert rendered.warnings == ()
    assert "metric_definitions" not in yaml.safe_load((EXAMPLES / "xgboost.yaml").read_text())["training_job"][
        "algorithm_specification"]


@pytest.mark.parametrize("example", EXAMPLE_TASKS)
def test_every_example_request_is_accepted_by_botocore_and_a_local_sagemaker(example: str, aws: LocalClients) -> None:
    _, rendered = check(_example(example), Config())
    request = rendered.request
    F.assert_valid_request(request)  # botocore's own validation, then the project's service-model validation
    assert rendered.warnings == ()
    builtin = request["AlgorithmSpecification"]["TrainingImage"].endswith("/sagemaker-xgboost:1.7-1")
    assert ("MetricDefinitions" in request["AlgorithmSpecification"]) is (not builtin)
    request = {**request, "TrainingJobName": unique_name("example")}  # the example's own name may be run elsewhere
    arn = aws.sagemaker.create_training_job(**request)["TrainingJobArn"]
    assert arn.endswith(f"training-job/{request['TrainingJobName']}")
    aws.sagemaker.stop_training_job(TrainingJobName=request["TrainingJobName"])


def _every_built_in_image() -> list[Any]:
    """One image per version (alias and legacy ones too), each in another region, China and GovCloud among them."""
    registry = ImageRegistry.default()
    regions = ["us-east-1", "cn-north-1", "eu-west-1", "us-gov-west-1", "ap-southeast-2", "sa-east-1"]
    params = []
    for index, version in enumerate(registry.versions("xgboost")):
        served = registry.regions("xgboost", version)
        region = next((r for r in regions[index % len(regions):] + regions if r in served), served[0])
        params.append(pytest.param(registry.uri("xgboost", version, region), id=f"{version}-{region}"))
    return params


@pytest.mark.parametrize("image", _every_built_in_image())
def test_the_local_sagemaker_refuses_metric_definitions_on_a_built_in_image(image: str, aws: LocalClients) -> None:
    name = unique_name("builtin-metrics")
    request = aws.training_request(name, image=image, hyperparameters={"num_round": "3"})
    request["AlgorithmSpecification"]["MetricDefinitions"] = [{"Name": "train:rmse", "Regex": r"train-rmse:([0-9.]+)"}]
    with pytest.raises(ClientError) as refused:
        aws.sagemaker.create_training_job(**request)
    assert refused.value.response["Error"] == {"Code": "ValidationException", "Message": AWS_TEXT}
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(ClientError):
        aws.sagemaker.describe_training_job(TrainingJobName=name)  # nothing was made
    del request["AlgorithmSpecification"]["MetricDefinitions"]
    aws.sagemaker.create_training_job(**request)  # the same request without them is fine
    aws.sagemaker.stop_training_job(TrainingJobName=name)


@pytest.mark.parametrize("image", [CUSTOM_IMAGE, "683313688378.dkr.ecr.us-east-1.amazonaws.com/my-xgboost:1.7-1"])
def test_the_local_sagemaker_keeps_metric_definitions_of_other_images(image: str, aws: LocalClients) -> None:
    name = unique_name("custom-metrics")
    request = aws.training_request(name, image=image)
    request["AlgorithmSpecification"]["MetricDefinitions"] = [{"Name": "loss", "Regex": r"loss=([0-9.]+)"}]
    aws.sagemaker.create_training_job(**request)
    described = aws.sagemaker.describe_training_job(TrainingJobName=name)
    assert described["AlgorithmSpecification"]["MetricDefinitions"] == [{"Name": "loss", "Regex": r"loss=([0-9.]+)"}]
    aws.sagemaker.stop_training_job(TrainingJobName=name)


def test_our_engine_text_is_aws_text() -> None:
    assert BUILT_IN_METRICS == AWS_TEXT


# --- the warning -----------------------------------------------------------------------------------------------------

def _xgboost_with_metric_definitions() -> dict[str, Any]:
    task = F.xgboost_task()
    task["training_job"]["algorithm_specification"]["metric_definitions"] = [
        {"name": "validation:rmse", "regex": r"validation-rmse:([0-9\.]+)"}]
    return task


def _cli(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAGEMAKER_PLUGIN_")}
    return subprocess.run([str(SCRIPT), *argv], capture_output=True, text=True, cwd=cwd, env=env, timeout=60)


def test_validate_and_render_warn_and_leave_the_metric_definitions_out(tmp_path: Path) -> None:
    task = tmp_path / "task.yaml"
    task.write_text(yaml.safe_dump(_xgboost_with_metric_definitions()), encoding="utf-8")
    validated = _cli(["validate", str(task)], tmp_path)
    assert validated.returncode == 0, validated.stderr
    assert validated.stderr == WARNING + "\n"
    assert validated.stdout.startswith(f"{task}: valid sagemaker_training_job_task")
    rendered = _cli(["render", str(task)], tmp_path)
    assert rendered.returncode == 0, rendered.stderr
    assert rendered.stderr == WARNING + "\n"
    request = json.loads(rendered.stdout)
    assert "MetricDefinitions" not in request["AlgorithmSpecification"]
    F.assert_valid_request(request)


def test_a_custom_task_keeps_its_metric_definitions_without_a_warning(tmp_path: Path) -> None:
    task = F.custom_task()
    task["training_job"]["algorithm_specification"]["metric_definitions"] = [{"name": "loss", "regex": "loss=(.+)"}]
    path = tmp_path / "custom.yaml"
    path.write_text(yaml.safe_dump(task), encoding="utf-8")
    rendered = _cli(["render", str(path)], tmp_path)
    assert (rendered.returncode, rendered.stderr) == (0, "")
    assert json.loads(rendered.stdout)["AlgorithmSpecification"]["MetricDefinitions"] == [
        {"Name": "loss", "Regex": "loss=(.+)"}]


def test_the_plugins_create_logs_the_warning_and_the_job_is_made(server: LocalSageMaker, aws: LocalClients,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    plugin = TrainingJobPlugin(make_config(server.url))
    task = _xgboost_with_metric_definitions()
    task["execution"]["name"] = unique_name("warned")
    with caplog.at_level(logging.WARNING, logger="plugin.jobs.training_job"):
        meta = plugin.create(task)
    assert [r.getMessage() for r in caplog.records] == [f"{meta.job_name}: {WARNING[len('warning: '):]}"]
    algorithm = aws.sagemaker.describe_training_job(TrainingJobName=meta.job_name)["AlgorithmSpecification"]
    # What DescribeTrainingJob shows are the algorithm's own definitions (as AWS lists them), never the task's.
    known = ImageRegistry.default().identify(algorithm["TrainingImage"])
    assert known is not None
    own = xgboost_algorithm.metric_definitions(known.version)
    shown = algorithm.get("MetricDefinitions", [])
    assert shown and all(definition in own for definition in shown)
    assert {"Name": "validation:rmse", "Regex": r"validation-rmse:([0-9\.]+)"} not in shown
    plugin.delete(meta)
