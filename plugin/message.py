"""The TrainingJob message of flyteidl.plugins.sagemaker, without protobuf.

Producers write it in several encodings (protobuf's json_format with or without defaults, snake_case field names,
enums by name or number, int64 as strings or numbers); all parse to the same value and serialize back to the
canonical proto3 JSON. The field table below is the whole schema: parsing and serializing are driven by it.
"""

from __future__ import annotations

import enum
import functools
import math
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, ClassVar, TypeVar

from handlers.errors import InputError, Problem, join_path, short_repr
from plugin.fields import Reader, as_integer, type_name

# proto3 enums: their members in the .proto's order, numbered from 0 as there
InputMode = enum.IntEnum("InputMode", "FILE PIPE", start=0)
AlgorithmName = enum.IntEnum("AlgorithmName", "CUSTOM XGBOOST", start=0)
InputContentType = enum.IntEnum("InputContentType", "TEXT_CSV", start=0)
DistributedProtocol = enum.IntEnum("DistributedProtocol", "UNSPECIFIED MPI", start=0)

M = TypeVar("M", bound="Message")


class Message:
    """A message whose dataclass annotations are its schema, read and written by this module's code.

    Subclasses are frozen dataclasses; `default_path` names the field problems are reported under.
    """

    default_path: ClassVar[str] = ""

    @classmethod
    def read(cls: type[M], data: Any, path: str | None = None, ignore_unknown: bool = False
             ) -> tuple[M, list[Problem]]:
        """The message as far as it parses (a bad field keeps its default) and every problem found."""
        where = cls.default_path if path is None else path
        message, problems = read_message(cls, data, where, ignore_unknown)
        return message, [*problems, *message.rule_problems(where, problems)]

    @classmethod
    def parse(cls: type[M], data: Any, path: str | None = None, ignore_unknown: bool = False) -> M:
        """Any accepted encoding -> the message; raises InputError naming every bad field."""
        message, problems = cls.read(data, path, ignore_unknown)
        if problems:
            raise InputError(problems)
        return message

    def to_proto3_json(self, including_defaults: bool = False) -> dict[str, Any]:
        """The JSON object protobuf's json_format writes (lowerCamelCase, int64 as strings, enums by name)."""
        return write_message(self, including_defaults)

    def rule_problems(self, path: str, found: list[Problem]) -> list[Problem]:
        """The problems a rule the annotations cannot say finds (`found`: those found so far); none by default."""
        return []


@dataclass(frozen=True)
class MetricDefinition:
    name: str = ""
    regex: str = ""


@dataclass(frozen=True)
class AlgorithmSpecification:
    input_mode: InputMode = InputMode.FILE
    algorithm_name: AlgorithmName = AlgorithmName.CUSTOM
    algorithm_version: str = ""
    metric_definitions: tuple[MetricDefinition, ...] = ()
    input_content_type: InputContentType = InputContentType.TEXT_CSV


@dataclass(frozen=True)
class TrainingJobResourceConfig:
    instance_count: int = 0
    instance_type: str = ""
    volume_size_in_gb: int = 0
    distributed_protocol: DistributedProtocol = DistributedProtocol.UNSPECIFIED


@dataclass(frozen=True)
class TrainingJob(Message):
    default_path: ClassVar[str] = "training_job"

    algorithm_specification: AlgorithmSpecification = field(default_factory=AlgorithmSpecification)
    training_job_resource_config: TrainingJobResourceConfig = field(default_factory=TrainingJobResourceConfig)


@dataclass(frozen=True)
class MapOf:
    """The kind of a proto map<string, message> field (`Mapping[str, X]` in a message's annotations)."""

    value: type


def read_message(cls: type, data: Any, path: str, ignore_unknown: bool = False) -> tuple[Any, list[Problem]]:
    """A message of dataclass `cls` as far as it parses, and every problem found (for messages of other modules)."""
    reader = Reader()
    message = _read_message(reader, cls, data, path, ignore_unknown)
    return message, reader.problems


def write_message(message: Any, including_defaults: bool = False) -> dict[str, Any]:
    """The proto3 JSON object of a message (a dataclass whose annotations are its schema)."""
    return _write_message(message, including_defaults)  # type: ignore[no-any-return]


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _read_enum(reader: Reader, kind: type[enum.IntEnum], value: Any, path: str) -> enum.IntEnum:
    if isinstance(value, str) and value in kind.__members__:
        return kind[value]
    number = as_integer(value)
    if number is not None:
        try:
            return kind(number)
        except ValueError:
            pass
    names = ", ".join(f"{member.name} ({member.value})" for member in kind)
    reader.fail(path, f"{short_repr(value)} is not a {kind.__name__}; use one of {names}")
    return kind(0)


