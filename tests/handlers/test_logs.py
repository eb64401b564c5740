"""handlers/logs.py's LogTailer, with a scripted CloudWatch Logs whose lines show when the test says: several hosts'
lines come out in time order across polls, though the streams are read one after another and a line shows late."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from handlers.logs import HOLD_SECONDS, LogTailer

JOB = "two-hosts"
T = 1_800_000_000.0  # the tailer's clock at the first poll


@dataclass
class Clock:
    now: float = T

    def __call__(self) -> float:
        return self.now


@dataclass
class ScriptedLogs:
    """Each stream's lines (epoch seconds, text); a line is in GetLogEvents' answer once `shown` includes it."""

    lines: dict[str, list[tuple[float, str]]] = field(default_factory=dict)
    shown: dict[str, int] = field(default_factory=dict)  # per stream: how many of its lines show

    def call(self, service: str, operation: str, **params: Any) -> dict[str, Any]:
        assert service == "logs"
        if operation == "DescribeLogStreams":
            return {"logStreams": [{"logStreamName": name} for name in self.lines]}
        name = params["logStreamName"]
        start = int(params.get("nextToken") or 0)
        end = self.shown.get(name, 0)
        events = [{"timestamp": int(at * 1000), "message": text} for at, text in self.lines[name][start:end]]
        return {"events": events, "nextForwardToken": str(end)}


def stream(host: int) -> str:
    return f"{JOB}/algo-{host}-1800000000"


def test_a_line_that_shows_late_still_comes_out_in_time_order() -> None:
    logs = ScriptedLogs({stream(1): [(T - 1.0, "one late")], stream(2): [(T - 1.5, "two early")]})
    logs.shown = {stream(1): 1}  # host 2's line, written first, does not show yet
    clock = Clock()
    tailer = LogTailer(logs, JOB, hosts=2, clock=clock)  # type: ignore[arg-type]
    assert tailer.poll() == []  # host 1's line is inside the hold: host 2 may still show an earlier one
    assert tailer.held_after == T - HOLD_SECONDS
    logs.shown[stream(2)] = 1
    clock.now += HOLD_SECONDS + 1
    assert [(line.host, line.message) for line in tailer.poll()] == [("algo-2", "two early"), ("algo-1", "one late")]
    assert tailer.poll() == [] and tailer.drain() == []


def test_one_host_holds_nothing_and_the_drain_releases_what_is_held() -> None:
    logs = ScriptedLogs({stream(1): [(T - 0.5, "a"), (T - 0.2, "b")]}, {stream(1): 2})
    one = LogTailer(logs, JOB, hosts=1, clock=Clock())  # type: ignore[arg-type]
    assert [line.message for line in one.poll()] == ["a", "b"] and one.held_after is None
    logs = ScriptedLogs({stream(1): [(T - 3.0, "old"), (T - 0.5, "new")], stream(2): []}, {stream(1): 2})
    two = LogTailer(logs, JOB, hosts=2, clock=Clock())  # type: ignore[arg-type]
    assert [line.message for line in two.poll()] == ["old"]
    assert [line.message for line in two.drain()] == ["new"] and two.held_after is None
