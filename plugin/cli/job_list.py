"""`sagemaker-plugin list`: the recent jobs of a SageMaker (AWS, or a local one), newest first.

The filters are those of ListTrainingJobs and ListHyperParameterTuningJobs (status, part of the name, created after a
time); their values are checked against botocore's model of the operation, so a status SageMaker does not know is
refused with the closest ones, before any call.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from handlers.client import SageMakerClient
from handlers.errors import InputError, Problem, short_repr
from handlers.job_kinds import TRAINING, TUNING, JobKind
from handlers.paging import Listed, list_all
from handlers.service_model import enum_values, validate_request

DEFAULT_MAX = 20
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@dataclass(frozen=True)
class Listing:
    """How one kind of job is listed: its list operation and the members of its summaries."""

    kind: JobKind
    operation: str
    end_member: str
    call: Callable[..., dict[str, Any]]  # (client, **params): one page of the operation

    def statuses(self) -> list[str]:
        return enum_values(self.operation, "StatusEquals")


def _training_page(client: SageMakerClient, **params: Any) -> dict[str, Any]:
    return client.call("sagemaker", "ListTrainingJobs", **params)


def _tuning_page(client: SageMakerClient, **params: Any) -> dict[str, Any]:
    return client.call("sagemaker", "ListHyperParameterTuningJobs", **params)


TRAINING_JOBS = Listing(TRAINING, "ListTrainingJobs", "TrainingEndTime", _training_page)
TUNING_JOBS = Listing(TUNING, "ListHyperParameterTuningJobs", "HyperParameterTuningEndTime", _tuning_page)
#: the request member each flag sets, for problems to name the flag
FLAGS = {"StatusEquals": "--status", "NameContains": "--name-contains", "CreationTimeAfter": "--since",
         "MaxResults": "--max"}


@dataclass(frozen=True)
class Query:
    """What `list` was asked for, as the user typed it."""

    tuning: bool = False
    status: str | None = None
    name_contains: str | None = None
    since: str | None = None
    max_items: int = DEFAULT_MAX

    @property
    def listing(self) -> Listing:
        return TUNING_JOBS if self.tuning else TRAINING_JOBS


@dataclass(frozen=True)
class Row:
    """One job as `list` shows it."""

    name: str
    status: str
    created: datetime | None
    ended: datetime | None
    arn: str

    def duration(self, now: datetime) -> float | None:
        """Seconds from creation to the end, or until `now` while it runs."""
        if self.created is None:
            return None
        return max(0.0, ((self.ended or now) - self.created).total_seconds())

    def as_dict(self, kind: str, now: datetime) -> dict[str, Any]:
        return {"name": self.name, "kind": kind, "status": self.status, "created": _iso(self.created),
                "ended": _iso(self.ended), "duration_seconds": self.duration(now), "arn": self.arn}


def request(query: Query, now: datetime) -> dict[str, Any]:
    """The list request the query makes (newest first); every bad flag raised at once, each naming its flag."""
    problems: list[Problem] = []
    params: dict[str, Any] = {"SortBy": "CreationTime", "SortOrder": "Descending"}
    if query.status is not None:
        known = {value.casefold(): value for value in query.listing.statuses()}
        params["StatusEquals"] = known.get(query.status.casefold(), query.status)
    if query.name_contains is not None:
        params["NameContains"] = query.name_contains
    if query.since is not None:
        since = parse_since(query.since, now)
        if since is None:
            problems.append(Problem("--since", "must be a duration back from now (30m, 2h, 7d, 1w) or a date or time "
                                    "(2024-05-01, 2024-05-01T12:00, 2024-05-01T12:00Z), not "
                                    + short_repr(query.since)))
        else:
            params["CreationTimeAfter"] = since
    if query.max_items < 1:
        problems.append(Problem("--max", f"must be 1 or more, not {query.max_items}"))
    problems += [Problem(FLAGS.get(p.path, p.path), p.message)
                 for p in validate_request(query.listing.operation, params, explain=True)]
    if problems:
        raise InputError(problems)
    return params


def parse_since(text: str, now: datetime) -> datetime | None:
    """`30m`, `2h`, `7d`, `1w` back from `now`; or an ISO 8601 date or time (local time when it names no zone)."""
    found = _DURATION.fullmatch(text.strip().lower())
    if found:
        return now - timedelta(seconds=float(found.group(1)) * _UNIT_SECONDS[found.group(2)])
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.astimezone()


def jobs(client: SageMakerClient, query: Query, now: datetime) -> tuple[list[Row], bool]:
    """The jobs the query asks for, newest first, and whether more were left beyond --max."""
    listing = query.listing
    params = request(query, now)
    found: Listed = list_all(lambda **page: listing.call(client, **page), listing.operation, params, query.max_items)
    return [_row(listing, summary) for summary in found.items], found.more


def _row(listing: Listing, summary: Mapping[str, Any]) -> Row:
    def moment(member: str) -> datetime | None:
        value = summary.get(member)
        return value if isinstance(value, datetime) else None

    kind = listing.kind
    return Row(name=str(summary.get(kind.name_member, "")), status=str(summary.get(kind.status_member, "")),
               created=moment("CreationTime"), ended=moment(listing.end_member),
               arn=str(summary.get(kind.arn_member, "")))


def table(rows: Sequence[Row], now: datetime) -> list[str]:
    """Aligned lines: a header, then one job a line (times in this machine's zone)."""
    cells = [("NAME", "STATUS", "CREATED", "DURATION")]
    for row in rows:
        duration = row.duration(now)
        took = "" if duration is None else _took(duration) + ("" if row.ended else " so far")
        created = row.created.astimezone().strftime("%Y-%m-%d %H:%M:%S") if row.created else ""
        cells.append((row.name, row.status, created, took))
    widths = [max(len(line[i]) for line in cells) for i in range(3)]
    return [f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c:<{widths[2]}}  {d}".rstrip() for a, b, c, d in cells]


def _took(seconds: float) -> str:
    """12.3s, 4m05s, 2h03m, 3d04h."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h{whole // 60 % 60:02d}m"
    return f"{whole // 86400}d{whole // 3600 % 24:02d}h"


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(timezone.utc).isoformat() if moment is not None else None
