"""From a task and the config to the CreateTrainingJob request, with every problem found at once.

Four layers of checks, all reported together with the path of the task field at fault: the semantic rules of the
task file's mapping to the request (docs/task-file.md; only this plugin knows them), the image registry, the built-in
algorithm's own hyperparameter checks (handlers/xgboost_algorithm.py, which its container would make minutes later),
and botocore's service model over the whole request (which knows every pattern, length, count and enum SageMaker
enforces).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import regex

from handlers import distributed, ecr, xgboost_algorithm, xgboost_content
from handlers.errors import Problem, join_path
from handlers.job_kinds import TRAINING
from handlers.regions import is_region_name
from handlers.request import TAG_PREFIX
from image_registry import ImageLookupError, ImageRegistry
from plugin.config import Config
from plugin.jobs import mapping
from plugin.jobs.pipeline import Rendered, finish, resolve, task_problem
from plugin.message import AlgorithmName, DistributedProtocol
from plugin.task import BUILTIN_TASK, CUSTOM_TASK, Task

TRAIN_CHANNEL = "train"
NO_TRAIN_CHANNEL = Problem(f"inputs.{TRAIN_CHANNEL}", f"is required: built-in XGBoost trains on a '{TRAIN_CHANNEL}' "
                           "channel")
RESERVED_TAG_PREFIX = "aws:"
_TJ = "training_job"
_ALGO = "training_job.algorithm_specification"
_RES = "training_job.training_job_resource_config"
HYPERPARAMETERS_PATH = _HYPERPARAMETERS = "inputs.static_hyperparameters"


def render_training(task: Task, config: Config, registry: ImageRegistry | None = None, region: str | None = None,
                    now: datetime | None = None) -> Rendered:
    """The CreateTrainingJob request for a training task, or InputError with every problem; makes no AWS call."""
    problems: list[Problem] = []
    region = region or config.region
    if not is_region_name(region):
        problems.append(Problem("region", f"{region!r} is not an AWS region name (like us-east-1)"))
    registry = (registry or ImageRegistry.default()).with_overrides(config.prebuilt_algorithms)
    resources = task.training_job.training_job_resource_config
    builtin = task.training_job.algorithm_specification.algorithm_name == AlgorithmName.XGBOOST

    problems += _semantic_problems(task, config, builtin)
    warnings = _warnings(task, builtin)
    image = image_of(task, registry, region, builtin, problems)
    version = _known_version(task, registry, region) if builtin and image else None
    if version is not None:
        problems += _hyperparameter_problems(task, version)
    resolved = resolve(task, config, TRAINING, image, now)
    hyperparameters = dict(task.hyperparameters)
    if resources.distributed_protocol == DistributedProtocol.MPI:
        hyperparameters.update(distributed.mpi_hyperparameters(resources.instance_type, config.mpi_custom_options))
    source = mapping.Source(task=task, config=config, builtin=builtin, name=resolved.name, image=image,
                            role_arn=resolved.role, output_prefix=resolved.output_prefix,
                            hyperparameters=hyperparameters, channels=resolved.channels)
    request = mapping.training_job_request(source)
    stopping = request["StoppingCondition"]
    spot_wait, max_runtime = stopping.get("MaxWaitTimeInSeconds"), stopping["MaxRuntimeInSeconds"]
    if spot_wait is not None and spot_wait < max_runtime:
        problems.append(Problem("spot.max_wait_seconds", f"{spot_wait} is below the max runtime "
                                f"({max_runtime} s); SageMaker needs max wait >= max runtime"))
    warnings += pipe_warnings(request, version) if version is not None else []
    return finish(TRAINING, request, region, resolved, problems,
                  lambda problem: _task_problem(problem, request, builtin), (*warnings, *_mpi_warnings(request)))


def pipe_warnings(request: Mapping[str, Any], version: str) -> list[Problem]:
    """Pipe channels the algorithm's container would fail at Training (handlers/xgboost_content.py): a channel
    without InputMode takes the job's, and the request is valid, so only said. `request`: a CreateTrainingJob
    request or a tuning job's TrainingJobDefinition."""
    if version not in xgboost_algorithm.versions():
        return []
    job_mode = request.get("AlgorithmSpecification", {}).get("TrainingInputMode")
    found = []
    for channel in request.get("InputDataConfig") or ():
        name = channel.get("ChannelName")
        if name not in xgboost_content.DATA_CHANNELS or (channel.get("InputMode") or job_mode) != "Pipe":
            continue
        problem = xgboost_content.pipe_problem(version, channel.get("ContentType"))
        if problem is not None:
            found.append(Problem(f"inputs.{name}", f"is read in Pipe mode ({_ALGO}.input_mode: PIPE), but "
                                 f"{problem.reason}; use input_mode FILE"))
    return found


