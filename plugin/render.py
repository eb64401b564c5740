"""From a task and the config to the CreateTrainingJob request, with every problem found at once.

Three layers of checks, all reported together with the path of the task field at fault: the semantic rules of
SPEC 3 (which only this plugin knows), the image registry, and botocore's service model over the whole request
(which knows every pattern, length, count and enum SageMaker enforces).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import regex

from handlers import distributed, naming
from handlers.errors import InputError, Problem, join_path, short_repr
from handlers.request import FINGERPRINT_TAG, TAG_PREFIX, JobSpec, build_request
from handlers.service_model import validate_request, value_at
from image_registry import ImageLookupError, ImageRegistry
from plugin.config import Config
from plugin.message import AlgorithmName, DistributedProtocol, InputMode
from plugin.task import BUILTIN_TASK, CUSTOM_TASK, Task, TaskSource, read_task

LOCAL_PLACEHOLDER_ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
LOCAL_OUTPUT_PREFIX = "s3://sagemaker-plugin-local/outputs"
TRAIN_CHANNEL = "train"
RESERVED_TAG_PREFIX = "aws:"
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d{1,2}")
_TJ = "training_job"
_ALGO = "training_job.algorithm_specification"
_RES = "training_job.training_job_resource_config"


@dataclass(frozen=True)
class Upload:
    """A local input that the local backend copies to S3 before the create."""

    channel: str
    local_path: str
    s3_uri: str


@dataclass(frozen=True)
class Rendered:
    request: dict[str, Any]
    region: str
    uploads: tuple[Upload, ...] = ()

    @property
    def job_name(self) -> str:
        return str(self.request["TrainingJobName"])


def render(task: Task, config: Config, registry: ImageRegistry | None = None, region: str | None = None,
           now: datetime | None = None) -> Rendered:
    """The request for `task`, or InputError with every problem; makes no AWS call."""
    problems: list[Problem] = []
    region = region or config.region
    if not _REGION.fullmatch(region):
        problems.append(Problem("region", f"{region!r} is not an AWS region name (like us-east-1)"))
    registry = (registry or ImageRegistry.default()).with_overrides(config.prebuilt_algorithms)
    spec_algo = task.training_job.algorithm_specification
    resources = task.training_job.training_job_resource_config
    builtin = spec_algo.algorithm_name == AlgorithmName.XGBOOST

    problems += _semantic_problems(task, config, builtin)
    image = _image(task, registry, region, builtin, problems)
    name = _job_name(task, image, now)
    output_prefix = (task.output_prefix or config.output_prefix or
                     (LOCAL_OUTPUT_PREFIX if config.backend == "local" else "")).rstrip("/")
    if not output_prefix:
        problems.append(Problem("output_prefix", "is required with the aws backend (in the task or in config)"))
    role = task.role_arn or config.role_arn or (LOCAL_PLACEHOLDER_ROLE if config.backend == "local" else "")
    if not role:
        problems.append(Problem("role_arn", "is required with the aws backend (in the task or in config)"))

    uploads = tuple(Upload(c.name, c.source, f"{output_prefix}/{name}/input/{c.name}/")
                    for c in task.local_channels)
    uploaded = {u.channel: u.s3_uri for u in uploads}
    hyperparameters = dict(task.hyperparameters)
    if resources.distributed_protocol == DistributedProtocol.MPI:
        hyperparameters.update(distributed.mpi_hyperparameters(resources.instance_type, config.mpi_custom_options))
    container = task.container
    spec = JobSpec(
        name=name,
        image=image,
        instance_type=resources.instance_type,
        role_arn=role,
        output_path=output_prefix,
        max_runtime_seconds=task.max_runtime_seconds or config.defaults.max_runtime_seconds,
        input_mode="Pipe" if spec_algo.input_mode == InputMode.PIPE else "File",
        instance_count=resources.instance_count or 1,
        volume_size_in_gb=resources.volume_size_in_gb or config.defaults.volume_size_in_gb,
        metric_definitions=tuple((m.name, m.regex) for m in spec_algo.metric_definitions),
        entrypoint=container.command if container and not builtin else None,
        arguments=container.args if container and not builtin else None,
        environment=dict(container.env) if container and not builtin else {},
        hyperparameters=hyperparameters,
        channels=tuple((c.name, uploaded.get(c.name, c.source)) for c in task.channels),
        output_kms_key_id=config.security.output_kms_key_id,
        volume_kms_key_id=config.security.volume_kms_key_id,
        spot_max_wait_seconds=task.spot.max_wait_seconds if task.spot else None,
        checkpoint_s3_uri=task.spot.checkpoint_s3_uri if task.spot else None,
        subnets=config.security.subnets,
        security_group_ids=config.security.security_group_ids,
        enable_network_isolation=config.security.enable_network_isolation,
        enable_inter_container_traffic_encryption=config.security.enable_inter_container_traffic_encryption,
        tags={**config.tags, **task.tags},
        execution=task.execution.as_dict() if task.execution else None,
    )
    request = build_request(spec)
    if spec.spot_max_wait_seconds is not None and spec.spot_max_wait_seconds < spec.max_runtime_seconds:
        problems.append(Problem("spot.max_wait_seconds", f"{spec.spot_max_wait_seconds} is below the max runtime "
                                f"({spec.max_runtime_seconds} s); SageMaker needs max wait >= max runtime"))
    flagged = {p.path for p in problems}
    for problem in validate_request("CreateTrainingJob", request):
        moved = _task_problem(problem, request, builtin)
        if moved.path not in flagged:  # one explanation per field: ours, when we have one
            problems.append(moved)
    if problems:
        raise InputError(merge_by_path(problems))
    return Rendered(request, region, uploads)


def check(source: TaskSource, config: Config, registry: ImageRegistry | None = None, region: str | None = None,
          ignore_unknown: bool = False) -> tuple[Task, Rendered]:
    """Read and render a task, reporting the problems of both steps at once."""
    task, problems = read_task(source, ignore_unknown=ignore_unknown)
    try:
        rendered = render(task, config, registry=registry, region=region)
    except InputError as error:
        # A field that failed to read was replaced by its default; what render says of it would only be noise.
        read_paths = [p.path for p in problems]
        problems += [p for p in error.problems
                     if not any(_related(p.path, seen) for seen in read_paths)]
        raise InputError(merge_by_path(problems)) from None
    if problems:
        raise InputError(problems)
    return task, rendered


def _related(path: str, other: str) -> bool:
    return path == other or path.startswith(other + ".") or other.startswith(path + ".") or \
        path.startswith(other + "[") or other.startswith(path + "[")


def _semantic_problems(task: Task, config: Config, builtin: bool) -> list[Problem]:
    problems: list[Problem] = []
    algo = task.training_job.algorithm_specification
    resources = task.training_job.training_job_resource_config
    expected_type = BUILTIN_TASK if builtin else CUSTOM_TASK
    if task.task_type != expected_type:
        problems.append(Problem(f"{_ALGO}.algorithm_name", f"{algo.algorithm_name.name} goes with task_type "
                                f"{expected_type}, not {task.task_type}"))
    if builtin and task.container is not None:
        problems.append(Problem("container", "the built-in XGBOOST algorithm runs its own image; remove container "
                                "or use algorithm_name CUSTOM"))
    if not builtin and (task.container is None or not task.container.image):
        problems.append(Problem("container.image", "is required for CUSTOM training (the image to run)"))
    if builtin and not any(c.name == TRAIN_CHANNEL for c in task.channels):
        problems.append(Problem(f"inputs.{TRAIN_CHANNEL}", "is required: built-in XGBoost trains on a 'train' "
                                "channel"))
    if builtin and resources.distributed_protocol == DistributedProtocol.MPI:
        problems.append(Problem(f"{_RES}.distributed_protocol", "MPI is for CUSTOM training only; built-in XGBoost "
                                "distributes itself across instances"))
    if not resources.instance_type:
        problems.append(Problem(f"{_RES}.instance_type", "is required (e.g. ml.m5.xlarge)"))
    if resources.instance_count < 0:
        problems.append(Problem(f"{_RES}.instance_count", f"must be 0 (meaning 1) or more, not "
                                f"{resources.instance_count}"))
    if resources.volume_size_in_gb < 0:
        problems.append(Problem(f"{_RES}.volume_size_in_gb", f"must be 0 (meaning the default) or more, not "
                                f"{resources.volume_size_in_gb}"))
    for index, metric in enumerate(algo.metric_definitions):
        path = f"{_ALGO}.metric_definitions[{index}]"
        if not metric.name:
            problems.append(Problem(f"{path}.name", "is required"))
        try:
            groups = regex.compile(metric.regex).groups
        except (regex.error, OverflowError, RecursionError, ValueError) as error:
            problems.append(Problem(f"{path}.regex", f"{metric.regex!r} does not compile: {error}"))
            continue
        if groups < 1:
            problems.append(Problem(f"{path}.regex", f"{metric.regex!r} has no capture group; SageMaker keeps the "
                                    "first group as the metric value"))
    for key in {**config.tags, **task.tags}:
        if key.lower().startswith(RESERVED_TAG_PREFIX):
            problems.append(Problem(f"tags.{key}", f"keys starting with '{RESERVED_TAG_PREFIX}' are reserved for AWS"))
        elif key.startswith(TAG_PREFIX):
            problems.append(Problem(f"tags.{key}", f"keys starting with '{TAG_PREFIX}' are the plugin's own"))
    if task.job_name is not None and not task.job_name:
        problems.append(Problem("job_name", "must not be empty (leave it out to derive a name)"))
    if config.backend == "aws":
        for channel in task.local_channels:
            problems.append(Problem(f"inputs.{channel.name}", f"{channel.source} is a local path; the aws backend "
                                    "needs an S3 URI (upload it, or use the local backend)"))
    return problems


def _image(task: Task, registry: ImageRegistry, region: str, builtin: bool, problems: list[Problem]) -> str:
    if not builtin:
        return task.container.image if task.container else ""
    version = task.training_job.algorithm_specification.algorithm_version
    try:
        return registry.uri("xgboost", version, region)
    except ImageLookupError as error:
        path = "region" if error.field == "region" else f"{_ALGO}.algorithm_version"
        problems.append(Problem(path, str(error)))
        return ""


def _job_name(task: Task, image: str, now: datetime | None) -> str:
    if task.job_name:
        return task.job_name
    if task.execution:
        e = task.execution
        return naming.name_from_identity([e.project, e.domain, e.name, e.node_id, str(e.retry_attempt)])
    builtin = task.training_job.algorithm_specification.algorithm_name == AlgorithmName.XGBOOST
    return naming.unique_name("xgboost" if builtin else naming.image_base_name(image or "training"), now)


# Request field -> the task field a user edits to change it (longest prefix first).
_TASK_PATHS: tuple[tuple[str, str], ...] = (
    ("TrainingJobName", "job_name"),
    ("RoleArn", "role_arn"),
    ("HyperParameters", "inputs.static_hyperparameters"),
    ("AlgorithmSpecification.MetricDefinitions", f"{_ALGO}.metric_definitions"),
    ("AlgorithmSpecification.ContainerEntrypoint", "container.command"),
    ("AlgorithmSpecification.ContainerArguments", "container.args"),
    ("AlgorithmSpecification.TrainingInputMode", f"{_ALGO}.input_mode"),
    ("Environment", "container.env"),
    ("InputDataConfig", "inputs"),
    ("OutputDataConfig.S3OutputPath", "output_prefix"),
    ("OutputDataConfig.KmsKeyId", "security.output_kms_key_id"),
    ("ResourceConfig.InstanceType", f"{_RES}.instance_type"),
    ("ResourceConfig.InstanceCount", f"{_RES}.instance_count"),
    ("ResourceConfig.VolumeSizeInGB", f"{_RES}.volume_size_in_gb"),
    ("ResourceConfig.VolumeKmsKeyId", "security.volume_kms_key_id"),
    ("StoppingCondition.MaxRuntimeInSeconds", "max_runtime_seconds"),
    ("StoppingCondition.MaxWaitTimeInSeconds", "spot.max_wait_seconds"),
    ("CheckpointConfig.S3Uri", "spot.checkpoint_s3_uri"),
    ("VpcConfig.Subnets", "security.subnets"),
    ("VpcConfig.SecurityGroupIds", "security.security_group_ids"),
    ("Tags", "tags"),
)
_INDEXED = re.compile(r"(InputDataConfig|Tags)\[(\d+)\](.*)")
_SUBFIELDS = {".Name": ".name", ".Regex": ".regex"}


def _task_problem(problem: Problem, request: Mapping[str, Any], builtin: bool) -> Problem:
    """A service-model problem, moved to the task field at fault; the request field stays in the message."""
    path = problem.path
    task_path = None
    indexed = _INDEXED.fullmatch(path)
    if indexed:
        field, index, rest = indexed.group(1), int(indexed.group(2)), indexed.group(3)
        item = request[field][index]
        key = str(item["ChannelName"] if field == "InputDataConfig" else item["Key"])
        if field == "Tags" and key.startswith(TAG_PREFIX) and key != FINGERPRINT_TAG:
            task_path = join_path("execution", key[len(TAG_PREFIX):].replace("-", "_"))  # identity tags
        else:
            task_path = join_path("inputs" if field == "InputDataConfig" else "tags", key)
    elif path == "AlgorithmSpecification.TrainingImage":
        task_path = f"{_ALGO}.algorithm_version" if builtin else "container.image"
    else:
        for prefix, target in _TASK_PATHS:
            if path == prefix or path.startswith(prefix + ".") or path.startswith(prefix + "["):
                rest = path[len(prefix):]
                for old, new in _SUBFIELDS.items():
                    rest = rest.replace(old, new)
                task_path = target + rest
                break
    message = _with_value(problem, request)
    if task_path is None or task_path == path:
        return Problem(path, message)
    return Problem(task_path, f"{message} (request field {path})")


def _with_value(problem: Problem, request: Mapping[str, Any]) -> str:
    """AWS's constraint text with the value at fault in front, as AWS's own message has it; never a too-long value
    (it may be a secret, and its length is the problem) nor one reported at its map or list."""
    text = problem.message
    if problem.aws_path is not None or not text.startswith("Member must") or "length less than" in text:
        return text
    found, value = value_at(request, problem.path)
    return f"{short_repr(value)} failed to satisfy constraint: {text}" if found else text


def merge_by_path(problems: list[Problem]) -> list[Problem]:
    """One problem per path, its messages joined, in first-seen order."""
    messages: dict[str, list[str]] = {}
    for problem in problems:
        found = messages.setdefault(problem.path, [])
        if problem.message not in found:
            found.append(problem.message)
    return [Problem(path, "; ".join(texts)) for path, texts in messages.items()]
