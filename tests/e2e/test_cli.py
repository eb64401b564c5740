"""End to end: the real `sagemaker-plugin` console script in subprocesses, against local SageMakers (issue 4): runs,
their failures and outputs, listing, logs, and the exit codes and messages of bad input. The helpers and the no-AWS
environment: tests/support/cli_e2e.py; the shared servers: tests/e2e/conftest.py. test_cli_processes.py (signals, `local
serve`, commands from other processes) and test_cli_quotas.py (rate and instance quotas) are split off so that the
test workers run them side by side.
"""

from __future__ import annotations

import gzip
import io
import json
import re
import socket
import subprocess
import tarfile
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from cli_e2e import (
    REPO,
    SCRIPT,
    SERVED_FAILURE,
    SERVED_TIME_SCALE,
    SERVED_TIMELINE,
    Served,
    assert_no_traceback,
    assert_same_logs,
    cli,
    cli_env,
    cloudwatch_events,
    copy_examples,
    describe,
    expected_job,
    job_line,
    jobs_named,
    last_json,
    log_lines,
    statuses,
    unique,
    write_config,
    write_task,
)
from cli_in_process import cli_here

pytestmark = pytest.mark.timeout(120)


@dataclass(frozen=True)
class XgbRun:
    identity: str
    task: Path
    result: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def xgb_run(served: Served) -> XgbRun:
    """`run --json` of the XGBoost example on the shared server, once for the tests that look at it and run it again."""
    identity = unique("xgb")

    def with_metric_definitions(data: dict[str, Any]) -> None:  # as flytekit's old tasks wrote them: left out
        data["training_job"]["algorithm_specification"]["metric_definitions"] = [
            {"name": "train:rmse", "regex": r"train-rmse:([0-9\.]+)"}]

    task = write_task(served.work, identity, change=with_metric_definitions)
    return XgbRun(identity, task, cli(["run", task, "--json", "--config", served.config], served.work))


