"""ListHyperParameterTuningJobs and ListTrainingJobsForHyperParameterTuningJob: filters, sorting (defaults as the
service model documents them), then pages whose opaque token is the sort key of the last item returned, so a page
starts after it whatever was created in between.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from local_sagemaker.defaults import documented_default
from local_sagemaker.errors import ValidationException
from local_sagemaker.listing import _time_us
from local_sagemaker.tuning.job import Trial, TuningJob

_TOKEN_PREFIX = "lsmt1."
DEFAULT_MAX_RESULTS = 10  # "The default value is 10." in both operations' docs
Item = TypeVar("Item")


def list_tuning_jobs(jobs: Iterable[TuningJob], params: Mapping[str, Any]) -> dict[str, Any]:
    operation = "ListHyperParameterTuningJobs"
    sort_by = str(params.get("SortBy") or documented_default(operation, "SortBy") or "Name")
    contains = str(params.get("NameContains") or "").lower()
    status = params.get("StatusEquals")
    selected = [job for job in jobs
                if contains in job.name.lower() and (not status or job.status == status)
                and _matches_times(job.creation_ms, job.last_modified_ms or job.creation_ms, params)]

    def key(job: TuningJob) -> list[Any]:
        if sort_by == "Status":
            return [job.status, job.name]
        if sort_by == "CreationTime":
            return [job.creation_ms, job.name]
        return [job.name]

    page, token = _page(selected, key, sort_by, operation, params)
    out: dict[str, Any] = {"HyperParameterTuningJobSummaries": [job.summary() for job in page]}
    if token:
        out["NextToken"] = token
    return out


def list_trials(job: TuningJob, params: Mapping[str, Any]) -> dict[str, Any]:
    operation = "ListTrainingJobsForHyperParameterTuningJob"
    sort_by = str(params.get("SortBy") or documented_default(operation, "SortBy") or "Name")
    status = params.get("StatusEquals")
    selected = [trial for trial in job.trials if not status or trial.status == status]
    if sort_by == "FinalObjectiveMetricValue":  # trials without an objective are not listed
        selected = [trial for trial in selected if trial.objective is not None]

    def key(trial: Trial) -> list[Any]:
        if sort_by == "Status":
            return [trial.status, trial.name]
        if sort_by == "CreationTime":
            return [trial.job.creation_ms, trial.name]
        if sort_by == "FinalObjectiveMetricValue":
            return [float(trial.objective or 0.0), trial.name]
        return [trial.name]

    page, token = _page(selected, key, sort_by, operation, params)
    out: dict[str, Any] = {"TrainingJobSummaries": [job.trial_summary(trial) for trial in page]}
    if token:
        out["NextToken"] = token
    return out


def _matches_times(created_ms: int, modified_ms: int, params: Mapping[str, Any]) -> bool:
    """The CreationTime/LastModifiedTime bounds, strict as AWS applies them (in microseconds, as sent)."""
    bounds = (("CreationTimeAfter", created_ms, 1), ("CreationTimeBefore", created_ms, -1),
              ("LastModifiedTimeAfter", modified_ms, 1), ("LastModifiedTimeBefore", modified_ms, -1))
    for name, value_ms, direction in bounds:
        if params.get(name) is None:
            continue
        limit, value = _time_us(params[name], name), value_ms * 1000
        if (direction > 0 and not value > limit) or (direction < 0 and not value < limit):
            return False
    return True


def _page(items: Sequence[Item], key: Callable[[Item], list[Any]], sort_by: str, operation: str,
          params: Mapping[str, Any]) -> tuple[list[Item], str | None]:
    order = str(params.get("SortOrder") or documented_default(operation, "SortOrder") or "Ascending")
    max_results = int(params.get("MaxResults") or DEFAULT_MAX_RESULTS)
    keyed = sorted(((key(item), item) for item in items), key=lambda pair: pair[0])
    keys = [k for k, _ in keyed]
    token = params.get("NextToken")
    if order == "Descending":
        end = bisect.bisect_left(keys, _decode(token, sort_by)) if token else len(keyed)
        start = max(0, end - max_results)
        page = [item for _, item in reversed(keyed[start:end])]
        more = start > 0
    else:
        start = bisect.bisect_right(keys, _decode(token, sort_by)) if token else 0
        end = min(len(keyed), start + max_results)
        page = [item for _, item in keyed[start:end]]
        more = end < len(keyed)
    if not (more and page):
        return page, None
    raw = json.dumps([sort_by, *key(page[-1])]).encode()
    return page, _TOKEN_PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(token: Any, sort_by: str) -> list[Any]:
    text = str(token)
    if text.startswith(_TOKEN_PREFIX):
        body = text[len(_TOKEN_PREFIX):]
        try:
            value = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        except (binascii.Error, ValueError):
            value = None
        if isinstance(value, list) and len(value) >= 2 and value[0] == sort_by:
            return value[1:]
    raise ValidationException("Invalid pagination token because it could not be decoded.")
