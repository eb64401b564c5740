"""ListTrainingJobs as AWS documents it: filters, then sorting (defaults as the service model documents them, see
defaults.py), then pages with an opaque token.

moto's version ignores SortBy/SortOrder and pages by an offset taken before filtering, so a filtered sweep skips or
repeats jobs. Here the token is the sort key of the last job returned: the next page starts after it, whatever was
created or filtered out in between. One request costs a filter and a sort of the account's jobs, no more. The tuning
listings page and filter by time the same way (`sorted_page`, `matches_times`).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, TypeVar

from local_sagemaker import page_tokens
from local_sagemaker.defaults import list_default
from local_sagemaker.errors import ValidationException
from local_sagemaker.jobs import LocalTrainingJob

_TOKEN_PREFIX = "lsm1."

SortKey = tuple[Any, ...]
Item = TypeVar("Item")
_SHAPES: dict[str, tuple[type, ...]] = {"Name": (str,), "Status": (str, int, str), "CreationTime": (int, str)}


def list_training_jobs(jobs: Iterable[LocalTrainingJob], params: Mapping[str, Any]) -> dict[str, Any]:
    """The ListTrainingJobs answer for `params` (already checked against the service model)."""
    sort_by = params.get("SortBy") or list_default("SortBy")
    contains = params.get("NameContains")
    status = params.get("StatusEquals")
    selected = [job for job in jobs
                if (not contains or str(contains).lower() in job.training_job_name.lower())
                and (not status or job.training_job_status == status)
                and matches_times(job.creation_ms, job.last_modified_ms, params)]
    shapes = _SHAPES[sort_by]

    def fits(key: SortKey) -> bool:
        return len(key) == len(shapes) and all(isinstance(part, kind) for part, kind in zip(key, shapes, strict=True))

    page, token = sorted_page(selected, lambda job: _sort_key(job, sort_by), sort_by,
                              (params.get("SortOrder") or list_default("SortOrder")) == "Descending",
                              int(params.get("MaxResults") or list_default("MaxResults")), params.get("NextToken"),
                              _TOKEN_PREFIX, fits)
    result: dict[str, Any] = {"TrainingJobSummaries": [job.summary() for job in page]}
    if token:
        result["NextToken"] = token
    return result


def sorted_page(items: Iterable[Item], key: Callable[[Item], Sequence[Any]], sort_by: str, descending: bool,
                max_results: int, token: Any, prefix: str, fits: Callable[[SortKey], bool] = lambda _: True
                ) -> tuple[list[Item], str | None]:
    """One page of `items` in `key` order, and the token of the next (None on the last page).

    The token is `prefix` and the sort key of the page's last item: the next page starts after it. A token of
    another SortBy, or whose key `fits` refuses, is refused as AWS refuses it.
    """
    keyed = sorted(((tuple(key(item)), item) for item in items), key=lambda pair: pair[0])
    keys = [k for k, _ in keyed]
    if descending:
        end = bisect.bisect_left(keys, _decode(token, prefix, sort_by, fits)) if token else len(keyed)
        start = max(0, end - max_results)
        page = [item for _, item in reversed(keyed[start:end])]
        more = start > 0
    else:
        start = bisect.bisect_right(keys, _decode(token, prefix, sort_by, fits)) if token else 0
        end = min(len(keyed), start + max_results)
        page = [item for _, item in keyed[start:end]]
        more = end < len(keyed)
    if not (more and page):
        return page, None
    return page, page_tokens.encode(prefix, [sort_by, *key(page[-1])])


def _sort_key(job: LocalTrainingJob, sort_by: str) -> SortKey:
    name = job.training_job_name
    if sort_by == "Name":
        return (name,)
    if sort_by == "Status":
        return (job.training_job_status, job.creation_ms, name)
    return (job.creation_ms, name)


def matches_times(created_ms: int, modified_ms: int, params: Mapping[str, Any]) -> bool:
    """The CreationTime/LastModifiedTime bounds, strict as AWS applies them.

    In microseconds: botocore sends full precision, and rounding the bound could flip a comparison.
    """
    bounds = (("CreationTimeAfter", created_ms, 1), ("CreationTimeBefore", created_ms, -1),
              ("LastModifiedTimeAfter", modified_ms, 1), ("LastModifiedTimeBefore", modified_ms, -1))
    for name, value_ms, direction in bounds:
        if params.get(name) is None:
            continue
        limit, value = _time_us(params[name], name), value_ms * 1000
        if (direction > 0 and not value > limit) or (direction < 0 and not value < limit):
            return False
    return True


def _time_us(value: Any, name: str) -> int:
    """A timestamp as the JSON protocol carries it (epoch seconds), or ISO 8601 from other clients."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return round(float(value) * 1_000_000)
    if isinstance(value, str):
        try:
            return round(float(value) * 1_000_000)
        except ValueError:
            pass
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=timezone.utc)
            return round(moment.timestamp() * 1_000_000)
    raise ValidationException(f"Value '{value}' at '{name[:1].lower() + name[1:]}' is not a valid timestamp.")


def _decode(token: Any, prefix: str, sort_by: str, fits: Callable[[SortKey], bool]) -> SortKey:
    """The sort key a token resumes after; a token of another SortBy (or none of ours) is refused, as AWS does."""
    value = page_tokens.decode(prefix, token)
    if value is not None and len(value) >= 2 and value[0] == sort_by and fits(tuple(value[1:])):
        return tuple(value[1:])
    raise ValidationException("Invalid pagination token because it could not be decoded.")
