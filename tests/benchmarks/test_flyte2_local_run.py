"""benchmarks/flyte2_local_run.py runs, small (`--quick`), in a subprocess as a person would run it, so it cannot rot.

Only its shape and sanity are checked here; its target (extra_seconds <= 2) is checked by running it in full (README).
"""

from __future__ import annotations

import pytest

from benchmark_run import run_benchmark

pytest.importorskip("flyte.connectors")


@pytest.mark.timeout(420)
def test_flyte2_local_run_benchmark_quick() -> None:
    result = run_benchmark("flyte2_local_run.py", "--quick", timeout=400)
    assert result["rounds"] == 1 and len(result["all"]["cli"]) == len(result["all"]["flyte2"]) == 1
    assert result["cli_seconds"] > 0 and result["flyte2_seconds"] > 0
    assert result["extra_seconds"] == pytest.approx(result["flyte2_seconds"] - result["cli_seconds"], abs=0.011)
