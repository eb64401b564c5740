"""Who holds a job name, and `run --new-attempt`: the next free attempt of a task's execution identity.

A job name is taken for good, and a name derived from `execution` names one attempt of that identity: an edited task
run again under the same identity meets its earlier version's job, and is refused (never a silent overwrite). The way
on is another `retry_attempt`: one whose name is free, or held by this very task's job (adopted, as ever). Attempts
are used from the task's own upwards without gaps (this search leaves them so), so the first free one is found by
galloping (a, a+1, a+2, a+4, ...) then bisecting: a hundred earlier attempts cost about fourteen Describe calls.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import replace
from typing import Protocol

from handlers.client import SageMakerClient
from handlers.errors import InputError, Problem
from handlers.request import FINGERPRINT_TAG, tags_of
from plugin.jobs.pipeline import Rendered
from plugin.task import Task


class Plugin(Protocol):
    """What the search needs of a job plugin (the TrainingJobPlugin, which builds on this module)."""

    def client(self, region: str | None = None, endpoint_url: str | None = None) -> SageMakerClient: ...

    def render(self, task: Task, ignore_unknown: bool = False) -> Rendered: ...

    def name_holder(self, client: SageMakerClient, name: str, fingerprint: str) -> Holder: ...

FLAG = "--new-attempt"
#: attempts looked at past the task's own before giving up (at most ~2 log2(SPAN) Describe calls)
SPAN = 1 << 16


class Holder(enum.Enum):
    """Who holds a job name: nobody, the job of this very request (its fingerprint), or another job."""

    FREE = "free"
    OURS = "ours"
    THEIRS = "theirs"


class NameTaken(InputError):
    """A create met another job under its name: names are taken for good (exit 2, as any input to change)."""

    def __init__(self, noun: str, name: str, arn: str) -> None:
        self.noun, self.name, self.arn = noun, name, arn
        super().__init__(Problem("job_name", f"{self.conflict()}; names are unique per account and region for "
                                 "good: give the task another job_name or, for a name derived from `execution`, "
                                 f"another execution.retry_attempt (`sagemaker-plugin run TASK_FILE {FLAG}` takes "
                                 "the next free one)"))

    def conflict(self) -> str:
        return f"a different {self.noun} named {self.name!r} already exists ({self.arn})"

    def for_run(self, task: Task, command: str) -> InputError:
        """The refusal `run` prints: the one way on; `command` is the run's own command line, for the flag."""
        if task.job_name or task.execution is None:
            return InputError(Problem("job_name", f"{self.conflict()}; a job name is taken for good: change "
                                      f"job_name ({FLAG} numbers the attempts of a name derived from `execution`, "
                                      "not of one given by job_name)"))
        return InputError(Problem("execution", f"{self.conflict()}: another version of this task ran under this "
                                  "execution identity, and a job name is taken for good. Run this version as a new "
                                  f"attempt (the next free execution.retry_attempt): `{command} {FLAG}`"))


def find_attempt(probe: Callable[[int], Holder], start: int, span: int = SPAN) -> int | None:
    """The attempt to run, from `start` on: the first seen whose name is free or ours; None if every one up to
    `start + span` is another's. Gallops while names are taken, then bisects between the last taken and a free one,
    so the lowest free attempt is found when the taken ones have no gaps."""
    taken, offset = -1, 0  # offsets from start: `taken` is known held by another job
    while True:
        holder = probe(start + offset)
        if holder is Holder.OURS:
            return start + offset
        if holder is Holder.FREE:
            break
        taken = offset
        offset = offset * 2 or 1
        if offset > span:
            return None
    free = offset
    while free - taken > 1:
        middle = (taken + free) // 2
        holder = probe(start + middle)
        if holder is Holder.OURS:
            return start + middle
        if holder is Holder.FREE:
            free = middle
        else:
            taken = middle
    return start + free


def next_attempt(plugin: Plugin, task: Task, rendered: Rendered) -> tuple[int, Rendered]:
    """The first attempt of `task`'s execution identity (from its own retry_attempt on) that can run, a free name or
    this task's own job there, and its request. `rendered` is the task's request as written."""
    if task.job_name:
        raise InputError(Problem("job_name", f"{FLAG} numbers the attempts of a job name derived from `execution`; "
                                 "this task gives its name itself: change job_name instead"))
    if task.execution is None:
        return 0, rendered  # a name of its own, new on every run
    first = task.execution.retry_attempt
    renders = {first: rendered}
    client = plugin.client(rendered.region)

    def render_at(attempt: int) -> Rendered:
        if attempt not in renders:
            assert task.execution is not None
            renders[attempt] = plugin.render(replace(task, execution=replace(task.execution, retry_attempt=attempt)))
        return renders[attempt]

    def probe(attempt: int) -> Holder:
        request = render_at(attempt)
        return plugin.name_holder(client, request.job_name, tags_of(request.request)[FINGERPRINT_TAG])

    found = find_attempt(probe, first)
    if found is None:
        raise InputError(Problem("execution.retry_attempt", f"the jobs of attempts {first} to {first + SPAN} of "
                                 "this execution identity all exist: change the execution identity"))
    return found, render_at(found)
