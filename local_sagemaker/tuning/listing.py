"""ListHyperParameterTuningJobs and ListTrainingJobsForHyperParameterTuningJob: filters, sorting (defaults as the
service model documents them), then pages as ListTrainingJobs pages (local_sagemaker/listing.py `sorted_page`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from local_sagemaker.defaults import documented_default
from local_sagemaker.listing import matches_times, sorted_page
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
                and matches_times(job.creation_ms, job.last_modified_ms or job.creation_ms, params)]

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


def _page(items: Sequence[Item], key: Callable[[Item], list[Any]], sort_by: str, operation: str,
          params: Mapping[str, Any]) -> tuple[list[Item], str | None]:
    order = str(params.get("SortOrder") or documented_default(operation, "SortOrder") or "Ascending")
    return sorted_page(items, key, sort_by, order == "Descending", int(params.get("MaxResults") or DEFAULT_MAX_RESULTS),
                       params.get("NextToken"), _TOKEN_PREFIX)