def _read_message(reader: Reader, cls: type, data: Any, path: str, ignore_unknown: bool) -> Any:
    mapping = reader.mapping(data, path)
    if mapping is None:
        return cls()
    by_key = {}
    for f in fields(cls):
        by_key[f.name] = f
        by_key[camel(f.name)] = f
    values: dict[str, Any] = {}
    seen: set[str] = set()
    for key, value in mapping.items():
        found = by_key.get(key)
        if found is None:
            if not ignore_unknown:
                reader.known_keys({key: value}, sorted(by_key), path)
            continue
        f = found
        if f.name in seen:
            reader.fail(join_path(path, key), f"is given twice (as {f.name} and {camel(f.name)})")
            continue
        seen.add(f.name)
        if value is None:
            continue
        values[f.name] = _read_value(reader, _field_kinds(cls)[f.name], value, join_path(path, f.name), ignore_unknown)
    return cls(**values)


def _read_value(reader: Reader, kind: Any, value: Any, path: str, ignore_unknown: bool) -> Any:
    if isinstance(kind, tuple):  # a repeated field
        (item_kind,) = kind
        items = reader.each(value, path, lambda item, p: _read_value(reader, item_kind, item, p, ignore_unknown))
        return tuple(items)
    if isinstance(kind, MapOf):
        entries = reader.mapping(value, path) or {}
        return {key: _read_value(reader, kind.value, item, join_path(path, key), ignore_unknown)
                for key, item in entries.items()}
    if kind is float:
        number = _as_double(value)
        if number is None:
            reader.fail(path, f"must be a number (a JSON number or a decimal string), not {type_name(value)} "
                        f"{short_repr(value, 40)}")
            return 0.0
        return number
    if isinstance(kind, type) and issubclass(kind, enum.IntEnum):
        return _read_enum(reader, kind, value, path)
    if kind is int:
        number = as_integer(value)
        if number is None:
            reader.fail(path, f"must be an integer (a JSON number or a decimal string), not {type_name(value)}")
            return 0
        if not -(2**63) <= number < 2**63:
            reader.fail(path, "does not fit in an int64")
            return 0
        return number
    if kind is str:
        if not isinstance(value, str):
            reader.fail(path, f"must be a string, not {type_name(value)}")
            return ""
        return value
    return _read_message(reader, kind, value, path, ignore_unknown)


def _as_double(value: Any) -> float | None:
    """A double as proto3 JSON takes it: a number, or a string of one ("1e-3", "NaN", "Infinity")."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        try:
            return float(value)
        except OverflowError:
            return None
    if isinstance(value, str) and value.strip() == value and value:
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _write_message(message: Any, including_defaults: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(message):
        value = getattr(message, f.name)
        default = f.default_factory() if callable(f.default_factory) else f.default  # type: ignore[misc]
        if value is None or (value == default and not including_defaults and not _is_message(value)):
            continue
        out[camel(f.name)] = _write_value(value, including_defaults)
    return out


def _is_message(value: Any) -> bool:
    return is_dataclass(value) and not isinstance(value, type)


def _write_value(value: Any, including_defaults: bool) -> Any:
    if isinstance(value, tuple):
        return [_write_value(item, including_defaults) for item in value]
    if isinstance(value, Mapping):
        return {key: _write_value(item, including_defaults) for key, item in value.items()}
    if isinstance(value, float):
        return value if math.isfinite(value) else ("NaN" if math.isnan(value) else
                                                   ("Infinity" if value > 0 else "-Infinity"))
    if isinstance(value, enum.IntEnum):
        return value.name
    if isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return str(value)  # proto3 JSON writes int64 as a string
    return _write_message(value, including_defaults)


@functools.cache
def _field_kinds(cls: type) -> Mapping[str, Any]:
    """The schema of a message, read from its dataclass annotations: each field's kind, a repeated message as a
    one-element tuple (`tuple[MetricDefinition, ...]` -> `(MetricDefinition,)`)."""
    return {f.name: _kind(typing.get_type_hints(cls)[f.name]) for f in fields(cls)}


def _kind(hint: Any) -> Any:
    """A field's kind from its annotation: `tuple[X, ...]` -> (X,), `Mapping[str, X]` -> MapOf(X), and a oneof
    member's `X | None` -> X."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is tuple:
        return (args[0],)
    if origin is Mapping:
        return MapOf(args[1])
    if origin is types.UnionType:
        return next(arg for arg in args if arg is not type(None))
    return hint