def test_xgboost_run_succeeds_with_metrics_logs_and_a_model_in_s3(served: Served, xgb_run: XgbRun) -> None:
    identity, result = xgb_run.identity, xgb_run.result
    assert result.returncode == 0, result.stderr
    assert_no_traceback(result.stderr)
    assert result.stderr.startswith("warning: training_job.algorithm_specification.metric_definitions: left out of "
                                    "the request: SageMaker refuses metric definitions for its built-in algorithms")

    job = expected_job(identity)
    body = last_json(result.stdout)
    assert len(result.stdout.strip().splitlines()) == 1, "with --json, progress goes to stderr"
    assert (body["phase"], body["message"], body["job_name"]) == ("SUCCEEDED", "Completed", job)
    outputs = body["outputs"]
    assert set(outputs["metrics"]) == {"train:rmse", "validation:rmse"}
    assert all(type(value) is float and value > 0 for value in outputs["metrics"].values())
    assert outputs["training_job_name"] == job
    assert outputs["training_job_arn"] == f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{job}"
    assert outputs["model"] == f"s3://sagemaker-plugin-local/outputs/{job}/output/model.tar.gz"
    # Timeline seconds (time_scale undone): Downloading + Training + Uploading.
    expected_seconds = SERVED_TIMELINE["Downloading"] + SERVED_TIMELINE["Training"] + SERVED_TIMELINE["Uploading"]
    assert outputs["training_seconds"] == outputs["billable_seconds"] == expected_seconds
    assert [link["name"] for link in body["log_links"]] == ["Job page (local SageMaker)", "Logs (local SageMaker)",
                                                            "Status (local SageMaker)"]
    assert all(job in link["uri"] and served.url in link["uri"] for link in body["log_links"])

    # The metrics are XGBoost's own (SageMaker's regexes for the algorithm): those of the last round in the logs.
    rounds = re.findall(r"^\[algo-1\] \[(\d+)\]#011train-rmse:([0-9.]+)#011validation-rmse:([0-9.]+)$",
                        result.stderr, re.MULTILINE)
    assert [int(r[0]) for r in rounds] == list(range(20)), "num_round 20: rounds 0..19, each once"
    assert outputs["metrics"] == {"train:rmse": float(rounds[-1][1]), "validation:rmse": float(rounds[-1][2])}
    assert_same_logs(log_lines(result.stderr), cloudwatch_events(served.aws, job), hosts=1)

    # Human progress on stderr: phases in order, transitions, the summary.
    err = result.stderr
    phases = re.findall(r"^phase (\w+)", err, re.MULTILINE)
    # INITIALIZING (Starting, Downloading: 0.2 s here) is printed if a poll lands in it, which a loaded machine may
    # not do; the transitions below are printed whatever the polls saw.
    assert phases in (["INITIALIZING", "RUNNING", "SUCCEEDED"], ["RUNNING", "SUCCEEDED"]), phases
    for status in ("Starting", "Downloading", "Training", "Uploading", "Completed"):
        assert re.search(rf"^  \d\d:\d\d:\d\d {status}\b", err, re.MULTILINE), status
    assert f"{job}: SUCCEEDED (Completed)" in err
    assert (f"training seconds {expected_seconds}, billable seconds {expected_seconds} "
            f"(local SageMaker time, {SERVED_TIME_SCALE}x the wall clock)\n") in err
    assert "\r" not in err and "\x1b" not in err, "not a terminal: plain lines, no live clock"

    # The model object exists in the local S3 and is a gzipped tar.
    bucket, key = outputs["model"][len("s3://"):].split("/", 1)
    head = served.aws.s3.head_object(Bucket=bucket, Key=key)
    assert head["ContentLength"] > 0
    body_bytes = served.aws.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(body_bytes))) as archive:
        assert archive.getnames()

    # The inputs were uploaded to the local S3 under the output prefix.
    uploaded = served.aws.s3.list_objects_v2(Bucket=bucket, Prefix=f"outputs/{job}/input/")
    keys = {item["Key"].split("/input/", 1)[1] for item in uploaded.get("Contents", [])}
    assert keys == {"train/train.csv", "validation/validation.csv"}


# --- 2. a failure injected by local.failures ------------------------------------------------------------------------

def test_run_failed_through_local_failures_exits_1_with_the_reason(served: Served) -> None:
    """The shared local SageMaker's `local.failures` rule (SERVED_FAILURE) fails the job halfway through Training."""
    reason = SERVED_FAILURE["reason"]
    identity = unique("srvfail")
    task = write_task(served.work, identity)
    result = cli(["run", task, "--json", "--config", served.config], served.work)
    assert result.returncode == 1, result.stderr
    assert_no_traceback(result.stderr)
    body = last_json(result.stdout)
    assert (body["phase"], body["message"], body["job_name"]) == ("FAILED", reason, expected_job(identity))
    assert body["outputs"] == {}
    assert f"phase FAILED: {reason}" in result.stderr
    assert f"{expected_job(identity)}: FAILED ({reason})" in result.stderr
    # It failed halfway through Training, as a real AlgorithmError: the job trained and logged first.
    assert re.search(r"^  \d\d:\d\d:\d\d Training( \(\d+\.\d s\))?: ", result.stderr, re.MULTILINE)
    assert re.search(r"^  \d\d:\d\d:\d\d Failed \(0\.0 s\): Training job failed$", result.stderr, re.MULTILINE)
    assert re.search(r"^\[algo-1\] \[0\]#011train-rmse:", result.stderr, re.MULTILINE)
    assert re.search(rf"^\[algo-1\] .*ERROR.*{re.escape(reason)}$", result.stderr, re.MULTILINE)
    assert "[algo-1] [19]#011" not in result.stderr, "it never finished its rounds"


def test_run_prints_the_final_phase_after_the_lines_that_led_to_it(served: Served) -> None:
    identity = unique("srvfail")
    task = write_task(served.work, identity)
    result = cli(["run", task, "--config", served.config], served.work)
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    final = next(i for i, line in enumerate(lines) if line.startswith("phase FAILED: AlgorithmError: diverged"))
    story = [i for i, line in enumerate(lines) if re.match(r"\[algo-\d+\] |  \d\d:\d\d:\d\d \w+", line)]
    assert story and max(story) < final, "\n".join(lines)


