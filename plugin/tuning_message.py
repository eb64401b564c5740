"""The tuning messages of flyteidl.plugins.sagemaker (hyperparameter_tuning_job.proto, parameter_ranges.proto).

Read and written by plugin/message.py's code, in the same encodings as TrainingJob, their dataclass annotations
being their schema; this module adds only the one rule annotations cannot say (a range sets exactly one kind).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from handlers.errors import InputError, Problem, join_path
from plugin.message import TrainingJob, read_message, write_message


class HyperparameterScalingType(enum.IntEnum):
    AUTO = 0
    LINEAR = 1
    LOGARITHMIC = 2
    REVERSELOGARITHMIC = 3


class HyperparameterTuningStrategy(enum.IntEnum):
    BAYESIAN = 0
    RANDOM = 1


class HyperparameterTuningObjectiveType(enum.IntEnum):
    MINIMIZE = 0
    MAXIMIZE = 1


class TrainingJobEarlyStoppingType(enum.IntEnum):
    OFF = 0
    AUTO = 1


@dataclass(frozen=True)
class ContinuousParameterRange:
    max_value: float = 0.0
    min_value: float = 0.0
    scaling_type: HyperparameterScalingType = HyperparameterScalingType.AUTO


@dataclass(frozen=True)
class IntegerParameterRange:
    max_value: int = 0
    min_value: int = 0
    scaling_type: HyperparameterScalingType = HyperparameterScalingType.AUTO


@dataclass(frozen=True)
class CategoricalParameterRange:
    values: tuple[str, ...] = ()


@dataclass(frozen=True)
class ParameterRangeOneOf:
    """One of the three kinds (the proto's oneof parameter_range_type); the others stay None."""

    continuous_parameter_range: ContinuousParameterRange | None = None
    integer_parameter_range: IntegerParameterRange | None = None
    categorical_parameter_range: CategoricalParameterRange | None = None

    @property
    def kinds_set(self) -> list[str]:
        return [f.name for f in fields(self) if getattr(self, f.name) is not None]


@dataclass(frozen=True)
class ParameterRanges:
    parameter_range_map: Mapping[str, ParameterRangeOneOf] = field(default_factory=dict)


@dataclass(frozen=True)
class HyperparameterTuningObjective:
    objective_type: HyperparameterTuningObjectiveType = HyperparameterTuningObjectiveType.MINIMIZE
    metric_name: str = ""


@dataclass(frozen=True)
class HyperparameterTuningJob:
    training_job: TrainingJob = field(default_factory=TrainingJob)
    max_number_of_training_jobs: int = 0
    max_parallel_training_jobs: int = 0

    @classmethod
    def read(cls, data: Any, path: str = "hyperparameter_tuning_job", ignore_unknown: bool = False
             ) -> tuple[HyperparameterTuningJob, list[Problem]]:
        return read_message(cls, data, path, ignore_unknown)  # type: ignore[no-any-return]

    @classmethod
    def parse(cls, data: Any, path: str = "hyperparameter_tuning_job", ignore_unknown: bool = False
              ) -> HyperparameterTuningJob:
        message, problems = cls.read(data, path, ignore_unknown)
        if problems:
            raise InputError(problems)
        return message

    def to_proto3_json(self, including_defaults: bool = False) -> dict[str, Any]:
        return write_message(self, including_defaults)


@dataclass(frozen=True)
class HyperparameterTuningJobConfig:
    hyperparameter_ranges: ParameterRanges = field(default_factory=ParameterRanges)
    tuning_strategy: HyperparameterTuningStrategy = HyperparameterTuningStrategy.BAYESIAN
    tuning_objective: HyperparameterTuningObjective = field(default_factory=HyperparameterTuningObjective)
    training_job_early_stopping_type: TrainingJobEarlyStoppingType = TrainingJobEarlyStoppingType.OFF

    @classmethod
    def read(cls, data: Any, path: str = "tuning_config", ignore_unknown: bool = False
             ) -> tuple[HyperparameterTuningJobConfig, list[Problem]]:
        message, problems = read_message(cls, data, path, ignore_unknown)
        ranges_path = join_path(join_path(path, "hyperparameter_ranges"), "parameter_range_map")
        for name, one_of in message.hyperparameter_ranges.parameter_range_map.items():
            here = join_path(ranges_path, name)
            if any(p.path == here or p.path.startswith(here + ".") for p in problems):
                continue
            kinds = one_of.kinds_set
            if len(kinds) != 1:
                names = ", ".join(f.name for f in fields(ParameterRangeOneOf))
                said = f"sets {' and '.join(kinds)}" if kinds else "sets none"
                problems.append(Problem(here, f"{said}; a range is exactly one of {names}"))
        return message, problems

    @classmethod
    def parse(cls, data: Any, path: str = "tuning_config", ignore_unknown: bool = False
              ) -> HyperparameterTuningJobConfig:
        message, problems = cls.read(data, path, ignore_unknown)
        if problems:
            raise InputError(problems)
        return message

    def to_proto3_json(self, including_defaults: bool = False) -> dict[str, Any]:
        return write_message(self, including_defaults)
