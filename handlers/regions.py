"""What a region name looks like, from botocore's partitions data (endpoints.json), not a hand-written pattern:
a newer botocore knows newer partitions."""

from __future__ import annotations

import functools
import re


@functools.lru_cache(maxsize=1)
def _patterns() -> tuple[re.Pattern[str], ...]:
    import botocore.loaders

    partitions = botocore.loaders.create_loader().load_data("endpoints")["partitions"]
    return tuple(re.compile(p["regionRegex"]) for p in partitions if p.get("regionRegex"))


@functools.lru_cache(maxsize=64)
def is_region_name(name: str) -> bool:
    """Whether `name` has the form of a region of any AWS partition (us-east-1, cn-north-1, us-gov-west-1, ...)."""
    return any(pattern.fullmatch(name) for pattern in _patterns())
