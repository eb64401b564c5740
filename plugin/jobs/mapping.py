"""The one table from the task file to the SageMaker request (docs/task-file.md says the same for users).

Each row is a `Field`: the task path a user edits, the request path it becomes, and how its value is made from the
task and config (`Source`). Everything that needs the mapping reads these rows: `body` and `training_job_request`
build the request, `task_path` turns a request path in a service-model problem back into the task path to fix, and
`REQUEST_MEMBERS` are the members whose described values make a job's fingerprint (handlers/request.py).

To add a field: add a row to `BODY` (or to `FIELDS` when only CreateTrainingJob has it) in the order of the service
model's shape; its `value` returns None to leave the member out. Nothing else needs to change: the request, the
error paths and the fingerprint follow from the row.

A tuning job's TrainingJobDefinition (botocore's HyperParameterTrainingJobDefinition) is `body(source)` with
HyperParameters renamed StaticHyperParameters, without the CreateTrainingJob-only rows (TrainingJobName, Tags);
its AlgorithmSpecification has no ContainerEntrypoint or ContainerArguments (service-model validation says so).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from handlers.errors import join_path
from handlers.local import LOCAL_OUTPUT_PREFIX, PLACEHOLDER_ROLE_ARN
from handlers.request import EXECUTION_TAGS, FINGERPRINT_TAG, TAG_PREFIX, fingerprint
from plugin.config import Config
from plugin.message import InputMode, TrainingJob
from plugin.task import BUILTIN_TASK, Task

CONTENT_TYPE = "text/csv"
_ALGO = "training_job.algorithm_specification"
_RES = "training_job.training_job_resource_config"


@dataclass(frozen=True)
class Source:
    """The task and config, with what render resolved from both (names, the image, defaults filled in)."""

    task: Task
    config: Config
    builtin: bool
    name: str
    image: str
    role_arn: str
    output_prefix: str
    hyperparameters: Mapping[str, str] = field(default_factory=dict)
    channels: tuple[tuple[str, str], ...] = ()  # (channel name, S3 URI), local inputs already given their upload URI

    @property
    def input_mode(self) -> str:
        mode = self.task.training_job.algorithm_specification.input_mode
        return "Pipe" if mode == InputMode.PIPE else "File"

    @property
    def custom_container(self) -> Any:
        """The task's container when it runs (a built-in algorithm runs its own)."""
        return None if self.builtin else self.task.container


@dataclass(frozen=True)
class Field:
    """One member of the request: the task path a user edits, its request path, and its value (None: left out).

    `keyed_by` names the item member that names a list entry (`inputs.<ChannelName>`, `tags.<Key>`); `members`
    renames the members inside list entries; `builtin_task` is the task path for the built-in algorithm, when
    it differs.
    """

    task: str
    request: str
    value: Callable[[Source], Any] | None
    keyed_by: str | None = None
    members: Mapping[str, str] = field(default_factory=dict)
    builtin_task: str | None = None


def _res(source: Source) -> Any:
    return source.task.training_job.training_job_resource_config


def _security(source: Source) -> Any:
    return source.config.security


def _vpc(values: Callable[[Source], tuple[str, ...]]) -> Callable[[Source], list[str] | None]:
    """Both VPC lists go together: each is sent when either is set (the service model then names the empty one)."""
    def value(source: Source) -> list[str] | None:
        security = _security(source)
        return list(values(source)) if security.subnets or security.security_group_ids else None
    return value


def _channel(name: str, uri: str, source: Source) -> dict[str, Any]:
    return {"ChannelName": name,
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri,
                                            "S3DataDistributionType": "FullyReplicated"}},
            "ContentType": CONTENT_TYPE, "InputMode": source.input_mode}


def _spot_wait(source: Source) -> int | None:
    return source.task.spot.max_wait_seconds if source.task.spot else None


def _container(attribute: str) -> Callable[[Source], Any]:
    def value(source: Source) -> Any:
        items = getattr(source.custom_container, attribute, None)
        return (dict(items) if isinstance(items, Mapping) else list(items)) if items else None
    return value


