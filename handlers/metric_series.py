"""A training job's metric time series, per metric and per host, from CloudWatch metrics (GetMetricData).

SageMaker publishes each metric value it reads from a host's log lines to CloudWatch metrics: namespace
`/aws/sagemaker/TrainingJobs`, metric name = the metric's name, dimension `Host` = `<job>/algo-<n>`. One GetMetricData
call takes up to 500 queries, so a job's whole picture (every metric × every host) costs ⌈metrics × hosts / 500⌉
calls per page of answers; the local SageMaker answers the same API, so this module is the same on both.

The period is the shortest CloudWatch keeps for the job's age (1 s within 3 hours, then 60 s, 300 s, 3600 s), made
longer when needed so a series has at most MAX_POINTS points. CloudWatch keeps one point per period: values that come
faster (a local job's XGBoost rounds, milliseconds apart) merge into their period's average. With source "auto", for a
window of fewer than SHORT_WINDOW periods (where CloudWatch can draw only a few points) the values are also read from
the log lines SageMaker takes them from (FilterLogEvents, the job's MetricDefinitions regexes), each at its line's
time, and the richer of the two is kept; `JobMetrics.source` says which.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import regex

from handlers.client import SageMakerClient
from handlers.errors import NotFound
from handlers.hosts import host_count
from handlers.logs import LOG_GROUP, host_of

NAMESPACE = "/aws/sagemaker/TrainingJobs"
HOST_DIMENSION = "Host"
MAX_QUERIES = 500  # GetMetricData's limit per call
MAX_POINTS = 1440  # per series: a day at one-minute resolution
STAT = "Average"
SHORT_WINDOW = 120  # "auto": a window of fewer periods is also read from the log lines
SOURCES = ("auto", "cloudwatch", "logs")
LOG_PAGES = 200  # FilterLogEvents pages read at most for one job's values (10,000 lines each)
#: (age limit in seconds, the shortest period CloudWatch still answers for data that old)
RETENTION = ((3 * 3600, 1), (15 * 86400, 60), (63 * 86400, 300))
OLDEST_PERIOD = 3600
_PERIODS = (1, 5, 10, 20, 30, 60)  # below a minute, only these; above, multiples of 60


@dataclass(frozen=True)
class Series:
    """One metric on one host: timestamps (UTC) and values, oldest first."""

    metric: str
    host: str
    timestamps: tuple[datetime, ...]
    values: tuple[float, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "host": self.host,
                "timestamps": [t.isoformat() for t in self.timestamps], "values": list(self.values)}


@dataclass(frozen=True)
class JobMetrics:
    """Everything a person looks at for a job's metrics: final values and every series."""

    job_name: str
    status: str
    metrics: tuple[str, ...]  # every metric the job defines, in definition order
    hosts: tuple[str, ...]  # algo-1, algo-2, ...
    final: Mapping[str, float]  # FinalMetricDataList
    series: tuple[Series, ...] = ()
    start: datetime | None = None
    end: datetime | None = None
    period: int = 1
    calls: int = 0  # GetMetricData calls this read made
    source: str = "cloudwatch"  # or "logs": where the points came from

    def of(self, metric: str) -> list[Series]:
        """The series of one metric, one per host that has points."""
        return [s for s in self.series if s.metric == metric and s.values]

    @property
    def with_points(self) -> list[str]:
        """The metrics that have at least one point, in definition order."""
        return [m for m in self.metrics if self.of(m)]

    def as_dict(self) -> dict[str, Any]:
        return {"job_name": self.job_name, "status": self.status, "metrics": list(self.metrics),
                "hosts": list(self.hosts), "final": dict(self.final), "period_seconds": self.period,
                "source": self.source,
                "start": self.start.isoformat() if self.start else None,
                "end": self.end.isoformat() if self.end else None,
                "series": [s.as_dict() for s in self.series if s.values]}


@dataclass
class _Window:
    start: datetime
    end: datetime
    period: int


