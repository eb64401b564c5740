"""The plugin's own messages before any call (`validate`, `render`, `run`), for values botocore's service model refuses:
the one constraint that failed and why, at the task's path; the closest values of an enum. The local SageMaker keeps
answering in AWS's words (tests/local_sagemaker), which validate_request still gives without `explain`.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

import sample_tasks as F
from handlers.errors import InputError
from handlers.service_model import enum_values, validate_request
from plugin.cli import main
from plugin.config import Config, parse_config
from plugin.jobs.requests import render
from plugin.task import load_task

ROOT = Path(__file__).resolve().parents[2]
RES = "training_job.training_job_resource_config"
HP = "inputs.static_hyperparameters"


def messages(task: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(InputError) as info:
        render(load_task(task), Config())
    return {p.path: p.message for p in info.value.problems}


def request_of(task: dict[str, Any]) -> dict[str, Any]:
    return render(load_task(task), Config()).request


def with_instance_type(value: str) -> dict[str, Any]:
    return F.set_in(F.xgboost_task(), f"{RES}.instance_type", value)


@pytest.mark.parametrize(("typed", "meant"), [("ml.m5.larg", "'ml.m5.large'"), ("ml.p3.16xl", "'ml.p3.16xlarge'"),
                                              ("ml.m5.3xlarge", "'ml.m5.xlarge', 'ml.m5.4xlarge' or 'ml.m5.2xlarge'")])
def test_an_unknown_instance_type_gets_the_closest_ones(typed: str, meant: str) -> None:
    message = messages(with_instance_type(typed))[f"{RES}.instance_type"]
    assert message.startswith(f"{typed!r} is not one of the ")
    assert message.endswith(f" values of TrainingInstanceType; did you mean {meant}? "
                            "(request field ResourceConfig.InstanceType)")


def test_an_instance_type_far_from_all_gets_the_families_not_the_values() -> None:
    message = messages(with_instance_type("gpu-large"))[f"{RES}.instance_type"]
    assert "each ml.FAMILY.SIZE, FAMILY one of c4, c5, " in message
    assert "ml.m4.xlarge" not in message and "did you mean" not in message
    assert len(message) < 400


def test_every_enum_of_the_service_model_gets_a_suggestion() -> None:
    request = request_of(F.custom_task())
    request["DebugRuleConfigurations"] = [{"RuleConfigurationName": "r", "RuleEvaluatorImage": "i",
                                           "InstanceType": "ml.t3.medum"}]
    request["AlgorithmSpecification"]["TrainingInputMode"] = "Fille"
    processing = enum_values("CreateTrainingJob", "DebugRuleConfigurations.InstanceType")
    assert [(p.path, p.message) for p in validate_request("CreateTrainingJob", request, explain=True)] == [
        ("AlgorithmSpecification.TrainingInputMode",
         "'Fille' is not one of Pipe, File, FastFile; did you mean 'File'?"),
        ("DebugRuleConfigurations[0].InstanceType",
         f"'ml.t3.medum' is not one of the {len(processing)} values of ProcessingInstanceType; did you mean "
         "'ml.t3.medium'?")]


def test_a_job_name_says_which_characters_are_refused() -> None:
    assert messages(F.xgboost_task(job_name="my_job.v2"))["job_name"] == (
        "'my_job.v2' contains '_' and '.', which SageMaker's TrainingJobName does not allow (Member must satisfy "
        "regular expression pattern: [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}) (request field TrainingJobName)")
    assert messages(F.xgboost_task(job_name="-job"))["job_name"].startswith(
        "'-job' starts with '-', which SageMaker's TrainingJobName does not allow (")


def test_a_hyperparameter_name_says_the_one_constraint_it_broke() -> None:
    found = messages(F.custom_task(inputs={"train": "s3://b/t/", "static_hyperparameters": {"lr\n": 1, "x" * 300: 2}}))
    assert found[f"{HP}.lr\n"] == ("the key contains a newline, which SageMaker's HyperParameterKey does not allow "
                                   "(Member must satisfy regular expression pattern: .*) (request field "
                                   "HyperParameters.lr\n)")
    long_one = found[f"{HP}.{'x' * 300}"]
    assert long_one.startswith("the key is 300 characters long (Member must have length less than or equal to 256) ")
    for message in (found[f"{HP}.lr\n"], long_one):  # not every constraint of the member
        assert "must satisfy constraint: [" not in message
    assert "regular expression" not in long_one and "length" not in found[f"{HP}.lr\n"]


def test_a_too_long_value_is_not_shown() -> None:
    secret = "s" * 3000
    found = messages(F.custom_task(inputs={"train": "s3://b/t/", "static_hyperparameters": {"token": secret}}))
    assert found[f"{HP}.token"] == ("the value is 3000 characters long (Member must have length less than or equal "
                                    "to 2500) (request field HyperParameters.token)")


def test_without_explain_the_words_stay_aws_own() -> None:
    request = request_of(F.custom_task())
    request["HyperParameters"] = {"lr\n": "1"}
    request["TrainingJobName"] = "bad_name"
    assert [(p.path, p.message) for p in validate_request("CreateTrainingJob", request)] == [
        ("TrainingJobName", "Member must satisfy regular expression pattern: [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"),
        ("HyperParameters.lr\n", "Map keys must satisfy constraint: [Member must have length less than or equal to "
         "256, Member must have length greater than or equal to 0, Member must satisfy regular expression pattern: "
         ".*]")]


def test_a_quota_for_a_mistyped_instance_type_gets_a_suggestion() -> None:
    with pytest.raises(InputError) as info:
        parse_config({"local": {"quotas": {"instances": {"ml.m5.larg": 1}}}})
    assert [(p.path, p.message) for p in info.value.problems] == [
        ("local.quotas.instances.ml.m5.larg",
         "is not a SageMaker training instance type (did you mean 'ml.m5.large'?)")]


def test_the_sample_of_the_task_file_page_is_what_validate_prints(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    page = (ROOT / "docs" / "task-file.md").read_text(encoding="utf-8")
    sample = re.search(r"^\$ sagemaker-plugin validate typos.yaml\n(.*?)^```", page, re.MULTILINE | re.DOTALL)
    assert sample is not None, "docs/task-file.md shows no output of `validate typos.yaml`"
    task = yaml.safe_load((ROOT / "examples" / "xgboost.yaml").read_text(encoding="utf-8"))
    task["training_job"]["training_job_resource_config"]["instance_type"] = "ml.p3.16xl"
    task["tags"]["cost$center"] = "ml"
    shutil.copytree(ROOT / "examples" / "data", tmp_path / "data")
    (tmp_path / "typos.yaml").write_text(yaml.safe_dump(task, sort_keys=False), encoding="utf-8")
    (tmp_path / "config.yaml").write_text("backend: local\n", encoding="utf-8")
    assert main(["validate", str(tmp_path / "typos.yaml"), "--config", str(tmp_path / "config.yaml")]) == 2
    assert capsys.readouterr().err == sample.group(1)
