"""The soak benchmark's quick run, so that it cannot rot: 30 jobs, random faults, 5 engine kills, 5 aborts, and 3
aborts of tasks queued on ResourceLimitExceeded, whose jobs must never be made (the abort mark in S3 stops another
replica and every restarted engine from creating them)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

#: the opt-in recorder of AWS operations (tests/conftest.py) reaches subprocesses through this variable
RECORD_OPS = "SAGEMAKER_PLUGIN_RECORD_OPS"
SOAK = Path(__file__).resolve().parents[2] / "benchmarks" / "soak.py"

pytestmark = pytest.mark.timeout(180)


def test_quick_soak_loses_nothing_duplicates_nothing_and_leaves_nothing_running(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SAGEMAKER_PLUGIN_")) or k == RECORD_OPS}
    done = subprocess.run([sys.executable, str(SOAK), "--quick"], capture_output=True, text=True, cwd=tmp_path,
                          env=env, timeout=170, check=False)
    lines = done.stdout.strip().splitlines()
    assert lines, done.stderr
    result = json.loads(lines[-1])
    # the seed is in the JSON: `soak.py --quick --seed N` replays the plan and the kill points
    context = f"{lines[-1]}\n{done.stderr}"

    assert {k: result[k] for k in ("duplicates", "lost", "wrong_terminal", "left_running_after_abort")} == {
        "duplicates": 0, "lost": 0, "wrong_terminal": 0, "left_running_after_abort": 0}, context
    assert done.returncode == 0, context
    assert result["jobs"] == 30
    assert result["restarts"] == 5, context
    assert result["aborts"] == 5
    # every queued abort reported ABORTED, and no job by its name exists, though the quota let its creates in after
    # the delete: only the abort mark told the replica (and any restarted engine) not to make it
    assert result["queued_aborts"] == 3
    assert result["queued_aborts"] > 0 and result["queued_aborts_never_made"] == result["queued_aborts"], context
    # an abort whose job ended on its own (its engine was killed before the delete) is not counted as stopped
    assert result["aborts_stopped"] >= 1, context
    assert result["api_calls"] == sum(result["api_calls_by_operation"].values()) > 30
    # a queued abort's creates never reach SageMaker: the engine's quota answers them before they are sent
    assert result["api_calls_by_operation"]["CreateTrainingJob"] >= 30 - result["queued_aborts"]
    assert result["api_calls_by_operation"]["StopTrainingJob"] >= result["aborts_stopped"]
    assert result["engine_errors"] == 0, context
