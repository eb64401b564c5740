"""End to end: `sagemaker-plugin list` and the exit codes and messages of bad input (issue 4), against a local SageMaker
(split off test_cli.py, so that the test workers run them side by side). The console script in subprocesses, and the
commands whose answer is the claim also in process (tests/support/cli_in_process.py); the helpers and the no-AWS
environment: tests/support/cli_e2e.py; the shared server: tests/e2e/conftest.py.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from cli_e2e import (
    REPO,
    Served,
    assert_no_traceback,
    cli,
    copy_examples,
    describe,
    jobs_named,
    unique,
    write_config,
    write_task,
)
from cli_in_process import cli_here

pytestmark = pytest.mark.timeout(120)


# --- list -----------------------------------------------------------------------------------------------------------

def _listed(result: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


@pytest.mark.timeout(300)  # a dozen commands (all but one in process) on a loaded 2-core machine
def test_list_shows_the_jobs_newest_first_with_the_filters_of_list_training_jobs(served: Served) -> None:
    tag = uuid.uuid4().hex[:10]
    names = [f"lst-{tag}-ok", f"lst-{tag}-stopped", f"x-e2e-srvfail-{tag}-failed"]  # created in this order
    for name in names:
        served.aws.sagemaker.create_training_job(**served.aws.training_request(name))
    served.aws.sagemaker.stop_training_job(TrainingJobName=names[1])
    for name in names:
        served.aws.wait(name, timeout=60)
    config = ["--config", served.config]
    newest_first = [names[2], names[1], names[0]]

    table = cli(["list", "--name-contains", tag, *config], served.work)
    assert (table.returncode, table.stderr) == (0, ""), table.stderr
    lines = table.stdout.splitlines()
    assert re.fullmatch(r"NAME +STATUS +CREATED +DURATION", lines[0])
    row = re.compile(r"(\S+) +(\S+) +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d +(\d+\.\ds|\d+m\d\ds)")
    rows = [row.fullmatch(line) for line in lines[1:]]
    assert all(rows), lines
    assert [(found.group(1), found.group(2)) for found in rows if found] == [
        (names[2], "Failed"), (names[1], "Stopped"), (names[0], "Completed")]

    every = _listed(cli_here(["list", "--name-contains", tag, "--json", *config], served.work))
    assert [job["name"] for job in every] == newest_first
    for job in every:
        described = describe(served, job["name"])
        assert job["kind"] == "training job"
        assert (job["status"], job["arn"]) == (described["TrainingJobStatus"], described["TrainingJobArn"])
        created, ended = datetime.fromisoformat(job["created"]), datetime.fromisoformat(job["ended"])
        assert created == described["CreationTime"] and ended == described["TrainingEndTime"]
        assert job["duration_seconds"] == pytest.approx((ended - created).total_seconds())
    assert [job["created"] for job in every] == sorted((job["created"] for job in every), reverse=True)

    for status, expected in (("Completed", [names[0]]), ("stopped", [names[1]]), ("FAILED", [names[2]]),
                             ("InProgress", [])):
        shown = _listed(cli_here(["list", "--name-contains", tag, "--status", status, "--json", *config], served.work))
        assert [job["name"] for job in shown] == expected, status

    two = cli_here(["list", "--name-contains", tag, "--max", "2", *config], served.work)
    assert [line.split()[0] for line in two.stdout.splitlines()[1:3]] == newest_first[:2]
    assert two.stdout.splitlines()[3:] == ["(the newest 2; --max N shows more)"]
    assert [job["name"] for job in _listed(cli_here(["list", "--name-contains", tag, "--max", "2", "--json", *config],
                                                served.work))] == newest_first[:2]
    page = (REPO / "docs" / "metrics-and-logs.md").read_text(encoding="utf-8")  # its sample has this run's form
    sample = re.search(r"^\$ sagemaker-plugin list --max 3\n(.*?)^```", page, re.MULTILINE | re.DOTALL)
    assert sample is not None
    shown = sample.group(1).splitlines()
    assert [len(shown), shown[0].split(), shown[-1]] == [5, ["NAME", "STATUS", "CREATED", "DURATION"],
                                                         "(the newest 3; --max N shows more)"]
    assert all(row.fullmatch(line) for line in shown[1:-1])
    assert [shown[0].index(word) for word in ("STATUS", "CREATED")] == [len(shown[1].split()[0]) + 2,
                                                                        shown[1].index(shown[1].split()[2])]

    assert [job["name"] for job in _listed(cli_here(["list", "--name-contains", tag, "--since", "1h", "--json",
                                                *config], served.work))] == newest_first
    after_all = every[0]["created"]
    assert _listed(cli_here(["list", "--name-contains", tag, "--since", after_all, "--json", *config],
                            served.work)) == []
    none = cli_here(["list", "--name-contains", tag, "--since", after_all, *config], served.work)
    assert (none.returncode, none.stdout) == (0, "no training jobs match\n")

    tuning = cli_here(["list", "--tuning", "--name-contains", tag, "--status", "DeleteFailed", *config], served.work)
    assert (tuning.returncode, tuning.stdout, tuning.stderr) == (0, "no tuning jobs match\n", "")


@pytest.mark.parametrize(("flags", "said"), [
    (["--status", "Complete"], "  --status: 'Complete' is not one of InProgress, Completed, Failed, Stopping, "
     "Stopped, Deleting; did you mean 'Completed'?"),
    (["--status", "DeleteFailed"], "  --status: 'DeleteFailed' is not one of InProgress, Completed, Failed, Stopping, "
     "Stopped, Deleting"),  # a tuning job's status only
    (["--name-contains", "my_job"], "  --name-contains: 'my_job' contains '_', which SageMaker's NameContains does not "
     "allow (Member must satisfy regular expression pattern: [a-zA-Z0-9\\-]+)"),
    (["--since", "yesterday"], "  --since: must be a duration back from now (30m, 2h, 7d, 1w) or a date or time "
     "(2024-05-01, 2024-05-01T12:00, 2024-05-01T12:00Z), not 'yesterday'"),
    (["--max", "0"], "  --max: must be 1 or more, not 0"),
])
def test_list_with_a_bad_flag_exits_2_naming_it(flags: list[str], said: str, tmp_path: Path) -> None:
    """Checked before any call: no local SageMaker is needed to be told."""
    result = cli_here(["list", *flags, "--config", write_config(tmp_path / "config.yaml")], tmp_path)
    assert (result.returncode, result.stdout) == (2, ""), result.stderr
    assert result.stderr == f"error: 1 problem found:\n{said}\n"


def test_list_with_a_flag_it_cannot_read_exits_2_naming_it(tmp_path: Path) -> None:
    for flags, said in ((["--max", "many"], "argument --max: invalid int value: 'many'"),
                        (["--backend", "cloud"], "argument --backend: invalid choice: 'cloud'")):
        result = cli(["list", *flags, "--config", write_config(tmp_path / "config.yaml")], tmp_path)
        assert result.returncode == 2
        assert_no_traceback(result.stderr)
        assert said in result.stderr
# --- 9. exit codes and messages -------------------------------------------------------------------------------------

def test_run_with_an_invalid_task_exits_2_with_the_field_path(served: Served) -> None:
    identity = unique("bad")

    def change(data: dict[str, Any]) -> None:
        data["training_job"]["training_job_resource_config"]["instance_type"] = "ml.bogus.xlarge"
        data["training_job"]["training_job_resource_config"]["volume_size_in_gb"] = -5

    task = write_task(served.work, identity, change=change)
    result = cli(["run", task, "--config", served.config], served.work)
    assert result.returncode == 2
    assert_no_traceback(result.stderr)
    assert result.stdout == ""
    assert result.stderr.startswith("error: 2 problems found:\n")
    assert "  training_job.training_job_resource_config.instance_type: 'ml.bogus.xlarge' is not one of the " \
        in result.stderr
    assert " values of TrainingInstanceType; each ml.FAMILY.SIZE, FAMILY one of c4, c5, " in result.stderr
    assert "  training_job.training_job_resource_config.volume_size_in_gb: must be 0 (meaning the default) or more, " \
        "not -5" in result.stderr
    assert jobs_named(served, identity) == []

    missing = cli_here(["run", "no-such-task.yaml", "--config", served.config], served.work)
    assert (missing.returncode, missing.stdout) == (2, "")
    assert "no-such-task.yaml: no such task file" in missing.stderr
    usage = cli_here(["run", "--config", served.config], served.work)
    assert usage.returncode == 2
    assert "the following arguments are required: TASK_FILE" in usage.stderr


def typo_and_list_hyperparameter(data: dict[str, Any]) -> None:
    """Two problems: a misspelt field inside training_job and a hyperparameter that is a list."""
    resources = data["training_job"]["training_job_resource_config"]
    resources["volume_sise_in_gb"] = resources.pop("volume_size_in_gb")
    data["inputs"]["static_hyperparameters"]["num_round"] = [1]


TYPO_PROBLEMS = (
    "error: 2 problems found:\n"
    "  training_job.training_job_resource_config.volume_sise_in_gb: unknown field (did you mean 'volume_size_in_gb'?)\n"
    "  inputs.static_hyperparameters.num_round: must be a string, number or boolean, not a list\n"
)


def test_run_reports_a_typo_and_a_bad_hyperparameter_together(served: Served) -> None:
    task = write_task(served.work, unique("typo"), change=typo_and_list_hyperparameter)
    result = cli(["run", task, "--config", served.config], served.work)
    assert (result.returncode, result.stdout, result.stderr) == (2, "", TYPO_PROBLEMS)


@pytest.mark.parametrize("command", ["validate", "render"])
def test_validate_reports_only_the_real_problems(served: Served, command: str) -> None:
    task = write_task(served.work, unique("typo"), change=typo_and_list_hyperparameter)
    result = cli_here([command, task, "--config", served.config], served.work)
    assert result.returncode == 2
    assert_no_traceback(result.stderr)
    assert "CUSTOM" not in result.stderr and "container.image" not in result.stderr, result.stderr
    assert result.stderr == TYPO_PROBLEMS


def test_status_stop_and_logs_of_a_missing_job_exit_2_naming_it(served: Served) -> None:
    """A wrong job name is the user's input, not an AWS failure worth retrying: exit 2, the job named."""
    job = unique("missing")
    for command in ("status", "stop", "logs"):
        result = (cli if command == "status" else cli_here)([command, job, "--config", served.config], served.work)
        assert (result.returncode, result.stdout) == (2, ""), command
        assert_no_traceback(result.stderr)
        assert f"JOB_NAME: no training job named '{job}' in us-east-1" in result.stderr, result.stderr