# The members a TrainingJobDefinition shares with CreateTrainingJob, in the service model's order.
BODY: tuple[Field, ...] = (
    Field("container.image", "AlgorithmSpecification.TrainingImage", lambda s: s.image,
          builtin_task=f"{_ALGO}.algorithm_version"),
    Field(f"{_ALGO}.input_mode", "AlgorithmSpecification.TrainingInputMode", lambda s: s.input_mode),
    Field(f"{_ALGO}.metric_definitions", "AlgorithmSpecification.MetricDefinitions",
          lambda s: None if s.builtin else [{"Name": m.name, "Regex": m.regex}
                                            for m in s.task.training_job.algorithm_specification.metric_definitions]
          or None, members={"Name": "name", "Regex": "regex"}),
    Field("container.command", "AlgorithmSpecification.ContainerEntrypoint", _container("command")),
    Field("container.args", "AlgorithmSpecification.ContainerArguments", _container("args")),
    Field("role_arn", "RoleArn", lambda s: s.role_arn),
    Field("inputs.static_hyperparameters", "HyperParameters", lambda s: dict(s.hyperparameters) or None),
    Field("inputs", "InputDataConfig", lambda s: [_channel(n, u, s) for n, u in s.channels] or None,
          keyed_by="ChannelName"),
    Field("output_prefix", "OutputDataConfig.S3OutputPath", lambda s: s.output_prefix.rstrip("/")),
    Field("security.output_kms_key_id", "OutputDataConfig.KmsKeyId", lambda s: _security(s).output_kms_key_id or None),
    Field(f"{_RES}.instance_type", "ResourceConfig.InstanceType", lambda s: _res(s).instance_type),
    Field(f"{_RES}.instance_count", "ResourceConfig.InstanceCount", lambda s: _res(s).instance_count or 1),
    Field(f"{_RES}.volume_size_in_gb", "ResourceConfig.VolumeSizeInGB",
          lambda s: _res(s).volume_size_in_gb or s.config.defaults.volume_size_in_gb),
    Field("security.volume_kms_key_id", "ResourceConfig.VolumeKmsKeyId",
          lambda s: _security(s).volume_kms_key_id or None),
    Field("max_runtime_seconds", "StoppingCondition.MaxRuntimeInSeconds",
          lambda s: s.task.max_runtime_seconds or s.config.defaults.max_runtime_seconds),
    Field("spot.max_wait_seconds", "StoppingCondition.MaxWaitTimeInSeconds", _spot_wait),
    Field("security.security_group_ids", "VpcConfig.SecurityGroupIds", _vpc(lambda s: _security(s).security_group_ids)),
    Field("security.subnets", "VpcConfig.Subnets", _vpc(lambda s: _security(s).subnets)),
    Field("security.enable_network_isolation", "EnableNetworkIsolation",
          lambda s: _security(s).enable_network_isolation),
    Field("security.enable_inter_container_traffic_encryption", "EnableInterContainerTrafficEncryption",
          lambda s: _security(s).enable_inter_container_traffic_encryption),
    Field("spot", "EnableManagedSpotTraining", lambda s: True if s.task.spot else None),
    Field("spot.checkpoint_s3_uri", "CheckpointConfig.S3Uri",
          lambda s: s.task.spot.checkpoint_s3_uri or None if s.task.spot else None),
    Field("container.env", "Environment", _container("env")),
)
NAME = Field("job_name", "TrainingJobName", lambda s: s.name)
TAGS = Field("tags", "Tags", None, keyed_by="Key")  # written by training_job_request: it carries the fingerprint
# CreateTrainingJob's rows, in request order.
FIELDS: tuple[Field, ...] = (NAME, *BODY, TAGS)
# The request members a job's fingerprint covers (all but the tags, which carry it).
REQUEST_MEMBERS: tuple[str, ...] = tuple(dict.fromkeys(f.request.split(".")[0] for f in FIELDS if f is not TAGS))

#: the rows whose value config alone decides (its security settings)
CONFIG_ROWS: tuple[Field, ...] = tuple(row for row in BODY if row.task.startswith("security."))


