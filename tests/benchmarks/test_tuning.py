"""benchmarks/tuning.py runs, small (`--quick`), in a subprocess as a person would run it, so it cannot rot.

Only its shape and sanity are checked here; its targets (Bayesian at least as good as Random, wall time within 1.25x
of the ideal) are checked by running it in full.
"""

from __future__ import annotations

import pytest

from benchmark_run import run_benchmark


@pytest.mark.timeout(240)
def test_tuning_benchmark_quick() -> None:
    result = run_benchmark("tuning.py", "--quick", timeout=220)
    assert {"trials", "parallel", "strategy", "best", "median_random_best", "wall_seconds", "ideal_seconds"} <= \
        set(result)
    assert result["trials"] == 8 and result["parallel"] == 2 and result["strategy"] == "Bayesian"
    # Losses of the known function: at least the 0.005 its last round adds, and far below a blind guess's ~10.
    assert 0.005 <= result["best"] < 10 and 0.005 <= result["median_random_best"] < 10
    # The tuner cannot beat running its trials back to back at full parallelism, and adds little to it.
    assert 0 < result["ideal_seconds"] <= result["wall_seconds"] < 3 * result["ideal_seconds"]
