"""The task: the engine-neutral form of one training job to run (docs/task-file.md)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from handlers.errors import InputError, Problem, join_path, short_repr
from handlers.uploads import iter_files
from plugin.fields import Reader, scalar_text, type_name
from plugin.message import TrainingJob
from plugin.tuning_message import HyperparameterTuningJob, HyperparameterTuningJobConfig
from plugin.yamlfile import read_document

BUILTIN_TASK = "sagemaker_training_job_task"
CUSTOM_TASK = "sagemaker_custom_training_job_task"
TUNING_TASK = "sagemaker_hyperparameter_tuning_job_task"
TASK_TYPES = (BUILTIN_TASK, CUSTOM_TASK)  # the training task types
ALL_TASK_TYPES = (*TASK_TYPES, TUNING_TASK)
TUNING_JOB_KEY = "hyperparameter_tuning_job"
TUNING_CONFIG_KEY = "tuning_config"
HYPERPARAMETERS_INPUT = "static_hyperparameters"

_TASK_KEYS = ("task_type", "training_job", "inputs", "output_prefix", "container", "execution", "job_name",
              "role_arn", "max_runtime_seconds", "spot", "tags")
# A tuning task: the two tuning messages in place of training_job (theirs is the trials' template).
_TUNING_KEYS = (*(k for k in _TASK_KEYS if k != "training_job"), TUNING_JOB_KEY, TUNING_CONFIG_KEY)


@dataclass(frozen=True)
class Container:
    image: str
    command: tuple[str, ...] | None = None
    args: tuple[str, ...] | None = None
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Execution:
    """The identity of one execution attempt: the same identity always names the same job."""

    project: str
    domain: str
    name: str
    node_id: str = "n0"
    retry_attempt: int = 0

    def as_dict(self) -> dict[str, str]:
        return {"project": self.project, "domain": self.domain, "name": self.name, "node_id": self.node_id,
                "retry_attempt": str(self.retry_attempt)}


@dataclass(frozen=True)
class Spot:
    max_wait_seconds: int
    checkpoint_s3_uri: str | None = None


@dataclass(frozen=True)
class Channel:
    """A data input. `source` is an S3 URI, or a local path (absolute) that the local backend uploads first."""

    name: str
    source: str

    @property
    def is_local(self) -> bool:
        return not is_uri(self.source)


@dataclass(frozen=True)
class Tuning:
    """What a tuning task adds to the trials' task: the limits and the search."""

    job: HyperparameterTuningJob
    config: HyperparameterTuningJobConfig


@dataclass(frozen=True)
class Task:
    task_type: str
    training_job: TrainingJob
    channels: tuple[Channel, ...] = ()
    hyperparameters: Mapping[str, str] = field(default_factory=dict)
    output_prefix: str | None = None
    container: Container | None = None
    execution: Execution | None = None
    job_name: str | None = None
    role_arn: str | None = None
    max_runtime_seconds: int | None = None
    spot: Spot | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    tuning: Tuning | None = None  # set for a TUNING_TASK; training_job is then its trials' template

    @property
    def local_channels(self) -> tuple[Channel, ...]:
        return tuple(c for c in self.channels if c.is_local)


def is_uri(text: str) -> bool:
    scheme, sep, _ = text.partition("://")
    return bool(sep) and scheme.isalnum()


TaskSource = str | os.PathLike[str] | Mapping[str, Any]


def load_task(source: TaskSource, *, ignore_unknown: bool = False) -> Task:
    """A task from a YAML/JSON file, or from a dict in task-file form (relative paths then against the cwd)."""
    task, problems = read_task(source, ignore_unknown=ignore_unknown)
    if problems:
        raise InputError(problems)
    return task


def read_task(source: TaskSource, *, ignore_unknown: bool = False) -> tuple[Task, list[Problem]]:
    """The task as far as it could be read, and every problem found reading it (so later checks can add theirs)."""
    if isinstance(source, Mapping):
        return _read(source, Path.cwd(), ignore_unknown)
    path = Path(source)
    data = read_document(path, what="task")
    if not isinstance(data, Mapping):
        raise InputError(f"{path}: a task must be a map of fields ({', '.join(_TASK_KEYS)}), not {type_name(data)}")
    return _read(data, path.resolve().parent, ignore_unknown)


def _read(data: Any, base_dir: Path, ignore_unknown: bool) -> tuple[Task, list[Problem]]:
    reader = Reader()
    root = reader.mapping(data, "")
    if root is None:
        if isinstance(data, Mapping):  # a map, but with keys that are not strings
            raise InputError(reader.problems)
        raise InputError(f"a task must be a map of fields ({', '.join(_TASK_KEYS)}), not {type_name(data)}")
    task_type = reader.string(root, "task_type", "", BUILTIN_TASK)
    if task_type not in ALL_TASK_TYPES:
        reader.fail("task_type", f"must be {', '.join(ALL_TASK_TYPES[:-1])} or {ALL_TASK_TYPES[-1]}, "
                    f"not {task_type!r}")
    if not ignore_unknown:
        reader.known_keys(root, _TUNING_KEYS if task_type == TUNING_TASK else _TASK_KEYS, "")
    training_job = TrainingJob()
    tuning = None
    if task_type == TUNING_TASK:
        tuning = _tuning(reader, root, ignore_unknown)
        training_job = tuning.job.training_job
    elif root.get("training_job") is None:
        reader.fail("training_job", "is required")
    else:
        training_job, problems = TrainingJob.read(root["training_job"], "training_job", ignore_unknown=ignore_unknown)
        reader.problems.extend(problems)
    channels, hyperparameters = _inputs(reader, root.get("inputs"), base_dir)
    task = Task(
        task_type=task_type,
        training_job=training_job,
        channels=channels,
        hyperparameters=hyperparameters,
        output_prefix=reader.string(root, "output_prefix", "", None),
        container=_container(reader, root.get("container"), ignore_unknown),
        execution=_execution(reader, root.get("execution"), ignore_unknown),
        job_name=reader.string(root, "job_name", "", None),
        role_arn=reader.string(root, "role_arn", "", None),
        max_runtime_seconds=reader.integer(root, "max_runtime_seconds", "", None, minimum=1),
        spot=_spot(reader, root.get("spot"), ignore_unknown),
        tags=reader.string_map(root, "tags", ""),
        tuning=tuning,
    )
    return task, reader.problems


