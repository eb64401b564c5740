"""The benchmarks run, small (`--quick`), in a subprocess as a person would run them, so that they cannot rot.

Only their shape and sanity are checked here; their targets are checked by running them in full (benchmarks/README.md).
"""

from __future__ import annotations

import pytest

from benchmark_run import run_benchmark

LOOP_KEYS = {"api_calls", "calls_per_job_minute", "staleness_p50", "staleness_p99"}


@pytest.mark.timeout(180)
def test_tracking_benchmark_quick() -> None:
    result = run_benchmark("tracking.py", "--quick")
    assert {"jobs", "interval_seconds", "naive", "tracker", "ratio", "cpu_us_per_get", "peak_rss_mb"} <= set(result)
    jobs = result["jobs"]
    naive, tracker = result["naive"], result["tracker"]
    assert set(naive) >= LOOP_KEYS
    assert set(tracker) >= LOOP_KEYS
    assert naive["jobs_ended"] == jobs and tracker["jobs_ended"] == jobs  # both loops saw every job end
    assert set(naive["api_calls"]) == {"DescribeTrainingJob"}
    # polled each job once per interval when the machine keeps up; a loaded one polls less often, at least once each
    assert naive["api_calls"]["DescribeTrainingJob"] >= jobs
    assert tracker["api_calls"].get("ListTrainingJobs", 0) >= 1
    # one Describe per job at most (its end), never one per poll
    assert tracker["api_calls"].get("DescribeTrainingJob", 0) <= jobs
    total = sum(tracker["api_calls"].values())
    assert result["ratio"] == pytest.approx(naive["api_calls"]["DescribeTrainingJob"] / total, rel=0.01)
    assert result["ratio"] > 1  # cheaper than the naive loop even when a loaded machine lets it poll less (ratio ~7)
    for loop in (naive, tracker):
        assert loop["changes_seen"] >= jobs  # at least each job's end
        assert 0 <= loop["staleness_p50"] <= loop["staleness_p99"] < 10 * result["interval_seconds"] + 2
        assert loop["calls_per_job_minute"] > 0
    assert 0 < result["cpu_us_per_get"] < 2000
    assert 0 < result["peak_rss_mb"] < 4096


@pytest.mark.timeout(240)
def test_tracking_benchmark_with_events_quick() -> None:
    result = run_benchmark("tracking.py", "--events", "--with-polling", "--quick")
    jobs, events, polling = result["jobs"], result["events"], result["polling"]
    assert set(events) >= {*LOOP_KEYS, "api_calls_per_job"} and set(polling) >= LOOP_KEYS
    assert events["jobs_ended"] == polling["jobs_ended"] == jobs
    assert result["listener"]["active"] and result["listener"]["received"] >= 3 * jobs  # ~4 events a job
    calls = events["api_calls"]
    assert calls.get("amazonsqs:ReceiveMessage", 0) >= 1 and calls.get("amazonsqs:DeleteMessageBatch", 0) >= 1
    assert calls.get("sagemaker:DescribeTrainingJob", 0) < jobs  # only the completed ones: their figures
    assert "sagemaker:CreateTrainingJob" not in calls  # the workload's, not the tracking's
    assert events["api_calls_per_job"] == pytest.approx(sum(calls.values()) / jobs, abs=0.001)
    assert result["tracker_stats"]["events"]["events_applied"] >= jobs
    # made through the plugin, at SageMaker's pace on the scaled clock: each tracker knew its jobs from their create
    assert result["create_rate_per_second"] == result["time_scale"]
    assert all(stats["created"] > 0 for stats in result["tracker_stats"].values())  # or its event came first
    assert result["polling_to_events_ratio"] == pytest.approx(
        sum(polling["api_calls"].values()) / sum(calls.values()), rel=0.01)


@pytest.mark.timeout(120)
def test_create_burst_benchmark_quick() -> None:
    result = run_benchmark("create_burst.py", "--quick")
    assert {"jobs", "created", "failed", "throttled_responses", "seconds", "floor_seconds"} <= set(result)
    assert result["created"] == result["jobs"] == result["jobs_listed"]
    assert result["failed"] == 0
    assert result["floor_seconds"] > 0
    # queued behind the client's limiter: not faster than the quota allows, not much slower either
    assert result["floor_seconds"] * 0.9 <= result["seconds"] <= result["floor_seconds"] * 3 + 5
