"""Built-in XGBoost and Pipe mode through the command line: `validate` warns, before any AWS call, when the task's
Pipe channels have a content type the algorithm version's container does not read in Pipe mode."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

import sample_tasks as F
from handlers import xgboost_content
from plugin.jobs import render

SCRIPT = Path(sys.executable).with_name("sagemaker-plugin")
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
NO_LONGER = ("Pipe mode for CSV is no longer supported. Please use Fast File mode (default) instead. Set "
             "input_mode='File' in your SageMaker Estimator or TrainingInput.")


def _cli(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """The console script with no way to AWS: an AWS call would fail the command, not warn."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SAGEMAKER_PLUGIN_", "BOTO_"))}
    env.update(AWS_ENDPOINT_URL="http://127.0.0.1:1", AWS_EC2_METADATA_DISABLED="true",
               AWS_CONFIG_FILE=str(cwd / "none"), AWS_SHARED_CREDENTIALS_FILE=str(cwd / "none"),
               XDG_DATA_HOME=str(cwd / ".local-data"))
    return subprocess.run([str(SCRIPT), *argv], capture_output=True, text=True, cwd=cwd, env=env, timeout=60)


def _task(tmp_path: Path, version: str, mode: str) -> Path:
    task: dict[str, Any] = F.xgboost_task()
    task["training_job"]["algorithm_specification"].update(algorithm_version=version, input_mode=mode)
    path = tmp_path / f"task-{version}-{mode}.yaml"
    path.write_text(yaml.safe_dump(task), encoding="utf-8")
    return path


@pytest.mark.parametrize("command", ["validate", "render"])
def test_validate_warns_of_pipe_channels_the_container_would_refuse(tmp_path: Path, command: str) -> None:
    task = _task(tmp_path, "3.2-0", "PIPE")
    done = _cli([command, str(task)], tmp_path)
    assert done.returncode == 0, done.stderr
    warnings = done.stderr.splitlines()
    channels = [c for c in ("train", "validation") if c in yaml.safe_load(task.read_text())["inputs"]]
    assert len(warnings) == len(channels) >= 1
    for channel, line in zip(channels, warnings, strict=True):
        assert line.startswith(f"warning: inputs.{channel}: is read in Pipe mode (training_job.algorithm_specification"
                               ".input_mode: PIPE), but SageMaker XGBoost 3.2-0 reads no channel in Pipe mode")
        assert NO_LONGER in line and line.endswith("; use input_mode FILE")


def test_a_tuning_task_warns_as_its_trials_would(tmp_path: Path) -> None:
    task = yaml.safe_load((EXAMPLES / "tuning.yaml").read_text())
    task["hyperparameter_tuning_job"]["training_job"]["algorithm_specification"].update(
        algorithm_version="3.2-0", input_mode="PIPE")
    task["inputs"].update(train="s3://bucket/train/", validation="s3://bucket/validation/")
    path = tmp_path / "tuning.yaml"
    path.write_text(yaml.safe_dump(task), encoding="utf-8")
    done = _cli(["validate", str(path)], tmp_path)
    assert done.returncode == 0, done.stderr
    assert [line.split(":", 2)[1].strip() for line in done.stderr.splitlines()] == ["inputs.train", "inputs.validation"]
    assert all(NO_LONGER in line for line in done.stderr.splitlines())


@pytest.mark.parametrize(("version", "mode"), [("1.7-1", "PIPE"), ("3.0-5", "PIPE"), ("0.90-1", "PIPE"),
                                               ("3.2-0", "FILE")])
def test_no_warning_where_the_container_reads_the_channel(tmp_path: Path, version: str, mode: str) -> None:
    done = _cli(["validate", str(_task(tmp_path, version, mode))], tmp_path)
    assert (done.returncode, done.stderr) == (0, ""), done.stderr


def _request(job_mode: str, *channels: dict[str, Any]) -> dict[str, Any]:
    return {"AlgorithmSpecification": {"TrainingInputMode": job_mode}, "InputDataConfig": list(channels)}


def test_a_channels_own_input_mode_and_content_type_decide() -> None:
    """A channel's InputMode overrides the job's, one without inherits it (the service model's rule); a channel
    without ContentType is LibSVM to the container, which it reads in File mode only."""
    libsvm = {"ChannelName": "train", "ContentType": "text/libsvm", "InputMode": "Pipe"}
    unset = {"ChannelName": "validation"}
    warned = render.pipe_warnings(_request("File", libsvm, unset), "1.7-1")
    assert [w.path for w in warned] == ["inputs.train"]
    assert "ContentType text/libsvm is not read in Pipe mode by SageMaker XGBoost 1.7-1" in warned[0].message
    warned = render.pipe_warnings(_request("Pipe", {**libsvm, "InputMode": "File"}, unset), "1.7-1")
    assert [w.path for w in warned] == ["inputs.validation"]
    assert "ContentType text/libsvm" in warned[0].message
    recordio = {"ChannelName": "train", "ContentType": "application/x-recordio-protobuf"}
    assert render.pipe_warnings(_request("Pipe", recordio), "1.5-1") == []
    assert render.pipe_warnings(_request("Pipe", {**recordio, "ChannelName": "extra"}), "3.2-0") == []


def test_the_content_types_per_mode_are_the_containers() -> None:
    assert xgboost_content.pipe_problem("1.7-1", "text/csv") is None
    assert xgboost_content.pipe_problem("1", "text/csv") is None  # the legacy image counts as 0.90-1
    assert xgboost_content.pipe_problem("1.7-1", "text/csv; label_size=1") is not None  # exact strings, as the
    problem = xgboost_content.pipe_problem("3.2-0", "application/x-parquet")            # container compares them
    assert problem is not None and problem.container_message == NO_LONGER.replace("CSV", "Parquet")