# --- 3. an empty train prefix -----------------------------------------------------------------------------------------

def test_run_with_an_empty_s3_train_prefix_fails_in_downloading(served: Served) -> None:
    bucket = f"e2e-data-{uuid.uuid4().hex[:8]}"
    served.aws.s3.create_bucket(Bucket=bucket)
    served.aws.s3.put_object(Bucket=bucket, Key="elsewhere/part-0.csv", Body=b"1,2,3\n")  # the bucket is not empty
    uri = f"s3://{bucket}/empty/"
    identity = unique("empty")

    def change(data: dict[str, Any]) -> None:
        data["inputs"]["train"] = uri

    task = write_task(served.work, identity, change=change)
    result = cli(["run", task, "--json", "--config", served.config], served.work)
    assert result.returncode == 1, result.stderr
    assert_no_traceback(result.stderr)
    body = last_json(result.stdout)
    assert body["phase"] == "FAILED"
    assert body["message"].startswith(f'ClientError: No S3 objects found under S3 URL "{uri}" given in input data')
    assert f"phase FAILED: ClientError: No S3 objects found under S3 URL \"{uri}\"" in result.stderr
    job = describe(served, expected_job(identity))
    assert (job["TrainingJobStatus"], job["SecondaryStatus"]) == ("Failed", "Failed")
    assert statuses(job) == ["Starting", "Downloading", "Failed"], "failed in Downloading, never trained"
    assert "[algo-" not in result.stderr, "no host ever logged"


def test_run_with_an_empty_local_folder_is_an_input_error_naming_the_field(served: Served) -> None:
    """The local backend uploads local inputs first; an empty folder is refused before any job exists (exit 2), by
    `run` and `validate` alike."""
    (served.work / "empty-folder").mkdir()
    identity = unique("emptylocal")

    def change(data: dict[str, Any]) -> None:
        data["inputs"]["train"] = "empty-folder/"

    task = write_task(served.work, identity, change=change)
    result = cli(["run", task, "--config", served.config], served.work)
    assert result.returncode == 2, result.stderr
    assert_no_traceback(result.stderr)
    assert re.search(r"^  inputs\.train: local input 'empty-folder/' holds no files to upload$", result.stderr,
                     re.MULTILINE), result.stderr
    assert jobs_named(served, identity) == []
    validate = cli_here(["validate", task, "--config", served.config], served.work)
    assert validate.returncode == 2 and "inputs.train" in validate.stderr


# --- 5. a second run of the same task adopts the job ----------------------------------------------------------------

def test_second_run_of_a_finished_task_adopts_its_job(served: Served, xgb_run: XgbRun) -> None:
    identity, task, first = xgb_run.identity, xgb_run.task, xgb_run.result
    job = expected_job(identity)
    assert first.returncode == 0, first.stderr
    created = describe(served, job)

    second = cli(["run", task, "--json", "--config", served.config], served.work)
    assert second.returncode == 0, second.stderr
    assert_no_traceback(second.stderr)
    one, two = last_json(first.stdout), last_json(second.stdout)
    assert one["job_name"] == two["job_name"] == job_line(second.stderr) == job
    assert two["phase"] == "SUCCEEDED"
    assert two["outputs"] == one["outputs"]
    assert [s["TrainingJobName"] for s in jobs_named(served, identity)] == [job]
    assert describe(served, job)["CreationTime"] == created["CreationTime"]
    assert "[algo-1] [19]#011train-rmse:" in second.stderr, "the adopted job's logs are shown again"
    assert "(adopted: this task's job already existed)" in second.stderr
    assert "adopted" not in first.stderr

    # Stopping a finished job is not an error, and changes nothing.
    stop = cli_here(["stop", job, "--config", served.config], served.work)
    assert (stop.returncode, stop.stdout) == (0, f"{job}: already Completed (SUCCEEDED); nothing to stop\n")

    # Another task under the same identity is refused: it would otherwise silently report someone else's job.
    def change(data: dict[str, Any]) -> None:
        data["inputs"]["static_hyperparameters"]["eta"] = 0.1

    other = write_task(served.work, identity, change=change, file_name=f"{identity}-other.yaml")
    refused = cli_here(["run", other, "--config", served.config], served.work)
    assert refused.returncode == 2, refused.stderr
    assert_no_traceback(refused.stderr)
    assert f"execution: a different training job named '{job}' already exists" in refused.stderr
    assert f"`sagemaker-plugin run {other} --config {served.config} --new-attempt`" in refused.stderr
    assert len(jobs_named(served, identity)) == 1