def test_aws_backend_refuses_local_inputs_before_any_call(tmp_path: Path) -> None:
    work = copy_examples(tmp_path / "examples")
    config = write_config(tmp_path / "config.yaml", role_arn="arn:aws:iam::123456789012:role/SageMakerRole",
                          output_prefix="s3://e2e-bucket/outputs")
    result = cli_here(["run", work / "xgboost.yaml", "--backend", "aws", "--region", "us-east-1", "--config", config],
                      work)
    assert result.returncode == 2
    assert_no_traceback(result.stderr)
    for channel in ("train", "validation"):
        assert re.search(rf"^  inputs\.{channel}: \S+ is a local path; the aws backend needs an S3 URI",
                         result.stderr, re.MULTILINE), result.stderr


def test_aws_backend_without_credentials_exits_3_with_advice(tmp_path: Path) -> None:
    """Valid for AWS, but no credentials anywhere; AWS_ENDPOINT_URL points at a closed port should anything call."""
    work = copy_examples(tmp_path / "examples")
    config = write_config(tmp_path / "config.yaml", role_arn="arn:aws:iam::123456789012:role/SageMakerRole",
                          output_prefix="s3://e2e-bucket/outputs", retry={"attempts": 2, "deadline_seconds": 2})

    def change(data: dict[str, Any]) -> None:
        data["inputs"]["train"] = "s3://e2e-bucket/train/"
        data["inputs"]["validation"] = "s3://e2e-bucket/validation/"

    task = write_task(work, unique("nocreds"), change=change)
    result = cli(["run", task, "--backend", "aws", "--region", "us-east-1", "--config", config], work, timeout=30)
    assert result.returncode == 3, result.stderr
    assert_no_traceback(result.stderr)
    assert "AWS credentials were not found" in result.stderr
    assert "aws configure" in result.stderr


def test_unreachable_local_endpoint_exits_3_quickly(tmp_path: Path) -> None:
    work = copy_examples(tmp_path / "examples")
    with socket.socket() as closed:  # bound, never listening: connections are refused, nobody else gets the port
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}"
        config = write_config(tmp_path / "config.yaml", local={"endpoint_url": url},
                              retry={"attempts": 2, "backoff_seconds": 0.05, "deadline_seconds": 1})
        started_at = time.monotonic()
        result = cli(["run", work / "xgboost.yaml", "--config", config], work, timeout=30)
        elapsed = time.monotonic() - started_at
        status = cli_here(["status", "some-job", "--config", config], work, timeout=30)
    assert result.returncode == 3, result.stderr
    assert_no_traceback(result.stderr)
    assert f"could not connect to the endpoint {url}" in result.stderr
    assert "the local SageMaker is running" in result.stderr
    assert elapsed < 15
    assert status.returncode == 3
    assert "DescribeTrainingJob failed after 2 attempts" in status.stderr
