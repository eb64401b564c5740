"""Strict reading of user-written mappings (task files, messages, config).

Every reader collects problems instead of raising at the first one, so that a user sees everything wrong with a
file at once, each problem with the path of the field at fault.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from handlers.errors import InputError, Problem, join_path, short_repr
from handlers.explain import did_you_mean

T = TypeVar("T")

_MISSING: Any = object()


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "a map"
    if isinstance(value, (list, tuple)):
        return "a list"
    return type(value).__name__


class Reader:
    """Collects problems while reading values out of plain mappings."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def fail(self, path: str, message: str) -> None:
        self.problems.append(Problem(path, message))

    def raise_if_any(self) -> None:
        if self.problems:
            raise InputError(self.problems)

    def mapping(self, value: Any, path: str) -> Mapping[str, Any] | None:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.fail(path, f"must be a map, not {type_name(value)}")
            return None
        for key in value:
            if not isinstance(key, str):
                self.fail(path, f"has a key that is not a string: {key!r}")
                return None
        return value

    def known_keys(self, data: Mapping[str, Any], known: Iterable[str], path: str) -> None:
        """Unknown keys are errors: a typo must not pass silently."""
        allowed = set(known)
        for key in data:
            if key not in allowed:
                self.fail(join_path(path, key), "unknown field" + did_you_mean(key, allowed))

    def string(self, data: Mapping[str, Any], key: str, path: str, default: Any = _MISSING) -> Any:
        return self._scalar(data, key, path, default, "", _string)

    def integer(self, data: Mapping[str, Any], key: str, path: str, default: Any = _MISSING,
                minimum: int | None = None) -> Any:
        """An integer; also a decimal string (proto3 JSON writes int64 as strings) or an integral float."""
        return self._scalar(data, key, path, default, 0, _integer, minimum)

    def number(self, data: Mapping[str, Any], key: str, path: str, default: Any = _MISSING,
               minimum: float | None = None) -> Any:
        """A finite number, as a float."""
        value = self._scalar(data, key, path, default, 0.0, _number, minimum)
        return float(value) if isinstance(value, int) else value

    def boolean(self, data: Mapping[str, Any], key: str, path: str, default: Any = _MISSING) -> Any:
        return self._scalar(data, key, path, default, False, _boolean)

    def string_list(self, data: Mapping[str, Any], key: str, path: str) -> tuple[str, ...] | None:
        value = data.get(key)
        if value is None:
            return None
        if not isinstance(value, (list, tuple)):
            self.fail(join_path(path, key), f"must be a list of strings, not {type_name(value)}")
            return None
        out: list[str] = []
        for index, item in enumerate(value):
            text = scalar_text(item)
            if text is None:
                self.fail(join_path(join_path(path, key), index), f"must be a string, not {type_name(item)}")
            else:
                out.append(text)
        return tuple(out)

    def string_map(self, data: Mapping[str, Any], key: str, path: str) -> dict[str, str]:
        """A map of strings; numbers and booleans are accepted as their text (YAML users write `LEVEL: 3`)."""
        return self.text_map(data.get(key), join_path(path, key))

    def text_map(self, value: Any, path: str, wanted: str = "a string") -> dict[str, str]:
        """A map (None: empty) whose values are scalars, as their text; any other value fails as not `wanted`."""
        out: dict[str, str] = {}
        for name, item in (self.mapping(value, path) or {}).items():
            text = scalar_text(item)
            if text is None:
                self.fail(join_path(path, name), f"must be {wanted}, not {type_name(item)}")
            else:
                out[name] = text
        return out

    def each(self, value: Any, path: str, read: Callable[[Any, str], T]) -> list[T]:
        """Reads each item of a list with `read(item, item_path)`."""
        if value is None:
            return []
        if not isinstance(value, (list, tuple)):
            self.fail(path, f"must be a list, not {type_name(value)}")
            return []
        return [read(item, join_path(path, index)) for index, item in enumerate(value)]

    def _scalar(self, data: Mapping[str, Any], key: str, path: str, default: Any, empty: Any,
                convert: Callable[[Any], tuple[Any, str | None]], minimum: float | None = None) -> Any:
        """The value at `key` as `convert` makes it (the value, or what is wrong with it). Missing: the default, or
        `empty` and a problem when there is none; wrong: a problem, and the default or `empty`."""
        here = join_path(path, key)
        if key not in data or data[key] is None:
            if default is _MISSING:
                self.fail(here, "is required")
                return empty
            return default
        value, problem = convert(data[key])
        if problem is not None:
            self.fail(here, problem)
            return empty if default is _MISSING else default
        if minimum is not None and value < minimum:
            self.fail(here, f"must be at least {minimum}, not {value}")
        return value


def _string(value: Any) -> tuple[Any, str | None]:
    return (value, None) if isinstance(value, str) else (None, f"must be a string, not {type_name(value)}")


def _integer(value: Any) -> tuple[Any, str | None]:
    number = as_integer(value)
    if number is None:
        return None, f"must be an integer, not {type_name(value)} {_short(value)}"
    if not -(2**63) <= number < 2**63:
        return None, "does not fit in a 64-bit integer"
    return number, None


def _number(value: Any) -> tuple[Any, str | None]:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not _finite(value):
        return None, f"must be a number, not {type_name(value)} {_short(value)}"
    return value, None


def _boolean(value: Any) -> tuple[Any, str | None]:
    if isinstance(value, bool):
        return value, None
    return None, f"must be true or false, not {type_name(value)} {_short(value)}"


def _finite(value: float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a float
        return False


def as_integer(value: Any) -> int | None:
    """An int, an integral float, or a decimal string of ASCII digits (as proto3 JSON writes int64)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _DECIMAL.fullmatch(value):
        return int(value)
    return None


_DECIMAL = re.compile(r"[+-]?[0-9]{1,20}")


def scalar_text(value: Any) -> str | None:
    """Text of a scalar as SageMaker wants strings: booleans lower-case, numbers by str()."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not (isinstance(value, float) and not math.isfinite(value)):
        return str(value)
    return None


def _short(value: Any) -> str:
    return short_repr(value, 40)
