"""plugin/jobs/mapping.py: the one table from the task file to the request, checked against botocore's service model."""

from __future__ import annotations

from typing import Any

from botocore.model import StructureShape

import sample_tasks as F
from handlers.request import described_fingerprint, fingerprint
from handlers.service_model import service_model, validate_request
from plugin.config import Config, Security
from plugin.jobs import mapping
from plugin.jobs.requests import render
from plugin.task import load_task

FULL_SECURITY = Config(backend="aws", role_arn=F.ROLE, output_prefix="s3://cfg/out", security=Security(
    subnets=("subnet-0123456789abcdef0",), security_group_ids=("sg-0123456789abcdef0",),
    output_kms_key_id="alias/out", volume_kms_key_id="alias/vol", enable_network_isolation=True,
    enable_inter_container_traffic_encryption=True))


def _full_request() -> dict[str, Any]:
    task = F.custom_task(container={"image": F.IMAGE, "command": ["python"], "args": ["train.py"],
                                    "env": {"A": "1"}},
                         spot={"max_wait_seconds": 90000, "checkpoint_s3_uri": "s3://bucket/ckpt"})
    task["inputs"]["static_hyperparameters"] = {"lr": "0.1"}
    task["training_job"]["algorithm_specification"]["metric_definitions"] = [{"name": "loss", "regex": "l=(\\S+)"}]
    return render(load_task(task), FULL_SECURITY).request


MAPS = ("HyperParameters", "Environment")  # maps of the user's own keys: one row each


def _paths(value: Any, prefix: str = "") -> set[str]:
    if isinstance(value, dict) and prefix not in MAPS:
        return {p for k, v in value.items() for p in _paths(v, f"{prefix}.{k}" if prefix else k)}
    return {prefix}


def test_every_row_is_a_member_of_the_create_training_job_shape() -> None:
    shape = service_model().operation_model("CreateTrainingJob").input_shape
    for row in mapping.FIELDS:
        current: Any = shape
        for part in row.request.split("."):
            assert isinstance(current, StructureShape) and part in current.members, row.request
            current = current.members[part]


def test_a_task_using_every_row_sets_every_row_and_nothing_else() -> None:
    request = _full_request()
    found = _paths({k: v for k, v in request.items() if k not in ("InputDataConfig", "Tags")})
    found |= {"InputDataConfig", "Tags"}
    assert found == {row.request for row in mapping.FIELDS}
    assert tuple(request) == (*mapping.REQUEST_MEMBERS, "Tags")  # service-model order, tags last


def test_every_request_path_maps_back_to_its_task_path() -> None:
    request = _full_request()
    for row in mapping.FIELDS:
        if row.keyed_by is None:
            assert mapping.task_path(row.request, request, builtin=False) == row.task
    assert mapping.task_path("InputDataConfig[0].ChannelName", request, False) == "inputs.train"
    assert mapping.task_path("AlgorithmSpecification.MetricDefinitions[0].Regex", request, False) == \
        "training_job.algorithm_specification.metric_definitions[0].regex"
    assert mapping.task_path("AlgorithmSpecification.TrainingImage", request, True) == \
        "training_job.algorithm_specification.algorithm_version"
    assert mapping.task_path("AlgorithmSpecification", request, False) is None


def test_described_fingerprint_reads_the_members_the_table_writes() -> None:
    request = _full_request()
    description = {**request, "TrainingJobArn": "arn", "TrainingJobStatus": "InProgress", "Tags": []}
    assert described_fingerprint(description, mapping.REQUEST_MEMBERS) == fingerprint(request)


def test_the_body_is_a_tuning_jobs_training_job_definition_once_renamed() -> None:
    """What the tuning job reuses: the shared body, StaticHyperParameters for HyperParameters, no container
    entrypoint (HyperParameterAlgorithmSpecification has none)."""
    task = F.xgboost_task()
    rendered = render(load_task(task), Config(backend="aws", role_arn=F.ROLE))
    request = rendered.request
    body = {k: v for k, v in request.items() if k not in ("TrainingJobName", "Tags")}
    body["StaticHyperParameters"] = body.pop("HyperParameters")
    tuning = {"HyperParameterTuningJobName": "t", "TrainingJobDefinition": body,
              "HyperParameterTuningJobConfig": {"Strategy": "Bayesian", "ResourceLimits": {
                  "MaxNumberOfTrainingJobs": 2, "MaxParallelTrainingJobs": 1}}}
    assert validate_request("CreateHyperParameterTuningJob", tuning) == []