def test_logs_of_a_two_host_job_are_merged_in_time_order(served: Served) -> None:
    identity = unique("twohosts")

    def change(data: dict[str, Any]) -> None:
        data["training_job"]["training_job_resource_config"]["instance_count"] = 2
        data["inputs"]["static_hyperparameters"]["epochs"] = 3  # the simulation logs a line per epoch

    task = write_task(served.work, identity, base="custom-native.yaml", change=change)
    job = expected_job(identity)
    result = cli(["run", task, "--config", served.config], served.work)
    assert result.returncode == 0, result.stderr
    events = cloudwatch_events(served.aws, job)
    assert {text.split("]")[0] for _, text in events} == {"[algo-1", "[algo-2"}
    assert_same_logs(log_lines(result.stdout), events, hosts=2)

    logs = cli_here(["logs", job, "--config", served.config], served.work)
    assert (logs.returncode, logs.stderr) == (0, "")
    assert logs.stdout.splitlines() == log_lines(logs.stdout), "nothing but log lines"
    assert_same_logs(logs.stdout.splitlines(), events, hosts=2)


# --- list -----------------------------------------------------------------------------------------------------------

def _listed(result: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


@pytest.mark.timeout(300)  # a dozen commands, each a new Python process: slow on a loaded 2-core machine
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


# --- 10. the README's first command -----------------------------------------------------------------------------

def test_readme_command_runs_with_built_in_defaults(tmp_path: Path) -> None:
    """`sagemaker-plugin run examples/xgboost.yaml` with no config anywhere: it starts its own local SageMaker, which
    trains the model for real (execution `run`, the default)."""
    copy_examples(tmp_path / "examples")
    assert not (tmp_path / "config.yaml").exists()
    result = subprocess.run([str(SCRIPT), "run", "examples/xgboost.yaml"], capture_output=True, text=True,
                            cwd=tmp_path, env=cli_env(tmp_path), timeout=90)
    assert result.returncode == 0, result.stderr
    assert_no_traceback(result.stderr)
    job = "examples-development-xgboost-regression-n0-0"
    assert job_line(result.stdout) == job
    assert f"{job}: SUCCEEDED (Completed)" in result.stdout
    # The algorithm's 20 round lines, the last one's values reported as the job's metrics.
    rounds = re.findall(r"^\[algo-1\] \[(\d+)\]#011train-rmse:([0-9.]+)#011validation-rmse:([0-9.]+)$", result.stdout,
                        re.MULTILINE)
    assert [int(index) for index, _, _ in rounds] == list(range(20))
    assert f"metric train:rmse = {rounds[-1][1]}" in result.stdout.splitlines()
    assert f"metric validation:rmse = {rounds[-1][2]}" in result.stdout.splitlines()
    assert f"model s3://sagemaker-plugin-local/outputs/{job}/output/model.tar.gz" in result.stdout
    # The job ran for real (execution: run, the default): its seconds are the machine's, on-demand billing all of them.
    seconds = re.search(r"^training seconds (\d+), billable seconds (\d+)\b", result.stdout, re.MULTILINE)
    assert seconds and int(seconds[1]) == int(seconds[2]) > 0, result.stdout
