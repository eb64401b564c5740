"""From a task and the config to the CreateTrainingJob request: each row of docs/task-file.md, each rule.

Every request rendered here also passes botocore's own `validate_parameters` and the project's `validate_request`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

import sample_tasks as F
from handlers import request as request_module
from handlers.errors import InputError
from handlers.local import PLACEHOLDER_ROLE_ARN
from handlers.service_model import member_shape, validate_request
from image_registry import ImageRegistry
from plugin.config import Config, Defaults, Security
from plugin.jobs.pipeline import Rendered, Upload
from plugin.jobs.requests import check, render
from plugin.task import load_task

ROOT = Path(__file__).resolve().parents[3]
PROTO3 = ROOT / "tests" / "data" / "proto3"
RES = "training_job.training_job_resource_config"
ALGO = "training_job.algorithm_specification"
NAME_PATTERN = re.compile(member_shape("CreateTrainingJob", "TrainingJobName").metadata["pattern"])
US_EAST_1_XGB_171 = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
CN_NORTH_1_XGB_171 = "450853457545.dkr.ecr.cn-north-1.amazonaws.com.cn/sagemaker-xgboost:1.7-1"
AWS = Config(backend="aws", role_arn="arn:aws:iam::123456789012:role/ConfigRole", output_prefix="s3://cfg/out")
IDENTITY_TAGS = ("project", "domain", "name", "node-id", "retry-attempt")


def do_render(task: dict[str, Any], config: Config | None = None, **kwargs: Any) -> Rendered:
    out = render(load_task(task), config or Config(), **kwargs)
    F.assert_valid_request(out.request)
    return out


def req(task: dict[str, Any], config: Config | None = None, **kwargs: Any) -> dict[str, Any]:
    return do_render(task, config, **kwargs).request


def problems(task: dict[str, Any], config: Config | None = None, **kwargs: Any) -> list[tuple[str, str]]:
    with pytest.raises(InputError) as info:
        render(load_task(task), config or Config(), **kwargs)
    return [(p.path, p.message) for p in info.value.problems]


def paths(task: dict[str, Any], config: Config | None = None, **kwargs: Any) -> list[str]:
    return sorted({p for p, _ in problems(task, config, **kwargs)})


def tags(request: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in request["Tags"]}


def execution(**changes: Any) -> dict[str, Any]:
    return {"project": "p", "domain": "development", "name": "f3a9c2e1b0", "node_id": "n0", "retry_attempt": 0,
            **changes}


# --- TrainingJobName -----------------------------------------------------------------------------------------------

def test_job_name_given_wins() -> None:
    assert req(F.xgboost_task(job_name="my-job-1"))["TrainingJobName"] == "my-job-1"


def test_job_name_from_the_execution_identity() -> None:
    r = do_render(F.xgboost_task())
    assert r.job_name == r.request["TrainingJobName"] == "p-development-f3a9c2e1b0-n0-0"


@pytest.mark.parametrize(("identity", "name"), [
    ({"project": "My_Project", "domain": "dev.team", "name": "run 1", "node_id": "n0/a"},
     "My-Project-dev-team-run-1-n0-a-0"),
    ({"project": "a__b", "domain": "c-_-d", "name": "e..f", "node_id": "g"}, "a-b-c-d-e-f-g-0"),
    ({"project": "_p_", "domain": "--d--", "name": "n=", "node_id": "x", "retry_attempt": 2}, "p-d-n-x-2"),
    ({"project": "ünï", "domain": "d", "name": "n", "node_id": "m"}, "n-d-n-m-0"),
    ({"project": "p", "domain": "d", "name": "n"}, "p-d-n-n0-0"),  # node_id and retry_attempt default
])
def test_job_name_is_sanitized_and_runs_of_dashes_collapse(identity: dict[str, Any], name: str) -> None:
    got = req(F.xgboost_task(execution=identity))["TrainingJobName"]
    assert got == name
    assert NAME_PATTERN.fullmatch(got)


def test_another_retry_attempt_another_name() -> None:
    names = {req(F.xgboost_task(execution=execution(retry_attempt=n)))["TrainingJobName"] for n in range(3)}
    assert names == {"p-development-f3a9c2e1b0-n0-0", "p-development-f3a9c2e1b0-n0-1", "p-development-f3a9c2e1b0-n0-2"}


LONG = execution(project="flytesnacks", domain="development", name="a" * 40, node_id="n0-dn12-training-step")


def _long_name(**changes: Any) -> str:
    return str(req(F.xgboost_task(execution={**LONG, **changes}))["TrainingJobName"])


def test_a_long_identity_is_cut_with_a_hash_and_stays_valid() -> None:
    full = "flytesnacks-development-" + "a" * 40 + "-n0-dn12-training-step-0"
    name = _long_name()
    assert len(full) > 63
    assert len(name) == 63
    assert NAME_PATTERN.fullmatch(name)
    match = re.fullmatch(r"(.+)-([0-9a-f]{8})", name)
    assert match, name
    assert full.startswith(match.group(1))
    assert name == _long_name()  # deterministic


def test_long_names_of_other_attempts_and_identities_differ() -> None:
    names = {_long_name(), _long_name(retry_attempt=1), _long_name(retry_attempt=2),
             _long_name(node_id="n1" + "x" * 30), _long_name(name="a" * 39 + "b")}
    assert len(names) == 5
    assert all(len(n) <= 63 and NAME_PATTERN.fullmatch(n) for n in names)


def test_a_long_name_whose_cut_ends_in_a_dash_is_still_valid() -> None:
    for width in range(20, 45):  # move the cut across the dash after the name
        name = _long_name(name="b" * width)
        assert len(name) <= 63 and NAME_PATTERN.fullmatch(name), name
        assert "--" not in name


def test_the_name_is_the_same_in_another_process() -> None:
    task = F.xgboost_task(execution=LONG)
    code = ("import json, sys; from plugin.task import load_task; from plugin.jobs.requests import render; "
            "from plugin.config import Config; r = render(load_task(json.loads(sys.argv[1])), Config()); "
            "print(json.dumps([r.job_name, dict((t['Key'], t['Value']) for t in r.request['Tags'])]))")
    out = subprocess.run([sys.executable, "-c", code, json.dumps(task)], capture_output=True, text=True, check=True,
                         cwd=ROOT, env={**os.environ, "PYTHONHASHSEED": "12345"}, timeout=60)
    name, other_tags = json.loads(out.stdout)
    here = req(task)
    assert name == here["TrainingJobName"]
    assert other_tags == tags(here)  # the fingerprint too


def _stamp_name(name: str, base: str) -> datetime:
    match = re.fullmatch(re.escape(base) + r"-(\d{8}-\d{6})-[0-9a-f]{4}", name)
    assert match, name
    return datetime.strptime(match.group(1), "%Y%m%d-%H%M%S").replace(tzinfo=timezone.utc)


def test_without_identity_xgboost_names_are_stamped_with_utc_time_and_random_hex() -> None:
    before = datetime.now(timezone.utc).replace(microsecond=0)
    names = [req(F.xgboost_task(execution=None))["TrainingJobName"] for _ in range(6)]
    after = datetime.now(timezone.utc)
    for name in names:
        assert before <= _stamp_name(name, "xgboost") <= after
        assert NAME_PATTERN.fullmatch(name)
    assert len(set(names)) > 1


@pytest.mark.parametrize(("image", "base"), [
    ("123456789012.dkr.ecr.us-east-1.amazonaws.com/team/trainer:1.0", "trainer"),
    ("123456789012.dkr.ecr.us-east-1.amazonaws.com/torch_trainer:2.3", "torch-trainer"),
    ("registry.example.com:5000/ml/Trainer.v2@sha256:" + "0" * 64, "Trainer-v2"),
    ("trainer", "trainer"),
])
def test_without_identity_custom_names_use_the_image_repository(image: str, base: str) -> None:
    name = req(F.custom_task(execution=None, container={"image": image}))["TrainingJobName"]
    _stamp_name(name, base)


def test_without_identity_a_long_repository_name_is_cut() -> None:
    name = req(F.custom_task(execution=None, container={"image": "r/" + "x" * 80 + ":1"}))["TrainingJobName"]
    assert len(name) <= 63 and NAME_PATTERN.fullmatch(name)
    assert re.fullmatch(r"x+-\d{8}-\d{6}-[0-9a-f]{4}", name)


def test_render_uses_the_clock_it_is_given() -> None:
    now = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    name = req(F.xgboost_task(execution=None), now=now)["TrainingJobName"]
    assert re.fullmatch(r"xgboost-20240102-030405-[0-9a-f]{4}", name), name


# --- TrainingImage, input mode, metrics, container -------------------------------------------------------------------

def test_xgboost_image_for_the_client_region() -> None:
    r = do_render(F.xgboost_task())
    assert r.region == "us-east-1"
    assert r.request["AlgorithmSpecification"]["TrainingImage"] == US_EAST_1_XGB_171


def test_xgboost_image_in_a_china_region() -> None:
    r = do_render(F.xgboost_task(), region="cn-north-1")
    assert r.region == "cn-north-1"
    assert r.request["AlgorithmSpecification"]["TrainingImage"] == CN_NORTH_1_XGB_171
    r = do_render(F.xgboost_task(), Config(region="cn-north-1"))
    assert (r.region, r.request["AlgorithmSpecification"]["TrainingImage"]) == ("cn-north-1", CN_NORTH_1_XGB_171)


def test_the_region_argument_beats_the_config() -> None:
    r = do_render(F.xgboost_task(), Config(region="eu-west-1"), region="cn-north-1")
    assert r.request["AlgorithmSpecification"]["TrainingImage"] == CN_NORTH_1_XGB_171


def test_xgboost_without_a_version_gets_the_newest_non_legacy_image() -> None:
    task = F.set_in(F.xgboost_task(), "training_job.algorithm_specification.algorithm_version", "")
    image = req(task)["AlgorithmSpecification"]["TrainingImage"]
    registry = ImageRegistry.default()
    assert image == registry.uri("xgboost", "", "us-east-1")
    newest = max((v for v in registry.versions("xgboost") if v not in ("1", "latest")),
                 key=lambda v: tuple(int(n) for n in re.findall(r"\d+", v)))
    assert image.endswith(f"/sagemaker-xgboost:{newest}")


def test_config_prebuilt_algorithms_add_a_version() -> None:
    uri = "123456789012.dkr.ecr.us-east-1.amazonaws.com/my-xgboost:9.9-9"
    config = Config(prebuilt_algorithms={"xgboost": {"9.9-9": {"us-east-1": uri}}})
    task = F.set_in(F.xgboost_task(), "training_job.algorithm_specification.algorithm_version", "9.9-9")
    assert req(task, config)["AlgorithmSpecification"]["TrainingImage"] == uri
    assert paths(task) == [f"{ALGO}.algorithm_version"]


def test_custom_image_is_the_container_image() -> None:
    assert req(F.custom_task())["AlgorithmSpecification"]["TrainingImage"] == F.IMAGE


@pytest.mark.parametrize(("mode", "expected"), [("FILE", "File"), ("PIPE", "Pipe"), (None, "File"), (1, "Pipe")])
def test_input_mode(mode: Any, expected: str) -> None:
    task = F.set_in(F.xgboost_task(), "training_job.algorithm_specification.input_mode", mode)
    request = req(task)
    assert request["AlgorithmSpecification"]["TrainingInputMode"] == expected
    assert [c["InputMode"] for c in request["InputDataConfig"]] == [expected, expected]


def test_metric_definitions_in_order() -> None:
    metrics = [{"name": "z:loss", "regex": "loss=([0-9.]+)"}, {"name": "a:acc", "regex": r"acc=(\d+)"},
               {"name": "m", "regex": "m(?P<v>.)"}]
    task = F.set_in(F.custom_task(), "training_job.algorithm_specification.metric_definitions", metrics)
    assert req(task)["AlgorithmSpecification"]["MetricDefinitions"] == [
        {"Name": "z:loss", "Regex": "loss=([0-9.]+)"}, {"Name": "a:acc", "Regex": r"acc=(\d+)"},
        {"Name": "m", "Regex": "m(?P<v>.)"}]


@pytest.mark.parametrize("metrics", [None, []])
def test_metric_definitions_omitted_when_empty(metrics: Any) -> None:
    task = F.set_in(F.custom_task(), "training_job.algorithm_specification.metric_definitions", metrics)
    assert "MetricDefinitions" not in req(task)["AlgorithmSpecification"]


def test_container_entrypoint_arguments_and_environment() -> None:
    container = {"image": F.IMAGE, "command": ["python", "-m", "trainer"], "args": ["--epochs", 3, True],
                 "env": {"LOG_LEVEL": "info", "WORKERS": 4, "TOKEN": "s3cr3t"}}
    request = req(F.custom_task(container=container))
    assert request["AlgorithmSpecification"] == {
        "TrainingImage": F.IMAGE, "TrainingInputMode": "File",
        "ContainerEntrypoint": ["python", "-m", "trainer"], "ContainerArguments": ["--epochs", "3", "true"]}
    assert request["Environment"] == {"LOG_LEVEL": "info", "WORKERS": "4", "TOKEN": "s3cr3t"}


def test_container_parts_omitted_when_not_given() -> None:
    request = req(F.custom_task(container={"image": F.IMAGE}))
    assert set(request["AlgorithmSpecification"]) == {"TrainingImage", "TrainingInputMode"}
    assert "Environment" not in request
    assert "Environment" not in req(F.xgboost_task())


# --- HyperParameters -----------------------------------------------------------------------------------------------

def test_hyperparameters_are_stringified() -> None:
    hp = {"num_round": 100, "eta": 0.25, "early": True, "verbose": False, "objective": "reg:squarederror",
          "neg": -1, "big": 10**20, "tiny": 1e-07, "text_true": "True", "quoted": '"x"', "empty": "", "zero": 0.0}
    task = F.custom_task(inputs={"train": "s3://b/train/", "static_hyperparameters": hp})
    assert req(task)["HyperParameters"] == {
        "num_round": "100", "eta": "0.25", "early": "true", "verbose": "false", "objective": "reg:squarederror",
        "neg": "-1", "big": "100000000000000000000", "tiny": "1e-07", "text_true": "True", "quoted": '"x"',
        "empty": "", "zero": "0.0"}


@pytest.mark.parametrize("hp", [None, {}])
def test_hyperparameters_omitted_when_empty(hp: Any) -> None:
    inputs: dict[str, Any] = {"train": "s3://b/train/"}
    if hp is not None:
        inputs["static_hyperparameters"] = hp
    assert "HyperParameters" not in req(F.custom_task(inputs=inputs))
    # Built-in XGBoost needs num_round, so none is a problem there (tests/handlers/test_xgboost_algorithm.py).
    assert paths(F.xgboost_task(inputs=inputs)) == ["inputs.static_hyperparameters.num_round"]


@pytest.mark.parametrize(("value", "kind"), [([1, 2], "a list"), ({"a": 1}, "a map"), (None, "null"),
                                             (float("nan"), "a number"), (float("inf"), "a number")])
def test_other_hyperparameter_values_are_input_errors(value: Any, kind: str) -> None:
    task = F.xgboost_task(inputs={"train": "s3://b/train/", "static_hyperparameters": {"num_round": 1, "bad": value}})
    with pytest.raises(InputError) as info:
        load_task(task)
    assert [(p.path, p.message) for p in info.value.problems] == [
        ("inputs.static_hyperparameters.bad", f"must be a string, number or boolean, not {kind}")]


# --- InputDataConfig -----------------------------------------------------------------------------------------------

def _channel(name: str, uri: str, mode: str = "File") -> dict[str, Any]:
    return {"ChannelName": name,
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri,
                                            "S3DataDistributionType": "FullyReplicated"}},
            "ContentType": "text/csv", "InputMode": mode}


def test_channels_in_input_order_with_the_exact_structure() -> None:
    inputs = {"validation": "s3://b/v/", "static_hyperparameters": {"num_round": 1}, "train": "s3://b/t",
              "extra.set_1": "https://b.s3.amazonaws.com/x"}
    task = F.set_in(F.xgboost_task(inputs=inputs), "training_job.algorithm_specification.input_mode", "PIPE")
    assert req(task)["InputDataConfig"] == [
        _channel("validation", "s3://b/v/", "Pipe"), _channel("train", "s3://b/t", "Pipe"),
        _channel("extra.set_1", "https://b.s3.amazonaws.com/x", "Pipe")]


def test_no_data_inputs_no_input_data_config() -> None:
    assert "InputDataConfig" not in req(F.custom_task(inputs={"static_hyperparameters": {"a": 1}}))


def test_local_inputs_are_uploaded_under_the_output_prefix(tmp_path: Path) -> None:
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "a.csv").write_text("1,2\n", encoding="utf-8")
    task_file = tmp_path / "task.yaml"
    task_file.write_text(json.dumps(F.xgboost_task(inputs={"train": "train/", "validation": "s3://b/v/",
                                                           "static_hyperparameters": {"num_round": 5}})),
                         encoding="utf-8")
    r = render(load_task(task_file), Config())
    F.assert_valid_request(r.request)
    name = "p-development-f3a9c2e1b0-n0-0"
    uri = f"s3://bucket/outputs/{name}/input/train/"
    assert r.uploads == (Upload("train", str(tmp_path / "train"), uri),)
    assert r.request["InputDataConfig"] == [_channel("train", uri), _channel("validation", "s3://b/v/")]


def test_local_inputs_are_an_error_with_the_aws_backend(tmp_path: Path) -> None:
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "data.csv").write_text("1,2\n")
    task = F.xgboost_task(inputs={"train": str(tmp_path / "train"), "static_hyperparameters": {"num_round": 5}})
    [(path, message)] = problems(task, AWS)
    assert path == "inputs.train"
    assert "local path" in message


# --- OutputDataConfig, ResourceConfig, StoppingCondition -----------------------------------------------------------

@pytest.mark.parametrize(("prefix", "expected"), [("s3://bucket/out/", "s3://bucket/out"), ("s3://bucket/out", "s3://bucket/out"),
                                                  ("s3://bucket/a/b//", "s3://bucket/a/b")])
def test_output_path_drops_the_trailing_slash(prefix: str, expected: str) -> None:
    assert req(F.xgboost_task(output_prefix=prefix))["OutputDataConfig"] == {"S3OutputPath": expected}


def test_output_kms_key_from_config() -> None:
    config = Config(security=Security(output_kms_key_id="arn:aws:kms:us-east-1:123456789012:key/abc"))
    assert req(F.xgboost_task(), config)["OutputDataConfig"] == {
        "S3OutputPath": "s3://bucket/outputs", "KmsKeyId": "arn:aws:kms:us-east-1:123456789012:key/abc"}


def test_output_prefix_falls_back_to_config_then_the_local_default() -> None:
    task = F.xgboost_task()
    del task["output_prefix"]
    assert req(task, Config(output_prefix="s3://cfg/out/"))["OutputDataConfig"] == {"S3OutputPath": "s3://cfg/out"}
    assert req(task)["OutputDataConfig"] == {"S3OutputPath": "s3://sagemaker-plugin-local/outputs"}
    assert paths(task, dataclasses.replace(AWS, output_prefix=None)) == ["output_prefix"]


@pytest.mark.parametrize(("resources", "expected"), [
    ({"instance_type": "ml.m5.xlarge"}, {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30}),
    ({"instance_type": "ml.m5.xlarge", "instance_count": 0, "volume_size_in_gb": 0},
     {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30}),
    ({"instance_type": "ml.c5.2xlarge", "instance_count": "3", "volume_size_in_gb": "200"},
     {"InstanceType": "ml.c5.2xlarge", "InstanceCount": 3, "VolumeSizeInGB": 200}),
])
def test_resource_config(resources: dict[str, Any], expected: dict[str, Any]) -> None:
    task = F.set_in(F.custom_task(), "training_job.training_job_resource_config", resources)
    assert req(task)["ResourceConfig"] == expected


def test_resource_config_volume_default_and_kms_from_config() -> None:
    task = F.set_in(F.custom_task(), "training_job.training_job_resource_config", {"instance_type": "ml.m5.xlarge"})
    config = Config(defaults=Defaults(volume_size_in_gb=77), security=Security(volume_kms_key_id="key-1"))
    assert req(task, config)["ResourceConfig"] == {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1,
                                                   "VolumeSizeInGB": 77, "VolumeKmsKeyId": "key-1"}


def test_stopping_condition_from_the_task_else_config() -> None:
    assert req(F.xgboost_task(max_runtime_seconds=3600))["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600}
    assert req(F.xgboost_task())["StoppingCondition"] == {"MaxRuntimeInSeconds": 86400}
    config = Config(defaults=Defaults(max_runtime_seconds=600))
    assert req(F.xgboost_task(), config)["StoppingCondition"] == {"MaxRuntimeInSeconds": 600}


def test_spot_training() -> None:
    request = req(F.xgboost_task(max_runtime_seconds=3600,
                                 spot={"max_wait_seconds": 7200, "checkpoint_s3_uri": "s3://b/ckpt/"}))
    assert request["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 7200}
    assert request["EnableManagedSpotTraining"] is True
    assert request["CheckpointConfig"] == {"S3Uri": "s3://b/ckpt/"}


def test_spot_without_checkpoints_and_max_wait_equal_to_runtime() -> None:
    request = req(F.xgboost_task(max_runtime_seconds=3600, spot={"max_wait_seconds": 3600}))
    assert request["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 3600}
    assert request["EnableManagedSpotTraining"] is True
    assert "CheckpointConfig" not in request


def test_no_spot_no_spot_fields() -> None:
    request = req(F.xgboost_task())
    assert not {"EnableManagedSpotTraining", "CheckpointConfig"} & set(request)
    assert "MaxWaitTimeInSeconds" not in request["StoppingCondition"]


def test_spot_max_wait_below_the_runtime_is_an_error() -> None:
    assert paths(F.xgboost_task(spot={"max_wait_seconds": 3599}, max_runtime_seconds=3600)) == ["spot.max_wait_seconds"]
    assert paths(F.xgboost_task(spot={"max_wait_seconds": 3600})) == ["spot.max_wait_seconds"]  # config: 86400


# --- RoleArn, security, tags -----------------------------------------------------------------------------------------

def test_role_from_the_task_beats_config() -> None:
    assert req(F.xgboost_task(role_arn=F.ROLE), AWS)["RoleArn"] == F.ROLE
    assert req(F.xgboost_task(), AWS)["RoleArn"] == "arn:aws:iam::123456789012:role/ConfigRole"


def test_no_role_with_the_aws_backend_is_an_error_at_role_arn() -> None:
    found = problems(F.xgboost_task(), dataclasses.replace(AWS, role_arn=None))
    assert {path for path, _ in found} == {"role_arn"}
    assert ("role_arn", "is required with the aws backend (in the task or in config)") in found


def test_the_local_backend_falls_back_to_a_placeholder_role() -> None:
    assert req(F.xgboost_task())["RoleArn"] == PLACEHOLDER_ROLE_ARN


def test_vpc_isolation_and_encryption_from_config() -> None:
    security = Security(subnets=("subnet-0a", "subnet-0b"), security_group_ids=("sg-01",),
                        enable_network_isolation=True, enable_inter_container_traffic_encryption=False)
    request = req(F.xgboost_task(), Config(security=security))
    assert request["VpcConfig"] == {"SecurityGroupIds": ["sg-01"], "Subnets": ["subnet-0a", "subnet-0b"]}
    assert request["EnableNetworkIsolation"] is True
    assert request["EnableInterContainerTrafficEncryption"] is False


def test_no_security_settings_no_security_fields() -> None:
    request = req(F.xgboost_task())
    assert not {"VpcConfig", "EnableNetworkIsolation", "EnableInterContainerTrafficEncryption"} & set(request)


def test_tags_are_config_then_task_then_identity_then_fingerprint() -> None:
    config = Config(tags={"team": "platform", "env": "prod"})
    request = req(F.xgboost_task(tags={"team": "ml", "owner": "me"}), config)
    assert [t["Key"] for t in request["Tags"]] == [
        "team", "env", "owner", *(f"sagemaker-plugin:{k}" for k in IDENTITY_TAGS), "sagemaker-plugin:fingerprint"]
    assert tags(request) == {
        "team": "ml", "env": "prod", "owner": "me",
        "sagemaker-plugin:project": "p", "sagemaker-plugin:domain": "development",
        "sagemaker-plugin:name": "f3a9c2e1b0", "sagemaker-plugin:node-id": "n0", "sagemaker-plugin:retry-attempt": "0",
        "sagemaker-plugin:fingerprint": request_module.fingerprint(request)}


def test_without_identity_only_the_fingerprint_is_added() -> None:
    request = req(F.xgboost_task(execution=None))
    assert [t["Key"] for t in request["Tags"]] == ["sagemaker-plugin:fingerprint"]
    assert re.fullmatch(r"[0-9a-f]{16,64}", request["Tags"][0]["Value"])


def test_the_fingerprint_is_a_hash_of_the_request_without_tags() -> None:
    request = req(F.xgboost_task())
    body = {k: v for k, v in request.items() if k != "Tags"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    assert tags(request)["sagemaker-plugin:fingerprint"] == hashlib.sha256(canonical.encode()).hexdigest()[:32]


CHANGES = [
    pytest.param(lambda t: t["inputs"]["static_hyperparameters"].update(num_round=11), id="hyperparameter"),
    pytest.param(lambda t: t["training_job"]["training_job_resource_config"].update(instance_count=2), id="count"),
    pytest.param(lambda t: t["training_job"]["algorithm_specification"].update(algorithm_version="1.5-1"),
                 id="image"),
    pytest.param(lambda t: t["execution"].update(retry_attempt=1), id="attempt"),
    pytest.param(lambda t: t["inputs"].update(train="s3://bucket/data/train2/"), id="channel"),
    pytest.param(lambda t: t.update(max_runtime_seconds=100), id="runtime"),
    pytest.param(lambda t: t.update(output_prefix="s3://bucket/other"), id="output"),
]


@pytest.mark.parametrize("change", CHANGES)
def test_the_fingerprint_changes_when_the_request_changes(change: Any) -> None:
    task = F.xgboost_task()
    first = tags(req(task))["sagemaker-plugin:fingerprint"]
    assert tags(req(task))["sagemaker-plugin:fingerprint"] == first
    change(task)
    assert tags(req(task))["sagemaker-plugin:fingerprint"] != first


# --- distributed training ------------------------------------------------------------------------------------------

def _mpi_task(instance_type: str, hp: dict[str, Any] | None = None, protocol: str = "MPI") -> dict[str, Any]:
    task = F.custom_task(inputs={"train": "s3://b/t/", "static_hyperparameters": hp or {}})
    return F.set_in(task, "training_job.training_job_resource_config",
                    {"instance_type": instance_type, "instance_count": 2, "distributed_protocol": protocol})


def test_unspecified_protocol_adds_nothing() -> None:
    assert req(_mpi_task("ml.p3.16xlarge", {"epochs": 3}, "UNSPECIFIED"))["HyperParameters"] == {"epochs": "3"}
    assert "HyperParameters" not in req(_mpi_task("ml.p3.16xlarge", None, "UNSPECIFIED"))


@pytest.mark.parametrize(("instance_type", "processes"), [
    ("ml.p3.16xlarge", "8"), ("ml.p3.2xlarge", "1"), ("ml.trn1.32xlarge", "32"), ("ml.m5.xlarge", "1"),
])
def test_mpi_processes_per_host(instance_type: str, processes: str) -> None:
    assert req(_mpi_task(instance_type, {"epochs": 3}))["HyperParameters"] == {
        "epochs": "3", "sagemaker_mpi_enabled": "true", "sagemaker_mpi_num_of_processes_per_host": processes}


def test_mpi_custom_options_from_config() -> None:
    request = req(_mpi_task("ml.p3.16xlarge"), Config(mpi_custom_options="-x NCCL_DEBUG=INFO"))
    assert request["HyperParameters"] == {
        "sagemaker_mpi_enabled": "true", "sagemaker_mpi_num_of_processes_per_host": "8",
        "sagemaker_mpi_custom_mpi_options": "-x NCCL_DEBUG=INFO"}


def test_mpi_with_xgboost_is_an_error() -> None:
    task = F.set_in(F.xgboost_task(), "training_job.training_job_resource_config.distributed_protocol", "MPI")
    assert paths(task) == [f"{RES}.distributed_protocol"]


# --- the proto3 fixtures render the same request in every encoding -------------------------------------------------

def _fixture_task(path: Path) -> dict[str, Any]:
    message = json.loads(path.read_text(encoding="utf-8"))
    if path.name.startswith("xgboost."):
        task = F.xgboost_task(inputs={"train": "s3://b/train/", "static_hyperparameters": {"num_round": 5}})
    else:
        task = F.custom_task(inputs={"train": "s3://b/train/"}, container={"image": F.IMAGE})
    task["training_job"] = message
    return task


@pytest.mark.parametrize("name", ["xgboost", "custom_mpi", "defaults"])
def test_every_encoding_of_a_fixture_renders_the_same_request(name: str) -> None:
    requests = {p.name: req(_fixture_task(p)) for p in sorted(PROTO3.glob(f"{name}.*.json"))}
    assert len(requests) == 4
    first = requests[f"{name}.omitted.json"]
    assert all(r == first for r in requests.values())
    resources = first["ResourceConfig"]
    algorithm = first["AlgorithmSpecification"]
    if name == "xgboost":
        assert resources == {"InstanceType": "ml.m5.xlarge", "InstanceCount": 2, "VolumeSizeInGB": 25}
        # The fixture's metric definitions are left out: SageMaker refuses them for built-in algorithms.
        assert algorithm == {"TrainingImage": US_EAST_1_XGB_171, "TrainingInputMode": "File"}
        assert first["HyperParameters"] == {"num_round": "5"}
    elif name == "custom_mpi":
        assert resources == {"InstanceType": "ml.p3.16xlarge", "InstanceCount": 2, "VolumeSizeInGB": 100}
        assert algorithm == {"TrainingImage": F.IMAGE, "TrainingInputMode": "Pipe"}
        assert first["HyperParameters"] == {"sagemaker_mpi_enabled": "true",
                                            "sagemaker_mpi_num_of_processes_per_host": "8"}
        assert first["InputDataConfig"] == [_channel("train", "s3://b/train/", "Pipe")]
    else:
        assert resources == {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 30}
        assert algorithm == {"TrainingImage": F.IMAGE, "TrainingInputMode": "File"}
        assert "HyperParameters" not in first


# --- the task's rules, at the path of the field at fault -----------------------------------------------------------

RULES = [
    pytest.param(lambda: F.xgboost_task(container={"image": F.IMAGE}), ["container"], id="xgboost-with-container"),
    pytest.param(lambda: F.custom_task(container={"image": ""}), ["container.image"], id="custom-empty-image"),
    pytest.param(lambda: F.xgboost_task(inputs={"validation": "s3://b/v/", "static_hyperparameters": {"num_round": 1}}),
                 ["inputs.train"], id="xgboost-no-train"),
    pytest.param(lambda: F.set_in(F.custom_task(), "task_type", "sagemaker_training_job_task"),
                 [f"{ALGO}.algorithm_name"], id="task-type-mismatch"),
    pytest.param(lambda: F.set_in(F.custom_task(), "training_job.training_job_resource_config.instance_type", ""),
                 [f"{RES}.instance_type"], id="no-instance-type"),
    pytest.param(lambda: F.set_in(F.custom_task(), "training_job.training_job_resource_config.instance_type",
                                  "ml.fake.huge"), [f"{RES}.instance_type"], id="unknown-instance-type"),
    pytest.param(lambda: F.set_in(F.custom_task(), "training_job.training_job_resource_config.instance_count", -1),
                 [f"{RES}.instance_count"], id="negative-count"),
    pytest.param(lambda: F.set_in(F.custom_task(), "training_job.training_job_resource_config.volume_size_in_gb", -1),
                 [f"{RES}.volume_size_in_gb"], id="negative-volume"),
    pytest.param(lambda: F.set_in(F.custom_task(), "training_job.algorithm_specification.metric_definitions",
                                  [{"name": "ok", "regex": "(a)"}, {"name": "x", "regex": "a(["}]),
                 [f"{ALGO}.metric_definitions[1].regex"], id="regex-does-not-compile"),
    pytest.param(lambda: F.set_in(F.custom_task(), "training_job.algorithm_specification.metric_definitions",
                                  [{"name": "x", "regex": "loss=[0-9.]+"}]),
                 [f"{ALGO}.metric_definitions[0].regex"], id="regex-without-group"),
    pytest.param(lambda: F.set_in(F.custom_task(), "training_job.algorithm_specification.metric_definitions",
                                  [{"name": "x" * 256, "regex": "(a)"}]),
                 [f"{ALGO}.metric_definitions[0].name"], id="metric-name-too-long"),
    pytest.param(lambda: F.set_in(F.custom_task(), "training_job.algorithm_specification.metric_definitions",
                                  [{"name": f"m{i}", "regex": "(a)"} for i in range(41)]),
                 [f"{ALGO}.metric_definitions"], id="too-many-metrics"),
    pytest.param(lambda: F.custom_task(job_name="bad_name!"), ["job_name"], id="job-name-pattern"),
    pytest.param(lambda: F.custom_task(job_name="a" * 64), ["job_name"], id="job-name-64"),
    pytest.param(lambda: F.custom_task(role_arn="arn:aws:iam::123:role/x"), ["role_arn"], id="role-pattern"),
    pytest.param(lambda: F.custom_task(output_prefix="gs://bucket/out"), ["output_prefix"], id="gs-output"),
    pytest.param(lambda: F.custom_task(inputs={"train": "gs://b/t/"}), ["inputs.train"], id="gs-input"),
    pytest.param(lambda: F.custom_task(inputs={"train data": "s3://b/t/"}), ["inputs.train data"], id="channel-name"),
    pytest.param(lambda: F.custom_task(inputs={f"c{i}": "s3://b/t/" for i in range(21)}), ["inputs"],
                 id="too-many-channels"),
    pytest.param(lambda: F.custom_task(inputs={"static_hyperparameters": {"k": "v" * 2501}}),
                 ["inputs.static_hyperparameters.k"], id="hyperparameter-value-too-long"),
    pytest.param(lambda: F.custom_task(inputs={"static_hyperparameters": {"k" * 257: "v"}}),
                 ["inputs.static_hyperparameters." + "k" * 257], id="hyperparameter-key-too-long"),
    pytest.param(lambda: F.custom_task(inputs={"static_hyperparameters": {f"k{i}": i for i in range(101)}}),
                 ["inputs.static_hyperparameters"], id="too-many-hyperparameters"),
    pytest.param(lambda: F.custom_task(container={"image": F.IMAGE, "env": {"1BAD": "x"}}), ["container.env.1BAD"],
                 id="env-key-pattern"),
    pytest.param(lambda: F.custom_task(container={"image": F.IMAGE, "command": ["x" * 257]}),
                 ["container.command[0]"], id="entrypoint-item-too-long"),
    pytest.param(lambda: F.custom_task(container={"image": F.IMAGE, "args": [str(i) for i in range(101)]}),
                 ["container.args"], id="too-many-arguments"),
    pytest.param(lambda: F.custom_task(container={"image": "r/" + "x" * 300}), ["container.image"],
                 id="image-too-long"),
    pytest.param(lambda: F.custom_task(tags={"cost#center": "x"}), ["tags.cost#center"], id="tag-key-pattern"),
    pytest.param(lambda: F.custom_task(tags={"k" * 129: "x"}), ["tags." + "k" * 129], id="tag-key-too-long"),
    pytest.param(lambda: F.custom_task(tags={"k": "v" * 257}), ["tags.k"], id="tag-value-too-long"),
    pytest.param(lambda: F.custom_task(tags={f"k{i}": "v" for i in range(45)}), ["tags"],
                 id="tags-plus-identity-over-50"),
    pytest.param(lambda: F.custom_task(spot={"max_wait_seconds": 90000, "checkpoint_s3_uri": "gs://b/c"}),
                 ["spot.checkpoint_s3_uri"], id="checkpoint-uri"),
]


@pytest.mark.parametrize(("make", "expected"), RULES)
def test_each_rule_is_reported_at_the_field_at_fault(make: Any, expected: list[str]) -> None:
    assert paths(make()) == expected


def test_tags_at_the_limit_pass() -> None:
    request = req(F.custom_task(tags={f"k{i}": "v" for i in range(44)}))
    assert len(request["Tags"]) == 50
    request = req(F.custom_task(tags={f"k{i}": "v" for i in range(49)}, execution=None))
    assert len(request["Tags"]) == 50


def test_unknown_region_and_version() -> None:
    assert paths(F.xgboost_task(), region="mars-1") == ["region"]
    assert paths(F.xgboost_task(), Config(region="mars-1")) == ["region"]
    assert paths(F.custom_task(), region="mars-1") == ["region"]
    task = F.set_in(F.xgboost_task(), "training_job.algorithm_specification.algorithm_version", "0.1-0")
    [(path, message)] = problems(task)
    assert path == f"{ALGO}.algorithm_version"
    assert "1.7-1" in message  # lists what is available


def test_a_region_the_registry_does_not_serve() -> None:
    [(path, message)] = problems(F.xgboost_task(), region="xx-nowhere-9")
    assert path == "region"
    assert "us-east-1" in message


def test_config_level_security_problems_point_at_the_config() -> None:
    config = Config(security=Security(output_kms_key_id="bad key!", subnets=("subnet 1",), security_group_ids=("sg",)))
    assert paths(F.custom_task(), config) == ["security.output_kms_key_id", "security.subnets[0]"]


def test_every_problem_at_once() -> None:
    task = F.xgboost_task(container={"image": F.IMAGE}, job_name="bad_name!", output_prefix="gs://b/o",
                          inputs={"validation": "s3://b/v/", "static_hyperparameters": {"num_round": 0}},
                          spot={"max_wait_seconds": 10})
    task = F.set_in(task, "training_job.training_job_resource_config.instance_count", -2)
    task = F.set_in(task, "training_job.training_job_resource_config.instance_type", "ml.fake.huge")
    # An XGBoost task's metric definitions are never sent, so a regex without a group is no problem of its request.
    task = F.set_in(task, "training_job.algorithm_specification.metric_definitions", [{"name": "m", "regex": "m"}])
    assert paths(task) == sorted(["container", "inputs.train", "job_name", "output_prefix", "spot.max_wait_seconds",
                                  f"{RES}.instance_count", f"{RES}.instance_type",
                                  "inputs.static_hyperparameters.num_round"])


@pytest.mark.parametrize(("identity", "path"), [
    ({"project": "p!"}, "execution.project"),
    ({"name": "n" * 300}, "execution.name"),
])
def test_a_bad_identity_value_is_reported_at_the_execution_field(identity: dict[str, Any], path: str) -> None:
    assert paths(F.custom_task(execution=execution(**identity))) == [path]


def test_read_and_render_problems_are_reported_together() -> None:
    with pytest.raises(InputError) as info:
        check(F.custom_task(job_name="bad_name!", max_runtime_seconds="forever"), Config())
    assert sorted(p.path for p in info.value.problems) == ["job_name", "max_runtime_seconds"]


# --- the generic service-model validator -------------------------------------------------------------------------

def _base_request() -> dict[str, Any]:
    return req(F.custom_task())


BAD_FIELDS = [
    pytest.param("CheckpointConfig", {"S3Uri": "s3://b/c", "LocalPath": "/" + "x" * 4096},
                 "CheckpointConfig.LocalPath", "Member must have length less than or equal to 4096",
                 id="checkpoint-local-path-length"),
    pytest.param("DebugHookConfig", {"S3OutputPath": "gs://b/debug"}, "DebugHookConfig.S3OutputPath",
                 "Member must satisfy regular expression pattern: ", id="debug-hook-s3-pattern"),
    pytest.param("TensorBoardOutputConfig", {"S3OutputPath": "ftp://b/tb"}, "TensorBoardOutputConfig.S3OutputPath",
                 "Member must satisfy regular expression pattern: ", id="tensorboard-s3-pattern"),
    pytest.param("RetryStrategy", {"MaximumRetryAttempts": 31}, "RetryStrategy.MaximumRetryAttempts",
                 "Member must have value less than or equal to 30", id="retry-over-max"),
    pytest.param("RetryStrategy", {"MaximumRetryAttempts": 0}, "RetryStrategy.MaximumRetryAttempts",
                 "Member must have value greater than or equal to 1", id="retry-under-min"),
    pytest.param("InfraCheckConfig", {"EnableInfraCheck": "yes"}, "InfraCheckConfig.EnableInfraCheck",
                 "must be a boolean", id="infra-check-type"),
    pytest.param("InfraCheckConfig", {"EnableInfraCheck": True, "Extra": 1}, "InfraCheckConfig.Extra",
                 "is not a field of InfraCheckConfig", id="infra-check-unknown-field"),
    pytest.param("ExperimentConfig", {"ExperimentName": "-bad"}, "ExperimentConfig.ExperimentName",
                 "Member must satisfy regular expression pattern: ", id="experiment-name-pattern"),
    pytest.param("DebugRuleConfigurations", [{"RuleConfigurationName": f"r{i}", "RuleEvaluatorImage": "i"}
                                             for i in range(21)],
                 "DebugRuleConfigurations", "Member must have length less than or equal to 20",
                 id="debug-rules-over-max"),
    pytest.param("DebugRuleConfigurations", [{"RuleConfigurationName": "r", "RuleEvaluatorImage": "i",
                                              "InstanceType": "ml.fake.huge"}],
                 "DebugRuleConfigurations[0].InstanceType", "Member must satisfy enum value set: [ml.",
                 id="rule-instance-enum"),
    pytest.param("ProfilerConfig", {"ProfilingParameters": {"": "x"}}, "ProfilerConfig.ProfilingParameters",
                 "Map keys must satisfy constraint: [Member must have length less than or equal to 256, Member must "
                 "have length greater than or equal to 1", id="map-key-min-length"),
]


@pytest.mark.parametrize(("field", "value", "path", "fragment"), BAD_FIELDS)
def test_the_validator_checks_fields_the_project_has_no_rule_for(field: str, value: Any, path: str,
                                                                 fragment: str) -> None:
    request = {**_base_request(), field: value}
    found = validate_request("CreateTrainingJob", request)
    assert [p.path for p in found] == [path]
    assert fragment in found[0].message


@pytest.mark.parametrize(("dotted", "value", "path", "fragment"), [
    ("ResourceConfig.InstanceType", "ml.fake.huge", "ResourceConfig.InstanceType",
     "Member must satisfy enum value set: [ml.m4.xlarge, "),
    ("AlgorithmSpecification.TrainingInputMode", "Stream", "AlgorithmSpecification.TrainingInputMode",
     "Member must satisfy enum value set: [Pipe, File, FastFile]"),
    ("OutputDataConfig.CompressionType", "ZIP", "OutputDataConfig.CompressionType",
     "Member must satisfy enum value set: [GZIP, NONE]"),
    ("ResourceConfig.KeepAlivePeriodInSeconds", 21601, "ResourceConfig.KeepAlivePeriodInSeconds",
     "Member must have value less than or equal to 21600"),
    ("ResourceConfig.InstanceCount", True, "ResourceConfig.InstanceCount", "must be an integer"),
    ("StoppingCondition.MaxPendingTimeInSeconds", 1799, "StoppingCondition.MaxPendingTimeInSeconds",
     "Member must have value greater than or equal to 1800"),
    ("VpcConfig.Subnets", [f"subnet-{i}" for i in range(17)], "VpcConfig.Subnets",
     "Member must have length less than or equal to 16"),
    ("VpcConfig.SecurityGroupIds", [], "VpcConfig.SecurityGroupIds",
     "Member must have length greater than or equal to 1"),
    ("TrainingJobName", "", "TrainingJobName", "Member must have length greater than or equal to 1"),
    ("RoleArn", "arn:aws:iam::123456789012:role/" + "r" * 2048, "RoleArn",
     "Member must have length less than or equal to 2048"),
])
def test_the_validator_checks_enums_ranges_counts_and_lengths(dotted: str, value: Any, path: str,
                                                              fragment: str) -> None:
    request = json.loads(json.dumps(_base_request()))
    request.setdefault("VpcConfig", {"SecurityGroupIds": ["sg-1"], "Subnets": ["subnet-1"]})
    F.assert_valid_request(request)
    node = request
    *parents, last = dotted.split(".")
    for part in parents:
        node = node[part]
    node[last] = value
    found = validate_request("CreateTrainingJob", request)
    assert {p.path for p in found} == {path}
    assert any(fragment in p.message for p in found), found


def test_the_validator_reports_missing_required_members_and_unknown_fields() -> None:
    request = _base_request()
    del request["RoleArn"]
    request["Bogus"] = 1
    request["Tags"] = [{"Value": "v"}]
    assert sorted((p.path, p.message) for p in validate_request("CreateTrainingJob", request)) == [
        ("Bogus", "is not a field of CreateTrainingJobRequest"), ("RoleArn", "Member must not be null"),
        ("Tags[0].Key", "Member must not be null")]


def test_the_validator_understands_java_regex_classes() -> None:
    request = _base_request()
    request["Tags"] = [{"Key": "ключ größe 1", "Value": "日本 2"}]
    assert validate_request("CreateTrainingJob", request) == []
    request["Tags"] = [{"Key": "a#b", "Value": "v"}]
    assert [p.path for p in validate_request("CreateTrainingJob", request)] == ["Tags[0].Key"]


def test_botocore_itself_misses_what_the_validator_catches() -> None:
    """The reason the validator exists: botocore's client accepts these (facts: it checks types and minimums)."""
    request = {**_base_request(), "TrainingJobName": "bad_name!"}
    request["ResourceConfig"] = {**request["ResourceConfig"], "InstanceType": "ml.fake.huge"}
    F.botocore_validate(request)  # no error
    assert sorted(p.path for p in validate_request("CreateTrainingJob", request)) == [
        "ResourceConfig.InstanceType", "TrainingJobName"]


