"""Following a training job's CloudWatch logs: every host's stream, merged in time order, labelled by host.

DescribeLogStreams is limited to about 5 requests/s per account; the SDK and Airflow re-list streams on every poll.
Here the streams are listed only until every host's stream has been seen, then the names are cached. Each stream is
read forward with its own token, so no line is read twice or lost, including the last ones after the job ends.

Several hosts' streams are read one after another, and CloudWatch shows a line a moment after it is written: a poll
may bring host 1's line of 10:00:05 while host 2's of 10:00:04 shows only on the next. So, while there is more than
one stream, a poll holds back the lines of its last HOLD_SECONDS (the last drain releases them): what it returns
never precedes what an earlier poll returned.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from handlers import paging
from handlers.client import SageMakerClient
from handlers.errors import NotFound
from handlers.service_model import member_shape

LOG_GROUP = "/aws/sagemaker/TrainingJobs"
MAX_PAGES_PER_POLL = 20  # bounds one poll's work on a very chatty stream; the rest comes next poll
#: how far behind the moment a poll starts its lines are complete in every stream (CloudWatch's delay in showing them,
#: clocks a little apart): newer ones wait for the next poll
HOLD_SECONDS = 2.0


@functools.lru_cache(maxsize=1)
def streams_page_limit() -> int:
    """DescribeLogStreams' largest page, from the service model (read when first needed: it is a second model)."""
    return int(member_shape("DescribeLogStreams", "limit", "logs").metadata["max"])


@dataclass(frozen=True)
class LogLine:
    """Not orderable: sorted whole, lines of one millisecond would be ordered by their text (by_time_and_host)."""

    timestamp: int  # epoch milliseconds
    host: str
    message: str


def by_time_and_host(line: LogLine) -> tuple[int, str]:
    """The merge order of several hosts' lines: with a stable sort, lines of one host keep their written order."""
    return line.timestamp, line.host


@dataclass
class _Stream:
    name: str
    host: str
    token: str | None = None


@dataclass
class LogTailer:
    client: SageMakerClient
    job_name: str
    hosts: int = 1
    clock: Callable[[], float] = time.time
    _streams: dict[str, _Stream] = field(default_factory=dict)
    list_calls: int = 0
    #: epoch seconds: the lines after it are held back (None: nothing is, one stream or the job has ended)
    held_after: float | None = None
    _held: list[LogLine] = field(default_factory=list)

    def poll(self) -> list[LogLine]:
        """New lines from every host, in time order, none before a line an earlier poll returned (module docstring)."""
        start = self.clock()
        if len(self._streams) < self.hosts:
            self._list_streams()
        for stream in list(self._streams.values()):
            self._held.extend(self._read(stream))
        several = max(self.hosts, len(self._streams)) > 1
        return self._release(start - HOLD_SECONDS if several else None)

    def drain(self) -> list[LogLine]:
        """Everything left once the job has ended: re-list once (a host may have started late), then read all."""
        self._list_streams()
        while True:
            batch = [line for stream in list(self._streams.values()) for line in self._read(stream)]
            if not batch:
                return self._release(None)
            self._held.extend(batch)

    def _release(self, cut: float | None) -> list[LogLine]:
        """The held lines up to `cut` (epoch seconds; None: all), in time order; a stable sort keeps each host's lines
        of one millisecond in their written order."""
        self.held_after = cut
        limit = None if cut is None else int(cut * 1000)
        ready = [line for line in self._held if limit is None or line.timestamp <= limit]
        self._held = [line for line in self._held if limit is not None and line.timestamp > limit]
        ready.sort(key=by_time_and_host)
        return ready

    def _list_streams(self) -> None:
        def describe(**params: Any) -> dict[str, Any]:
            self.list_calls += 1
            return self.client.call("logs", "DescribeLogStreams", **params)

        for name in stream_names(describe, self.job_name):
            if name not in self._streams:
                self._streams[name] = _Stream(name, host_of(name, self.job_name))

    def _read(self, stream: _Stream) -> list[LogLine]:
        lines: list[LogLine] = []
        for _ in range(MAX_PAGES_PER_POLL):
            params: dict[str, Any] = {"logGroupName": LOG_GROUP, "logStreamName": stream.name, "startFromHead": True}
            if stream.token:
                params["nextToken"] = stream.token
            page = self.client.call("logs", "GetLogEvents", **params)
            events = page.get("events", [])
            lines.extend(LogLine(int(e.get("timestamp", 0)), stream.host, e.get("message", "").rstrip("\n"))
                         for e in events)
            token = page.get("nextForwardToken")
            unchanged = token == stream.token
            stream.token = token or stream.token
            if unchanged or not events:
                break
        return lines


def stream_names(describe: Callable[..., dict[str, Any]], job_name: str) -> list[str]:
    """The job's log streams, all pages, each one `describe(**params)` of DescribeLogStreams; none while the log group
    does not exist (until the first job in the account logs something)."""
    params = {"logGroupName": LOG_GROUP, "logStreamNamePrefix": job_name + "/", "limit": streams_page_limit()}
    try:
        return [str(item["logStreamName"]) for page in paging.pages(describe, "DescribeLogStreams", params,
                                                                   service="logs")
                for item in page.get("logStreams") or []]
    except NotFound:
        return []


def host_of(stream_name: str, job_name: str) -> str:
    """`<job>/algo-2-1700000000` -> `algo-2`."""
    rest = stream_name[len(job_name) + 1:] if stream_name.startswith(job_name + "/") else stream_name
    parts = rest.split("-")
    return "-".join(parts[:2]) if len(parts) >= 2 else rest