def _tuning(reader: Reader, root: Mapping[str, Any], ignore_unknown: bool) -> Tuning:
    job, config = HyperparameterTuningJob(), HyperparameterTuningJobConfig()
    for key in (TUNING_JOB_KEY, TUNING_CONFIG_KEY):
        if root.get(key) is None:
            reader.fail(key, "is required for a " + TUNING_TASK)
    if root.get(TUNING_JOB_KEY) is not None:
        job, problems = HyperparameterTuningJob.read(root[TUNING_JOB_KEY], TUNING_JOB_KEY, ignore_unknown)
        reader.problems.extend(problems)
    if root.get(TUNING_CONFIG_KEY) is not None:
        config, problems = HyperparameterTuningJobConfig.read(root[TUNING_CONFIG_KEY], TUNING_CONFIG_KEY,
                                                              ignore_unknown)
        reader.problems.extend(problems)
    return Tuning(job, config)


def _inputs(reader: Reader, value: Any, base_dir: Path) -> tuple[tuple[Channel, ...], dict[str, str]]:
    inputs = reader.mapping(value, "inputs") or {}
    channels: list[Channel] = []
    hyperparameters: dict[str, str] = {}
    for name, source in inputs.items():
        path = join_path("inputs", name)
        if name == HYPERPARAMETERS_INPUT:
            hyperparameters.update(reader.text_map(source, path, "a string, number or boolean"))
        elif not isinstance(source, str) or not source.strip():
            reader.fail(path, f"must be an S3 URI or a local path, not {type_name(source)}")
        else:
            channels.append(Channel(name, source if is_uri(source) else _local_path(reader, source, base_dir, path)))
    return tuple(channels), hyperparameters


def _local_path(reader: Reader, source: str, base_dir: Path, path: str) -> str:
    if any(ord(ch) < 32 for ch in source):
        reader.fail(path, "contains control characters")
        return source
    try:
        named = base_dir / Path(source).expanduser()
        if named.is_symlink():
            reader.fail(path, f"local input {source!r} is a symbolic link; name the file or folder itself")
            return source
        resolved = named.resolve()
        exists = resolved.exists()
    except (OSError, RuntimeError, ValueError) as error:  # no such ~user, name too long, unencodable
        reader.fail(path, f"local input {short_repr(source)} cannot be used: {error}")
        return source
    relative = not Path(source).is_absolute() and not source.startswith("~")
    if relative and not resolved.is_relative_to(base_dir.resolve()):
        reader.fail(path, f"local input {short_repr(source)} climbs out of the task file's folder; relative paths "
                    "stay under it (name anything else by its absolute path)")
        return source
    if not exists:
        reader.fail(path, f"local input {source!r} does not exist (looked for {resolved})")
    elif resolved.is_dir() and next(iter_files(resolved), None) is None:
        reader.fail(path, f"local input {source!r} holds no files to upload")
    return str(resolved)



def _section(reader: Reader, value: Any, path: str, keys: tuple[str, ...], ignore_unknown: bool
             ) -> Mapping[str, Any] | None:
    """An optional map of the task (None when absent or not a map), its unknown keys reported."""
    data = None if value is None else reader.mapping(value, path)
    if data is not None and not ignore_unknown:
        reader.known_keys(data, keys, path)
    return data


def _container(reader: Reader, value: Any, ignore_unknown: bool) -> Container | None:
    data = _section(reader, value, "container", ("image", "command", "args", "env"), ignore_unknown)
    if data is None:
        return None
    return Container(
        image=reader.string(data, "image", "container"),
        command=reader.string_list(data, "command", "container"),
        args=reader.string_list(data, "args", "container"),
        env=reader.string_map(data, "env", "container"),
    )


def _execution(reader: Reader, value: Any, ignore_unknown: bool) -> Execution | None:
    p = "execution"
    data = _section(reader, value, p, ("project", "domain", "name", "node_id", "retry_attempt"), ignore_unknown)
    if data is None:
        return None

    def text(key: str, default: Any = None) -> str:
        raw = data.get(key, default)
        out = scalar_text(raw) if raw is not None else None
        if out is None or not out:
            reader.fail(join_path(p, key), "is required (a non-empty string)" if raw is None else
                        f"must be a non-empty string, not {type_name(raw)}")
            return ""
        return out

    return Execution(
        project=text("project"),
        domain=text("domain"),
        name=text("name"),
        node_id=text("node_id", "n0"),
        retry_attempt=reader.integer(data, "retry_attempt", p, 0, minimum=0),
    )


def _spot(reader: Reader, value: Any, ignore_unknown: bool) -> Spot | None:
    data = _section(reader, value, "spot", ("max_wait_seconds", "checkpoint_s3_uri"), ignore_unknown)
    if data is None:
        return None
    return Spot(
        max_wait_seconds=reader.integer(data, "max_wait_seconds", "spot", minimum=1),
        checkpoint_s3_uri=reader.string(data, "checkpoint_s3_uri", "spot", None),
    )
