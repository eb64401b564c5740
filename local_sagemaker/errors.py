"""The error answers SageMaker gives, with AWS's codes and texts, as moto exceptions that moto serializes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from moto.sagemaker.exceptions import SagemakerClientError

from handlers.errors import Problem
from handlers.service_model import split_path, value_at

#: AWS's answer to MetricDefinitions on a built-in algorithm's image: those algorithms publish their own metrics.
BUILT_IN_METRICS = ("You can't override the metric definitions for Amazon SageMaker algorithms. Please retry the "
                    "request without specifying metric definitions.")

class ValidationException(SagemakerClientError):
    code = "ValidationException"


class ResourceInUse(SagemakerClientError):
    code = "ResourceInUse"


class ResourceLimitExceeded(SagemakerClientError):
    code = "ResourceLimitExceeded"


NOT_FOUND = "Requested resource not found."


def not_found() -> ValidationException:
    """What SageMaker says for Describe/Stop of a job that does not exist (not the modelled ResourceNotFound)."""
    return ValidationException(NOT_FOUND)


def name_in_use(arn: str) -> ResourceInUse:
    return ResourceInUse(
        "Training job names must be unique within an AWS account and region, and a training job with this name "
        f"already exists ({arn})"
    )


def not_stoppable(status: str) -> ValidationException:
    return ValidationException(f"The request was rejected because the training job is in status {status}.")


def instance_limit(instance_type: str, limit: int, in_use: int, delta: int) -> ResourceLimitExceeded:
    return ResourceLimitExceeded(
        f"The account-level service limit '{instance_type} for training job usage' is {limit} Instances, with current "
        f"utilization of {in_use} Instances and a request delta of {delta} Instances. Please use AWS Service Quotas to "
        "request an increase for this quota. If AWS Service Quotas is not available, contact AWS support to request an "
        "increase for this quota."
    )


def invalid(problems: Sequence[Problem], params: Mapping[str, Any]) -> ValidationException:
    """AWS's "N validation errors detected: Value 'x' at 'a.b' failed to satisfy constraint: ..." from problems."""
    parts = []
    for problem in problems:
        path = problem.path if problem.aws_path is None else problem.aws_path
        found, value = value_at(params, path)
        where = _aws_path(path)
        shown = f"'{_java(value)}'" if found and value is not None else "null"
        parts.append(f"Value {shown} at '{where}' failed to satisfy constraint: {problem.message}")
    count = len(parts)
    noun = "error" if count == 1 else "errors"
    return ValidationException(f"{count} validation {noun} detected: " + "; ".join(parts))


def _java(value: Any, limit: int = 200) -> str:
    """A value as AWS's Java services print it: maps `{k=v, ...}`, lists `[a, b]`; long ones cut short."""
    if isinstance(value, Mapping):
        text = "{" + ", ".join(f"{key}={_java(item, limit)}" for key, item in value.items()) + "}"
    elif isinstance(value, (list, tuple)):
        text = "[" + ", ".join(_java(item, limit) for item in value) + "]"
    elif isinstance(value, bool):
        text = str(value).lower()
    else:
        text = str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _aws_path(path: str) -> str:
    """AWS names members lowerCamel and list items `member.N` counted from 1: `inputDataConfig.1.member.channelName`."""
    out = []
    for part in split_path(path):
        if part.isdigit():
            out.append(f"{int(part) + 1}.member")
        else:
            out.append(part[:1].lower() + part[1:])
    return ".".join(out)
