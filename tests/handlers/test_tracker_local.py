"""The tracker end to end against the local SageMaker: jobs that really change, fail and end; requests counted there.

Real time, kept short with a time scale; assertions are about what was seen and how many requests it took, with
margins for a slow machine, never about durations.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from handlers.client import ClientSettings, SageMakerClient
from handlers.errors import NotFound
from handlers.ratelimit import RateLimits
from handlers.status import Phase, phase_of
from handlers.tracker import StatusTracker

local_sagemaker = pytest.importorskip("local_sagemaker")
testing = pytest.importorskip("local_sagemaker.testing")

TIMELINE = {"Starting": 0.6, "Downloading": 0.6, "Training": 1.2, "Uploading": 0.6}  # 3 s a job
INTERVAL = 0.25
LOCAL_SETTINGS = local_sagemaker.LocalSettings(  # of the module's `server` (tests/conftest.py)
    execution="simulate",
    timeline=TIMELINE,
    failures=(local_sagemaker.FailureRule(name_pattern=r"trk-fail-.*", at="Training",
                                          reason="AlgorithmError: loss became NaN"),),
)


@pytest.fixture
def client(server: Any) -> Iterator[SageMakerClient]:
    settings = ClientSettings(endpoint_url=server.url, local_credentials=True, rate_limits=RateLimits(0, 0))
    with SageMakerClient(settings) as made:
        yield made


def create(server: Any, names: list[str]) -> None:
    aws = testing.LocalClients(server.url)
    data = aws.put_data("trk/train")
    for name in names:
        aws.sagemaker.create_training_job(**aws.training_request(name, channels={"train": data}))


def test_jobs_followed_to_their_end_with_one_describe_each(server: Any, client: SageMakerClient) -> None:
    names = [f"trk-ok-{i:02d}" for i in range(12)] + [f"trk-fail-{i:02d}" for i in range(4)]
    create(server, names)
    tracker = StatusTracker(client, INTERVAL)
    server.reset_counts()
    seen: dict[str, list[str]] = {name: [] for name in names}
    final: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + 60
    while len(final) < len(names) and time.monotonic() < deadline:
        for name in names:
            if name in final:
                continue
            answer = tracker.describe(name)
            if not seen[name] or seen[name][-1] != answer["SecondaryStatus"]:
                seen[name].append(answer["SecondaryStatus"])
            if phase_of(answer).phase.is_terminal:
                final[name] = answer
                tracker.forget(name)
        time.sleep(INTERVAL / 2)
    assert len(final) == len(names)
    counts = server.call_counts()
    # one Describe per job, at its end (for its outputs or reason): the census and the sweeps did the rest
    assert counts["DescribeTrainingJob"] == len(names)
    stats = tracker.stats
    assert stats.describes == len(names) and stats.fallbacks == 0
    assert stats.census_jobs >= len(names)
    assert counts["ListTrainingJobs"] == stats.pages
    for name in names:
        truth = client.describe_training_job(name)
        statuses = [t["Status"] for t in truth["SecondaryStatusTransitions"]]
        assert seen[name] == [s for s in statuses if s in seen[name]]  # in order, nothing invented
        if name.startswith("trk-ok"):
            assert phase_of(final[name]).phase == Phase.SUCCEEDED
            assert final[name]["ModelArtifacts"] == truth["ModelArtifacts"]
            assert final[name]["FinalMetricDataList"] == truth["FinalMetricDataList"]
            assert "Training" in seen[name]  # a 1.2 s status polled every 0.25 s is seen
        else:
            assert phase_of(final[name]).phase == Phase.FAILED
            assert final[name]["FailureReason"] == "AlgorithmError: loss became NaN"


def test_the_local_sagemaker_accepts_the_sweeps_filters(server: Any, client: SageMakerClient) -> None:
    """NameContains, LastModifiedTimeAfter and the sort order as the tracker sends them, and NotFound for a gone job."""
    create(server, ["trk-filter-a1", "trk-filter-a2", "trk-other-b1"])
    tracker = StatusTracker(client, INTERVAL, census=False)
    for name in ("trk-filter-a1", "trk-filter-a2"):
        tracker.describe(name)
    time.sleep(INTERVAL * 1.5)
    sent: list[dict[str, Any]] = []
    original = client.list_training_jobs

    def spy(**params: Any) -> dict[str, Any]:
        sent.append(params)
        page = original(**params)
        assert all(s["TrainingJobName"].startswith("trk-filter-a") for s in page["TrainingJobSummaries"])
        return page

    client.list_training_jobs = spy  # type: ignore[method-assign]
    tracker.describe("trk-filter-a1")
    assert sent and sent[0]["NameContains"] == "trk-filter-a" and "LastModifiedTimeAfter" in sent[0]
    with pytest.raises(NotFound):
        tracker.describe("trk-never-created")
