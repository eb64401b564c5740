"""From a tuning task and the config to the CreateHyperParameterTuningJob request, with every problem found at once.

The trials are training jobs: their part of the request (TrainingJobDefinition) comes from plugin/jobs/mapping.py's
table, and the trial is checked as a training task would be (plugin/jobs/render.py), with its paths moved under
`hyperparameter_tuning_job`. Then the tuning's own rules (the objective metric, the ranges against the algorithm's
hyperparameters, the limits), then botocore's service model over the whole request.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from handlers import xgboost_algorithm
from handlers.errors import InputError, Problem, join_path
from handlers.job_kinds import TUNING
from handlers.service_model import enum_values
from image_registry import ImageRegistry
from plugin.config import Config
from plugin.jobs import mapping
from plugin.jobs.pipeline import Rendered, finish, resolve, task_problem
from plugin.jobs.render import HYPERPARAMETERS_PATH, image_of, pipe_warnings, render_training
from plugin.message import AlgorithmName
from plugin.task import BUILTIN_TASK, CUSTOM_TASK, TUNING_CONFIG_KEY, TUNING_JOB_KEY, Task, Tuning
from plugin.tuning_message import (
    ContinuousParameterRange,
    HyperparameterScalingType,
    IntegerParameterRange,
    ParameterRangeOneOf,
)

OPERATION = TUNING.create_operation
NAME_MEMBER = TUNING.name_member
TRIAL = f"{TUNING_JOB_KEY}.training_job"
RANGES = f"{TUNING_CONFIG_KEY}.hyperparameter_ranges.parameter_range_map"
OBJECTIVE = f"{TUNING_CONFIG_KEY}.tuning_objective"
_CONFIG = "HyperParameterTuningJobConfig"
_DEFINITION = "TrainingJobDefinition"
# Request paths of the tuning config -> the task paths a user edits.
_CONFIG_PATHS = {
    f"{_CONFIG}.Strategy": f"{TUNING_CONFIG_KEY}.tuning_strategy",
    f"{_CONFIG}.HyperParameterTuningJobObjective.Type": f"{OBJECTIVE}.objective_type",
    f"{_CONFIG}.HyperParameterTuningJobObjective.MetricName": f"{OBJECTIVE}.metric_name",
    f"{_CONFIG}.HyperParameterTuningJobObjective": OBJECTIVE,
    f"{_CONFIG}.ResourceLimits.MaxNumberOfTrainingJobs": f"{TUNING_JOB_KEY}.max_number_of_training_jobs",
    f"{_CONFIG}.ResourceLimits.MaxParallelTrainingJobs": f"{TUNING_JOB_KEY}.max_parallel_training_jobs",
    f"{_CONFIG}.TrainingJobEarlyStoppingType": f"{TUNING_CONFIG_KEY}.training_job_early_stopping_type",
    NAME_MEMBER: "job_name",
}


def trial_task(task: Task) -> Task:
    """The training task every trial is (before the tuned hyperparameters are chosen)."""
    builtin = task.training_job.algorithm_specification.algorithm_name == AlgorithmName.XGBOOST
    return replace(task, task_type=BUILTIN_TASK if builtin else CUSTOM_TASK, tuning=None)


def render_tuning(task: Task, config: Config, registry: ImageRegistry | None = None, region: str | None = None,
                  now: datetime | None = None) -> Rendered:
    """The CreateHyperParameterTuningJob request for a tuning task, or InputError with every problem."""
    assert task.tuning is not None, "render_tuning takes a tuning task"
    tuning = task.tuning
    region = region or config.region
    registry = (registry or ImageRegistry.default()).with_overrides(config.prebuilt_algorithms)
    trial = trial_task(task)
    builtin = trial.task_type == BUILTIN_TASK
    ranges = tuning.config.hyperparameter_ranges.parameter_range_map
    statics = {k: v for k, v in task.hyperparameters.items() if k not in ranges}
    warnings = [Problem(join_path(HYPERPARAMETERS_PATH, k), f"left out of StaticHyperParameters: {RANGES}.{k} "
                        "tunes it") for k in task.hyperparameters if k in ranges]

    problems = _trial_problems(trial, statics, ranges, config, registry, region, now)
    version = registry.resolve_version("xgboost", trial.training_job.algorithm_specification.algorithm_version,
                                       region) if builtin else ""
    problems += list(_tuning_problems(task, tuning, builtin, version))

    problems_image: list[Problem] = []  # the trial's render said them
    image = image_of(trial, registry, region, builtin, problems_image)
    resolved = resolve(task, config, TUNING, image, now)
    source = mapping.Source(task=trial, config=config, builtin=builtin, name=resolved.name, image=image,
                            role_arn=resolved.role, output_prefix=resolved.output_prefix, hyperparameters=statics,
                            channels=resolved.channels)
    request: dict[str, Any] = {NAME_MEMBER: resolved.name, _CONFIG: _config(tuning),
                               _DEFINITION: mapping.body(source, mapping.DEFINITION)}
    request["Tags"] = mapping.tags(source, request)
    warnings += pipe_warnings(request[_DEFINITION], version) if builtin else []
    return finish(TUNING, request, region, resolved, problems, lambda problem: _moved(problem, request, builtin),
                  tuple(warnings))


def _trial_problems(trial: Task, statics: Mapping[str, str], ranges: Mapping[str, ParameterRangeOneOf],
                    config: Config, registry: ImageRegistry, region: str, now: datetime | None) -> list[Problem]:
    """What a training task of the trial would be refused for, its hyperparameters being the statics plus each tuned
    one at a value inside its range (its own range is checked by _tuning_problems); paths under the tuning job."""
    sample = {**statics, **{name: _sample(one) for name, one in ranges.items()}}
    try:
        render_training(replace(trial, hyperparameters=sample), config, registry=registry, region=region, now=now)
    except InputError as error:
        out = []
        for problem in error.problems:
            if problem.path.startswith(HYPERPARAMETERS_PATH + ".") and \
                    problem.path[len(HYPERPARAMETERS_PATH) + 1:] in ranges:
                continue
            if "(request field TrainingJobName)" in problem.message:
                continue  # the tuning job's name is checked against its own limit
            path = problem.path
            if path == "training_job" or path.startswith("training_job."):
                path = TUNING_JOB_KEY + "." + path
            out.append(Problem(path, problem.message))
        return out
    return []


def _sample(one: ParameterRangeOneOf) -> str:
    if one.continuous_parameter_range is not None:
        r = one.continuous_parameter_range
        return str((r.min_value + r.max_value) / 2)
    if one.integer_parameter_range is not None:
        r2 = one.integer_parameter_range
        return str((r2.min_value + r2.max_value) // 2)
    values = one.categorical_parameter_range.values if one.categorical_parameter_range else ()
    return values[0] if values else ""


def _tuning_problems(task: Task, tuning: Tuning, builtin: bool, version: str) -> Iterator[Problem]:
    job, search = tuning.job, tuning.config
    total, parallel = job.max_number_of_training_jobs, job.max_parallel_training_jobs
    if total < 1:
        yield Problem(f"{TUNING_JOB_KEY}.max_number_of_training_jobs", f"must be at least 1, not {total}")
    if parallel < 1:
        yield Problem(f"{TUNING_JOB_KEY}.max_parallel_training_jobs", f"must be at least 1, not {parallel}")
    elif total >= 1 and parallel > total:
        yield Problem(f"{TUNING_JOB_KEY}.max_parallel_training_jobs", f"{parallel} is more than "
                      f"max_number_of_training_jobs ({total})")
    metric = search.tuning_objective.metric_name
    known_metrics = _metrics(task, builtin, version)
    if not metric:
        yield Problem(f"{OBJECTIVE}.metric_name", "is required (the metric the tuning job optimizes)")
    elif known_metrics is not None and metric not in known_metrics:
        said = f"SageMaker XGBoost {version} does not publish it" if builtin else \
            f"no {TRIAL}.algorithm_specification.metric_definitions entry names it"
        choices = ", ".join(sorted(known_metrics)[:12]) or "none"
        yield Problem(f"{OBJECTIVE}.metric_name", f"{metric!r}: {said} (known: {choices})")
    elif builtin and metric.startswith("validation:") and not any(c.name == "validation" for c in task.channels):
        yield Problem(f"{OBJECTIVE}.metric_name", f"{metric!r} needs a 'validation' input")
    ranges = search.hyperparameter_ranges.parameter_range_map
    if not ranges:
        yield Problem(f"{TUNING_CONFIG_KEY}.hyperparameter_ranges", "names no hyperparameter to tune")
    defs = xgboost_algorithm.definitions(version) if builtin and version in xgboost_algorithm.versions() else None
    for name, one in ranges.items():
        yield from _range_problems(name, one, defs)


def _metrics(task: Task, builtin: bool, version: str) -> set[str] | None:
    if builtin:
        if version not in xgboost_algorithm.versions():
            return None  # a version config adds: nothing known to check against
        return {m["Name"] for m in xgboost_algorithm.metric_definitions(version)}
    return {m.name for m in task.training_job.algorithm_specification.metric_definitions}


def _range_problems(name: str, one: ParameterRangeOneOf,
                    defs: xgboost_algorithm.AlgorithmDefinitions | None) -> Iterator[Problem]:
    path = join_path(RANGES, name)
    numeric = one.continuous_parameter_range or one.integer_parameter_range
    if isinstance(numeric, (ContinuousParameterRange, IntegerParameterRange)):
        kind = "continuous_parameter_range" if isinstance(numeric, ContinuousParameterRange) \
            else "integer_parameter_range"
        here = f"{path}.{kind}"
        low, high = numeric.min_value, numeric.max_value
        if low > high:
            yield Problem(here, f"min_value {low} is above max_value {high}")
        if numeric.scaling_type == HyperparameterScalingType.LOGARITHMIC and low <= 0:
            yield Problem(f"{here}.scaling_type", f"LOGARITHMIC needs min_value above 0, not {low}")
        if numeric.scaling_type == HyperparameterScalingType.REVERSELOGARITHMIC and \
                (isinstance(numeric, IntegerParameterRange) or not 0 <= low <= high < 1):
            yield Problem(f"{here}.scaling_type", "REVERSELOGARITHMIC is for continuous ranges within [0, 1)")
    elif one.categorical_parameter_range is not None and not one.categorical_parameter_range.values:
        yield Problem(f"{path}.categorical_parameter_range.values", "lists no value")
    if defs is None:
        return
    label = f"SageMaker XGBoost {defs.version}"
    hp = defs.hyperparameters.get(defs.aliases.get(name, name))
    if hp is None:
        yield Problem(path, f"{label} has no hyperparameter {name!r}")
        return
    if not hp.tunable:
        yield Problem(path, f"{label} does not tune {name!r}")
        return
    expected = {"integer": "integer_parameter_range", "continuous": "continuous_parameter_range"}.get(
        hp.type, "categorical_parameter_range")
    allowed = {expected, "continuous_parameter_range"} if hp.type == "integer" else {expected}
    if one.kinds_set and one.kinds_set[0] not in allowed:
        yield Problem(path, f"{name!r} takes {hp.describe()}: give it {'an' if expected[0] == 'i' else 'a'} {expected}")
        return
    if numeric is not None and hp.interval is not None:
        for end in ("min_value", "max_value"):
            value = getattr(numeric, end)
            if value not in hp.interval:
                kind = "continuous_parameter_range" if isinstance(numeric, ContinuousParameterRange) \
                    else "integer_parameter_range"
                yield Problem(f"{path}.{kind}.{end}", f"{value} is outside what {label} allows for {name!r} "
                              f"({hp.interval})")
    if one.categorical_parameter_range is not None and hp.values:
        allowed_values = {str(v) for v in hp.values}
        for index, value in enumerate(one.categorical_parameter_range.values):
            if value not in allowed_values:
                yield Problem(f"{path}.categorical_parameter_range.values[{index}]",
                              f"{value!r} is not one of {', '.join(sorted(allowed_values))}")


def _enum(member: str, name: str) -> str:
    """The service model's spelling of a flyteidl enum name (RANDOM -> Random, REVERSELOGARITHMIC -> ...)."""
    values = enum_values(OPERATION, member)
    return next((v for v in values if v.replace("_", "").lower() == name.replace("_", "").lower()), name)


