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
        try:
            data = json.loads(blob)
        except (ValueError, UnicodeDecodeError) as error:
            raise InputError(f"resource meta is not JSON: {error}") from None
        except RecursionError:
            raise InputError("resource meta is nested too deeply") from None
        if not isinstance(data, dict):
            raise InputError("resource meta must be a JSON object")
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
