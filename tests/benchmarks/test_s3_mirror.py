"""benchmarks/s3_mirror.py runs, small (`--quick`), in a subprocess as a person would run it, so it cannot rot.

Only its shape and sanity are checked here; its figures come from running it in full (benchmarks/README.md).
"""

from __future__ import annotations

import pytest

from benchmark_run import run_benchmark


@pytest.mark.timeout(180)
def test_s3_mirror_benchmark_quick() -> None:
    result = run_benchmark("s3_mirror.py", "--quick", timeout=150)
    assert result["objects"] == result["loaded"] == 500
    assert result["first_sync_cpu_seconds"] > 0 and result["first_sync_seconds"] > 0
    # nothing changed: nothing written, so far cheaper than writing them all
    assert result["unchanged_sync_seconds"] < result["first_sync_seconds"]
    assert result["disk_bytes"] >= 500 * 100
