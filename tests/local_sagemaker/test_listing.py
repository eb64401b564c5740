"""ListTrainingJobs with AWS's sorting, filters and paging (moto ignores the sort and pages before filtering)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from botocore.exceptions import ClientError

from local_sagemaker import FailureRule, LocalSettings
from local_sagemaker.testing import LocalClients, unique_name
from server_clock import ManualClock

# tests/conftest.py runs this module's local SageMaker (`server`, and `aws` on it) with LOCAL_SETTINGS.
LOCAL_SETTINGS = LocalSettings(
    execution="simulate",
    time_scale=50,  # a job takes 0.1 s
    failures=(FailureRule(name_pattern="lst-fail-.*", at="Training", reason="AlgorithmError: injected"),),
)


def _all_pages(aws: LocalClients, **params: Any) -> tuple[list[dict[str, Any]], int]:
    summaries: list[dict[str, Any]] = []
    pages = 0
    while True:
        page = aws.sagemaker.list_training_jobs(**params)
        pages += 1
        summaries += page["TrainingJobSummaries"]
        if "NextToken" not in page:
            return summaries, pages
        params["NextToken"] = page["NextToken"]


def _create(aws: LocalClients, names: list[str], data: str) -> None:
    for name in names:
        aws.sagemaker.create_training_job(**aws.training_request(name, channels={"train": data}))


@pytest.fixture(scope="module")
def grouped(aws: LocalClients, server_clock: ManualClock) -> tuple[str, list[str]]:
    """A marker and 12 ended jobs whose names contain it: 8 Completed, 2 Failed, 2 Stopped (their clock held from
    create to stop: a job of 0.1 s would otherwise end first on a loaded machine)."""
    marker = unique_name("grp")
    data = aws.put_data(f"d/{marker}")
    names = [f"lst-{marker}-{i:02d}" for i in range(8)] + [f"lst-fail-{marker}-{i}" for i in range(2)]
    _create(aws, names, data)
    stopped = [f"lst-{marker}-stop-{i}" for i in range(2)]
    with server_clock.held():
        _create(aws, stopped, data)
        for name in stopped:
            aws.sagemaker.stop_training_job(TrainingJobName=name)
    names += stopped
    for name in names:
        aws.wait(name)
    return marker, names


def test_the_default_is_ten_per_page_oldest_first(aws: LocalClients, grouped: tuple[str, list[str]]) -> None:
    """The service model documents SortBy CreationTime and SortOrder Ascending as the defaults."""
    marker, group = grouped
    page = aws.sagemaker.list_training_jobs(NameContains=marker)
    summaries = page["TrainingJobSummaries"]
    assert len(summaries) == 10 and "NextToken" in page
    everything, _ = _all_pages(aws, NameContains=marker)
    keys = [(s["CreationTime"], s["TrainingJobName"]) for s in everything]
    assert keys == sorted(keys)
    assert sorted(s["TrainingJobName"] for s in everything) == sorted(group)
    first = everything[0]
    assert set(first) == {
        "TrainingJobName",
        "TrainingJobArn",
        "CreationTime",
        "TrainingEndTime",
        "LastModifiedTime",
        "TrainingJobStatus",
        "SecondaryStatus",
    }


@pytest.mark.parametrize("order", ["Ascending", "Descending"])
def test_sort_by_name(aws: LocalClients, grouped: tuple[str, list[str]], order: str) -> None:
    marker, group = grouped
    summaries, pages = _all_pages(aws, NameContains=marker, SortBy="Name", SortOrder=order, MaxResults=5)
    assert pages == 3
    assert [s["TrainingJobName"] for s in summaries] == sorted(group, reverse=order == "Descending")


def test_sort_by_status_then_filter_by_status(aws: LocalClients, grouped: tuple[str, list[str]]) -> None:
    marker, group = grouped
    summaries, _ = _all_pages(aws, NameContains=marker, SortBy="Status", SortOrder="Ascending", MaxResults=4)
    statuses = [s["TrainingJobStatus"] for s in summaries]
    assert statuses == ["Completed"] * 8 + ["Failed"] * 2 + ["Stopped"] * 2
    failed, _ = _all_pages(aws, NameContains=marker, StatusEquals="Failed", MaxResults=1)
    assert sorted(s["TrainingJobName"] for s in failed) == sorted(n for n in group if n.startswith("lst-fail-"))
    assert all(s["SecondaryStatus"] == "Failed" for s in failed)


def test_name_contains_ignores_case(aws: LocalClients, grouped: tuple[str, list[str]]) -> None:
    marker, group = grouped
    summaries, _ = _all_pages(aws, NameContains=marker.upper())
    assert len(summaries) == len(group)


def test_creation_time_bounds_are_strict(aws: LocalClients, grouped: tuple[str, list[str]]) -> None:
    marker, group = grouped
    everything, _ = _all_pages(aws, NameContains=marker, SortOrder="Ascending")
    pivot = everything[5]["CreationTime"]
    after, _ = _all_pages(aws, NameContains=marker, CreationTimeAfter=pivot)
    before, _ = _all_pages(aws, NameContains=marker, CreationTimeBefore=pivot)
    assert all(s["CreationTime"] > pivot for s in after)
    assert all(s["CreationTime"] < pivot for s in before)
    at_pivot = [s for s in everything if s["CreationTime"] == pivot]
    assert len(after) + len(before) + len(at_pivot) == len(group)
    # A bound a microsecond before the pivot includes it: no rounding to the millisecond on the way.
    just_before, _ = _all_pages(aws, NameContains=marker, CreationTimeAfter=pivot - timedelta(microseconds=1))
    assert len(just_before) == len(after) + len(at_pivot)


def test_paging_after_filtering_returns_each_job_once(aws: LocalClients, grouped: tuple[str, list[str]]) -> None:
    marker, _ = grouped
    # Jobs of other tests lie between the group's: moto's offset-before-filter would skip or repeat here.
    others = [unique_name("noise") for _ in range(5)]
    _create(aws, others, aws.put_data("d/noise"))
    summaries, pages = _all_pages(aws, NameContains=marker, StatusEquals="Completed", MaxResults=3)
    names = [s["TrainingJobName"] for s in summaries]
    assert len(names) == len(set(names)) == 8 and pages == 3
    page = aws.sagemaker.list_training_jobs(NameContains=marker, MaxResults=3)
    assert not page["NextToken"].isdigit()


def test_paging_is_stable_while_jobs_are_created(aws: LocalClients) -> None:
    marker = unique_name("stable")
    data = aws.put_data(f"d/{marker}")
    first = [f"{marker}-a{i}" for i in range(6)]
    _create(aws, first, data)
    page = aws.sagemaker.list_training_jobs(NameContains=marker, MaxResults=3, SortOrder="Descending")
    seen = [s["TrainingJobName"] for s in page["TrainingJobSummaries"]]
    _create(aws, [f"{marker}-b{i}" for i in range(3)], data)  # newer: they sort before the token
    rest, _ = _all_pages(aws, NameContains=marker, MaxResults=3, NextToken=page["NextToken"], SortOrder="Descending")
    seen += [s["TrainingJobName"] for s in rest]
    assert seen == sorted(first, reverse=True)


def test_a_last_modified_sweep_sees_every_status_change(aws: LocalClients) -> None:
    name = unique_name("sweep")
    since = datetime.now(timezone.utc)
    aws.sagemaker.create_training_job(**aws.training_request(name))
    changed, _ = _all_pages(aws, LastModifiedTimeAfter=since)  # a sweep reads every page: jobs of the tests before
    assert name in [s["TrainingJobName"] for s in changed]  # may have changed since too, on a slow machine
    job = aws.wait(name)
    assert job["TrainingJobStatus"] == "Completed"
    midway = job["SecondaryStatusTransitions"][-2]["StartTime"]  # entering Uploading
    changed = aws.sagemaker.list_training_jobs(LastModifiedTimeAfter=midway, NameContains=name)
    (summary,) = changed["TrainingJobSummaries"]
    assert summary["LastModifiedTime"] == job["TrainingEndTime"]
    later = job["LastModifiedTime"]
    after = aws.sagemaker.list_training_jobs(LastModifiedTimeAfter=later, NameContains=name)
    assert after["TrainingJobSummaries"] == []
    before = aws.sagemaker.list_training_jobs(LastModifiedTimeBefore=later, NameContains=name)
    assert before["TrainingJobSummaries"] == []


def test_a_job_listed_while_running_shows_its_current_status(aws: LocalClients, server_clock: ManualClock) -> None:
    name = unique_name("live")
    server_clock.hold()  # the job takes 0.1 s of the server's clock, which only the test moves
    aws.sagemaker.create_training_job(**aws.training_request(name))
    (summary,) = aws.sagemaker.list_training_jobs(NameContains=name)["TrainingJobSummaries"]
    assert summary["TrainingJobStatus"] == "InProgress" and "TrainingEndTime" not in summary
    server_clock.advance(0.2)
    (summary,) = aws.sagemaker.list_training_jobs(NameContains=name)["TrainingJobSummaries"]
    assert summary["TrainingJobStatus"] == "Completed" and "TrainingEndTime" in summary


@pytest.mark.parametrize(
    "params",
    [
        {"MaxResults": 101},
        {"SortBy": "Size"},
        {"SortOrder": "Sideways"},
        {"StatusEquals": "Running"},
        {"NextToken": "12"},
        {"NextToken": "lsm1.bm90LWpzb24"},
    ],
)
def test_bad_list_parameters_are_validation_exceptions(aws: LocalClients, params: dict[str, Any]) -> None:
    client = aws.client("sagemaker", retries={"total_max_attempts": 1})
    with pytest.raises(ClientError) as excinfo:
        client.list_training_jobs(**params)
    assert excinfo.value.response["Error"]["Code"] == "ValidationException"


def test_a_token_of_another_sort_is_refused(aws: LocalClients, grouped: tuple[str, list[str]]) -> None:
    marker, _ = grouped
    token = aws.sagemaker.list_training_jobs(NameContains=marker, SortBy="Name", MaxResults=2)["NextToken"]
    with pytest.raises(ClientError) as excinfo:
        aws.sagemaker.list_training_jobs(NameContains=marker, SortBy="CreationTime", NextToken=token)
    assert excinfo.value.response["Error"]["Code"] == "ValidationException"
