"""A CreateHyperParameterTuningJob request, checked as SageMaker checks it, and turned into what the job needs: the
limits, the objective and how to read it from a trial's log, the ranges, and each trial's CreateTrainingJob request.

The service model's own constraints come first (handlers.service_model); then the checks SageMaker makes on the
meaning: limits, ranges and scaling, the objective against the algorithm's metrics (the XGBoost definitions data for
the built-in image, MetricDefinitions for any other), the tuned and static hyperparameters against the algorithm.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from handlers import xgboost_algorithm
from handlers.service_model import service_model, validate_request
from local_sagemaker import errors
from local_sagemaker.defaults import with_unset
from local_sagemaker.runner.builtin import xgboost_version
from local_sagemaker.tuning.ranges import Range, RangeError, grid, parse

OPERATION = "CreateHyperParameterTuningJob"
#: Static hyperparameters Hyperband reads MaxResource from when StrategyConfig gives none (the API's list), and
#: num_round, the built-in XGBoost's round count (a local addition: its trials' rounds are the resource).
RESOURCE_KEYS = ("epochs", "numepochs", "n-epochs", "n_epochs", "num_epochs", "num_round")
MAX_HYPERBAND_RESOURCE = 20000
OBJECTIVE_HYPERPARAMETER = "_tuning_objective_metric"
#: Training-job members a TrainingJobDefinition passes on to each trial as they are.
_PASSED = ("RoleArn", "InputDataConfig", "VpcConfig", "OutputDataConfig", "ResourceConfig", "StoppingCondition",
           "EnableNetworkIsolation", "EnableInterContainerTrafficEncryption", "EnableManagedSpotTraining",
           "CheckpointConfig", "RetryStrategy", "Environment")


@dataclass(frozen=True)
class TuningPlan:
    name: str
    request: Mapping[str, Any]
    strategy: str
    metric_name: str
    objective_type: str
    metric_regex: str
    ranges: tuple[Range, ...]
    max_jobs: int
    max_parallel: int
    early_stopping: str
    seed: int
    xgboost: str | None  # the built-in XGBoost version the trials run, if they do
    min_resource: int = 1
    max_resource: int = 0
    max_runtime_ms: int | None = None  # ResourceLimits.MaxRuntimeInSeconds
    target: float | None = None  # TuningJobCompletionCriteria.TargetObjectiveMetricValue

    def reached(self, objective: float) -> bool:
        """Whether an objective value meets TargetObjectiveMetricValue."""
        if self.target is None:
            return False
        return objective <= self.target if self.minimize else objective >= self.target

    @property
    def minimize(self) -> bool:
        return self.objective_type == "Minimize"

    @property
    def hyperband(self) -> bool:
        return self.strategy == "Hyperband"

    def static_hyperparameters(self) -> dict[str, str]:
        """The definition's StaticHyperParameters plus `_tuning_objective_metric`, which SageMaker adds to every
        tuning job's (the SageMaker Python SDK's HyperparameterTuner.attach removes it unconditionally)."""
        static = dict(self.request["TrainingJobDefinition"].get("StaticHyperParameters") or {})
        return {**static, OBJECTIVE_HYPERPARAMETER: self.metric_name}

    def described_config(self) -> dict[str, Any]:
        """HyperParameterTuningJobConfig as Describe shows it: with TrainingJobEarlyStoppingType (Off when not
        given), all three range lists, and MaxNumberOfTrainingJobs (Grid's count of combinations when not given); the
        SageMaker Python SDK's HyperparameterTuner.attach reads each of them unconditionally."""
        config = copy.deepcopy(dict(self.request["HyperParameterTuningJobConfig"]))
        config.setdefault("TrainingJobEarlyStoppingType", "Off")
        config["ResourceLimits"].setdefault("MaxNumberOfTrainingJobs", self.max_jobs)
        ranges = config.setdefault("ParameterRanges", {})
        for member in ("CategoricalParameterRanges", "ContinuousParameterRanges", "IntegerParameterRanges"):
            ranges.setdefault(member, [])
        return config

    def described_definition(self) -> dict[str, Any]:
        """TrainingJobDefinition as DescribeHyperParameterTuningJob shows it: the objective among the static
        hyperparameters, a ResourceConfig where HyperParameterTuningResourceConfig names one instance type (the SDK
        sends the latter, and its attach reads the former), and the training defaults AWS fills in (defaults.py),
        each only where the definition's shape has the member."""
        definition = copy.deepcopy(dict(self.request["TrainingJobDefinition"]))
        definition["StaticHyperParameters"] = self.static_hyperparameters()
        if self.xgboost:  # a built-in algorithm shows its own metric definitions, as DescribeTrainingJob does
            metrics = xgboost_algorithm.metric_definitions(self.xgboost, definition["StaticHyperParameters"])
            objective = xgboost_algorithm.definitions(self.xgboost).metric(self.metric_name)
            if objective is not None and all(m["Name"] != objective.name for m in metrics):
                metrics.append({"Name": objective.name, "Regex": objective.regex})
            definition["AlgorithmSpecification"]["MetricDefinitions"] = metrics
        tuning_resources = definition.get("HyperParameterTuningResourceConfig") or {}
        if "ResourceConfig" not in definition and tuning_resources.get("InstanceType"):
            definition["ResourceConfig"] = trial_resources(tuning_resources)
        shape = service_model().shape_for("HyperParameterTrainingJobDefinition")
        pruned: dict[str, Any] = _within(with_unset(definition), shape)
        return pruned

    def trial_request(self, name: str, tuned: Mapping[str, str]) -> dict[str, Any]:
        """The CreateTrainingJob request of one trial, as SageMaker makes it from the TrainingJobDefinition."""
        definition = self.request["TrainingJobDefinition"]
        algorithm = copy.deepcopy(dict(definition["AlgorithmSpecification"]))
        if self.xgboost:
            algorithm.pop("MetricDefinitions", None)  # the built-in algorithm's own metrics apply
        hyperparameters = {**self.static_hyperparameters(), **tuned}
        request: dict[str, Any] = {"TrainingJobName": name, "AlgorithmSpecification": algorithm,
                                   "HyperParameters": hyperparameters}
        for member in _PASSED:
            if definition.get(member) is not None:
                request[member] = copy.deepcopy(definition[member])
        if "ResourceConfig" not in request:
            request["ResourceConfig"] = trial_resources(definition.get("HyperParameterTuningResourceConfig") or {})
        return request


def trial_resources(tuning: Mapping[str, Any]) -> dict[str, Any]:
    """A trial's ResourceConfig from HyperParameterTuningResourceConfig (what the SageMaker Python SDK sends): its
    instance, or the first of its InstanceConfigs (the local SageMaker has no capacity to fall back on)."""
    chosen = tuning if tuning.get("InstanceType") else next(iter(tuning.get("InstanceConfigs") or []), {})
    out = {key: chosen[key] for key in ("InstanceType", "InstanceCount", "VolumeSizeInGB") if key in chosen}
    if tuning.get("VolumeKmsKeyId"):
        out["VolumeKmsKeyId"] = tuning["VolumeKmsKeyId"]
    return out


def build(params: Mapping[str, Any]) -> TuningPlan:
    """The plan of a request, or the ValidationException SageMaker answers it with."""
    problems = validate_request(OPERATION, params)
    if problems:
        raise errors.invalid(problems, params)
    if params.get("TrainingJobDefinitions") or params.get("WarmStartConfig") or params.get("Autotune"):
        raise errors.ValidationException(
            "The local SageMaker runs tuning jobs with one TrainingJobDefinition, without WarmStartConfig or "
            "Autotune.")
    definition = params.get("TrainingJobDefinition")
    if definition is None:
        raise errors.ValidationException("A TrainingJobDefinition is required.")
    if not definition.get("ResourceConfig") and not trial_resources(
            definition.get("HyperParameterTuningResourceConfig") or {}).get("InstanceType"):
        raise errors.ValidationException("TrainingJobDefinition needs ResourceConfig or "
                                         "HyperParameterTuningResourceConfig with an instance type.")
    config = params["HyperParameterTuningJobConfig"]
    strategy = str(config["Strategy"])
    objective = config.get("HyperParameterTuningJobObjective") or definition.get("TuningObjective")
    if objective is None:
        raise errors.ValidationException("HyperParameterTuningJobObjective is required for the "
                                         f"{strategy} strategy.")
    try:
        ranges = tuple(parse(config.get("ParameterRanges") or definition.get("HyperParameterRanges") or {}))
    except RangeError as error:
        raise errors.ValidationException(str(error)) from None
    if not ranges:
        raise errors.ValidationException("ParameterRanges must name at least one hyperparameter to tune.")
    static = dict(definition.get("StaticHyperParameters") or {})
    both = sorted({r.name for r in ranges} & set(static))
    if both:
        raise errors.ValidationException(f"Hyperparameters {', '.join(both)} cannot be both static and tunable.")

    limits = config["ResourceLimits"]
    max_parallel = int(limits["MaxParallelTrainingJobs"])
    max_jobs = _max_jobs(strategy, ranges, limits.get("MaxNumberOfTrainingJobs"))
    if max_parallel > max_jobs:
        raise errors.ValidationException(
            f"MaxParallelTrainingJobs ({max_parallel}) must be less than or equal to MaxNumberOfTrainingJobs "
            f"({max_jobs}).")
    early = str(config.get("TrainingJobEarlyStoppingType") or "Off")
    if config.get("StrategyConfig") and strategy != "Hyperband":
        raise errors.ValidationException("StrategyConfig can only be specified for the Hyperband strategy.")
    min_resource, max_resource = _hyperband(strategy, config, static, early)

    algorithm = definition["AlgorithmSpecification"]
    image = str(algorithm.get("TrainingImage") or "")
    version = xgboost_version(image)
    metric_name, objective_type = str(objective["MetricName"]), str(objective["Type"])
    if version is not None:
        regex = _xgboost_objective(version, metric_name, algorithm, ranges, static)
    else:
        regex = _custom_objective(metric_name, algorithm)
    seed = config.get("RandomSeed")
    max_runtime = limits.get("MaxRuntimeInSeconds")
    target = (config.get("TuningJobCompletionCriteria") or {}).get("TargetObjectiveMetricValue")
    return TuningPlan(
        name=str(params["HyperParameterTuningJobName"]), request=copy.deepcopy(dict(params)), strategy=strategy,
        metric_name=metric_name, objective_type=objective_type, metric_regex=regex, ranges=ranges,
        max_jobs=max_jobs, max_parallel=max_parallel, early_stopping=early,
        seed=int(seed) if seed is not None else random.SystemRandom().randrange(2**31), xgboost=version,
        min_resource=min_resource, max_resource=max_resource,
        max_runtime_ms=int(max_runtime) * 1000 if max_runtime is not None else None,
        target=float(target) if target is not None else None,
    )


def _max_jobs(strategy: str, ranges: tuple[Range, ...], asked: Any) -> int:
    if strategy == "Grid":
        numeric = [r.name for r in ranges if r.kind != "Categorical"]
        if numeric:
            raise errors.ValidationException(
                "The Grid strategy searches categorical parameter ranges only; remove the integer and continuous "
                f"ranges of {', '.join(numeric)} or use another strategy.")
        combinations = sum(1 for _ in grid(ranges))
        return combinations if asked is None else min(int(asked), combinations)
    if asked is None:
        raise errors.ValidationException(f"MaxNumberOfTrainingJobs is required for the {strategy} strategy.")
    return int(asked)


def _hyperband(strategy: str, config: Mapping[str, Any], static: Mapping[str, str], early: str) -> tuple[int, int]:
    if strategy != "Hyperband":
        return 1, 0
    if early != "Off":
        raise errors.ValidationException("TrainingJobEarlyStoppingType must be OFF to use the Hyperband strategy, "
                                         "which has its own internal early stopping.")
    given = (config.get("StrategyConfig") or {}).get("HyperbandStrategyConfig") or {}
    max_resource = given.get("MaxResource")
    if max_resource is None:
        for key in RESOURCE_KEYS:
            if str(static.get(key, "")).isdigit():
                max_resource = int(static[key])
                break
    if max_resource is None:
        raise errors.ValidationException(
            "Hyperband could not infer MaxResource: set HyperbandStrategyConfig.MaxResource or one of the static "
            f"hyperparameters {', '.join(RESOURCE_KEYS)}.")
    min_resource = int(given.get("MinResource") or 1)
    if not 1 <= min_resource <= int(max_resource) <= MAX_HYPERBAND_RESOURCE:
        raise errors.ValidationException(
            f"HyperbandStrategyConfig needs 1 <= MinResource ({min_resource}) <= MaxResource ({max_resource}) <= "
            f"{MAX_HYPERBAND_RESOURCE}.")
    return min_resource, int(max_resource)


def _xgboost_objective(version: str, metric_name: str, algorithm: Mapping[str, Any], ranges: tuple[Range, ...],
                       static: Mapping[str, str]) -> str:
    if algorithm.get("MetricDefinitions"):
        raise errors.ValidationException(errors.BUILT_IN_METRICS)
    defs = xgboost_algorithm.definitions(version)
    metric = defs.metric(metric_name)
    if metric is None:
        raise errors.ValidationException(
            f"The objective metric {metric_name} is not a metric of SageMaker XGBoost {version}; it emits "
            f"{', '.join(m.name for m in defs.metrics)}.")
    for r in ranges:
        hp = defs.hyperparameters.get(defs.aliases.get(r.name, r.name))
        if hp is not None and not hp.tunable:
            raise errors.ValidationException(f"The hyperparameter {r.name} of SageMaker XGBoost {version} is not "
                                             "tunable.")
    # Both ends of every range must be values the algorithm takes (the checks of section 3 with them).
    ends = [{r.name: r.value(0.0) for r in ranges if r.kind != "Categorical"},
            {r.name: r.value(1.0) for r in ranges if r.kind != "Categorical"}]
    ends += [{r.name: value} for r in ranges if r.kind == "Categorical" for value in r.values]
    for end in ends:
        trial = {**static, **{r.name: r.values[0] for r in ranges if r.kind == "Categorical"}, **end,
                 OBJECTIVE_HYPERPARAMETER: metric_name}
        problems = xgboost_algorithm.check_hyperparameters(version, trial)
        if problems:
            text = "; ".join(f"{p.path}: {p.message}" for p in problems)
            raise errors.ValidationException(f"The training jobs of this tuning job would be refused: {text}")
    return metric.regex


def _custom_objective(metric_name: str, algorithm: Mapping[str, Any]) -> str:
    for definition in algorithm.get("MetricDefinitions") or []:
        if definition.get("Name") == metric_name:
            return str(definition["Regex"])
    named = [str(d.get("Name")) for d in algorithm.get("MetricDefinitions") or []]
    raise errors.ValidationException(
        f"The objective metric {metric_name} must be one of the MetricDefinitions of the AlgorithmSpecification"
        + (f" ({', '.join(named)})." if named else "; it has none."))


def _within(value: Any, shape: Any) -> Any:
    """`value` without the structure members `shape` does not have (defaults of CreateTrainingJob's shapes that
    the tuning definition's shapes lack)."""
    if shape.type_name == "structure" and isinstance(value, dict):
        return {key: _within(item, shape.members[key]) for key, item in value.items() if key in shape.members}
    if shape.type_name == "list" and isinstance(value, list):
        return [_within(item, shape.member) for item in value]
    return value
