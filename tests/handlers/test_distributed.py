"""MPI that really starts: which requests SageMaker's training toolkit would run under mpirun, and the warnings
`validate`, `render` and `run` give for an MPI task that would get none (a ContainerEntrypoint or ContainerArguments
replace the toolkit's entry, which is what starts mpirun; without sagemaker_program the toolkit has nothing to run).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

import sample_tasks as F
from handlers import distributed
from plugin.cli import main
from plugin.config import Config
from plugin.jobs.requests import render
from plugin.task import load_task

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _task(container: dict[str, Any], hp: dict[str, Any] | None = None, protocol: str = "MPI") -> dict[str, Any]:
    task = F.custom_task(container={"image": F.IMAGE, **container},
                         inputs={"train": "s3://b/t/", "static_hyperparameters": hp or {}})
    return F.set_in(task, "training_job.training_job_resource_config",
                    {"instance_type": "ml.c5.xlarge", "instance_count": 2, "distributed_protocol": protocol})


def warnings_of(task: dict[str, Any]) -> list[tuple[str, str]]:
    return [(w.path, w.message) for w in render(load_task(task), Config()).warnings]


def test_the_toolkit_form_starts_mpi_and_gets_no_warning() -> None:
    task = _task({}, {"sagemaker_program": "train.py", "sagemaker_submit_directory": "s3://b/code.tar.gz"})
    rendered = render(load_task(task), Config())
    assert rendered.warnings == ()
    assert "ContainerEntrypoint" not in rendered.request["AlgorithmSpecification"]
    launch = distributed.launch(rendered.request)
    assert (launch.toolkit, launch.mpi, launch.program) == (True, True, "train.py")


@pytest.mark.parametrize(("container", "hp", "path", "words"), [
    ({"command": ["python", "train.py"]}, {}, "container.command", "a ContainerEntrypoint replaces"),
    ({"command": ["python", "train.py"]}, {"sagemaker_program": "train.py"}, "container.command",
     "a ContainerEntrypoint replaces"),
    ({"args": ["--epochs", "3"]}, {"sagemaker_program": "train.py"}, "container.args", "ContainerArguments replace"),
    ({}, {}, "inputs.static_hyperparameters.sagemaker_program", "needs the sagemaker_program hyperparameter"),
])
def test_an_mpi_task_that_would_get_no_mpi_on_sagemaker_is_warned(container: dict[str, Any], hp: dict[str, Any],
                                                                    path: str, words: str) -> None:
    [(got_path, message)] = warnings_of(_task(container, hp))
    assert got_path == path
    assert message.startswith("MPI would not start on SageMaker: ")
    assert words in message
    assert "name the script with inputs.static_hyperparameters.sagemaker_program" in message


def test_no_protocol_means_no_warning_whatever_the_container() -> None:
    assert warnings_of(_task({"command": ["python", "train.py"]}, protocol="UNSPECIFIED")) == []


def test_the_sdk_s_json_quoted_program_is_understood() -> None:
    hyperparameters = {"sagemaker_program": '"train.py"', "sagemaker_mpi_enabled": "true"}
    launch = distributed.launch({"HyperParameters": hyperparameters})
    assert (launch.program, launch.mpi) == ("train.py", True)


def test_validate_prints_the_warning_on_stderr_and_still_succeeds(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    task_file = tmp_path / "mpi.yaml"
    task_file.write_text(yaml.safe_dump(_task({"command": ["python", "-m", "trainer"]})), encoding="utf-8")
    config = tmp_path / "config.yaml"
    config.write_text("backend: local\n", encoding="utf-8")
    for command in ("validate", "render"):
        assert main([command, str(task_file), "--config", str(config)]) == 0
        out, err = capsys.readouterr()
        assert err.startswith("warning: container.command: MPI would not start on SageMaker")
        assert "warning" not in out


def test_the_mpi_example_is_in_the_toolkit_form(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("backend: local\n", encoding="utf-8")
    assert main(["validate", str(EXAMPLES / "custom-mpi.yaml"), "--config", str(config)]) == 0
    assert capsys.readouterr().err == ""
