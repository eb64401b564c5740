"""CloudWatch GetMetricData for the local SageMaker, as AWS answers it where moto 5.2.5 does not.

moto's own GetMetricData accepts any Period (0 loops forever), never pages (no MaxDatapoints, no NextToken), ignores
the namespace of a query with dimensions and walks every period of the window for every query. Here: AWS's checks
(at most 500 queries, Ids unique and lowercase-first, Period 1, 5, 10, 20, 30 or a multiple of 60, StartTime before
EndTime), one pass over the data in the window grouped by period, ScanBy, and paging at MaxDatapoints (default
100,800) with a NextToken. Metric math and Metrics Insights queries are left to moto.
"""

from __future__ import annotations

import base64
import json
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from moto.cloudwatch.exceptions import CloudWatchException, ValidationError
from moto.cloudwatch.models import Statistics

MAX_QUERIES = 500
MAX_DATAPOINTS = 100_800
SHORT_PERIODS = (1, 5, 10, 20, 30)
_ID = re.compile(r"^[a-z][a-zA-Z0-9_]*$")


class InvalidNextToken(CloudWatchException):
    code = "InvalidNextToken"


def handles(params: Mapping[str, Any]) -> bool:
    """Whether every query is a plain MetricStat (the only kind answered here)."""
    queries = params.get("MetricDataQueries") or []
    return bool(queries) and all("MetricStat" in q and "Expression" not in q for q in queries)


def get_metric_data(backend: Any, params: Mapping[str, Any]) -> dict[str, Any]:
    """GetMetricData's answer from moto's CloudWatch `backend`."""
    queries: Sequence[Mapping[str, Any]] = params.get("MetricDataQueries") or []
    _check(queries, params)
    start, end = _naive(params["StartTime"]), _naive(params["EndTime"])
    descending = (params.get("ScanBy") or "TimestampDescending") == "TimestampDescending"
    limit = int(params.get("MaxDatapoints") or MAX_DATAPOINTS)
    wanted: dict[tuple[str, str, frozenset[tuple[str, str]]], list[int]] = defaultdict(list)
    for index, query in enumerate(queries):
        metric = query["MetricStat"]["Metric"]
        key = (str(metric.get("Namespace", "")), str(metric.get("MetricName", "")),
               frozenset((str(d["Name"]), str(d["Value"])) for d in metric.get("Dimensions") or []))
        wanted[key].append(index)
    data: dict[int, list[Any]] = defaultdict(list)
    for datum in backend.get_all_metrics():
        if not start <= datum.timestamp < end:
            continue
        key = (datum.namespace, datum.name, frozenset((d.name, d.value) for d in datum.dimensions))
        for index in wanted.get(key, ()):
            data[index].append(datum)
    skip = _offset(params.get("NextToken"))
    results, sent, position = [], 0, 0
    truncated = False
    for index, query in enumerate(queries):
        stat = query["MetricStat"]
        points = _aggregate(data[index], start, int(stat["Period"]), str(stat["Stat"]), stat.get("Unit"))
        if descending:
            points.reverse()
        chosen = []
        for point in points:
            position += 1
            if position <= skip:
                continue
            if sent >= limit:
                truncated = True
                break
            chosen.append(point)
            sent += 1
        if query.get("ReturnData", True):
            metric = stat["Metric"]
            results.append({"Id": query["Id"], "Label": query.get("Label") or str(metric.get("MetricName", "")),
                            "Timestamps": [t for t, _ in chosen], "Values": [v for _, v in chosen],
                            "StatusCode": "PartialData" if truncated else "Complete"})
    answer: dict[str, Any] = {"MetricDataResults": results, "Messages": []}
    if truncated:
        answer["NextToken"] = base64.b64encode(json.dumps({"offset": skip + sent}).encode()).decode()
    return answer


def _check(queries: Sequence[Mapping[str, Any]], params: Mapping[str, Any]) -> None:
    if len(queries) > MAX_QUERIES:
        raise ValidationError(f"The collection MetricDataQueries must not have a size greater than "
                         f"{MAX_QUERIES}.")
    seen: set[str] = set()
    for number, query in enumerate(queries, start=1):
        query_id = str(query.get("Id", ""))
        if not _ID.match(query_id):
            raise ValidationError(f"The value {query_id} for parameter MetricDataQueries.member."
                             f"{number}.Id is not valid: it must start with a lowercase letter and contain only "
                             f"letters, numbers and underscores.")
        if query_id in seen:
            raise ValidationError(f"The values for parameter id in MetricDataQueries are not unique: "
                             f"{query_id}.")
        seen.add(query_id)
        period = int(query["MetricStat"].get("Period", 0))
        if period not in SHORT_PERIODS and (period <= 0 or period % 60):
            raise ValidationError(f"The parameter MetricDataQueries.member.{number}.MetricStat.Period "
                             f"must be 1, 5, 10, 20, 30, or a multiple of 60.")
    if _naive(params["StartTime"]) >= _naive(params["EndTime"]):
        raise ValidationError("The parameter StartTime must be less than the parameter EndTime.")


def _aggregate(data: list[Any], start: datetime, period: int, stat: str, unit: Any) -> list[tuple[datetime, float]]:
    """(period start, statistic) for each period of the window that has data, oldest first."""
    buckets: dict[int, list[Any]] = defaultdict(list)
    for datum in data:
        if unit and datum.unit != unit:
            continue
        buckets[int((datum.timestamp - start).total_seconds()) // period].append(datum)
    points = []
    for slot in sorted(buckets):
        moment = start + timedelta(seconds=slot * period)
        stats = Statistics([stat], moment)
        stats.metric_data = buckets[slot]
        value = stats.get_statistics_for_type(stat)
        if value is not None:
            points.append((moment.replace(tzinfo=timezone.utc), float(value)))
    return points


def _offset(token: Any) -> int:
    if not token:
        return 0
    try:
        return int(json.loads(base64.b64decode(str(token)))["offset"])
    except (ValueError, KeyError, TypeError) as error:
        raise InvalidNextToken("The service returned an error: invalid NextToken.") from error


def _naive(moment: Any) -> datetime:
    """moto keeps naive UTC datetimes; requests bring aware ones (or epoch seconds)."""
    if isinstance(moment, (int, float)):
        return datetime.fromtimestamp(moment, tz=timezone.utc).replace(tzinfo=None)
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    if not isinstance(moment, datetime):
        raise ValidationError(f"The parameter time {moment!r} is not a valid timestamp.")
    when: datetime = moment
    if when.tzinfo is not None:
        when = when.astimezone(timezone.utc).replace(tzinfo=None)
    return when.replace(microsecond=0)
