"""Sample tasks for the tests: the repository's paths, botocore's own request validation, task builders.

Importable by name (`import sample_tasks`): tests/conftest.py puts tests/support on sys.path.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import boto3
import botocore.validate

from handlers.service_model import validate_request

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
PROTO3 = ROOT / "tests" / "data" / "proto3"
BAD = ROOT / "tests" / "data" / "bad"

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/team/trainer:1.0"
ROLE = "arn:aws:iam::111122223333:role/TaskRole"


@functools.lru_cache(maxsize=1)
def _input_shape() -> Any:
    client = boto3.client("sagemaker", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    return client.meta.service_model.operation_model("CreateTrainingJob").input_shape


def botocore_validate(request: dict[str, Any]) -> None:
    """botocore's own client-side validation of a CreateTrainingJob request; raises ParamValidationError."""
    botocore.validate.validate_parameters(request, _input_shape())


def assert_valid_request(request: dict[str, Any]) -> None:
    """The request passes botocore's own client-side validation and the project's service-model validation."""
    botocore_validate(request)
    assert validate_request("CreateTrainingJob", request) == []


def xgboost_task(**changes: Any) -> dict[str, Any]:
    """A valid built-in XGBoost task in task-file form (S3 inputs only), with top-level keys replaced."""
    task: dict[str, Any] = {
        "task_type": "sagemaker_training_job_task",
        "training_job": {
            "algorithm_specification": {"algorithm_name": "XGBOOST", "algorithm_version": "1.7-1"},
            "training_job_resource_config": {"instance_count": 1, "instance_type": "ml.m5.xlarge",
                                             "volume_size_in_gb": 10},
        },
        "inputs": {"train": "s3://bucket/data/train/", "validation": "s3://bucket/data/validation/",
                   "static_hyperparameters": {"num_round": 10, "objective": "reg:squarederror"}},
        "output_prefix": "s3://bucket/outputs",
        "execution": {"project": "p", "domain": "development", "name": "f3a9c2e1b0", "node_id": "n0",
                      "retry_attempt": 0},
    }
    task.update(copy.deepcopy(changes))
    return task


def custom_task(**changes: Any) -> dict[str, Any]:
    """A valid custom-image task in task-file form, with top-level keys replaced."""
    task: dict[str, Any] = {
        "task_type": "sagemaker_custom_training_job_task",
        "training_job": {
            "algorithm_specification": {"algorithm_name": "CUSTOM"},
            "training_job_resource_config": {"instance_count": 2, "instance_type": "ml.g5.2xlarge",
                                             "volume_size_in_gb": 50},
        },
        "container": {"image": IMAGE},
        "inputs": {"train": "s3://bucket/data/train/"},
        "output_prefix": "s3://bucket/outputs",
        "execution": {"project": "p", "domain": "development", "name": "f3a9c2e1b0", "node_id": "n0",
                      "retry_attempt": 0},
    }
    task.update(copy.deepcopy(changes))
    return task


def set_in(task: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    """A copy of `task` with the value at a dotted path set (intermediate maps created)."""
    out = copy.deepcopy(task)
    node = out
    *parents, last = dotted.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value
    return out

