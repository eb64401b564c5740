"""plugin/cli/job_list.py and handlers/paging.py: what `list` asks SageMaker (its flags checked against botocore's model
of the list operations), how it pages with botocore's paginator through our client, and how it shows the jobs.

Against the module's in-process local SageMaker (simulate mode); the CLI itself is driven in
tests/e2e/test_cli_input.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

import tuning_jobs
from handlers import paging
from handlers.client import ClientSettings, SageMakerClient
from handlers.errors import InputError
from handlers.ratelimit import RateLimits
from local_sagemaker.testing import LocalClients
from plugin.cli import job_list
from plugin.cli.job_list import Query, Row

NOW = datetime(2027, 1, 15, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def client(server: Any) -> Iterator[SageMakerClient]:
    settings = ClientSettings(endpoint_url=server.url, local_credentials=True, rate_limits=RateLimits(0, 0))
    with SageMakerClient(settings) as made:
        yield made


def problems(query: Query) -> dict[str, str]:
    with pytest.raises(InputError) as info:
        job_list.request(query, NOW)
    return {p.path: p.message for p in info.value.problems}


# --- the request ------------------------------------------------------------------------------------------------------

def test_the_request_asks_for_the_newest_first_with_the_filters() -> None:
    assert job_list.request(Query(status="completed", name_contains="xgb", since="2h"), NOW) == {
        "SortBy": "CreationTime", "SortOrder": "Descending", "StatusEquals": "Completed", "NameContains": "xgb",
        "CreationTimeAfter": NOW - timedelta(hours=2)}
    assert job_list.request(Query(tuning=True, status="deletefailed"), NOW)["StatusEquals"] == "DeleteFailed"


def test_every_bad_flag_is_named_at_once() -> None:
    found = problems(Query(status="Complete", name_contains="a b", since="soon", max_items=0))
    assert set(found) == {"--status", "--name-contains", "--since", "--max"}
    assert found["--status"].endswith("; did you mean 'Completed'?")
    assert found["--name-contains"].startswith("'a b' contains a space, which SageMaker's NameContains does not allow")


def test_the_statuses_are_the_operations_own() -> None:
    assert job_list.TRAINING_JOBS.statuses() != job_list.TUNING_JOBS.statuses()
    assert "DeleteFailed" in problems(Query(status="DeleteFailed"))["--status"]
    assert job_list.request(Query(tuning=True, status="DeleteFailed"), NOW)["StatusEquals"] == "DeleteFailed"


@pytest.mark.parametrize(("text", "moment"), [
    ("30m", NOW - timedelta(minutes=30)), ("2h", NOW - timedelta(hours=2)), ("1.5d", NOW - timedelta(hours=36)),
    ("1w", NOW - timedelta(days=7)), ("90s", NOW - timedelta(seconds=90)),
    ("2027-01-10T08:30:00Z", datetime(2027, 1, 10, 8, 30, tzinfo=timezone.utc)),
    ("2027-01-10T08:30+02:00", datetime(2027, 1, 10, 6, 30, tzinfo=timezone.utc)),
    ("2027-01-10", datetime(2027, 1, 10).astimezone()),  # no zone: this machine's
    ("yesterday", None), ("5 parsecs", None), ("", None),
])
def test_since_takes_a_duration_or_a_moment(text: str, moment: datetime | None) -> None:
    assert job_list.parse_since(text, NOW) == moment


# --- paging and the rows ----------------------------------------------------------------------------------------------

def test_jobs_are_paged_with_botocores_paginator_through_our_client(server: Any, client: SageMakerClient,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    aws = LocalClients(server.url)
    tag = uuid.uuid4().hex[:8]
    data = aws.put_data(f"lst/{tag}")
    names = [f"lst-{tag}-{i}" for i in range(5)]
    for name in names:
        aws.sagemaker.create_training_job(**aws.training_request(name, channels={"train": data}))
    monkeypatch.setattr(paging, "MAX_PAGE", 2)
    before = client.attempts["ListTrainingJobs"]

    rows, more = job_list.jobs(client, Query(name_contains=tag, max_items=50), datetime.now(timezone.utc))
    assert [row.name for row in rows] == names[::-1] and not more
    assert client.attempts["ListTrainingJobs"] - before == 3  # pages of 2, 2 and 1

    rows, more = job_list.jobs(client, Query(name_contains=tag, max_items=3), datetime.now(timezone.utc))
    assert [row.name for row in rows] == names[:-4:-1] and more


def test_tuning_jobs_are_listed_with_their_own_operation(server: Any, client: SageMakerClient,
                                                         tmp_path: Any) -> None:
    aws = LocalClients(server.url)
    name = f"lst-tune-{uuid.uuid4().hex[:8]}"
    aws.sagemaker.create_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name,
        HyperParameterTuningJobConfig=tuning_jobs.config(jobs=1, parallel=1, ContinuousParameterRanges=[
            {"Name": "lr", "MinValue": "0.1", "MaxValue": "0.5"}]),
        TrainingJobDefinition=tuning_jobs.definition(aws, tuning_jobs.write_script(tmp_path / "code")))
    before = client.attempts["ListHyperParameterTuningJobs"]
    rows, _ = job_list.jobs(client, Query(tuning=True, name_contains=name), datetime.now(timezone.utc))
    assert [(row.name, row.arn.endswith(f":hyper-parameter-tuning-job/{name}")) for row in rows] == [(name, True)]
    assert client.attempts["ListHyperParameterTuningJobs"] - before == 1


def test_the_table_aligns_its_columns_and_says_how_long_each_job_took() -> None:
    created = NOW - timedelta(minutes=10)
    rows = [Row("a-long-job-name", "InProgress", created, None, "arn:1"),
            Row("b", "Completed", created, created + timedelta(seconds=4.25), "arn:2"),
            Row("c", "Failed", created - timedelta(days=2), created + timedelta(hours=3, minutes=2), "arn:3")]
    local = created.astimezone().strftime("%Y-%m-%d %H:%M:%S")
    lines = job_list.table(rows, NOW)
    assert lines[0] == "NAME             STATUS      CREATED              DURATION"
    assert lines[1] == f"a-long-job-name  InProgress  {local}  10m00s so far"
    assert lines[2] == f"b                Completed   {local}  4.2s"
    assert lines[3].endswith("  2d03h")
    assert rows[1].as_dict("training job", NOW) == {
        "name": "b", "kind": "training job", "status": "Completed", "created": "2027-01-15T11:50:00+00:00",
        "ended": "2027-01-15T11:50:04.250000+00:00", "duration_seconds": 4.25, "arn": "arn:2"}
