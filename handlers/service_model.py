"""Validation of a request against botocore's service model.

botocore's client checks only required members, Python types and minimums; SageMaker itself rejects the rest
(patterns, maximum lengths and counts, enums, numeric ranges) with a ValidationException after a round trip. This
walks the operation's input shape generically and reports every such problem at once, so no AWS constraint is ever
copied by hand: a newer botocore brings newer rules. Each problem's message is AWS's own constraint text ("Member must
satisfy regular expression pattern: ..."), the one source for the local SageMaker's ValidationException and for what
`validate` shows; type mismatches, which AWS answers with a SerializationException instead, keep plain words.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import botocore.session
import regex
from botocore.model import ListShape, MapShape, OperationModel, ServiceModel, Shape, StructureShape

from handlers import explain
from handlers.errors import Problem, join_path, short_repr


@functools.lru_cache(maxsize=8)
def service_model(service: str = "sagemaker") -> ServiceModel:
    """The service model, loaded once: building a client per check would cost ~50 ms each."""
    session = botocore.session.get_session()
    return ServiceModel(session.get_service_data(service), service_name=service)


def operation_model(operation: str, service: str = "sagemaker") -> OperationModel:
    return service_model(service).operation_model(operation)


@functools.lru_cache(maxsize=512)
def _compiled(pattern: str) -> Any:
    # AWS patterns are Java regexes (\p{L}, \p{Alnum}); the `regex` module understands them, `re` does not.
    return regex.compile(pattern)


def member_shape(operation: str, path: str, service: str = "sagemaker") -> Shape:
    """The shape at a dotted path of an operation's input, e.g. `ResourceConfig.InstanceType`."""
    shape: Shape | None = operation_model(operation, service).input_shape
    for part in path.split("."):
        if isinstance(shape, ListShape):  # a list's members are named through it: `Ranges.Name`
            shape = shape.member
        if not isinstance(shape, StructureShape):
            raise KeyError(path)
        shape = shape.members[part]
    if shape is None:
        raise KeyError(path)
    return shape


def enum_values(operation: str, path: str, service: str = "sagemaker") -> list[str]:
    """The values an enum member accepts, e.g. the 225 training instance types."""
    return list(_enum(member_shape(operation, path, service)))


def validate_request(operation: str, params: Mapping[str, Any], service: str = "sagemaker", *,
                     explain: bool = False) -> list[Problem]:
    """Every way `params` breaks the operation's input shape; empty when SageMaker's model accepts it.

    Each message is AWS's constraint text, as a ValidationException carries it. With `explain` (the plugin's own
    checks before any call, read by people), each says instead the one constraint that failed and why, with the value
    when it may be shown: the closest allowed values of an enum, the characters a pattern refuses, a text's length;
    AWS's text of that one constraint follows in parentheses."""
    shape = operation_model(operation, service).input_shape
    return list(_Walk(explain).check(shape, params, "")) if shape is not None else []


def split_path(path: str) -> list[str]:
    """`InputDataConfig[0].ChannelName` -> ["InputDataConfig", "0", "ChannelName"]."""
    return [part for part in path.replace("[", ".").replace("]", "").split(".") if part]


def value_at(params: Mapping[str, Any], path: str) -> tuple[bool, Any]:
    """(found, value) at a problem's path in a request."""
    current: Any = params
    for part in split_path(path):
        if isinstance(current, Mapping) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return False, None
    return True, current


def _enum(shape: Shape) -> list[str]:
    return list(getattr(shape, "enum", None) or [])


def _describe(value: Any) -> str:
    return short_repr(value)


# AWS's constraint texts, word for word: "Value 'x' at 'a.b' failed to satisfy constraint: <one of these>".
NOT_NULL = "Member must not be null"


def _length_texts(shape: Shape) -> list[str]:
    """Every length constraint of a shape, in the order AWS lists them inside "[...]"."""
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    texts = []
    if high is not None:
        texts.append(f"Member must have length less than or equal to {high}")
    if low is not None:
        texts.append(f"Member must have length greater than or equal to {low}")
    return texts


