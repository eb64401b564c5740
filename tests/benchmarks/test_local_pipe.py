"""benchmarks/local_pipe.py runs, small (`--quick`), in a subprocess as a person would run it, so it cannot rot.

Only its shape and sanity are checked here; its targets (Pipe >= 200 MB/s, no slower than File end to end) are
checked by running it in full (docs/performance.md).
"""

from __future__ import annotations

import pytest

from benchmark_run import run_benchmark


@pytest.mark.timeout(180)
def test_local_pipe_benchmark_quick() -> None:
    result = run_benchmark("local_pipe.py", "--quick", timeout=150)
    assert set(result) == {"mb", "file_mode_seconds", "pipe_mode_seconds", "pipe_mb_per_second"}
    assert result["mb"] == 20
    assert 0 < result["pipe_mode_seconds"] < 60 and 0 < result["file_mode_seconds"] < 60
    assert result["pipe_mb_per_second"] > 0
