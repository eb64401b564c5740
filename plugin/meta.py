"""ResourceMeta: all a process needs to continue tracking a job, as JSON bytes an engine can persist.

It never needs the original process: a restarted engine decodes it and calls get/delete as if nothing happened.
"""

from __future__ import annotations

import functools
import json
import types
import typing
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from handlers.errors import InputError

META_VERSION = 1


@dataclass(frozen=True)
class JsonRefusal:
    """Why a blob holds no JSON object: `error`, the parser's words for what is not JSON; `too_deep`, nested beyond
    the parser's recursion; neither, JSON of another kind. Each reader of a meta says it in its own words."""

    error: str = ""
    too_deep: bool = False

    def say(self, *, not_json: str, too_deep: str, not_object: str) -> str:
        """The reason in the caller's words (`{error}` in `not_json` stands for the parser's)."""
        if self.too_deep:
            return too_deep
        return not_json.format(error=self.error) if self.error else not_object


def json_object(blob: bytes | str) -> dict[str, Any] | JsonRefusal:
    """A JSON object from a blob an engine (or anyone calling a connector) handed back, or why it is none."""
    try:
        value = json.loads(blob)
    except (ValueError, UnicodeDecodeError) as error:
        return JsonRefusal(error=str(error))
    except RecursionError:
        return JsonRefusal(too_deep=True)
    return value if isinstance(value, dict) else JsonRefusal()


@dataclass(frozen=True)
class ResourceMeta:
    job_name: str
    region: str
    created_at: float                       # epoch seconds of the create (or of the first refused create)
    fingerprint: str = ""
    job_arn: str = ""
    endpoint_url: str | None = None         # the SageMaker endpoint the job lives on (None: AWS's own)
    # Set while the create is refused with ResourceLimitExceeded: get keeps retrying it until the wait runs out.
    queued_request: Mapping[str, Any] | None = None
    queued_message: str = ""
    adopted: bool = False                   # create found this task's own job already there
    version: int = field(default=META_VERSION)

    @property
    def queued(self) -> bool:
        return self.queued_request is not None

    def encode(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, blob: bytes | str) -> ResourceMeta:
        data = json_object(blob)
        if isinstance(data, JsonRefusal):
            raise InputError(data.say(not_json="resource meta is not JSON: {error}",
                                      too_deep="resource meta is nested too deeply",
                                      not_object="resource meta must be a JSON object"))
        version = data.get("version")
        if version != META_VERSION or isinstance(version, bool):
            raise InputError(f"resource meta version {version!r} is not supported (this plugin reads {META_VERSION})")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise InputError(f"resource meta has unknown fields: {', '.join(unknown)}")
        missing = sorted(k for k in ("job_name", "region", "created_at") if k not in data)
        if missing:
            raise InputError(f"resource meta lacks {', '.join(missing)}")
        for name, kinds in _field_kinds().items():
            wrong_bool = isinstance(data.get(name), bool) and bool not in kinds
            if name in data and (wrong_bool or not isinstance(data[name], kinds)):
                raise InputError(f"resource meta field {name} has the wrong type ({type(data[name]).__name__})")
        return cls(**data)


# What JSON gives for each annotation: a float may come as an int, a mapping as a dict.
_JSON_KINDS: Mapping[Any, tuple[type, ...]] = {float: (int, float), Mapping[str, Any]: (dict,)}


@functools.cache
def _field_kinds() -> dict[str, tuple[type, ...]]:
    """The JSON types each field accepts, read from ResourceMeta's annotations."""
    kinds: dict[str, tuple[type, ...]] = {}
    for name, hint in typing.get_type_hints(ResourceMeta).items():
        options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
        kinds[name] = tuple(kind for option in options for kind in _JSON_KINDS.get(option, (option,)))
    return kinds
