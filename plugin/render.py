"""From a task and the config to the CreateTrainingJob request, with every problem found at once.

Four layers of checks, all reported together with the path of the task field at fault: the semantic rules of the
task file's mapping to the request (docs/task-file.md; only this plugin knows them), the image registry, the built-in
algorithm's own hyperparameter checks (handlers/xgboost_algorithm.py, which its container would make minutes later),
and botocore's service model over the whole request (which knows every pattern, length, count and enum SageMaker
enforces).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import regex

from handlers import distributed, ecr, naming, xgboost_algorithm
from handlers.errors import InputError, Problem, join_path, merge_by_path
from handlers.regions import is_region_name
from handlers.request import TAG_PREFIX
from handlers.service_model import validate_request
from image_registry import ImageLookupError, ImageRegistry
from plugin import mapping
from plugin.config import Config
from plugin.message import AlgorithmName, DistributedProtocol
from plugin.task import BUILTIN_TASK, CUSTOM_TASK, Task, TaskSource, read_task

TRAIN_CHANNEL = "train"
NO_TRAIN_CHANNEL = Problem(f"inputs.{TRAIN_CHANNEL}", f"is required: built-in XGBoost trains on a '{TRAIN_CHANNEL}' "
                           "channel")
RESERVED_TAG_PREFIX = "aws:"
_TJ = "training_job"
_ALGO = "training_job.algorithm_specification"
_RES = "training_job.training_job_resource_config"
HYPERPARAMETERS_PATH = _HYPERPARAMETERS = "inputs.static_hyperparameters"


@dataclass(frozen=True)
class Rendered:
    """The request, and what the task says that the request leaves out on purpose (`warnings`: valid, but said)."""

    request: dict[str, Any]
    region: str
    uploads: tuple[Upload, ...] = ()
    warnings: tuple[Problem, ...] = ()
    name_key: str = "TrainingJobName"  # HyperParameterTuningJobName for a tuning job

    @property
    def job_name(self) -> str:
        return str(self.request[self.name_key])

    def warning_lines(self) -> list[str]:
        """`warning: <path>: <message>`, one per warning, as the command line prints them on stderr."""
        return [f"warning: {warning}" for warning in self.warnings]


@dataclass(frozen=True)
class Upload:
    """A local input that the local backend copies to S3 before the create."""

    channel: str
    local_path: str
    s3_uri: str


def render(task: Task, config: Config, registry: ImageRegistry | None = None, region: str | None = None,
           now: datetime | None = None) -> Rendered:
    """The request for `task`, or InputError with every problem; makes no AWS call."""
    if task.tuning is not None:
        from plugin.tuning_render import render_tuning

        return render_tuning(task, config, registry=registry, region=region, now=now)
    problems: list[Problem] = []
    region = region or config.region
    if not is_region_name(region):
        problems.append(Problem("region", f"{region!r} is not an AWS region name (like us-east-1)"))
    registry = (registry or ImageRegistry.default()).with_overrides(config.prebuilt_algorithms)
    spec_algo = task.training_job.algorithm_specification
    resources = task.training_job.training_job_resource_config
    builtin = spec_algo.algorithm_name == AlgorithmName.XGBOOST

    problems += _semantic_problems(task, config, builtin)
    warnings = _warnings(task, builtin)
    image = image_of(task, registry, region, builtin, problems)
    if builtin and image:
        problems += _hyperparameter_problems(task, registry, region)
    name = _job_name(task, image, now)
    output_prefix = (task.output_prefix or mapping.default_output_prefix(config)).rstrip("/")
    if not output_prefix:
        problems.append(Problem("output_prefix", "is required with the aws backend (in the task or in config)"))
    role = task.role_arn or mapping.default_role(config)
    if not role:
        problems.append(Problem("role_arn", "is required with the aws backend (in the task or in config)"))

    uploads = tuple(Upload(c.name, c.source, f"{output_prefix}/{name}/input/{c.name}/")
                    for c in task.local_channels)
    uploaded = {u.channel: u.s3_uri for u in uploads}
    hyperparameters = dict(task.hyperparameters)
    if resources.distributed_protocol == DistributedProtocol.MPI:
        hyperparameters.update(distributed.mpi_hyperparameters(resources.instance_type, config.mpi_custom_options))
    source = mapping.Source(task=task, config=config, builtin=builtin, name=name, image=image, role_arn=role,
                            output_prefix=output_prefix, hyperparameters=hyperparameters,
                            channels=tuple((c.name, uploaded.get(c.name, c.source)) for c in task.channels))
    request = mapping.training_job_request(source)
    stopping = request["StoppingCondition"]
    spot_wait, max_runtime = stopping.get("MaxWaitTimeInSeconds"), stopping["MaxRuntimeInSeconds"]
    if spot_wait is not None and spot_wait < max_runtime:
        problems.append(Problem("spot.max_wait_seconds", f"{spot_wait} is below the max runtime "
                                f"({max_runtime} s); SageMaker needs max wait >= max runtime"))
    flagged = {p.path for p in problems}
    for problem in validate_request("CreateTrainingJob", request, explain=True):
        moved = _task_problem(problem, request, builtin)
        if moved.path not in flagged:  # one explanation per field: ours, when we have one
            problems.append(moved)
    if problems:
        raise InputError(merge_by_path(problems))
    return Rendered(request, region, uploads, (*warnings, *_mpi_warnings(request)))


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


def _hyperparameter_problems(task: Task, registry: ImageRegistry, region: str) -> list[Problem]:
    """The algorithm's own checks of its hyperparameters, as its container makes them once the job is Training."""
    version = registry.resolve_version("xgboost", task.training_job.algorithm_specification.algorithm_version, region)
    if version not in xgboost_algorithm.versions():
        return []  # a version config's prebuilt_algorithms adds: nothing known to check it against
    return [Problem(join_path(_HYPERPARAMETERS, p.path), p.message)
            for p in xgboost_algorithm.check_hyperparameters(version, task.hyperparameters)]


def _job_name(task: Task, image: str, now: datetime | None) -> str:
    if task.job_name:
        return task.job_name
    if task.execution:
        e = task.execution
        return naming.name_from_identity([e.project, e.domain, e.name, e.node_id, str(e.retry_attempt)])
    builtin = task.training_job.algorithm_specification.algorithm_name == AlgorithmName.XGBOOST
    return naming.unique_name("xgboost" if builtin else naming.image_base_name(image or "training"), now)


def _task_problem(problem: Problem, request: Mapping[str, Any], builtin: bool) -> Problem:
    """A service-model problem, moved to the task field at fault; the request field stays in the message."""
    return task_problem(problem, mapping.task_path(problem.path, request, builtin) or problem.path)


def task_problem(problem: Problem, target: str) -> Problem:
    """A service-model problem (explained: validate_request's `explain`) at task path `target`, the request path in
    the message."""
    path = problem.path
    return Problem(path, problem.message) if target == path else \
        Problem(target, f"{problem.message} (request field {path})")