def _all_texts(shape: Shape) -> list[str]:
    """Every constraint of a scalar shape, as AWS lists them for a map key or value or a list item that breaks one."""
    texts = _length_texts(shape) if shape.type_name == "string" and not _enum(shape) else []
    if shape.type_name in ("integer", "long", "float", "double"):
        low, high = shape.metadata.get("min"), shape.metadata.get("max")
        texts += [f"Member must have value less than or equal to {high}"] if high is not None else []
        texts += [f"Member must have value greater than or equal to {low}"] if low is not None else []
    if shape.metadata.get("pattern"):
        texts.append(f"Member must satisfy regular expression pattern: {shape.metadata['pattern']}")
    if _enum(shape):
        texts.append(f"Member must satisfy enum value set: [{', '.join(_enum(shape))}]")
    return texts


def _is_scalar(shape: Shape) -> bool:
    return shape.type_name not in ("structure", "list", "map")


_INTEGER_MAX = {"integer": 2**31 - 1, "long": 2**63 - 1}
_HIDDEN: Any = object()  # a value a message must not show


def _subject(value: Any, part: str) -> str:
    """What an explained message starts with: the value, or the part of a map or list (whose value is not shown)."""
    return f"the {part}" if part else "" if value is _HIDDEN else short_repr(value)


