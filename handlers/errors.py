"""The errors of the whole project, in two families.

InputError: the task, message or config is wrong; the user must change it (CLI exit 2). It carries every problem at
once, each with the path of the field at fault.

AwsError and its subclasses: SageMaker (or the network) said no; classified so callers can act (CLI exit 3, or a
phase). Messages never carry credentials.
"""

from __future__ import annotations

import reprlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

_REPR = reprlib.Repr()
_REPR.maxstring = 60
_REPR.maxother = 60
_REPR.maxlevel = 2
_REPR.maxlist = _REPR.maxdict = _REPR.maxtuple = 4


def short_repr(value: Any, limit: int = 60) -> str:
    """A bounded repr for messages: never walks or prints a huge value (an alias bomb, a 1 MB string)."""
    try:
        text = _REPR.repr(value)
    except ValueError:  # an int past Python's 4300-digit str() limit
        return "a number with thousands of digits"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def printable(text: str) -> str:
    """Control and bidi-override characters escaped: a user's field name must not drive the terminal."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() or ch == " " else f"\\u{ord(ch):04x}" for ch in text)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input, at a dotted path such as `training_job.algorithm_specification.input_mode`."""

    path: str
    message: str
    #: Where AWS reports it when not at `path`: a bad map key or value, or list item, is reported at the map or list.
    aws_path: str | None = None

    def __str__(self) -> str:
        text = f"{self.path}: {self.message}" if self.path else self.message
        return printable(text)


class InputError(ValueError):
    """Invalid input: every problem found, each with its field path."""

    def __init__(self, problems: Iterable[Problem] | Problem | str, path: str = "") -> None:
        if isinstance(problems, str):
            problems = [Problem(path, problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems: list[Problem] = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

    def prefixed(self, prefix: str) -> InputError:
        """The same problems, under a parent path."""
        return InputError(Problem(join_path(prefix, p.path), p.message) for p in self.problems)


def join_path(prefix: str, path: str | int) -> str:
    if isinstance(path, int):
        return f"{prefix}[{path}]"
    if not prefix:
        return path
    if not path:
        return prefix
    return prefix + path if path.startswith("[") else f"{prefix}.{path}"


class AwsError(RuntimeError):
    """SageMaker or the network refused; `code` is AWS's error code when there is one."""

    def __init__(self, message: str, code: str = "", operation: str = "") -> None:
        self.code = code
        self.operation = operation
        super().__init__(message)


class InvalidRequest(AwsError):
    """AWS answered ValidationException (other than a missing resource)."""


class NotFound(AwsError):
    """The job does not exist (AWS: ValidationException "Requested resource not found.")."""


class NameInUse(AwsError):
    """ResourceInUse: a training job with this name already exists."""


class ResourceLimit(AwsError):
    """ResourceLimitExceeded: an account quota is full; not transient, but may clear when other jobs end."""


class AccessDenied(AwsError):
    """Credentials missing, expired or not allowed to do this."""


class TransientError(AwsError):
    """Throttling, 5xx or network faults that outlasted the retry policy."""
