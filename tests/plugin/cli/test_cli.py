"""The command line for validate, render and images: in process through main() for speed, and a few runs of
the real `sagemaker-plugin` console script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import sample_tasks as S
from plugin.cli import main

EXAMPLES = S.EXAMPLES
EXAMPLE_FILES = sorted(EXAMPLES.glob("*.yaml"))
SCRIPT = Path(sys.executable).with_name("sagemaker-plugin")
CN_URI = "450853457545.dkr.ecr.cn-north-1.amazonaws.com.cn/sagemaker-xgboost:1.7-1"
US_URI = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    """A config of its own, so that edits to the repository's config.yaml do not move these tests."""
    path = tmp_path / "test-config.yaml"
    path.write_text("backend: local\nregion: us-east-1\n", encoding="utf-8")
    return path


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """main(argv) in process: (exit code, stdout, stderr); argparse's usage errors count as their exit code."""
    try:
        code = main(argv)
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def run_script(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAGEMAKER_PLUGIN_")}
    return subprocess.run([str(SCRIPT), *argv], capture_output=True, text=True, cwd=cwd, env=env, timeout=60)


def one_json_object(text: str) -> dict[str, Any]:
    """stdout holds exactly one JSON object and nothing else."""
    stripped = text.strip()
    obj, end = json.JSONDecoder().raw_decode(stripped)
    assert end == len(stripped), f"more than one JSON value on stdout: {stripped[end:end + 80]!r}"
    assert isinstance(obj, dict)
    return obj


# --- render ----------------------------------------------------------------------------------------------------------

def test_render_prints_one_valid_request(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["render", str(EXAMPLES / "xgboost.yaml"), "--config", str(config_file)], capsys)
    assert (code, err) == (0, "")
    request = one_json_object(out)
    S.assert_valid_request(request)
    assert request["TrainingJobName"] == "examples-development-xgboost-regression-n0-0"
    assert request["AlgorithmSpecification"]["TrainingImage"] == US_URI
    assert request["HyperParameters"] == {"num_round": "20", "objective": "reg:squarederror", "max_depth": "4",
                                          "eta": "0.3"}
    assert [c["ChannelName"] for c in request["InputDataConfig"]] == ["train", "validation"]
    assert request["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600}


def test_render_with_a_region(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["render", str(EXAMPLES / "xgboost.yaml"), "--config", str(config_file),
                        "--region", "cn-north-1"], capsys)
    assert code == 0
    assert one_json_object(out)["AlgorithmSpecification"]["TrainingImage"] == CN_URI


def _secret_task(tmp_path: Path) -> Path:
    task = S.custom_task(container={"image": S.IMAGE, "env": {"API_TOKEN": "tok-3f9a1c", "LEVEL": "debug"}})
    path = tmp_path / "secret.json"
    path.write_text(json.dumps(task), encoding="utf-8")
    return path


def test_render_masks_environment_values(tmp_path: Path, config_file: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["render", str(_secret_task(tmp_path)), "--config", str(config_file)], capsys)
    assert code == 0
    assert "tok-3f9a1c" not in out and "tok-3f9a1c" not in err and "debug" not in out
    request = one_json_object(out)
    assert request["Environment"] == {"API_TOKEN": "****", "LEVEL": "****"}


def test_render_show_secrets(tmp_path: Path, config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["render", str(_secret_task(tmp_path)), "--config", str(config_file), "--show-secrets"],
                       capsys)
    assert code == 0
    request = one_json_object(out)
    S.assert_valid_request(request)
    assert request["Environment"] == {"API_TOKEN": "tok-3f9a1c", "LEVEL": "debug"}


def test_render_masks_the_example_environment(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["render", str(EXAMPLES / "custom-mpi.yaml"), "--config", str(config_file)], capsys)
    assert code == 0
    request = one_json_object(out)
    assert request["Environment"] == {"LOG_LEVEL": "****"}
    assert request["HyperParameters"]["sagemaker_mpi_num_of_processes_per_host"] == "1"  # ml.c5.xlarge: one rank


def test_render_of_a_bad_task_prints_nothing_on_stdout(tmp_path: Path, config_file: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(json.dumps(S.custom_task(job_name="bad_name!")), encoding="utf-8")
    code, out, err = run(["render", str(path), "--config", str(config_file)], capsys)
    assert (code, out) == (2, "")
    assert err.splitlines()[0] == "error: 1 problem found:"
    assert err.splitlines()[1] == (
        "  job_name: 'bad_name!' contains '_' and '!', which SageMaker's TrainingJobName does not allow (Member must "
        "satisfy regular expression pattern: [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}) (request field TrainingJobName)")


# --- validate --------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("example", EXAMPLE_FILES, ids=lambda p: p.name)
def test_validate_each_example(example: Path, config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["validate", str(example), "--config", str(config_file)], capsys)
    assert (code, err) == (0, "")
    assert out.startswith(f"{example}: valid sagemaker_")
    assert "region us-east-1" in out


def test_there_are_examples_of_every_task_type() -> None:
    kinds = {p.read_text(encoding="utf-8").split("task_type: ")[1].split()[0] for p in EXAMPLE_FILES}
    assert kinds == {"sagemaker_training_job_task", "sagemaker_custom_training_job_task",
                     "sagemaker_hyperparameter_tuning_job_task"}


def test_validate_reports_every_problem(tmp_path: Path, config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.json"
    task = S.custom_task(job_name="bad_name!", output_prefix="gs://b/o")
    path.write_text(json.dumps(task), encoding="utf-8")
    code, out, err = run(["validate", str(path), "--config", str(config_file)], capsys)
    assert (code, out) == (2, "")
    lines = err.splitlines()
    assert lines[0] == "error: 2 problems found:"
    assert sorted(line.split(":")[0].strip() for line in lines[1:]) == ["job_name", "output_prefix"]


def test_validate_missing_file(tmp_path: Path, config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["validate", str(tmp_path / "nope.yaml"), "--config", str(config_file)], capsys)
    assert (code, out) == (2, "")
    assert f"{tmp_path / 'nope.yaml'}: no such task file" in err


def test_a_bad_config_is_an_input_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("backend: local\nretry: {atempts: 3}\n", encoding="utf-8")
    code, out, err = run(["validate", str(EXAMPLES / "xgboost.yaml"), "--config", str(config)], capsys)
    assert (code, out) == (2, "")
    assert "retry.atempts: unknown field (did you mean 'attempts'?)" in err


def test_the_config_comes_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "env.yaml"
    config.write_text("region: cn-north-1\n", encoding="utf-8")
    monkeypatch.setenv("SAGEMAKER_PLUGIN_CONFIG", str(config))
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(["render", str(EXAMPLES / "xgboost.yaml")], capsys)
    assert code == 0
    assert one_json_object(out)["AlgorithmSpecification"]["TrainingImage"] == CN_URI


def test_the_config_comes_from_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "config.yaml").write_text("backend: aws\nregion: cn-north-1\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    code, out, err = run(["validate", str(EXAMPLES / "xgboost.yaml")], capsys)
    assert (code, out) == (2, "")  # aws backend: no role, no output prefix, local inputs
    problem_paths = {line.split(":")[0].strip() for line in err.splitlines()[1:]}
    assert problem_paths == {"role_arn", "output_prefix", "inputs.train", "inputs.validation"}


# --- images ----------------------------------------------------------------------------------------------------------

def test_images_china(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["images", "--region", "cn-north-1", "--version", "1.7-1", "--config", str(config_file)],
                         capsys)
    assert (code, err) == (0, "")
    rows = [line.split() for line in out.strip().splitlines()]
    assert rows == [["ALGORITHM", "VERSION", "REGION", "URI"], ["xgboost", "1.7-1", "cn-north-1", CN_URI]]


def test_images_json(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["images", "--region", "cn-north-1", "--version", "1.7-1", "--json", "--config",
                        str(config_file)], capsys)
    assert code == 0
    assert [json.loads(line) for line in out.splitlines()] == [
        {"algorithm": "xgboost", "version": "1.7-1", "region": "cn-north-1", "uri": CN_URI, "legacy": False}]


def test_images_unknown_region_lists_the_known_ones(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["images", "--region", "mars-1", "--config", str(config_file)], capsys)
    assert (code, out) == (2, "")
    assert "mars-1" in err
    for region in ("us-east-1", "cn-north-1", "us-gov-west-1", "eu-west-1"):
        assert region in err


def test_images_unknown_version(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["images", "--version", "9.9-9", "--algorithm", "xgboost", "--config", str(config_file)],
                         capsys)
    assert (code, out) == (2, "")
    assert "9.9-9" in err and "1.7-1" in err


@pytest.mark.parametrize("argv", [
    [], ["bogus"], ["validate"], ["render"], ["validate", "a.yaml", "--no-such-option"], ["images", "--region"],
])
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(argv, capsys)
    assert code == 2
    assert "usage: sagemaker-plugin" in err
    assert "Traceback" not in err + out


# --- the real console script -----------------------------------------------------------------------------------------

def test_script_render(tmp_path: Path, config_file: Path) -> None:
    done = run_script(["render", str(EXAMPLES / "xgboost.yaml"), "--config", str(config_file)], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    request = one_json_object(done.stdout)
    S.assert_valid_request(request)
    assert request["TrainingJobName"] == "examples-development-xgboost-regression-n0-0"


def test_script_images_china(tmp_path: Path, config_file: Path) -> None:
    done = run_script(["images", "--region", "cn-north-1", "--version", "1.7-1", "--config", str(config_file)],
                      tmp_path)
    assert done.returncode == 0 and "Traceback" not in done.stderr
    assert CN_URI in done.stdout


def test_script_images_unknown_region(tmp_path: Path) -> None:
    done = run_script(["images", "--region", "mars-1"], tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stdout == ""
    assert "us-east-1" in done.stderr


@pytest.mark.parametrize("argv", [["bogus"], ["validate"]])
def test_script_usage_errors(tmp_path: Path, argv: list[str]) -> None:
    done = run_script(argv, tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "usage: sagemaker-plugin" in done.stderr


def test_script_validate_example_from_another_directory(tmp_path: Path, config_file: Path) -> None:
    """Relative inputs are relative to the task file, not to the working directory."""
    done = run_script(["validate", str(EXAMPLES / "custom-native.yaml"), "--config", str(config_file)], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "valid sagemaker_custom_training_job_task" in done.stdout