def test_a_custom_task_with_everything_renders_the_whole_request() -> None:
    config = Config(tags={"team": "ml"}, security=Security(subnets=("subnet-1",), security_group_ids=("sg-1",),
                                                           enable_network_isolation=False,
                                                           volume_kms_key_id="vk", output_kms_key_id="ok"),
                    mpi_custom_options="-x A=1")
    task = F.custom_task(
        container={"image": F.IMAGE, "command": ["python"], "args": ["-v"], "env": {"A": "1"}},
        inputs={"train": "s3://b/t/", "static_hyperparameters": {"lr": 0.1}},
        job_name="whole-1", role_arn=F.ROLE, max_runtime_seconds=100, spot={"max_wait_seconds": 200},
        execution=None, tags={"k": "v"},
    )
    task = F.set_in(task, "training_job", {
        "algorithmSpecification": {"inputMode": "PIPE", "metricDefinitions": [{"name": "l", "regex": "l=(.*)"}]},
        "trainingJobResourceConfig": {"instanceCount": "2", "instanceType": "ml.p3.16xlarge",
                                      "distributedProtocol": "MPI"}})
    request = req(task, config)
    fingerprint = request_module.fingerprint(request)
    assert request == {
        "TrainingJobName": "whole-1",
        "AlgorithmSpecification": {"TrainingImage": F.IMAGE, "TrainingInputMode": "Pipe",
                                   "MetricDefinitions": [{"Name": "l", "Regex": "l=(.*)"}],
                                   "ContainerEntrypoint": ["python"], "ContainerArguments": ["-v"]},
        "RoleArn": F.ROLE,
        "HyperParameters": {"lr": "0.1", "sagemaker_mpi_enabled": "true",
                            "sagemaker_mpi_num_of_processes_per_host": "8",
                            "sagemaker_mpi_custom_mpi_options": "-x A=1"},
        "InputDataConfig": [_channel("train", "s3://b/t/", "Pipe")],
        "OutputDataConfig": {"S3OutputPath": "s3://bucket/outputs", "KmsKeyId": "ok"},
        "ResourceConfig": {"InstanceType": "ml.p3.16xlarge", "InstanceCount": 2, "VolumeSizeInGB": 30,
                           "VolumeKmsKeyId": "vk"},
        "StoppingCondition": {"MaxRuntimeInSeconds": 100, "MaxWaitTimeInSeconds": 200},
        "VpcConfig": {"SecurityGroupIds": ["sg-1"], "Subnets": ["subnet-1"]},
        "EnableNetworkIsolation": False,
        "EnableManagedSpotTraining": True,
        "Environment": {"A": "1"},
        "Tags": [{"Key": "team", "Value": "ml"}, {"Key": "k", "Value": "v"},
                 {"Key": "sagemaker-plugin:fingerprint", "Value": fingerprint}],
    }


def test_a_timestamped_name_is_recent() -> None:
    name = req(F.custom_task(execution=None))["TrainingJobName"]
    stamp = _stamp_name(name, "trainer")
    assert abs(datetime.now(timezone.utc) - stamp) < timedelta(minutes=1)
