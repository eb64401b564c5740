"""What a local Flyte run prints while its SageMaker job runs: lines that stay, for either Flyte generation.

flytekit's own display is one live line, cut at the terminal's width and wiped when the task ends, and nothing at all
without a terminal; a Ctrl-C ends the run without a word about the job. These lines are whole (never cut, however
long a message or link), kept, and the same with or without a terminal: one line when the phase or message changes,
one per log link not shown before, and on Ctrl-C one saying that the job is being stopped and one that it was.

Generation-neutral: plain strings in, no flytekit or flyte import; `plugin/flyte/tasks.py` (flytekit 1.x) and the
Flyte 2 tasks feed it their resources' phase names, messages and (name, uri) links.

    lines = ProgressLines("training job my-job")           # stderr by default
    lines.show("RUNNING", "Training", [("Job page", url)])  # prints what changed, returns those lines
    lines.stopping()                                       # "interrupted: stopping training job my-job ..."
    lines.stopped()                                        # "training job my-job was stopped"
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TextIO


def job_label(noun: str, job_name: str) -> str:
    """How the lines name a job: `training job <name>`, `tuning job <name>` (`JobKind.noun`)."""
    return f"{noun} {job_name}"


@dataclass
class ProgressLines:
    """Prints one line per change of a job's (phase, message) and one per new link, to `out` (None: stderr at the
    time of printing, so that a redirected or captured stderr is honoured). One instance per job followed."""

    label: str  # names the job in every line, e.g. job_label("training job", name)
    out: TextIO | None = None
    _state: tuple[str, str] | None = field(default=None, init=False, repr=False)
    _links: set[tuple[str, str]] = field(default_factory=set, init=False, repr=False)

    def show(self, phase: str, message: str = "", links: Iterable[tuple[str, str]] = ()) -> list[str]:
        """Print what changed since the last call: `<label>: <PHASE>[: <message>]` when phase or message changed,
        then `<label>: <link name>: <uri>` for each (name, uri) not shown before. Returns the lines printed."""
        printed = []
        if (phase, message) != self._state:
            self._state = (phase, message)
            printed.append(f"{self.label}: {phase}" + (f": {message}" if message else ""))
        for name, uri in links:
            if (name, uri) not in self._links:
                self._links.add((name, uri))
                printed.append(f"{self.label}: {name}: {uri}")
        for line in printed:
            self._print(line)
        return printed

    def stopping(self) -> str:
        """The line for a Ctrl-C, printed before the job is asked to stop."""
        return self._print(f"interrupted: stopping {self.label} ...")

    def stopped(self, confirmed: bool = True) -> str:
        """The line once the stop was asked for: `<label> was stopped` when the job was seen to end (`confirmed`),
        else that it was asked to stop but had not ended when the run gave up waiting."""
        if confirmed:
            return self._print(f"{self.label} was stopped")
        return self._print(f"{self.label} was asked to stop but had not stopped yet when this run ended; "
                           "its phase shows whether it did")

    def failed_to_stop(self, reason: str) -> str:
        """The line when asking the job to stop failed (`reason`: the error's message)."""
        return self._print(f"{self.label} could not be stopped: {reason}")

    def _print(self, line: str) -> str:
        out = self.out if self.out is not None else sys.stderr
        print(line, file=out, flush=True)
        return line
