"""benchmarks/local_runner.py runs, small (`--quick`), in a subprocess as a person would run it, so it cannot rot.

Only its shape and sanity are checked here; its target (p50 overhead <= 1.5 s) is checked by running it in full.
"""

from __future__ import annotations

import pytest

from benchmark_run import run_benchmark


@pytest.mark.timeout(180)
def test_local_runner_benchmark_quick() -> None:
    result = run_benchmark("local_runner.py", "--quick", timeout=150)
    assert {"jobs", "overhead_seconds_p50", "overhead_seconds_p99"} <= set(result)
    assert result["jobs"] == 4 and result["parallel"] == 2 and result["sleep_seconds"] == 0.5
    # The overhead is real work (processes, S3, polling): above zero, and far below a timeline's fixed seconds.
    assert 0 < result["overhead_seconds_p50"] <= result["overhead_seconds_p99"] <= result["overhead_seconds_max"]
    assert result["overhead_seconds_p50"] < 10
