"""A trial's objective metric as a series over rounds, read from its first host's log stream as lines arrive.

Early stopping and Hyperband need the objective at every round, not only the final value; SageMaker reads it from
the same log lines with the same regex, so the local tuner does too. Each read continues where the last one ended.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import regex
from moto.logs.models import logs_backends

from handlers.logs import LOG_GROUP


@dataclass
class Series:
    """The objective's values so far, one per matching line (a round), and where reading stopped."""

    pattern: str
    values: list[float] = field(default_factory=list)
    _cursor: int = 0

    def read(self, job: Any) -> list[float]:
        stream_name = job.streams.get(1)
        if stream_name is None:
            return self.values
        group = logs_backends[job.account_id][job.region_name].groups.get(LOG_GROUP)
        stream = group.streams.get(stream_name) if group is not None else None
        if stream is None:
            return self.values
        compiled = regex.compile(self.pattern)
        events = stream.events
        for event in events[self._cursor:]:
            match = compiled.search(str(event.message))
            if match is None:
                continue
            try:
                self.values.append(float(match.group(1) if compiled.groups else match.group(0)))
            except (TypeError, ValueError):
                continue
        self._cursor = len(events)
        return self.values