@dataclass
class MetricReader:
    """Reads a job's series; `calls` counts the GetMetricData calls made (one per 500 queries per page)."""

    client: SageMakerClient
    clock: Any = field(default=lambda: datetime.now(timezone.utc))
    calls: int = 0

    def read(self, description: Mapping[str, Any], metrics: Sequence[str] | None = None,
             start: datetime | None = None, end: datetime | None = None, period: int | None = None,
             source: str = "cloudwatch") -> JobMetrics:
        """Every series of the job DescribeTrainingJob described (`metrics` to choose some; a window to narrow)."""
        if source not in SOURCES:
            raise ValueError(f"source must be one of {', '.join(SOURCES)}, not {source!r}")
        name = str(description.get("TrainingJobName", ""))
        names = tuple(metrics) if metrics is not None else metric_names(description)
        hosts = host_names(description)
        window = self._window(description, start, end, period)
        final = {str(m.get("MetricName")): float(m.get("Value", 0.0))
                 for m in description.get("FinalMetricDataList") or [] if m.get("MetricName")}
        before = self.calls
        series: tuple[Series, ...] = ()
        used = "logs" if source == "logs" else "cloudwatch"
        if names and window is not None:
            if source != "logs":
                series = self._series(name, names, hosts, window)
            short = (window.end - window.start).total_seconds() < SHORT_WINDOW * window.period
            if source == "logs" or (source == "auto" and short):
                from_logs = self._from_logs(name, names, hosts, window, _definitions(description))
                if source == "logs" or _points(from_logs) > _points(series):
                    series, used = from_logs, "logs"
        return JobMetrics(job_name=name, status=str(description.get("TrainingJobStatus", "")), metrics=names,
                          hosts=hosts, final=final, series=series, start=window.start if window else None,
                          end=window.end if window else None, period=window.period if window else 1,
                          calls=self.calls - before, source=used)

    def _from_logs(self, job: str, metrics: Sequence[str], hosts: Sequence[str], window: _Window,
                   definitions: Mapping[str, str]) -> tuple[Series, ...]:
        """Each value at its log line's time, taken with the definitions' regexes as SageMaker takes them. Every
        value is kept, in the order of its lines: lines often share a timestamp (a log agent stamps what it reads
        together alike), and a value is never lost for it."""
        patterns = []
        for metric in metrics:
            try:
                patterns.append((metric, regex.compile(definitions[metric])))
            except (KeyError, regex.error):
                continue
        points: dict[tuple[str, str], list[tuple[datetime, float]]] = {(m, h): [] for m in metrics for h in hosts}
        params: dict[str, Any] = {"logGroupName": LOG_GROUP, "logStreamNamePrefix": job + "/",
                                  "startTime": int(window.start.timestamp() * 1000),
                                  "endTime": int(window.end.timestamp() * 1000)}
        try:
            for event in (event for page in self.client.pages("logs", "FilterLogEvents", params, LOG_PAGES)
                          for event in page.get("events") or []):
                host = host_of(str(event.get("logStreamName", "")), job)
                moment = datetime.fromtimestamp(int(event.get("timestamp", 0)) / 1000, tz=timezone.utc)
                for metric, pattern in patterns:
                    match = pattern.search(str(event.get("message", "")))
                    if match is None or (metric, host) not in points:
                        continue
                    try:
                        value = float(match.group(1) if pattern.groups else match.group(0))
                    except (TypeError, ValueError):
                        continue
                    points[(metric, host)].append((moment, value))
        except NotFound:  # no job in the account has logged anything yet
            pass
        out = []
        for (metric, host), values in points.items():
            ordered = sorted(values, key=lambda point: point[0])  # stable: lines of the same time keep their order
            out.append(Series(metric, host, tuple(t for t, _ in ordered), tuple(v for _, v in ordered)))
        return tuple(out)

    def _window(self, description: Mapping[str, Any], start: datetime | None, end: datetime | None,
                period: int | None) -> _Window | None:
        now = _utc(self.clock())
        begin = start or description.get("TrainingStartTime") or description.get("CreationTime")
        if not isinstance(begin, datetime):
            return None
        begin = _utc(begin)
        finish = end or description.get("TrainingEndTime") or now
        finish = min(_utc(finish) if isinstance(finish, datetime) else now, now) + timedelta(seconds=1)
        chosen = period or choose_period(now - begin, finish - begin)
        begin = _floor(begin, chosen)
        if finish <= begin:
            finish = begin + timedelta(seconds=chosen)
        return _Window(begin, finish, chosen)

    def _series(self, job: str, metrics: Sequence[str], hosts: Sequence[str], window: _Window) -> tuple[Series, ...]:
        keys = [(metric, host) for metric in metrics for host in hosts]
        points: dict[int, list[tuple[datetime, float]]] = {index: [] for index in range(len(keys))}
        for first in range(0, len(keys), MAX_QUERIES):
            chunk = range(first, min(first + MAX_QUERIES, len(keys)))
            queries = [_query(index, keys[index][0], f"{job}/{keys[index][1]}", window.period) for index in chunk]
            params: dict[str, Any] = {"MetricDataQueries": queries, "StartTime": window.start,
                                      "EndTime": window.end, "ScanBy": "TimestampAscending"}
            for page in self.client.pages("cloudwatch", "GetMetricData", params):
                self.calls += 1
                for result in page.get("MetricDataResults") or []:
                    index = _index_of(str(result.get("Id", "")))
                    if index in points:
                        pairs = zip(result.get("Timestamps") or [], result.get("Values") or [], strict=False)
                        points[index].extend(pairs)
        out = []
        for index, (metric, host) in enumerate(keys):
            merged = sorted({_utc(t): float(v) for t, v in points[index]}.items())
            out.append(Series(metric, host, tuple(t for t, _ in merged), tuple(v for _, v in merged)))
        return tuple(out)


