"""The tuning messages of flyteidl.plugins.sagemaker (hyperparameter_tuning_job.proto, parameter_ranges.proto).

Read and written by plugin/message.py's code, in the same encodings as TrainingJob, their dataclass annotations
being their schema; this module adds only the one rule annotations cannot say (a range sets exactly one kind).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import ClassVar

from handlers.errors import Problem, join_path
from plugin.message import Message, TrainingJob

# proto3 enums: their members in the .proto's order, numbered from 0 as there
HyperparameterScalingType = enum.IntEnum("HyperparameterScalingType", "AUTO LINEAR LOGARITHMIC REVERSELOGARITHMIC",
                                         start=0)
HyperparameterTuningStrategy = enum.IntEnum("HyperparameterTuningStrategy", "BAYESIAN RANDOM", start=0)
HyperparameterTuningObjectiveType = enum.IntEnum("HyperparameterTuningObjectiveType", "MINIMIZE MAXIMIZE", start=0)
TrainingJobEarlyStoppingType = enum.IntEnum("TrainingJobEarlyStoppingType", "OFF AUTO", start=0)


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
class HyperparameterTuningJob(Message):
    default_path: ClassVar[str] = "hyperparameter_tuning_job"

    training_job: TrainingJob = field(default_factory=TrainingJob)
    max_number_of_training_jobs: int = 0
    max_parallel_training_jobs: int = 0


@dataclass(frozen=True)
class HyperparameterTuningJobConfig(Message):
    default_path: ClassVar[str] = "tuning_config"

    hyperparameter_ranges: ParameterRanges = field(default_factory=ParameterRanges)
    tuning_strategy: HyperparameterTuningStrategy = HyperparameterTuningStrategy.BAYESIAN
    tuning_objective: HyperparameterTuningObjective = field(default_factory=HyperparameterTuningObjective)
    training_job_early_stopping_type: TrainingJobEarlyStoppingType = TrainingJobEarlyStoppingType.OFF

    def rule_problems(self, path: str, found: list[Problem]) -> list[Problem]:
        """A range sets exactly one kind (a range that already has a problem is left to it)."""
        problems = []
        ranges_path = join_path(join_path(path, "hyperparameter_ranges"), "parameter_range_map")
        for name, one_of in self.hyperparameter_ranges.parameter_range_map.items():
            here = join_path(ranges_path, name)
            if any(p.path == here or p.path.startswith(here + ".") for p in found):
                continue
            kinds = one_of.kinds_set
            if len(kinds) != 1:
                names = ", ".join(f.name for f in fields(ParameterRangeOneOf))
                said = f"sets {' and '.join(kinds)}" if kinds else "sets none"
                problems.append(Problem(here, f"{said}; a range is exactly one of {names}"))
        return problems