@dataclass(frozen=True)
class _Walk:
    """One walk over a request: AWS's texts, or with `explain` plain words (see validate_request)."""

    explain: bool

    def check(self, shape: Shape, value: Any, path: str, part: str = "") -> Iterator[Problem]:
        """The problems of `value` at `path`; `part` ("key", "value", "item"): a scalar reported at its map or list,
        whose value is never shown."""
        type_name = shape.type_name
        if type_name == "structure":
            yield from self._structure(shape, value, path)  # type: ignore[arg-type]
        elif type_name == "list":
            yield from self._list(shape, value, path)  # type: ignore[arg-type]
        elif type_name == "map":
            yield from self._map(shape, value, path)  # type: ignore[arg-type]
        elif type_name == "string":
            yield from self._string(shape, value, path, part)
        elif type_name in ("integer", "long"):
            yield from self._number(shape, value, path, part, integral=True)
        elif type_name in ("float", "double"):
            yield from self._number(shape, value, path, part, integral=False)
        elif type_name == "boolean" and not isinstance(value, bool):
            yield Problem(path, f"must be a boolean, not {_describe(value)}")
        # timestamps and blobs do not occur in the requests this project builds; botocore checks their types.

    def _failed(self, path: str, aws: str, why: str = "", *, value: Any = _HIDDEN, part: str = "") -> Problem:
        """A broken constraint: AWS's text `aws`; explained, the value (or the part) in front, `why` if known."""
        if not self.explain:
            return Problem(path, aws)
        said = f"{why} ({aws})" if why else f"failed to satisfy constraint: {aws}"
        return Problem(path, f"{_subject(value, part)} {said}".strip())

    def _structure(self, shape: StructureShape, value: Any, path: str) -> Iterator[Problem]:
        if not isinstance(value, Mapping):
            yield Problem(path, f"must be an object, not {_describe(value)}")
            return
        for name in shape.required_members:
            if value.get(name) is None:
                yield Problem(join_path(path, name), NOT_NULL)
        for name, member_value in value.items():
            member = shape.members.get(name)
            if member is None:
                yield Problem(join_path(path, str(name)), f"is not a field of {shape.name}")
            elif member_value is not None:
                yield from self.check(member, member_value, join_path(path, name))

    def _count(self, shape: Shape, count: int, path: str, units: tuple[str, str]) -> Iterator[Problem]:
        low, high = shape.metadata.get("min"), shape.metadata.get("max")
        said = f"has {count} {units[count != 1]}"
        if high is not None and count > high:
            yield self._failed(path, f"Member must have length less than or equal to {high}", said)
        if low is not None and count < low:
            yield self._failed(path, f"Member must have length greater than or equal to {low}", said)

    def _list(self, shape: ListShape, value: Any, path: str) -> Iterator[Problem]:
        if not isinstance(value, (list, tuple)):
            yield Problem(path, f"must be a list, not {_describe(value)}")
            return
        yield from self._count(shape, len(value), path, ("item", "items"))
        for index, item in enumerate(value):
            yield from self._part(shape.member, item, join_path(path, index), path, "Member", "item")

    def _part(self, shape: Shape, value: Any, path: str, container_path: str, aws_part: str, part: str
              ) -> Iterator[Problem]:
        """A list item, map key or map value. AWS reports a scalar one that breaks its constraints at the list or map,
        listing every constraint of its shape (`aws_part` must satisfy constraint: [...]); explained, the one it
        broke."""
        if not _is_scalar(shape):
            yield from self.check(shape, value, path)
            return
        found = list(self.check(shape, value, path, part))
        if self.explain:
            yield from (Problem(p.path, p.message, aws_path=container_path) for p in found)
        elif found and all(p.message in _all_texts(shape) for p in found):
            yield Problem(path, f"{aws_part} must satisfy constraint: [" + ", ".join(_all_texts(shape)) + "]",
                          aws_path=container_path)
        else:
            yield from found

    def _map(self, shape: MapShape, value: Any, path: str) -> Iterator[Problem]:
        if not isinstance(value, Mapping):
            yield Problem(path, f"must be a map, not {_describe(value)}")
            return
        yield from self._count(shape, len(value), path, ("entry", "entries"))
        for key, item in value.items():
            key_path = join_path(path, str(key))
            yield from self._part(shape.key, key, key_path, path, "Map keys", "key")
            yield from self._part(shape.value, item, key_path, path, "Map value", "value")

    def _string(self, shape: Shape, value: Any, path: str, part: str) -> Iterator[Problem]:
        if not isinstance(value, str):
            yield Problem(path, f"must be a string, not {_describe(value)}")
            return
        enum = _enum(shape)
        if enum:
            if value not in enum:
                aws = f"Member must satisfy enum value set: [{', '.join(enum)}]"
                said = f"{_subject(value, part)} {explain.not_one_of(value, enum, shape.name)}"
                yield Problem(path, said if self.explain else aws)
            return
        low, high = shape.metadata.get("min"), shape.metadata.get("max")
        length = f"is {len(value)} character{'s' if len(value) != 1 else ''} long" if value else "is empty"
        if high is not None and len(value) > high:  # never the value: it may be a secret, and its length is the fault
            yield self._failed(path, f"Member must have length less than or equal to {high}", length, part=part)
        if low is not None and len(value) < low:
            yield self._failed(path, f"Member must have length greater than or equal to {low}", length,
                               value=value or _HIDDEN, part=part)
        pattern = shape.metadata.get("pattern")
        if pattern and _compiled(pattern).fullmatch(value) is None:
            why = explain.pattern_reason(value, _compiled(pattern), shape.name) if self.explain else None
            yield self._failed(path, f"Member must satisfy regular expression pattern: {pattern}", why or "",
                               value=value, part=part)

    def _number(self, shape: Shape, value: Any, path: str, part: str, *, integral: bool) -> Iterator[Problem]:
        kinds = (int,) if integral else (int, float)
        if isinstance(value, bool) or not isinstance(value, kinds):
            yield Problem(path, f"must be {'an integer' if integral else 'a number'}, not {_describe(value)}")
            return
        low, high = shape.metadata.get("min"), shape.metadata.get("max")
        # AWS's integer types are 32 and 64 bits wide
        if high is None and shape.type_name in _INTEGER_MAX and value > _INTEGER_MAX[shape.type_name]:
            yield Problem(path, f"must fit a {_INTEGER_MAX[shape.type_name].bit_length() + 1}-bit integer")
        if high is not None and value > high:
            yield self._failed(path, f"Member must have value less than or equal to {high}", value=value, part=part)
        if low is not None and value < low:
            yield self._failed(path, f"Member must have value greater than or equal to {low}", value=value, part=part)
