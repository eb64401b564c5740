"""The checks when a task is declared, alike for both generations' task classes (plugin/flyte/tasks.py and
plugin/flyte2/tasks.py): the TrainingJob's algorithm fits the class, the inputs are channels of the generation's data
types (`is_data_type`) plus `static_hyperparameters: dict`, a built-in task has a train channel, a custom task an
image."""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from handlers.errors import InputError, Problem, join_path
from plugin.jobs.render import NO_TRAIN_CHANNEL, TRAIN_CHANNEL
from plugin.message import AlgorithmName, TrainingJob
from plugin.task import HYPERPARAMETERS_INPUT
from plugin.tuning_message import HyperparameterTuningJob

DataType = Callable[[Any], bool]


def training_job(value: TrainingJob | Mapping[str, Any], expected: AlgorithmName, task_class: str) -> TrainingJob:
    """The TrainingJob a task class is given (a message or its JSON), checked to run `expected`."""
    job = value if isinstance(value, TrainingJob) else TrainingJob.parse(value, "training_job")
    algorithm = job.algorithm_specification.algorithm_name
    if algorithm != expected:
        other = "SageMakerCustomTrainingTask" if expected == AlgorithmName.XGBOOST else "SageMakerBuiltinAlgorithmTask"
        raise InputError(Problem("training_job.algorithm_specification.algorithm_name",
                                 f"{task_class} runs algorithm_name {expected.name}, not {algorithm.name} "
                                 f"(use {other})"))
    return job


def check_inputs(inputs: Mapping[str, Any], task_class: str, is_data_type: DataType, data_types: str, *,
                 builtin: bool) -> dict[str, Any]:
    """The declared inputs, when each is a channel (`is_data_type`, named `data_types` in messages, or Optional of
    one) or `static_hyperparameters: dict`, and a built-in task has its train channel; else InputError."""
    problems = []
    for name, kind in inputs.items():
        path = join_path("inputs", name)
        if name == HYPERPARAMETERS_INPUT:
            if not (kind is dict or typing.get_origin(kind) is dict):
                problems.append(Problem(path, f"must be declared as dict, not {kind!r}"))
        elif not optional_of(kind, is_data_type):
            problems.append(Problem(path, f"{task_class} channels are {data_types} or str (a URI), "
                                    f"optionally Optional[...], not {kind!r}"))
    if problems:
        raise InputError(problems)
    if builtin and TRAIN_CHANNEL not in inputs:
        raise InputError(NO_TRAIN_CHANNEL)
    return dict(inputs)


def optional_of(kind: Any, is_data_type: DataType) -> bool:
    """Whether `kind` is a data type or str, or Optional of one."""
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        return len(args) == 1 and optional_of(args[0], is_data_type)
    return kind is str or is_data_type(kind)


def is_optional(kind: Any) -> bool:
    return typing.get_origin(kind) in (typing.Union, types.UnionType) and type(None) in typing.get_args(kind)


@dataclass(frozen=True)
class Container:
    """A custom-image task's container as both generations' task classes keep it: the image (checked) and its
    command, args and env as strings."""

    image: str
    command: list[str]
    args: list[str]
    env: dict[str, str]


def container(image: Any, command: Sequence[str] | None, args: Sequence[str] | None,
              env: Mapping[str, str] | None) -> Container:
    if not isinstance(image, str) or not image:
        raise InputError(Problem("container.image", "is required: the image SageMaker runs"))
    return Container(image, [str(word) for word in command or ()], [str(word) for word in args or ()],
                     {str(k): str(v) for k, v in (env or {}).items()})


def training_task(value: TrainingJob | Mapping[str, Any], algorithm: AlgorithmName, task_class: str,
                  inputs: Mapping[str, Any] | None, defaults: Mapping[str, Any],
                  check_inputs: Callable[..., dict[str, Any]]) -> tuple[TrainingJob, dict[str, Any]]:
    """A training task class's TrainingJob and inputs (`defaults` when none are given), checked with the class's
    generation's `check_inputs`."""
    job = training_job(value, algorithm, task_class)
    declared = check_inputs(defaults if inputs is None else inputs, task_class,
                            builtin=algorithm is AlgorithmName.XGBOOST)
    return job, declared


def tuning_job(training_task: Any, training_class: type[Any], max_number_of_training_jobs: int,
               max_parallel_training_jobs: int) -> HyperparameterTuningJob:
    """The HyperparameterTuningJob a tuning task class is given, once `training_task` is one of its generation's
    training tasks (`training_class`)."""
    if not isinstance(training_task, training_class):
        raise InputError(Problem("training_task", "must be a SageMakerBuiltinAlgorithmTask or a "
                                 f"SageMakerCustomTrainingTask, not {type(training_task).__name__}"))
    return HyperparameterTuningJob(training_job=training_task.training_job,
                                   max_number_of_training_jobs=int(max_number_of_training_jobs),
                                   max_parallel_training_jobs=int(max_parallel_training_jobs))
