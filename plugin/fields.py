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
                hint = _closest(key, allowed)
                self.fail(join_path(path, key), "unknown field" + (f" (did you mean '{hint}'?)" if hint else ""))

    def string(self, data: Mapping[str, Any], key: str, path: str, default: Any = _MISSING) -> Any:
        found, value = self._get(data, key, path, default, "")
        if not found:
            return value
        if not isinstance(value, str):
            self.fail(join_path(path, key), f"must be a string, not {type_name(value)}")
            return _fallback(default, "")
        return value

    def integer(self, data: Mapping[str, Any], key: str, path: str, default: Any = _MISSING,
                minimum: int | None = None) -> Any:
        """An integer; also a decimal string (proto3 JSON writes int64 as strings) or an integral float."""
        found, value = self._get(data, key, path, default, 0)
        if not found:
            return value
        number = as_integer(value)
        if number is None:
            self.fail(join_path(path, key), f"must be an integer, not {type_name(value)} {_short(value)}")
            return _fallback(default, 0)
        if not -(2**63) <= number < 2**63:
            self.fail(join_path(path, key), "does not fit in a 64-bit integer")
            return _fallback(default, 0)
        if minimum is not None and number < minimum:
            self.fail(join_path(path, key), f"must be at least {minimum}, not {number}")
        return number

    def number(self, data: Mapping[str, Any], key: str, path: str, default: Any = _MISSING,
               minimum: float | None = None) -> Any:
        found, value = self._get(data, key, path, default, 0.0)
        if not found:
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not _finite(value):
            self.fail(join_path(path, key), f"must be a number, not {type_name(value)} {_short(value)}")
            return _fallback(default, 0.0)
        if minimum is not None and value < minimum:
            self.fail(join_path(path, key), f"must be at least {minimum}, not {value}")
        return float(value)

    def boolean(self, data: Mapping[str, Any], key: str, path: str, default: Any = _MISSING) -> Any:
        found, value = self._get(data, key, path, default, False)
        if not found:
            return value
        if not isinstance(value, bool):
            self.fail(join_path(path, key), f"must be true or false, not {type_name(value)} {_short(value)}")
            return _fallback(default, False)
        return value

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
        value = data.get(key)
        if value is None:
            return {}
        here = join_path(path, key)
        mapping = self.mapping(value, here)
        if mapping is None:
            return {}
        out: dict[str, str] = {}
        for name, item in mapping.items():
            text = scalar_text(item)
            if text is None:
                self.fail(join_path(here, name), f"must be a string, not {type_name(item)}")
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

    def _get(self, data: Mapping[str, Any], key: str, path: str, default: Any, empty: Any) -> tuple[bool, Any]:
        """(True, value) when the key holds a value; else (False, the default), failing when it was required."""
        if key in data and data[key] is not None:
            return True, data[key]
        if default is _MISSING:
            self.fail(join_path(path, key), "is required")
            return False, empty
        return False, default


def _finite(value: float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a float
        return False


def _fallback(default: Any, empty: Any) -> Any:
    return empty if default is _MISSING else default


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


def _closest(word: str, choices: Iterable[str]) -> str | None:
    import difflib

    found = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=0.75)
    return found[0] if found else None
