"""From any task to its create request: the renderer of the task's kind, and `check` (read, then render)."""

from __future__ import annotations

from datetime import datetime

from handlers.errors import InputError
from image_registry import ImageRegistry
from plugin.config import Config
from plugin.jobs.pipeline import Rendered, merged
from plugin.jobs.render import render_training
from plugin.jobs.tuning_render import render_tuning
from plugin.task import Task, TaskSource, read_task


def render(task: Task, config: Config, registry: ImageRegistry | None = None, region: str | None = None,
           now: datetime | None = None) -> Rendered:
    """The request for `task`, or InputError with every problem; makes no AWS call."""
    kind_render = render_tuning if task.tuning is not None else render_training
    return kind_render(task, config, registry=registry, region=region, now=now)


def check(source: TaskSource, config: Config, registry: ImageRegistry | None = None, region: str | None = None,
          ignore_unknown: bool = False) -> tuple[Task, Rendered]:
    """Read and render a task, reporting the problems of both steps at once."""
    task, problems = read_task(source, ignore_unknown=ignore_unknown)
    try:
        rendered = render(task, config, registry=registry, region=region)
    except InputError as error:
        # A field that failed to read was replaced by its default; what render says of it would only be noise.
        raise InputError(merged(problems, error.problems)) from None
    if problems:
        raise InputError(problems)
    return task, rendered
