"""ListTrainingJobs as AWS documents it: filters, then sorting (defaults as the service model documents them, see
defaults.py), then pages with an opaque token.

moto's version ignores SortBy/SortOrder and pages by an offset taken before filtering, so a filtered sweep skips or
repeats jobs. Here the token is the sort key of the last job returned: the next page starts after it, whatever was
created or filtered out in between. One request costs a filter and a sort of the account's jobs, no more.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

from local_sagemaker import page_tokens
from local_sagemaker.defaults import list_default
from local_sagemaker.errors import ValidationException
from local_sagemaker.jobs import LocalTrainingJob

_TOKEN_PREFIX = "lsm1."

SortKey = tuple[Any, ...]
_SHAPES: dict[str, tuple[type, ...]] = {"Name": (str,), "Status": (str, int, str), "CreationTime": (int, str)}


def list_training_jobs(jobs: Iterable[LocalTrainingJob], params: Mapping[str, Any]) -> dict[str, Any]:
    """The ListTrainingJobs answer for `params` (already checked against the service model)."""
    sort_by = params.get("SortBy") or list_default("SortBy")
    descending = (params.get("SortOrder") or list_default("SortOrder")) == "Descending"
    max_results = int(params.get("MaxResults") or list_default("MaxResults"))
    selected = [job for job in jobs if _matches(job, params)]
    keyed = sorted(((_sort_key(job, sort_by), job) for job in selected), key=lambda pair: pair[0])
    keys = [key for key, _ in keyed]

    token = params.get("NextToken")
    if descending:
        end = bisect.bisect_left(keys, _decode(token, sort_by)) if token else len(keyed)
        start = max(0, end - max_results)
        page = [job for _, job in reversed(keyed[start:end])]
        more = start > 0
    else:
        start = bisect.bisect_right(keys, _decode(token, sort_by)) if token else 0
        end = min(len(keyed), start + max_results)
        page = [job for _, job in keyed[start:end]]
        more = end < len(keyed)

    result: dict[str, Any] = {"TrainingJobSummaries": [job.summary() for job in page]}
    if more and page:
        result["NextToken"] = _encode(sort_by, _sort_key(page[-1], sort_by))
    return result


def _sort_key(job: LocalTrainingJob, sort_by: str) -> SortKey:
    name = job.training_job_name
    if sort_by == "Name":
        return (name,)
    if sort_by == "Status":
        return (job.training_job_status, job.creation_ms, name)
    return (job.creation_ms, name)


def _matches(job: LocalTrainingJob, params: Mapping[str, Any]) -> bool:
    contains = params.get("NameContains")
    if contains and str(contains).lower() not in job.training_job_name.lower():
        return False
    status = params.get("StatusEquals")
    if status and job.training_job_status != status:
        return False
    # In microseconds: botocore sends full precision, and rounding the bound could flip a comparison.
    bounds = (
        ("CreationTimeAfter", job.creation_ms * 1000, 1),
        ("CreationTimeBefore", job.creation_ms * 1000, -1),
        ("LastModifiedTimeAfter", job.last_modified_ms * 1000, 1),
        ("LastModifiedTimeBefore", job.last_modified_ms * 1000, -1),
    )
    for name, value, direction in bounds:
        if params.get(name) is None:
            continue
        limit = _time_us(params[name], name)
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


def _encode(sort_by: str, key: SortKey) -> str:
    return page_tokens.encode(_TOKEN_PREFIX, [sort_by, *key])


def _decode(token: Any, sort_by: str) -> SortKey:
    """The sort key a token resumes after; a token of another SortBy (or none of ours) is refused, as AWS does."""
    value = page_tokens.decode(_TOKEN_PREFIX, token)
    if value is not None and len(value) == len(_SHAPES[sort_by]) + 1 and value[0] == sort_by:
        key = tuple(value[1:])
        if all(isinstance(part, kind) for part, kind in zip(key, _SHAPES[sort_by], strict=True)):
            return key
    raise ValidationException("Invalid pagination token because it could not be decoded.")
