"""GetTaskLogs and GetTaskMetrics of a training job, for either Flyte generation: the hosts' CloudWatch lines a page
at a time behind one token, and the metric series per host as a Prometheus-style matrix
`{"resultType": "matrix", "result": [{"metric": {"host": "algo-1"}, "values": [[t, "v"]]}]}` (the shape Flyte's
console reads). Each generation hands its own protobuf classes (`Messages`): flyteidl.admin's or flyteidl2's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from google.protobuf import struct_pb2, timestamp_pb2  # type: ignore[import-untyped, import-not-found, unused-ignore]

from handlers.client import SageMakerClient
from handlers.errors import AccessDenied, InputError, InvalidRequest, NotFound, ResourceLimit
from handlers.log_cursor import decode_token, read_page
from handlers.metric_series import JobMetrics, MetricReader, host_names

ALLOWED_PERIODS = (1, 5, 10, 20, 30)
MAX_STEP_SECONDS = 86400  # a day: a longer step leaves no curve of a training job to draw
MAX_DETAILS = 2000  # characters of an error's details (a header: clients cap them at 8 KiB)


@dataclass(frozen=True)
class Messages:
    """One generation's protobuf classes for the answers (and the name of the body's structured lines)."""

    response: Any
    header: Any
    body: Any
    line: Any
    user_originator: int
    lines_field: str
    metrics_response: Any
    metric_result: Any


def log_responses(messages: Messages, client: SageMakerClient, job_name: str, token: str = "",
                  lines: int = 0) -> list[Any]:
    """[header (next token), body (lines)]: one page of every host's lines after `token`."""
    check_token(token, job_name)
    description = client.describe_training_job(job_name)
    page = read_page(client, job_name, token, lines or 0, hosts=len(host_names(description)))
    structured = []
    for line in page.lines:
        moment = timestamp_pb2.Timestamp()
        moment.FromMilliseconds(line.timestamp)
        structured.append(messages.line(timestamp=moment, message=f"[{line.host}] {line.message}",
                                        originator=messages.user_originator))
    header = messages.response(header=messages.header(token=page.token))
    body = messages.response(body=messages.body(
        results=[f"[{line.host}] {line.message}" for line in page.lines], **{messages.lines_field: structured}))
    return [header, body]


def check_token(token: str, job_name: str) -> None:
    """InputError naming the token unless it is a page token of this job's own streams (a token names the streams
    it reads: a made-up one must not read another job's lines)."""
    try:
        positions = decode_token(token)
    except RecursionError:
        raise InputError("not a log page token given by a previous page", "token") from None
    if any(not name.startswith(f"{job_name}/") for name in positions):
        raise InputError(f"names log streams that are not training job {job_name}'s", "token")


def metrics_response(messages: Messages, client: SageMakerClient, job_name: str, queries: Sequence[str] = (),
                     start: datetime | None = None, end: datetime | None = None, step_seconds: float = 0) -> Any:
    """GetTaskMetricsResponse: for each queried metric (all the job's when none), its series per host."""
    description = client.describe_training_job(job_name)
    reader = MetricReader(client)
    period = _period(step_seconds) if step_seconds > 0 else None
    metrics = reader.read(description, start=start, end=end, period=period, source="auto")
    wanted = [q for q in queries if q] or list(metrics.metrics)
    return messages.metrics_response(results=[_result(messages, metrics, name) for name in wanted])


def _result(messages: Messages, metrics: JobMetrics, name: str) -> Any:
    data = struct_pb2.Struct()
    data.update({"resultType": "matrix", "result": [
        {"metric": {"__name__": name, "host": s.host, "job": metrics.job_name},
         "values": [[t.timestamp(), repr(v)] for t, v in zip(s.timestamps, s.values, strict=True)]}
        for s in metrics.of(name)]})
    return messages.metric_result(metric=name, data=data)


def _period(step_seconds: float) -> int:
    step = max(1, round(step_seconds))
    return next((p for p in ALLOWED_PERIODS if p >= step), 60 * -(-step // 60))


def grpc_code(error: Exception) -> Any:
    """The gRPC status for an error of a GetTaskLogs/GetTaskMetrics request: the caller's fault, or SageMaker's."""
    import grpc  # type: ignore[import-untyped, import-not-found, unused-ignore]

    codes = grpc.StatusCode
    for kind, code in ((InputError, codes.INVALID_ARGUMENT), (InvalidRequest, codes.INVALID_ARGUMENT),
                       (NotFound, codes.NOT_FOUND), (AccessDenied, codes.PERMISSION_DENIED),
                       (ResourceLimit, codes.RESOURCE_EXHAUSTED)):
        if isinstance(error, kind):
            return code
    return codes.UNAVAILABLE


def details(error: Exception) -> str:
    """An error's message as gRPC details: bounded (they travel in a header, which clients cap at 8 KiB)."""
    text = str(error)
    return text if len(text) <= MAX_DETAILS else text[: MAX_DETAILS - 3] + "..."


def to_datetime(value: Any, field: str = "time") -> datetime | None:
    """A protobuf Timestamp as an aware datetime; None when unset; InputError naming `field` out of range."""
    if value is None or (getattr(value, "seconds", 0) == 0 and getattr(value, "nanos", 0) == 0):
        return None
    try:
        return datetime.fromtimestamp(value.seconds + value.nanos / 1e9, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        raise InputError(f"{value.seconds} s after 1970 is not a time this connector can read", field) from None


def step_seconds(value: Any) -> float:
    """A protobuf Duration in seconds; InputError naming the step when negative or longer than a metric period."""
    step = float(getattr(value, "seconds", 0)) + float(getattr(value, "nanos", 0)) / 1e9 if value else 0.0
    if not 0 <= step <= MAX_STEP_SECONDS:
        raise InputError(f"must be between 0 and {MAX_STEP_SECONDS} s, not {step:g} s", "step")
    return step
