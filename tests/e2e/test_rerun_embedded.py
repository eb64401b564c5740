"""End to end, the edit-and-run-again loop (issue 21) when `run` started its own local SageMaker (no endpoint named:
the commands it prints start their own on the same data folder): every link and command `run` prints still works after
the run has ended, and an edited task is refused, naming `--new-attempt`, which runs it as the next attempt. Split off
test_rerun.py (the same loop against a served local SageMaker), so that the test workers run them side by side.

The real console script in subprocesses, with the no-AWS helpers of cli_e2e.py (tests/support). The tests whose
commands must find an ended embedded run's job need the local SageMaker to keep its jobs in the data folder.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

import cli_e2e as E
from cli_in_process import cli_here
from rerun_e2e import FLAG, LOOPBACK, edit, printed_command, run_printed

pytestmark = pytest.mark.timeout(180)


# --- a run with its own local SageMaker ------------------------------------------------------------------------------


def embedded_run(tmp_path: Path, *extra: str) -> tuple[Path, Path, subprocess.CompletedProcess[str]]:
    """`run` of the example with no endpoint named (a local SageMaker of its own), simulated on a short timeline."""
    work = E.copy_examples(tmp_path / "examples")
    config = E.write_config(tmp_path / "config.yaml", local={"time_scale": 10})
    return work, config, E.cli(["run", work / "xgboost.yaml", "--config", config, *extra], work, timeout=120)


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, subprocess.CompletedProcess[str]]:
    """One `embedded_run --json` for the tests that read what it printed, use its printed commands and run its task
    again: (its examples folder, its config, the run). The plain run's closing lines: the next attempt's, below."""
    return embedded_run(tmp_path_factory.mktemp("embedded"), "--json")


def lasting_commands(text: str) -> dict[str, str]:
    """`run`'s closing `Name (local SageMaker): command` lines."""
    return dict(re.findall(r"^(\w+) \(local SageMaker\): (.*)$", text, re.MULTILINE))


def test_an_embedded_run_prints_no_link_to_its_gone_local_sagemaker(
        embedded: tuple[Path, Path, subprocess.CompletedProcess[str]]) -> None:
    _, config, result = embedded
    assert result.returncode == 0, result.stderr
    job = "examples-development-xgboost-regression-n0-0"
    # While it ran: its page, said to last as long as the run.
    page = [line for line in result.stderr.splitlines() if LOOPBACK.search(line)]
    assert page[0].startswith(f"training job {job} on http://127.0.0.1:")
    assert re.fullmatch(rf"Job page \(while this run lasts\): http://127\.0\.0\.1:\d+/\S*{job}\S*", page[1]), page
    assert len(page) == 2, "no other line names the local SageMaker that is gone once `run` exits"
    # After it: commands that need no endpoint, with the config that names the data folder.
    tail = f"--region us-east-1 --config {config}"
    expected = {"Logs": f"sagemaker-plugin logs {job} {tail}", "Status": f"sagemaker-plugin status {job} {tail}",
                "Metrics": f"sagemaker-plugin metrics {job} {tail}"}
    assert lasting_commands(result.stderr) == expected
    links = E.last_json(result.stdout)["log_links"]
    assert {link["name"].split(" ")[0]: link["uri"] for link in links} == expected
    assert not LOOPBACK.search(json.dumps(links))


def test_status_logs_and_metrics_without_an_endpoint_look_in_the_data_folder(tmp_path: Path) -> None:
    """No endpoint named: the command's own local SageMaker answers from the data folder (a missing job: exit 2).

    status asks for a tuning job too only if the name fits one: a long name and a short one. The console script for the
    first; the others in process (each still starts a local SageMaker of its own, in this process, for its duration).
    """
    config = E.write_config(tmp_path / "config.yaml")
    long_name = "some-job-named-longer-than-a-tuning-job-may-be"
    asked = [*((command, long_name) for command in ("status", "stop", "logs", "metrics")), ("status", "some-job")]
    for n, (command, job) in enumerate(asked):
        result = (E.cli if n == 0 else cli_here)([command, job, "--config", config], tmp_path)
        assert (result.returncode, result.stdout) == (2, ""), (command, result.stderr)
        E.assert_no_traceback(result.stderr)
        assert f"JOB_NAME: no training job named '{job}' in us-east-1 (the data folder " \
               f"{tmp_path / '.local-data' / 'sagemaker-plugin'} of a local SageMaker of this command's own" \
               in result.stderr, (command, result.stderr)


def test_after_an_embedded_run_ended_its_printed_commands_work(
        embedded: tuple[Path, Path, subprocess.CompletedProcess[str]], tmp_path: Path) -> None:
    work, _, result = embedded
    assert result.returncode == 0, result.stderr
    commands = lasting_commands(result.stderr)  # --json: what a person reads is on stderr
    assert set(commands) == {"Logs", "Status", "Metrics"}
    elsewhere = tmp_path / "elsewhere"  # not the run's folder
    elsewhere.mkdir()
    env = {**E.cli_env(work), "PATH": f"{E.SCRIPT.parent}:{E.cli_env(work)['PATH']}"}  # the same data folder
    shown = {name: subprocess.run(command, shell=True, capture_output=True, text=True, cwd=elsewhere, env=env,
                                  timeout=60) for name, command in commands.items()}
    for name, done in shown.items():
        assert done.returncode == 0, (name, done.stderr)
        E.assert_no_traceback(done.stderr)
    assert shown["Logs"].stdout.splitlines() == E.log_lines(result.stderr) != []
    assert "examples-development-xgboost-regression-n0-0: SUCCEEDED (Completed)" in shown["Status"].stdout
    assert re.search(r"^validation:rmse\s+[0-9.]+", shown["Metrics"].stdout, re.MULTILINE), shown["Metrics"].stdout


def test_an_embedded_rerun_of_an_edited_task_is_refused_then_runs_as_the_next_attempt(
        embedded: tuple[Path, Path, subprocess.CompletedProcess[str]]) -> None:
    work, config, first = embedded
    assert first.returncode == 0, first.stderr
    task = work / "xgboost.yaml"
    data = yaml.safe_load(task.read_text(encoding="utf-8"))
    edit(data)
    task.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    refused = cli_here(["run", task, "--config", config], work)  # in process: its answer is the claim
    assert refused.returncode == 2, refused.stderr
    E.assert_no_traceback(refused.stderr)
    assert FLAG in refused.stderr
    again = run_printed(printed_command(refused.stderr), work)  # plain: the closing lines on stdout
    assert again.returncode == 0, again.stderr
    job = "examples-development-xgboost-regression-n0-1"
    assert E.job_line(again.stdout) == job
    assert f"{job}: SUCCEEDED (Completed)" in again.stdout
    tail = f"--region us-east-1 --config {config}"
    assert lasting_commands(again.stdout) == {"Logs": f"sagemaker-plugin logs {job} {tail}",
                                              "Status": f"sagemaker-plugin status {job} {tail}",
                                              "Metrics": f"sagemaker-plugin metrics {job} {tail}"}