def metric_names(description: Mapping[str, Any]) -> tuple[str, ...]:
    """The job's metrics: its MetricDefinitions (a built-in algorithm's own, as Describe gives them), then any
    FinalMetricDataList name they miss."""
    names: list[str] = []
    algorithm = description.get("AlgorithmSpecification") or {}
    for definition in algorithm.get("MetricDefinitions") or []:
        name = str(definition.get("Name") or "")
        if name and name not in names:
            names.append(name)
    for metric in description.get("FinalMetricDataList") or []:
        name = str(metric.get("MetricName") or "")
        if name and name not in names:
            names.append(name)
    return tuple(names)


def _definitions(description: Mapping[str, Any]) -> dict[str, str]:
    algorithm = description.get("AlgorithmSpecification") or {}
    return {str(d.get("Name")): str(d.get("Regex")) for d in algorithm.get("MetricDefinitions") or []
            if d.get("Name") and d.get("Regex")}


def _points(series: Sequence[Series]) -> int:
    return sum(len(s.values) for s in series)


def host_names(description: Mapping[str, Any]) -> tuple[str, ...]:
    """algo-1 ... algo-<n>, n from ResourceConfig (InstanceCount, or the instance groups' counts)."""
    return tuple(f"algo-{n}" for n in range(1, host_count(description) + 1))


def choose_period(age: timedelta, span: timedelta) -> int:
    """The shortest period CloudWatch answers for data `age` old, long enough for MAX_POINTS over `span`."""
    shortest = next((period for limit, period in RETENTION if age.total_seconds() < limit), OLDEST_PERIOD)
    wanted = max(shortest, math.ceil(span.total_seconds() / MAX_POINTS))
    if wanted <= 60:
        return next(p for p in _PERIODS if p >= wanted)
    multiple = max(shortest, 60)
    return math.ceil(wanted / multiple) * multiple


def _query(index: int, metric: str, host: str, period: int) -> dict[str, Any]:
    return {"Id": f"q{index}", "Label": f"{metric} {host}", "ReturnData": True,
            "MetricStat": {"Metric": {"Namespace": NAMESPACE, "MetricName": metric,
                                      "Dimensions": [{"Name": HOST_DIMENSION, "Value": host}]},
                           "Period": period, "Stat": STAT}}


def _index_of(query_id: str) -> int:
    try:
        return int(query_id[1:])
    except ValueError:
        return -1


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def _floor(moment: datetime, period: int) -> datetime:
    epoch = int(moment.timestamp())
    return datetime.fromtimestamp(epoch - epoch % period, tz=timezone.utc)