def _mpi_warnings(request: Mapping[str, Any]) -> tuple[Problem, ...]:
    """MPI asked for in a form that SageMaker's training toolkit would not start (handlers.distributed.Launch)."""
    launch = distributed.launch(request)
    problem = launch.mpi_problem()
    if problem is None:
        return ()
    fix = (f"leave container.command and container.args out, and name the script with "
           f"inputs.static_hyperparameters.{distributed.USER_PROGRAM} (found in the image's /opt/ml/code, or in "
           f"{distributed.SUBMIT_DIRECTORY})")
    path = ("container.command" if launch.entrypoint else "container.args" if launch.arguments
            else f"inputs.static_hyperparameters.{distributed.USER_PROGRAM}")
    return (Problem(path, f"MPI would not start on SageMaker: {problem}; {fix}"),)


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
        problems.append(NO_TRAIN_CHANNEL)
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
    for index, metric in enumerate(() if builtin else algo.metric_definitions):  # built-in: never sent
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


def _warnings(task: Task, builtin: bool) -> list[Problem]:
    """What the task asks for that the request leaves out: valid input, but the user should know."""
    warnings: list[Problem] = []
    if builtin and task.training_job.algorithm_specification.metric_definitions:
        warnings.append(Problem(f"{_ALGO}.metric_definitions", "left out of the request: SageMaker refuses metric "
                                "definitions for its built-in algorithms; built-in XGBoost publishes its own metrics "
                                "(train:rmse, validation:auc, ... after its eval_metric)"))
    return warnings


def image_of(task: Task, registry: ImageRegistry, region: str, builtin: bool, problems: list[Problem]) -> str:
    if not builtin:
        image = task.container.image if task.container else ""
        wrong = ecr.cross_region_problem(image, region) if image and is_region_name(region) else None
        if wrong is not None:
            problems.append(Problem("container.image", f"{image} {wrong}"))
        return image
    version = task.training_job.algorithm_specification.algorithm_version
    try:
        return registry.uri("xgboost", version, region)
    except ImageLookupError as error:
        path = "region" if error.field == "region" else f"{_ALGO}.algorithm_version"
        problems.append(Problem(path, str(error)))
        return ""


def _known_version(task: Task, registry: ImageRegistry, region: str) -> str | None:
    """The task's algorithm version, when the project knows its container (a version that config's
    prebuilt_algorithms adds has nothing known to check it against)."""
    version = registry.resolve_version("xgboost", task.training_job.algorithm_specification.algorithm_version, region)
    return version if version in xgboost_algorithm.versions() else None


def _hyperparameter_problems(task: Task, version: str) -> list[Problem]:
    """The algorithm's own checks of its hyperparameters, as its container makes them once the job is Training."""
    return [Problem(join_path(_HYPERPARAMETERS, p.path), p.message)
            for p in xgboost_algorithm.check_hyperparameters(version, task.hyperparameters)]


def _task_problem(problem: Problem, request: Mapping[str, Any], builtin: bool) -> Problem:
    """A service-model problem, moved to the task field at fault; the request field stays in the message."""
    return task_problem(problem, mapping.task_path(problem.path, request, builtin) or problem.path)
