"""benchmarks/local_runner.py runs, small (`--quick`), in a subprocess as a person would run it, so it cannot rot.

Only its shape and sanity are checked here; its target (p50 overhead <= 1.5 s) is checked by running it in full.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(180)
def test_local_runner_benchmark_quick() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "local_runner.py"), "--quick"],
                          capture_output=True, text=True, timeout=150, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-3000:]
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1, done.stdout
    result = json.loads(lines[0])
    assert {"jobs", "overhead_seconds_p50", "overhead_seconds_p99"} <= set(result)
    assert result["jobs"] == 4 and result["parallel"] == 2 and result["sleep_seconds"] == 0.5
    # The overhead is real work (processes, S3, polling): above zero, and far below a timeline's fixed seconds.
    assert 0 < result["overhead_seconds_p50"] <= result["overhead_seconds_p99"] <= result["overhead_seconds_max"]
    assert result["overhead_seconds_p50"] < 10