def default_role(config: Config) -> str:
    """The role of a job whose task names none ("" when the aws backend's config names none either)."""
    return config.role_arn or (PLACEHOLDER_ROLE_ARN if config.backend == "local" else "")


def default_output_prefix(config: Config) -> str:
    """The output prefix of a job whose task names none ("" when the aws backend's config names none either)."""
    return config.output_prefix or (LOCAL_OUTPUT_PREFIX if config.backend == "local" else "")


def config_members(config: Config) -> dict[str, Any]:
    """{request path: value (None: left out)} of what config alone decides for a task that names no role: the role
    and the security settings. A Flyte task template never chooses them, so a served connector tells by them whether
    a request is one its config renders (plugin/connectors/trust.py)."""
    source = Source(task=Task(BUILTIN_TASK, TrainingJob()), config=config, builtin=True, name="", image="",
                    role_arn=default_role(config), output_prefix="")
    members = {row.request: row.value(source) for row in CONFIG_ROWS if row.value is not None}
    return {"RoleArn": source.role_arn or None, **members}


def body(source: Source, fields: tuple[Field, ...] = BODY) -> dict[str, Any]:
    """The request members of `fields`, nested at their paths, in row order; rows valued None left out."""
    request: dict[str, Any] = {}
    for row in fields:
        value = row.value(source) if row.value is not None else None
        if value is None:
            continue
        *parents, last = row.request.split(".")
        target = request
        for part in parents:
            target = target.setdefault(part, {})
        target[last] = value
    return request


# A tuning job's TrainingJobDefinition: the shared body, HyperParameters as StaticHyperParameters (the tuned ones
# left out by render), without what botocore's HyperParameterAlgorithmSpecification has no member for.
_NOT_IN_DEFINITION = ("AlgorithmSpecification.ContainerEntrypoint", "AlgorithmSpecification.ContainerArguments")
DEFINITION: tuple[Field, ...] = tuple(
    replace(row, request="StaticHyperParameters") if row.request == "HyperParameters" else row
    for row in BODY if row.request not in _NOT_IN_DEFINITION)


def training_job_request(source: Source) -> dict[str, Any]:
    """The CreateTrainingJob request: the name, the shared body, and the tags (config's, the task's, the execution
    identity's, then the fingerprint of everything else)."""
    request = body(source, (NAME, *BODY))
    request["Tags"] = tags(source, request)
    return request


def tags(source: Source, request: Mapping[str, Any]) -> list[dict[str, str]]:
    """Config's tags, the task's, the execution identity's, then the fingerprint of the request's other members."""
    tags = {**source.config.tags, **source.task.tags}
    execution = source.task.execution.as_dict() if source.task.execution else {}
    for key in EXECUTION_TAGS:
        if key in execution:
            tags[TAG_PREFIX + key.replace("_", "-")] = execution[key]
    tags[FINGERPRINT_TAG] = fingerprint(request)
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def task_path(request_path: str, request: Mapping[str, Any], builtin: bool,
              fields: tuple[Field, ...] = FIELDS) -> str | None:
    """The task path a user edits to change `request_path` (a service-model problem's path), or None."""
    for row in sorted(fields, key=lambda f: -len(f.request)):  # longest request path first
        prefix = row.request
        if not (request_path == prefix or request_path.startswith((prefix + ".", prefix + "["))):
            continue
        rest = request_path[len(prefix):]
        target = row.builtin_task if builtin and row.builtin_task else row.task
        if row.keyed_by is not None and rest.startswith("["):
            index = int(rest[1:rest.index("]")])
            key = str(request[prefix][index][row.keyed_by])
            if row is TAGS and key.startswith(TAG_PREFIX) and key != FINGERPRINT_TAG:
                return join_path("execution", key[len(TAG_PREFIX):].replace("-", "_"))  # identity tags
            return join_path(target, key)
        for old, new in row.members.items():
            rest = rest.replace(f".{old}", f".{new}")
        return target + rest
    return None
