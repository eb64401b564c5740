"""End to end: the real `sagemaker-plugin` console script in subprocesses, against local SageMakers (issue 4): runs,
their failures and outputs, logs, and the README's first command. The helpers and the no-AWS environment:
tests/support/cli_e2e.py; the shared servers: tests/e2e/conftest.py. test_cli_input.py (listing, the exit codes and
messages of bad input), test_cli_processes.py (signals, `local serve`, commands from other processes) and
test_cli_quotas.py (rate and instance quotas) are split off so that the test workers run them side by side.
"""

from __future__ import annotations

import gzip
import io
import re
import subprocess
import tarfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cli_e2e import (
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
    `run` and `validate` alike (both in process: their answer is the claim; test_cli_input.py runs the console
    script on bad input)."""
    (served.work / "empty-folder").mkdir()
    identity = unique("emptylocal")

    def change(data: dict[str, Any]) -> None:
        data["inputs"]["train"] = "empty-folder/"

    task = write_task(served.work, identity, change=change)
    result = cli_here(["run", task, "--config", served.config], served.work)
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
