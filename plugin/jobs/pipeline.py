"""The one render pipeline every job kind goes through: resolve what all requests take from the task and config
(name, role, output prefix, uploads), let the kind build its request from its mapping, then merge the kind's
problems with the service model's by one rule.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from handlers import naming
from handlers.errors import InputError, Problem, merge_by_path
from handlers.job_kinds import TRAINING, JobKind
from handlers.service_model import validate_request
from plugin.config import Config
from plugin.jobs import mapping
from plugin.message import AlgorithmName
from plugin.task import Task


@dataclass(frozen=True)
class Upload:
    """A local input that the local backend copies to S3 before the create."""

    channel: str
    local_path: str
    s3_uri: str


@dataclass(frozen=True)
class Rendered:
    """The request, and what the task says that the request leaves out on purpose (`warnings`: valid, but said)."""

    request: dict[str, Any]
    region: str
    uploads: tuple[Upload, ...] = ()
    warnings: tuple[Problem, ...] = ()
    kind: JobKind = TRAINING

    @property
    def job_name(self) -> str:
        return str(self.request[self.kind.name_member])

    def warning_lines(self) -> list[str]:
        """`warning: <path>: <message>`, one per warning, as the command line prints them on stderr."""
        return [f"warning: {warning}" for warning in self.warnings]


@dataclass(frozen=True)
class Resolved:
    """What every kind's request takes alike from the task and config; `problems`: what is missing of it."""

    name: str
    role: str
    output_prefix: str
    uploads: tuple[Upload, ...]
    channels: tuple[tuple[str, str], ...]
    problems: tuple[Problem, ...]


def resolve(task: Task, config: Config, kind: JobKind, image: str, now: datetime | None) -> Resolved:
    """The job's name, role, output prefix and the uploads of its local channels (their S3 URIs in `channels`)."""
    name = job_name(task, kind, image, now)
    problems = []
    output_prefix = (task.output_prefix or mapping.default_output_prefix(config)).rstrip("/")
    if not output_prefix:
        problems.append(Problem("output_prefix", "is required with the aws backend (in the task or in config)"))
    role = task.role_arn or mapping.default_role(config)
    if not role:
        problems.append(Problem("role_arn", "is required with the aws backend (in the task or in config)"))
    uploads = tuple(Upload(c.name, c.source, f"{output_prefix}/{name}/input/{c.name}/") for c in task.local_channels)
    uploaded = {u.channel: u.s3_uri for u in uploads}
    channels = tuple((c.name, uploaded.get(c.name, c.source)) for c in task.channels)
    return Resolved(name, role, output_prefix, uploads, channels, tuple(problems))


def job_name(task: Task, kind: JobKind, image: str, now: datetime | None) -> str:
    """The task's job_name, else one from its execution identity, else a unique one; within the kind's limit."""
    limit = naming.max_name_length(kind.create_operation, kind.name_member)
    if task.job_name:
        return task.job_name
    if task.execution:
        e = task.execution
        return naming.name_from_identity([e.project, e.domain, e.name, e.node_id, str(e.retry_attempt)], limit)
    builtin = task.training_job.algorithm_specification.algorithm_name == AlgorithmName.XGBOOST
    base = "xgboost" if builtin else naming.image_base_name(image or kind.noun.split()[0])
    return naming.unique_name(base, now, limit)


def related(path: str, other: str) -> bool:
    """Whether two task paths name the same field, or one a part of the other."""
    return path == other or path.startswith(other + ".") or other.startswith(path + ".") or \
        path.startswith(other + "[") or other.startswith(path + "[")


def merged(problems: list[Problem], more: list[Problem]) -> list[Problem]:
    """The one merge rule: `problems`, then each of `more` about a field none of them explains (nor a part of one)."""
    seen = [p.path for p in problems]
    return merge_by_path([*problems, *(p for p in more if not any(related(p.path, s) for s in seen))])


def finish(kind: JobKind, request: dict[str, Any], region: str, resolved: Resolved, problems: list[Problem],
           moved: Callable[[Problem], Problem], warnings: tuple[Problem, ...] = ()) -> Rendered:
    """The kind's request checked against the service model (each problem `moved` to its task path), or InputError
    with every problem: ours first, the model's for the fields we said nothing of."""
    model = [moved(problem) for problem in validate_request(kind.create_operation, request, explain=True)]
    problems = merged([*problems, *resolved.problems], model)
    if problems:
        raise InputError(problems)
    return Rendered(request, region, resolved.uploads, warnings, kind)


def task_problem(problem: Problem, target: str) -> Problem:
    """A service-model problem (explained: validate_request's `explain`) at task path `target`, the request path in
    the message."""
    path = problem.path
    return Problem(path, problem.message) if target == path else \
        Problem(target, f"{problem.message} (request field {path})")


