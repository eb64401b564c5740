"""How many hosts a training job runs on, the one rule for every reader of a request or a description: a cluster of
one instance type says `ResourceConfig.InstanceCount`; a heterogeneous cluster says it per instance group."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def host_count(job: Mapping[str, Any]) -> int:
    """The hosts of a CreateTrainingJob request or a DescribeTrainingJob answer: `ResourceConfig.InstanceCount`, else
    the sum of `ResourceConfig.InstanceGroups[].InstanceCount`; at least 1 (algo-1 always exists)."""
    resources = job.get("ResourceConfig") or {}
    count = resources.get("InstanceCount")
    if not count:
        count = sum(int(group.get("InstanceCount") or 0) for group in resources.get("InstanceGroups") or [])
    return max(1, int(count or 1))
