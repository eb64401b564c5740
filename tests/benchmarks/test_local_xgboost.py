"""benchmarks/local_xgboost.py runs, small (`--quick`), in a subprocess as a person would run it, so it cannot rot.

Only its shape and sanity are checked here; its target (ratio <= 1.3) is checked by running it in full (README).
"""

from __future__ import annotations

import pytest

from benchmark_run import run_benchmark


@pytest.mark.timeout(240)
def test_local_xgboost_benchmark_quick() -> None:
    result = run_benchmark("local_xgboost.py", "--quick", timeout=200)
    assert {"rows", "rounds", "bare_seconds", "local_job_seconds", "ratio"} <= set(result)
    assert (result["rows"], result["rounds"]) == (20_000, 10)
    assert result["bare_seconds"] > 0 and result["local_job_seconds"] > 0
    # the seconds are printed to 0.01 s and the ratio from the unrounded ones: it lies within what the rounding allows
    local, bare, half = result["local_job_seconds"], result["bare_seconds"], 0.005
    low, high = (local - half) / (bare + half), (local + half) / max(bare - half, 1e-9)
    assert low * 0.999 <= result["ratio"] <= high * 1.001, result
    assert result["local_job_cpu_seconds"] > 0 and result["bare_cpu_seconds"] > 0
