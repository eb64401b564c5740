"""End to end, the edit-and-run-again loop (issue 21): a job name is taken for good, so `run` of an edited task under
the same execution identity is refused, naming `--new-attempt`, the one flag that runs it as the next free attempt;
and every link and command `run` prints still works after the run has ended, also when `run` started its own local
SageMaker (no endpoint named: those commands start their own on the same data folder).

The real console script in subprocesses, with the no-AWS helpers of cli_e2e.py (tests/support). The tests whose
commands must find an ended embedded run's job need the local SageMaker to keep its jobs in the data folder.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

import cli_e2e as E
from cli_in_process import cli_here

pytestmark = pytest.mark.timeout(180)

FLAG = "--new-attempt"
#: a local SageMaker started by the command for itself: its address, dead once the command has exited
LOOPBACK = re.compile(r"127\.0\.0\.1|localhost|SAGEMAKER_PLUGIN_ENDPOINT_URL")


#: the served jobs' timeline: ~1.3 s a job (time_scale 10); nothing here depends on how long a job takes
SHORT_TIMELINE = {**E.SERVED_TIMELINE, "Training": 10}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A served local SageMaker whose jobs take ~1.3 s (it answers ResourceInUse for a taken name)."""
    with E.serving(tmp_path_factory.mktemp("served"), timeline=SHORT_TIMELINE) as server:
        yield server


def edit(data: dict[str, Any]) -> None:
    data["inputs"]["static_hyperparameters"]["eta"] = 0.1


def printed_command(stderr: str) -> list[str]:
    """The command line the refusal names (between backticks), as argv with the console script's path."""
    found = re.search(r"`(sagemaker-plugin run [^`]*)`", stderr)
    assert found, stderr
    words = shlex.split(found.group(1))
    return [str(E.SCRIPT), *words[1:]]


def run_printed(argv: list[str], cwd: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*argv, *extra], capture_output=True, text=True, cwd=cwd, env=E.cli_env(cwd), timeout=120)


def test_an_edited_task_is_refused_naming_the_flag_which_runs_it_as_the_next_attempt(served: Any) -> None:
    identity = E.unique("edit")
    task = E.write_task(served.work, identity)
    first = E.cli(["run", task, "--json", "--config", served.config], served.work)
    assert first.returncode == 0, first.stderr

    edited = E.write_task(served.work, identity, change=edit)  # the same file, edited
    refused = cli_here(["run", edited, "--config", served.config], served.work)
    assert (refused.returncode, refused.stdout) == (2, ""), refused.stderr
    E.assert_no_traceback(refused.stderr)
    job = E.expected_job(identity)
    assert f"execution: a different training job named '{job}' already exists" in refused.stderr
    argv = printed_command(refused.stderr)
    assert argv[1:] == ["run", str(edited), "--config", str(served.config), FLAG]

    again = run_printed(argv, served.work, "--json")  # the command the refusal gave, as given
    assert again.returncode == 0, again.stderr
    body = E.last_json(again.stdout)
    assert body["job_name"] == job.removesuffix("-0") + "-1"
    assert f"{FLAG}: running as execution.retry_attempt 1 (attempt 0 holds other versions of this task)" \
        in again.stderr
    assert E.describe(served, body["job_name"])["HyperParameters"]["eta"] == "0.1"
    assert E.describe(served, job)["HyperParameters"]["eta"] != "0.1", "the first attempt's job is untouched"

    # Once more: this version's job is attempt 1's, taken up again rather than made anew.
    third = run_printed(argv, served.work, "--json")
    assert third.returncode == 0, third.stderr
    assert E.last_json(third.stdout)["job_name"] == body["job_name"]
    assert "(adopted: this task's job already existed)" in third.stderr
    assert sorted(s["TrainingJobName"] for s in E.jobs_named(served, identity)) == [job, body["job_name"]]


def test_a_given_job_name_is_refused_saying_to_change_it(served: Any) -> None:
    identity = E.unique("named")
    name = f"{identity}-mine"

    def named(data: dict[str, Any]) -> None:
        data["job_name"] = name

    assert E.cli(["run", E.write_task(served.work, identity, change=named), "--config", served.config],
                 served.work).returncode == 0

    def named_and_edited(data: dict[str, Any]) -> None:
        named(data)
        edit(data)

    task = E.write_task(served.work, identity, change=named_and_edited)
    for extra in ([], [FLAG]):
        refused = cli_here(["run", task, "--config", served.config, *extra], served.work)
        assert refused.returncode == 2, refused.stderr
        E.assert_no_traceback(refused.stderr)
        assert "job_name: " in refused.stderr and "change job_name" in refused.stderr, refused.stderr
    assert [s["TrainingJobName"] for s in E.jobs_named(served, identity)] == [name]


