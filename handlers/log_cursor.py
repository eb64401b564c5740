"""A training job's log lines a page at a time, for a reader that keeps only a token between pages (Flyte's
GetTaskLogs, the local job page): every host's stream read forward with its own GetLogEvents token, the tokens of all
streams packed into one opaque string. A page never repeats a line, and a host that starts late is found on a later
page (the streams are listed again while fewer than the job's hosts have one).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from handlers.client import SageMakerClient
from handlers.errors import AwsError, InputError, NotFound
from handlers.logs import LOG_GROUP, LogLine, by_time_and_host, host_of, stream_names

DEFAULT_LINES = 1000
MAX_LINES = 10_000  # GetLogEvents' own limit per call


@dataclass(frozen=True)
class LogPage:
    lines: tuple[LogLine, ...]
    token: str  # give it back for the next page; the same token again when nothing new has come
    streams: int = 0  # streams known so far
    calls: dict[str, int] = field(default_factory=dict)  # CloudWatch Logs calls this page made, per operation


def read_page(client: SageMakerClient, job_name: str, token: str = "", lines: int = DEFAULT_LINES,
              hosts: int = 1) -> LogPage:
    """Up to `lines` new lines of every host after `token` ("" = from the start), oldest first."""
    limit = max(1, min(MAX_LINES, int(lines or DEFAULT_LINES)))
    positions = decode_token(token)
    if any(not name.startswith(job_name + "/") for name in positions):
        raise InputError(f"not a log page token of training job {job_name!r}", "token")
    calls: dict[str, int] = {}
    if len(positions) < hosts:
        for name in _streams(client, job_name, calls):
            positions.setdefault(name, "")
    out: list[LogLine] = []
    for name in sorted(positions):
        if len(out) >= limit:
            break
        params: dict[str, Any] = {"logGroupName": LOG_GROUP, "logStreamName": name, "startFromHead": True,
                                  "limit": limit - len(out)}
        if positions[name]:
            params["nextToken"] = positions[name]
        calls["GetLogEvents"] = calls.get("GetLogEvents", 0) + 1
        try:
            page = client.call("logs", "GetLogEvents", **params)
        except NotFound:
            continue
        except AwsError as error:
            if error.code == "InvalidParameterException":  # a position CloudWatch never gave
                raise InputError("not a log page token given by a previous page", "token") from None
            raise
        host = host_of(name, job_name)
        out.extend(LogLine(int(e.get("timestamp", 0)), host, str(e.get("message", "")).rstrip("\n"))
                   for e in page.get("events") or [])
        positions[name] = str(page.get("nextForwardToken") or positions[name])
    out.sort(key=by_time_and_host)  # stable: lines written in one millisecond keep the order they were written in
    return LogPage(tuple(out), encode_token(positions), len(positions), calls)


def _streams(client: SageMakerClient, job_name: str, calls: dict[str, int]) -> list[str]:
    def describe(**params: Any) -> dict[str, Any]:
        calls["DescribeLogStreams"] = calls.get("DescribeLogStreams", 0) + 1
        return client.call("logs", "DescribeLogStreams", **params)

    return stream_names(describe, job_name)


def encode_token(positions: Mapping[str, str]) -> str:
    if not positions:
        return ""
    raw = json.dumps(dict(sorted(positions.items())), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str) -> dict[str, str]:
    """The streams' positions; InputError naming the token when it is not one of ours."""
    if not token:
        return {}
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        value = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: JSON nested deeper than the parser goes
        raise InputError("not a log page token given by a previous page", "token") from None
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise InputError("not a log page token given by a previous page", "token")
    return dict(value)
