"""End to end: `sagemaker-plugin run` on examples/tuning.yaml (whole, against the untuned examples/xgboost.yaml, and
smaller copies), with the local SageMaker the command starts for itself running every trial for real; Ctrl-C stops
the tuning job and every trial's processes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tuning_jobs import processes_running

pytestmark = pytest.mark.timeout(300)

REPO = Path(__file__).resolve().parents[2]
SCRIPT = Path(sys.executable).parent / "sagemaker-plugin"


def env_for(tmp: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("AWS_", "SAGEMAKER_PLUGIN_", "BOTO_"))}
    env.update(AWS_EC2_METADATA_DISABLED="true", AWS_CONFIG_FILE=str(tmp / "none"),
               AWS_SHARED_CREDENTIALS_FILE=str(tmp / "none"), AWS_ENDPOINT_URL="http://127.0.0.1:1")
    return env


def small_copy(tmp: Path, trials: int, parallel: int, rounds: int) -> Path:
    """examples/ copied, with examples/tuning.yaml cut down to `trials` trials of `rounds` rounds (not tuned)."""
    work = tmp / "examples"
    shutil.copytree(REPO / "examples", work, ignore=shutil.ignore_patterns("__pycache__"))
    task = yaml.safe_load((work / "tuning.yaml").read_text(encoding="utf-8"))
    task["hyperparameter_tuning_job"].update(max_number_of_training_jobs=trials, max_parallel_training_jobs=parallel)
    del task["tuning_config"]["hyperparameter_ranges"]["parameter_range_map"]["num_round"]
    task["inputs"]["static_hyperparameters"]["num_round"] = rounds
    task["execution"]["name"] = f"e2e-{os.getpid()}-{time.monotonic_ns() % 10**8}"
    path = work / "small-tuning.yaml"
    path.write_text(yaml.safe_dump(task), encoding="utf-8")
    (tmp / "config.yaml").write_text(f"backend: local\nlocal: {{data_dir: {tmp / 'data'}}}\n", encoding="utf-8")
    return path


def run_example(tmp: Path, name: str) -> dict[str, Any]:
    """`run --json` of an example as it is (its own execution name, so a fresh job), the last line's result."""
    work = tmp / "examples"
    if not work.exists():
        shutil.copytree(REPO / "examples", work, ignore=shutil.ignore_patterns("__pycache__"))
        (tmp / "config.yaml").write_text(f"backend: local\nlocal: {{data_dir: {tmp / 'data'}}}\n", encoding="utf-8")
    task = yaml.safe_load((work / name).read_text(encoding="utf-8"))
    task["execution"]["name"] = f"e2e-{os.getpid()}-{time.monotonic_ns() % 10**8}"
    path = work / f"copy-{name}"
    path.write_text(yaml.safe_dump(task), encoding="utf-8")
    done = subprocess.run([str(SCRIPT), "run", str(path), "--config", str(tmp / "config.yaml"), "--json"],
                          capture_output=True, text=True, env=env_for(tmp), timeout=280, check=False)
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["stderr"] = done.stderr
    return result


def test_the_example_tuning_does_at_least_as_well_as_the_untuned_example(tmp_path: Path) -> None:
    untuned = run_example(tmp_path, "xgboost.yaml")["outputs"]["metrics"]["validation:rmse"]
    tuned = run_example(tmp_path, "tuning.yaml")
    outputs = tuned["outputs"]
    assert tuned["phase"] == "SUCCEEDED"
    assert [t["status"] for t in outputs["trials"]] == ["Completed"] * 12
    assert outputs["objective"]["metric_name"] == "validation:rmse"
    assert outputs["objective"]["value"] <= untuned, (outputs["objective"], untuned)
    assert outputs["objective"]["value"] == min(t["objective"] for t in outputs["trials"])
    assert outputs["model"].endswith(f"/{outputs['best_training_job_name']}/output/model.tar.gz")
    kept = re.search(r"^model file (\S+)$", tuned["stderr"], re.MULTILINE)
    assert kept is not None and Path(kept.group(1)).stat().st_size > 0  # the best trial's model, on disk
    # a line for every trial as `run` saw it change: InProgress, unless it began and ended between two of its polls
    lines = tuned["stderr"].splitlines()
    for trial in outputs["trials"]:
        assert any(line.startswith(f"trial {trial['name']} ") for line in lines), trial["name"]
    assert any(" InProgress (" in line for line in lines)
    # at most 3 at a time: never a 4th trial seen before one of the first ended
    fourth = next(i for i, line in enumerate(lines) if re.search(r"^trial \S+-004-[0-9a-f]{8} ", line))
    assert any(" Completed " in line or " Failed " in line for line in lines[:fourth])

    # The run to its end, as a person sees it: the best trial's tuned hyperparameters (every range's), and the plain
    # progress (not a terminal): a line per trial change, then the table with the best marked.
    task = yaml.safe_load((tmp_path / "examples" / "tuning.yaml").read_text(encoding="utf-8"))
    tuned_names = task["tuning_config"]["hyperparameter_ranges"]["parameter_range_map"]
    assert set(outputs["best_hyperparameters"]) == set(tuned_names) == {"eta", "max_depth", "min_child_weight",
                                                                         "num_round"}
    err = tuned["stderr"]
    assert re.search(r"^trial \S+-001-[0-9a-f]{8} Completed objective [0-9.]+ \(eta=", err, re.MULTILINE), err
    [best_row] = [line for line in err.splitlines() if line.startswith("*  ")]
    assert outputs["best_training_job_name"] in best_row and "Completed" in best_row
    assert f"model: {outputs['model']}" in err


def test_ctrl_c_stops_the_tuning_job_and_its_trials(tmp_path: Path) -> None:
    task = small_copy(tmp_path, trials=4, parallel=2, rounds=100000)
    run = subprocess.Popen([str(SCRIPT), "run", str(task), "--config", str(tmp_path / "config.yaml")],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env_for(tmp_path))
    assert run.stdout is not None
    try:
        first = run.stdout.readline()
        found = re.match(r"^tuning job (\S+) on ", first)
        assert found is not None, first
        tuning_job = found.group(1)  # every trial's name, and so its processes' command lines, start with it
        deadline = time.monotonic() + 120
        while len(processes_running(tuning_job)) < 2:  # both parallel trials are running their processes
            assert time.monotonic() < deadline, "two trials never ran"
            time.sleep(0.2)
        run.send_signal(signal.SIGINT)
        out, err = run.communicate(timeout=240)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert run.returncode == 130, (out, err)
    assert "stopping tuning job" in err
    rows = [line for line in out.splitlines() if re.search(r"-00\d-[0-9a-f]{8}\s", line) and "(" not in line]
    assert len(rows) >= 2 and all("Stopped" in row for row in rows), out
    assert ": ABORTED" in out
    assert processes_running(tuning_job) == []  # no trial's process left in the process table