def tuning_task(folder: Path, identity: str, eta_max: float) -> Path:
    """examples/tuning.yaml, two trials at once, execution name `identity`."""
    data = yaml.safe_load((folder / "tuning.yaml").read_text(encoding="utf-8"))
    data["execution"]["name"] = identity
    data["hyperparameter_tuning_job"].update(max_number_of_training_jobs=2, max_parallel_training_jobs=2)
    data["tuning_config"]["hyperparameter_ranges"]["parameter_range_map"]["eta"]["continuous_parameter_range"][
        "max_value"] = eta_max
    path = folder / f"{identity}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def test_an_edited_tuning_task_takes_the_next_attempt_too(served: Any) -> None:
    identity = E.unique("tune")
    first = E.cli(["run", tuning_task(served.work, identity, 0.5), "--json", "--config", served.config], served.work)
    assert first.returncode == 0, first.stderr
    name = E.last_json(first.stdout)["job_name"]

    edited = tuning_task(served.work, identity, 0.4)
    refused = cli_here(["run", edited, "--config", served.config], served.work)
    assert refused.returncode == 2, refused.stderr
    assert f"a different tuning job named '{name}' already exists" in refused.stderr
    again = run_printed(printed_command(refused.stderr), served.work, "--json")
    assert again.returncode == 0, again.stderr
    body = E.last_json(again.stdout)
    assert body["phase"] == "SUCCEEDED" and body["job_name"] != name and len(body["job_name"]) <= 32
    assert f"{FLAG}: running as execution.retry_attempt 1" in again.stderr
    tags = served.aws.sagemaker.list_tags(ResourceArn=served.aws.sagemaker.describe_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=body["job_name"])["HyperParameterTuningJobArn"])["Tags"]
    assert {t["Key"]: t["Value"] for t in tags}["sagemaker-plugin:retry-attempt"] == "1"


# --- a run with its own local SageMaker ------------------------------------------------------------------------------


def embedded_run(tmp_path: Path, *extra: str) -> tuple[Path, Path, subprocess.CompletedProcess[str]]:
    """`run` of the example with no endpoint named (a local SageMaker of its own), simulated on a short timeline."""
    work = E.copy_examples(tmp_path / "examples")
    config = E.write_config(tmp_path / "config.yaml", local={"time_scale": 10})
    return work, config, E.cli(["run", work / "xgboost.yaml", "--config", config, *extra], work, timeout=120)


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, subprocess.CompletedProcess[str]]:
    """One plain `embedded_run`, for the tests that use its printed commands and run its task again: (its examples
    folder, its config, the run)."""
    return embedded_run(tmp_path_factory.mktemp("embedded"))


def lasting_commands(text: str) -> dict[str, str]:
    """`run`'s closing `Name (local SageMaker): command` lines."""
    return dict(re.findall(r"^(\w+) \(local SageMaker\): (.*)$", text, re.MULTILINE))


def test_an_embedded_run_prints_no_link_to_its_gone_local_sagemaker(tmp_path: Path) -> None:
    _, config, result = embedded_run(tmp_path, "--json")
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

    status asks for a tuning job too only if the name fits one: a long name and a short one."""
    config = E.write_config(tmp_path / "config.yaml")
    long_name = "some-job-named-longer-than-a-tuning-job-may-be"
    for command, job in [*((command, long_name) for command in ("status", "stop", "logs", "metrics")),
                         ("status", "some-job")]:
        result = E.cli([command, job, "--config", config], tmp_path)
        assert (result.returncode, result.stdout) == (2, ""), (command, result.stderr)
        E.assert_no_traceback(result.stderr)
        assert f"JOB_NAME: no training job named '{job}' in us-east-1 (the data folder " \
               f"{tmp_path / '.local-data' / 'sagemaker-plugin'} of a local SageMaker of this command's own" \
               in result.stderr, (command, result.stderr)


def test_after_an_embedded_run_ended_its_printed_commands_work(
        embedded: tuple[Path, Path, subprocess.CompletedProcess[str]], tmp_path: Path) -> None:
    work, _, result = embedded
    assert result.returncode == 0, result.stderr
    commands = lasting_commands(result.stdout)
    assert set(commands) == {"Logs", "Status", "Metrics"}
    elsewhere = tmp_path / "elsewhere"  # not the run's folder
    elsewhere.mkdir()
    env = {**E.cli_env(work), "PATH": f"{E.SCRIPT.parent}:{E.cli_env(work)['PATH']}"}  # the same data folder
    shown = {name: subprocess.run(command, shell=True, capture_output=True, text=True, cwd=elsewhere, env=env,
                                  timeout=60) for name, command in commands.items()}
    for name, done in shown.items():
        assert done.returncode == 0, (name, done.stderr)
        E.assert_no_traceback(done.stderr)
    assert shown["Logs"].stdout.splitlines() == E.log_lines(result.stdout) != []
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
    refused = E.cli(["run", task, "--config", config], work, timeout=120)
    assert refused.returncode == 2, refused.stderr
    E.assert_no_traceback(refused.stderr)
    assert FLAG in refused.stderr
    again = run_printed(printed_command(refused.stderr), work, "--json")
    assert again.returncode == 0, again.stderr
    assert E.last_json(again.stdout)["job_name"] == "examples-development-xgboost-regression-n0-1"