def _config(tuning: Tuning) -> dict[str, Any]:
    search, job = tuning.config, tuning.job
    ranges: dict[str, list[dict[str, Any]]] = {}
    scaling = f"{_CONFIG}.ParameterRanges.ContinuousParameterRanges.ScalingType"
    for name, one in search.hyperparameter_ranges.parameter_range_map.items():
        if one.continuous_parameter_range is not None:
            r = one.continuous_parameter_range
            ranges.setdefault("ContinuousParameterRanges", []).append(
                {"Name": name, "MinValue": str(r.min_value), "MaxValue": str(r.max_value),
                 "ScalingType": _enum(scaling, r.scaling_type.name)})
        elif one.integer_parameter_range is not None:
            r2 = one.integer_parameter_range
            ranges.setdefault("IntegerParameterRanges", []).append(
                {"Name": name, "MinValue": str(r2.min_value), "MaxValue": str(r2.max_value),
                 "ScalingType": _enum(scaling, r2.scaling_type.name)})
        elif one.categorical_parameter_range is not None:
            ranges.setdefault("CategoricalParameterRanges", []).append(
                {"Name": name, "Values": list(one.categorical_parameter_range.values)})
    return {
        "Strategy": _enum(f"{_CONFIG}.Strategy", search.tuning_strategy.name),
        "HyperParameterTuningJobObjective": {
            "Type": _enum(f"{_CONFIG}.HyperParameterTuningJobObjective.Type",
                          search.tuning_objective.objective_type.name),
            "MetricName": search.tuning_objective.metric_name},
        "ResourceLimits": {"MaxNumberOfTrainingJobs": job.max_number_of_training_jobs,
                           "MaxParallelTrainingJobs": job.max_parallel_training_jobs},
        "ParameterRanges": ranges,
        "TrainingJobEarlyStoppingType": _enum(f"{_CONFIG}.TrainingJobEarlyStoppingType",
                                              search.training_job_early_stopping_type.name),
    }


_INDEX = re.compile(r"^\[(\d+)\]")


def _moved(problem: Problem, request: Mapping[str, Any], builtin: bool) -> Problem:
    """A service-model problem at its task path (the request path stays in the message)."""
    path = problem.path
    target: str | None = None
    if path.startswith(_DEFINITION + "."):
        inner = path[len(_DEFINITION) + 1:]
        found = mapping.task_path(inner, request[_DEFINITION], builtin, mapping.DEFINITION)
        if found is not None:
            target = TUNING_JOB_KEY + "." + found if found.startswith("training_job") else found
    elif path.startswith("Tags"):
        target = mapping.task_path(path, request, builtin, (mapping.TAGS,))
    elif path.startswith(f"{_CONFIG}.ParameterRanges."):
        kind, _, rest = path[len(f"{_CONFIG}.ParameterRanges."):].partition("[")
        index = _INDEX.match("[" + rest)
        if index is not None:
            entry = request[_CONFIG]["ParameterRanges"][kind][int(index.group(1))]
            target = join_path(RANGES, str(entry["Name"]))
    else:
        target = next((task for req, task in _CONFIG_PATHS.items()
                       if path == req or path.startswith(req + ".")), None)
    return task_problem(problem, target or path)
