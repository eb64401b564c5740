"""End to end: the real `sagemaker-plugin` console script in subprocesses, against local SageMakers (issue 4).

Never an AWS call: every subprocess runs with the AWS_* variables scrubbed, no shared config or credentials file, the
instance metadata service disabled and AWS_ENDPOINT_URL on a closed loopback port (so even a client that ignored the
local endpoint could not leave this machine), and always with an explicit `--config` (but the README test).

Most tests share one `sagemaker-plugin local serve` subprocess (module scoped; each test uses its own execution
identity, hence its own job names), whose jobs take ~3.3 s; the tests that stop a running job (signals, `stop`) share
another whose jobs train for a minute, so that a loaded machine cannot make the job end before it is stopped; the
instance-quota tests have a third that runs jobs for real, whose first job holds the instance until the test lets it go.
"""

from __future__ import annotations

import collections
import contextlib
import gzip
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from children import dies_with_test
from handlers.local_credentials import LocalCredentials
from local_sagemaker.testing import LocalClients

pytestmark = pytest.mark.timeout(120)

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
SCRIPT = Path(sys.executable).parent / "sagemaker-plugin"
LOG_GROUP = "/aws/sagemaker/TrainingJobs"
#: nothing listens on port 1 of the loopback: the safety net for any client that would otherwise reach AWS
NOWHERE = "http://127.0.0.1:1"
#: the shared server: time_scale 10, Training 3 s, every other phase 0.1 s
SERVED_TIME_SCALE = 10
SERVED_TIMELINE = {"Starting": 1, "Downloading": 1, "Training": 30, "Uploading": 1}
#: the quota tests' server lets jobs hold one instance of this type at once
QUOTA_TYPE = "ml.m4.xlarge"
#: the shared server fails jobs whose name matches, halfway through Training
SERVED_FAILURE = {"name_pattern": ".*-e2e-srvfail-.*", "at": "Training", "reason": "AlgorithmError: diverged (e2e)"}


# --- subprocesses -----------------------------------------------------------------------------------------------------

#: the key pair of the local SageMaker the commands run in a folder talk to (it takes no other), as environment
#: variables: what a person exports from `local serve`'s output in the shell they work in
KEYS_FOR: dict[Path, dict[str, str]] = {}


def cli_env(tmp: Path) -> dict[str, str]:
    """The environment of every subprocess: nothing from AWS or this plugin's variables, no way out to AWS.

    Only the opt-in operation recorder of tests/conftest.py (SAGEMAKER_PLUGIN_RECORD_OPS) passes through, and the key
    pair of the local SageMaker the folder's commands use (KEYS_FOR).
    """
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("AWS_", "SAGEMAKER_PLUGIN_", "BOTO_")) and key != "PYTHONUNBUFFERED"}
    if os.environ.get("SAGEMAKER_PLUGIN_RECORD_OPS"):
        env["SAGEMAKER_PLUGIN_RECORD_OPS"] = os.environ["SAGEMAKER_PLUGIN_RECORD_OPS"]
    env.update(
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE=str(tmp / "no-such-aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp / "no-such-aws-credentials"),
        AWS_ENDPOINT_URL=NOWHERE,
        XDG_DATA_HOME=str(tmp / ".local-data"),  # where a local SageMaker keeps its S3: the test's own
    )
    env.update(KEYS_FOR.get(tmp, {}))
    return env


def cli(args: list[str | Path], cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          env=cli_env(cwd), timeout=timeout)


class Proc:
    """A console-script subprocess whose stdout and stderr lines are collected as they come."""

    def __init__(self, args: list[str | Path], cwd: Path) -> None:
        self.args = [str(SCRIPT), *map(str, args)]
        self.popen = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd,
                                      env=cli_env(cwd), preexec_fn=dies_with_test)
        self.lines: dict[str, list[str]] = {"out": [], "err": []}
        self._changed = threading.Condition()
        self._readers = [threading.Thread(target=self._read, args=(name, pipe), daemon=True)
                         for name, pipe in (("out", self.popen.stdout), ("err", self.popen.stderr))]
        for reader in self._readers:
            reader.start()

    def _read(self, name: str, pipe: Any) -> None:
        for line in pipe:
            with self._changed:
                self.lines[name].append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def text(self, stream: str = "out") -> str:
        with self._changed:
            return "\n".join(self.lines[stream])

    def wait_for(self, pattern: str, stream: str = "out", timeout: float = 30) -> str:
        """The first line of `stream` matching `pattern` (re.search), waiting for it; fails if it never comes."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = next((line for line in self.lines[stream] if regex.search(line)), None)
                if found is not None:
                    return found
                left = deadline - time.monotonic()
                if left <= 0 or (self.popen.poll() is not None and not any(r.is_alive() for r in self._readers)):
                    pytest.fail(f"no line matching {pattern!r} on std{stream} of {self.args[1:]} "
                                f"(exit {self.popen.poll()}):\n--- stdout\n" + "\n".join(self.lines["out"])
                                + "\n--- stderr\n" + "\n".join(self.lines["err"]))
                self._changed.wait(min(left, 0.2))

    def finish(self, timeout: float = 30) -> tuple[int, str, str]:
        """(exit code, stdout, stderr) once the process has ended."""
        try:
            code = self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"{self.args[1:]} still running after {timeout} s:\n" + self.text("out") + "\n"
                        + self.text("err"))
        for reader in self._readers:
            reader.join(timeout=10)
        return code, self.text("out"), self.text("err")

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(timeout=10)


@contextlib.contextmanager
def started(args: list[str | Path], cwd: Path) -> Iterator[Proc]:
    proc = Proc(args, cwd)
    try:
        yield proc
    finally:
        proc.kill()


def last_json(stdout: str) -> dict[str, Any]:
    lines = stdout.strip().splitlines()
    assert lines, "stdout is empty"
    body = json.loads(lines[-1])
    assert isinstance(body, dict)
    return body


def assert_no_traceback(*texts: str) -> None:
    for text in texts:
        assert "Traceback" not in text, text


def job_line(text: str) -> str:
    """The job name from `run`'s first line, `training job NAME on URL`."""
    match = re.search(r"^training job (\S+) on http://127\.0\.0\.1:\d+( \(adopted: .*\))?$", text, re.MULTILINE)
    assert match, text
    return match.group(1)


# --- tasks --------------------------------------------------------------------------------------------------------

def unique(label: str) -> str:
    return f"e2e-{label}-{uuid.uuid4().hex[:8]}"


def expected_job(identity: str) -> str:
    """The derived job name (docs/task-file.md) for the examples' execution identity with name `identity`."""
    return f"examples-development-{identity}-n0-0"


def write_task(folder: Path, identity: str, base: str = "xgboost.yaml",
               change: Callable[[dict[str, Any]], None] | None = None, file_name: str | None = None) -> Path:
    """A copy of examples/<base> in `folder` (next to its data) with execution name `identity`, changed by `change`."""
    data = yaml.safe_load((folder / base).read_text(encoding="utf-8"))
    data["execution"]["name"] = identity
    if change is not None:
        change(data)
    path = folder / (file_name or f"{identity}.yaml")
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def write_config(path: Path, **sections: Any) -> Path:
    """A CLI config; its local SageMaker simulates jobs (these tests pin the timeline) unless `local` says so."""
    sections["local"] = {"execution": "simulate", **sections.get("local", {})}
    path.write_text(yaml.safe_dump({"backend": "local", "region": "us-east-1", **sections}), encoding="utf-8")
    return path


def copy_examples(folder: Path) -> Path:
    shutil.copytree(EXAMPLES, folder, ignore=shutil.ignore_patterns("__pycache__"))
    return folder


# --- logs as CloudWatch has them ----------------------------------------------------------------------------------

def cloudwatch_events(aws: LocalClients, job: str) -> list[tuple[int, str]]:
    """Every event of every stream of the job, as (timestamp, "[algo-n] message"), read with plain boto3."""
    streams = aws.logs.describe_log_streams(logGroupName=LOG_GROUP, logStreamNamePrefix=f"{job}/")["logStreams"]
    events: list[tuple[int, str]] = []
    for stream in streams:
        name = stream["logStreamName"]
        host = "-".join(name[len(job) + 1:].split("-")[:2])
        token = None
        while True:
            params: dict[str, Any] = {"logGroupName": LOG_GROUP, "logStreamName": name, "startFromHead": True}
            if token:
                params["nextToken"] = token
            page = aws.logs.get_log_events(**params)
            events += [(e["timestamp"], f"[{host}] {e['message'].rstrip(chr(10))}") for e in page["events"]]
            if not page["events"] or page["nextForwardToken"] == token:
                break
            token = page["nextForwardToken"]
    return sorted(events)


def assert_same_logs(printed: list[str], events: list[tuple[int, str]], hosts: int) -> None:
    """`printed` holds every event exactly once (nothing lost, nothing repeated), in time order, from every host."""
    assert events, "CloudWatch holds no log events for the job"
    assert collections.Counter(printed) == collections.Counter(text for _, text in events)
    assert {line.split("]")[0] + "]" for line in printed} == {f"[algo-{n}]" for n in range(1, hosts + 1)}
    stamps: dict[str, collections.deque[int]] = collections.defaultdict(collections.deque)
    for stamp, text in events:
        stamps[text].append(stamp)
    order = [stamps[line].popleft() for line in printed]
    assert order == sorted(order), "log lines are not in time order"


def log_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if re.match(r"\[algo-\d+\] ", line)]


# --- the shared local SageMaker -------------------------------------------------------------------------------------

@dataclass
class Served:
    url: str
    aws: LocalClients
    config: Path  # a CLI config whose local.endpoint_url is this server
    work: Path  # a copy of examples/, for task files


def start_serve(cwd: Path, config: Path, port: int = 0) -> tuple[Proc, str, dict[str, str]]:
    """`local serve`: the process, its URL and the variables its `export NAME=value` lines set."""
    proc = Proc(["local", "serve", "--port", port, "--config", config], cwd)
    line = proc.wait_for(r"^local SageMaker serving at http://127\.0\.0\.1:\d+$", timeout=60)
    proc.wait_for(r"^export SAGEMAKER_PLUGIN_ENDPOINT_URL=", timeout=10)  # the last one
    exports = dict(text.removeprefix("export ").split("=", 1) for text in proc.text().splitlines()
                   if text.startswith("export "))
    return proc, line.rsplit(" ", 1)[1], exports


def keys_of(exports: dict[str, str]) -> LocalCredentials:
    return LocalCredentials(exports["AWS_ACCESS_KEY_ID"], exports["AWS_SECRET_ACCESS_KEY"])


@contextlib.contextmanager
def serving(root: Path, **local: Any) -> Iterator[Served]:
    """`sagemaker-plugin local serve` with config.yaml's `local` section `local`, stopped (SIGTERM) at the end."""
    proc, url, exports = start_serve(root, write_config(root / "server.yaml",
                                                        local={"time_scale": SERVED_TIME_SCALE, **local}))
    try:
        config = write_config(root / "client.yaml", local={"endpoint_url": url, "time_scale": SERVED_TIME_SCALE})
        work = copy_examples(root / "examples")
        KEYS_FOR[work] = keys_of(exports).env()
        yield Served(url, LocalClients(url, credentials=keys_of(exports)), config, work)
    finally:
        KEYS_FOR.pop(root / "examples", None)
        proc.popen.send_signal(signal.SIGTERM)
        try:
            proc.popen.wait(timeout=15)
        finally:
            proc.kill()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The shared local SageMaker: jobs take ~3.3 s, ~3 s of it in Training."""
    with serving(tmp_path_factory.mktemp("served"), timeline=SERVED_TIMELINE, failures=[SERVED_FAILURE]) as server:
        yield server


@pytest.fixture(scope="module")
def long_served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A local SageMaker whose jobs train for a minute, for the tests that stop them: no race with a loaded machine."""
    with serving(tmp_path_factory.mktemp("long"), timeline={**SERVED_TIMELINE, "Training": 600}) as server:
        yield server


@pytest.fixture(scope="module")
def quota_served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A local SageMaker that runs jobs for real (`execution: run`) and lets them hold one QUOTA_TYPE instance: the
    quota tests' first job runs a script that holds the instance until the test lets it end (`holding_pair`)."""
    with serving(tmp_path_factory.mktemp("quota"), execution="run", quotas={"instances": {QUOTA_TYPE: 1}}) as server:
        yield server


def describe(served: Served, job: str) -> dict[str, Any]:
    answer: dict[str, Any] = served.aws.sagemaker.describe_training_job(TrainingJobName=job)
    return answer


def jobs_named(served: Served, identity: str, **filters: Any) -> list[dict[str, Any]]:
    pages = served.aws.sagemaker.get_paginator("list_training_jobs").paginate(NameContains=identity, **filters)
    return [summary for page in pages for summary in page["TrainingJobSummaries"]]


def statuses(description: dict[str, Any]) -> list[str]:
    return [t["Status"] for t in description["SecondaryStatusTransitions"]]


# --- 1. a successful XGBoost run ------------------------------------------------------------------------------------

def test_xgboost_run_succeeds_with_metrics_logs_and_a_model_in_s3(served: Served) -> None:
    identity = unique("xgb")

    def with_metric_definitions(data: dict[str, Any]) -> None:  # as flytekit's old tasks wrote them: left out
        data["training_job"]["algorithm_specification"]["metric_definitions"] = [
            {"name": "train:rmse", "regex": r"train-rmse:([0-9\.]+)"}]

    task = write_task(served.work, identity, change=with_metric_definitions)
    result = cli(["run", task, "--json", "--config", served.config], served.work)
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

def test_run_failed_through_local_failures_exits_1_with_the_reason(tmp_path: Path) -> None:
    work = copy_examples(tmp_path / "examples")
    reason = "AlgorithmError: loss became NaN (injected by the e2e test)"
    config = write_config(tmp_path / "config.yaml", local={
        "time_scale": 20, "failures": [{"name_pattern": ".*-e2e-nan-.*", "at": "Training", "reason": reason}]})
    identity = unique("nan")
    task = write_task(work, identity)
    result = cli(["run", task, "--json", "--config", config], work)
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
    validate = cli(["validate", task, "--config", served.config], served.work)
    assert validate.returncode == 2 and "inputs.train" in validate.stderr


# --- 4. SIGINT / SIGTERM during training ------------------------------------------------------------------------

@pytest.mark.parametrize(("sig", "as_json", "twice"),
                         [(signal.SIGINT, False, ""), (signal.SIGTERM, True, ""), (signal.SIGINT, False, "stopping"),
                          (signal.SIGINT, False, "at-once")],
                         ids=["SIGINT", "SIGTERM-json", "SIGINT-twice", "SIGINT-twice-at-once"])
def test_signal_during_training_stops_the_job_and_exits_130(long_served: Served, sig: signal.Signals,
                                                             as_json: bool, twice: str) -> None:
    served = long_served
    identity = unique(f"sig{int(sig)}")
    task = write_task(served.work, identity)
    job = expected_job(identity)
    progress = "err" if as_json else "out"
    with started(["run", task, "--config", served.config, *(["--json"] if as_json else [])], served.work) as proc:
        proc.wait_for(r"^phase RUNNING: Training", progress)
        before = describe(served, job)
        assert (before["TrainingJobStatus"], before["SecondaryStatus"]) == ("InProgress", "Training")
        proc.popen.send_signal(sig)
        if twice:  # an impatient second Ctrl-C, at once or while the job is being stopped, must not leave it running
            if twice == "stopping":
                proc.wait_for(r"^SIGINT: stopping training job ", "err")
                proc.popen.send_signal(sig)
            else:  # another signal: the same one would merge with the first while it is pending
                proc.popen.send_signal(signal.SIGTERM)
        code, out, err = proc.finish(timeout=40)
    assert code == 130, err
    assert_no_traceback(out, err)
    assert f"{sig.name}: stopping training job {job} ...\n" in err + "\n", err
    report = err if as_json else out
    assert f"{job}: ABORTED (stopped by the plugin (the execution was aborted))" in report
    if as_json:
        body = last_json(out)
        assert (body["phase"], body["job_name"]) == ("ABORTED", job)

    after = describe(served, job)
    assert (after["TrainingJobStatus"], after["SecondaryStatus"]) == ("Stopped", "Stopped")
    assert statuses(after)[-3:] == ["Training", "Stopping", "Stopped"]
    assert "ModelArtifacts" in after, "a job stopped in Training still uploads its model, as SageMaker does"
    mine = jobs_named(served, identity)
    assert [(s["TrainingJobName"], s["TrainingJobStatus"]) for s in mine] == [(job, "Stopped")]
    assert jobs_named(served, identity, StatusEquals="InProgress") == []
    assert jobs_named(served, identity, StatusEquals="Stopping") == []

    status = cli(["status", job, "--json", "--config", served.config], served.work)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["phase"] == "ABORTED"


# --- 5. a second run of the same task adopts the job ----------------------------------------------------------------

def test_second_run_of_a_finished_task_adopts_its_job(served: Served) -> None:
    identity = unique("adopt")
    task = write_task(served.work, identity)
    job = expected_job(identity)
    first = cli(["run", task, "--json", "--config", served.config], served.work)
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
    stop = cli(["stop", job, "--config", served.config], served.work)
    assert (stop.returncode, stop.stdout) == (0, f"{job}: already Completed (SUCCEEDED); nothing to stop\n")

    # Another task under the same identity is refused: it would otherwise silently report someone else's job.
    def change(data: dict[str, Any]) -> None:
        data["inputs"]["static_hyperparameters"]["eta"] = 0.1

    other = write_task(served.work, identity, change=change, file_name=f"{identity}-other.yaml")
    refused = cli(["run", other, "--config", served.config], served.work)
    assert refused.returncode == 2, refused.stderr
    assert_no_traceback(refused.stderr)
    assert f"execution: a different training job named '{job}' already exists" in refused.stderr
    assert f"`sagemaker-plugin run {other} --config {served.config} --new-attempt`" in refused.stderr
    assert len(jobs_named(served, identity)) == 1


# --- 6. local serve, with status, stop and logs from other processes -----------------------------------------------

@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_local_serve_prints_its_url_and_stops_cleanly(tmp_path: Path, sig: signal.Signals) -> None:
    config = write_config(tmp_path / "config.yaml")
    port = 0
    if sig == signal.SIGTERM:  # an explicit port this time
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
    proc, url, exports = start_serve(tmp_path, config, port=port)
    try:
        if port:
            assert url == f"http://127.0.0.1:{port}"
        # the lines another shell evaluates: where, and the key pair it made at start (AWS's format)
        assert set(exports) == {"AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                "SAGEMAKER_PLUGIN_ENDPOINT_URL"}
        assert exports["SAGEMAKER_PLUGIN_ENDPOINT_URL"] == exports["AWS_ENDPOINT_URL"] == url
        assert re.fullmatch(r"AKIA[A-Z2-7]{16}", exports["AWS_ACCESS_KEY_ID"])
        assert len(exports["AWS_SECRET_ACCESS_KEY"]) == 40
        aws = LocalClients(url, credentials=keys_of(exports))
        assert aws.sagemaker.list_training_jobs()["TrainingJobSummaries"] == []
        proc.popen.send_signal(sig)
        code, out, err = proc.finish(timeout=15)
    finally:
        proc.kill()
    assert code == 0, err
    assert_no_traceback(out, err)
    assert err == ""
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), timeout=2):
        pass


def test_local_serve_on_a_port_in_use_says_so(served: Served, tmp_path: Path) -> None:
    port = int(served.url.rsplit(":", 1)[1])
    result = cli(["local", "serve", "--port", port, "--config", write_config(tmp_path / "c.yaml")], tmp_path,
                 timeout=30)
    assert result.returncode != 0
    assert_no_traceback(result.stdout, result.stderr)
    assert f"Port {port} is in use" in result.stderr


def test_status_stop_and_logs_follow_from_other_processes(long_served: Served) -> None:
    served = long_served
    identity = unique("ctl")
    task = write_task(served.work, identity)
    job = expected_job(identity)
    config = ["--config", served.config]
    with started(["run", task, *config], served.work) as run:
        run.wait_for(r"^phase RUNNING: Training")
        # Three other processes at once, while the job trains: follow its logs, its status twice.
        with started(["logs", job, "--follow", *config], served.work) as follow, \
                started(["status", job, *config], served.work) as status, \
                started(["status", job, "--json", *config], served.work) as as_json:
            code, out, err = status.finish()
            assert (code, err) == (0, "")
            lines = out.splitlines()
            assert lines[0] == f"{job}: RUNNING (Training: Training image download completed. Training in progress.)"
            assert lines[1] == "status InProgress / Training"
            assert re.fullmatch(r"  \d\d:\d\d:\d\d Starting \(0\.1 s\): Preparing the instances for training",
                                lines[2])
            assert re.fullmatch(r"  \d\d:\d\d:\d\d Downloading \(0\.1 s\): Downloading input data", lines[3])
            assert re.fullmatch(r"  \d\d:\d\d:\d\d Training: Training image download completed\. Training in "
                                r"progress\.", lines[4])

            code, out, err = as_json.finish()
            assert (code, err) == (0, "")
            body = json.loads(out)
            assert (body["phase"], body["job_name"], body["status"], body["secondary_status"]) == (
                "RUNNING", job, "InProgress", "Training")
            assert body["outputs"] == {}

            stop = cli(["stop", job, *config], served.work)
            assert (stop.returncode, stop.stdout, stop.stderr) == (0, f"{job}: stopping\n", "")

            run_code, run_out, run_err = run.finish()
            assert run_code == 1, run_err
            assert f"{job}: ABORTED (stopped by the plugin (the execution was aborted))" in run_out
            follow_code, follow_out, follow_err = follow.finish()
    assert (follow_code, follow_err) == (0, "")

    after = cli(["status", job, "--json", "--config", served.config], served.work)
    body = json.loads(after.stdout)
    assert (body["phase"], body["status"], body["secondary_status"]) == ("ABORTED", "Stopped", "Stopped")
    text = cli(["status", job, "--config", served.config], served.work).stdout
    assert text.startswith(f"{job}: ABORTED")
    assert re.search(r"^  \d\d:\d\d:\d\d Stopping \(\d+\.\d s\): Stopping the training job$", text, re.MULTILINE)

    events = cloudwatch_events(served.aws, job)
    assert follow_out.splitlines() == log_lines(follow_out), "nothing but log lines"
    assert_same_logs(follow_out.splitlines(), events, hosts=1)
    assert_same_logs(log_lines(run_out), events, hosts=1)


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

    logs = cli(["logs", job, "--config", served.config], served.work)
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

    every = _listed(cli(["list", "--name-contains", tag, "--json", *config], served.work))
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
        shown = _listed(cli(["list", "--name-contains", tag, "--status", status, "--json", *config], served.work))
        assert [job["name"] for job in shown] == expected, status

    two = cli(["list", "--name-contains", tag, "--max", "2", *config], served.work)
    assert [line.split()[0] for line in two.stdout.splitlines()[1:3]] == newest_first[:2]
    assert two.stdout.splitlines()[3:] == ["(the newest 2; --max N shows more)"]
    assert [job["name"] for job in _listed(cli(["list", "--name-contains", tag, "--max", "2", "--json", *config],
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

    assert [job["name"] for job in _listed(cli(["list", "--name-contains", tag, "--since", "1h", "--json",
                                                *config], served.work))] == newest_first
    after_all = every[0]["created"]
    assert _listed(cli(["list", "--name-contains", tag, "--since", after_all, "--json", *config], served.work)) == []
    none = cli(["list", "--name-contains", tag, "--since", after_all, *config], served.work)
    assert (none.returncode, none.stdout) == (0, "no training jobs match\n")

    tuning = cli(["list", "--tuning", "--name-contains", tag, "--status", "DeleteFailed", *config], served.work)
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
    result = cli(["list", *flags, "--config", write_config(tmp_path / "config.yaml")], tmp_path)
    assert (result.returncode, result.stdout) == (2, ""), result.stderr
    assert result.stderr == f"error: 1 problem found:\n{said}\n"


def test_list_with_a_flag_it_cannot_read_exits_2_naming_it(tmp_path: Path) -> None:
    for flags, said in ((["--max", "many"], "argument --max: invalid int value: 'many'"),
                        (["--backend", "cloud"], "argument --backend: invalid choice: 'cloud'")):
        result = cli(["list", *flags, "--config", write_config(tmp_path / "config.yaml")], tmp_path)
        assert result.returncode == 2
        assert_no_traceback(result.stderr)
        assert said in result.stderr
def test_status_stop_and_logs_without_a_running_local_sagemaker_look_in_the_data_folder(tmp_path: Path) -> None:
    """With no local SageMaker named, they start one on the data folder, which knows every job kept there."""
    config = write_config(tmp_path / "config.yaml")
    for command in ("status", "stop", "logs", "metrics"):
        result = cli([command, "some-job", "--config", config], tmp_path)
        assert result.returncode == 2, (command, result.stderr)
        assert_no_traceback(result.stderr)
        assert "no training job named 'some-job' in us-east-1" in result.stderr, (command, result.stderr)


# --- 7. requests_per_second quotas ----------------------------------------------------------------------------------

def test_run_under_request_rate_quotas_is_throttled_but_succeeds(tmp_path: Path) -> None:
    from local_sagemaker import LocalSageMaker, LocalSettings

    rates = {"DescribeTrainingJob": 1.0, "GetLogEvents": 2.0}
    work = copy_examples(tmp_path / "examples")
    identity = unique("rate")
    task = write_task(work, identity)
    # time_scale 4: the job takes ~1.25 s, long enough for the run's 0.1 s polls to meet the limits on any machine.
    with LocalSageMaker(LocalSettings(execution="simulate", time_scale=4, requests_per_second=rates)) as server:
        config = write_config(tmp_path / "config.yaml", local={"endpoint_url": server.url, "time_scale": 10})
        KEYS_FOR[work] = server.credentials.env()
        result = cli(["run", task, "--json", "--config", config], work)
        throttled = {**server.throttled_counts("sagemaker"), **server.throttled_counts("logs")}
        received = {**server.call_counts("sagemaker"), **server.call_counts("logs")}
    assert result.returncode == 0, result.stderr
    assert_no_traceback(result.stderr)
    assert last_json(result.stdout)["phase"] == "SUCCEEDED"
    assert throttled.get("DescribeTrainingJob", 0) > 0, (throttled, received)
    assert set(throttled) <= set(rates)
    # The retries lost and repeated nothing: all 20 rounds, each once.
    rounds = re.findall(r"^\[algo-1\] \[(\d+)\]#011train-rmse:", result.stderr, re.MULTILINE)
    assert [int(r) for r in rounds] == list(range(20))


# --- 8. instance quotas: WAITING_FOR_RESOURCES, then the job runs ---------------------------------------------------

#: the quota tests' training script: it ends (exit 0) once its job's release file exists, and fails if that never
#: happens
HOLD_SCRIPT = """import os, pathlib, sys, time
release = pathlib.Path({folder!r}) / (os.environ["TRAINING_JOB_NAME"] + ".release")
deadline = time.monotonic() + 300
while not release.exists() and time.monotonic() < deadline:
    time.sleep(0.05)
print("released" if release.exists() else "never released", flush=True)
sys.exit(0 if release.exists() else 1)
"""


def holding_pair(served: Served, label: str) -> tuple[tuple[str, Path], tuple[str, Path]]:
    """Two custom tasks on the instance type the server lets hold one instance at once, (identity, task file) each.
    Each job's script runs until the test lets it end (`release`): the first holds the instance as long as the test
    needs, and the second is seen running before it ends."""
    code = served.work / f"hold-{label}-{uuid.uuid4().hex[:8]}"
    code.mkdir()
    (code / "hold.py").write_text(HOLD_SCRIPT.format(folder=str(served.work)), encoding="utf-8")

    def holding(data: dict[str, Any]) -> None:
        data["training_job"]["algorithm_specification"].pop("metric_definitions", None)
        data["training_job"]["training_job_resource_config"].update(instance_type=QUOTA_TYPE, instance_count=1)
        data["container"]["command"] = ["python", "/opt/ml/input/data/code/hold.py"]
        data["inputs"] = {"train": "data/train/", "code": f"{code.name}/"}

    first, second = unique(f"{label}-a"), unique(f"{label}-b")
    return ((first, write_task(served.work, first, base="custom-native.yaml", change=holding)),
            (second, write_task(served.work, second, base="custom-native.yaml", change=holding)))


@contextlib.contextmanager
def holding_runs(served: Served, label: str) -> Iterator[tuple[str, str, str, Proc, Proc]]:
    """`run` of a `holding_pair`'s A, then, once A's job is made, of its B: (B's identity, A's job, B's job, the run
    of A, the run of B)."""
    (first, task_a), (second, task_b) = holding_pair(served, label)
    with started(["run", task_a, "--no-logs", "--config", served.config], served.work) as run_a:
        run_a.wait_for(r"^training job ", timeout=60)
        with started(["run", task_b, "--no-logs", "--config", served.config], served.work) as run_b:
            yield second, expected_job(first), expected_job(second), run_a, run_b


def release(served: Served, job: str) -> None:
    """Lets a job of `holding_pair` end."""
    (served.work / f"{job}.release").touch()


def test_job_over_the_instance_quota_waits_then_runs(quota_served: Served) -> None:
    served = quota_served
    with holding_runs(served, "quota") as (second, job_a, job_b, run_a, run_b):
        waiting = run_b.wait_for(r"^phase WAITING_FOR_RESOURCES", timeout=60)
        assert "ResourceLimitExceeded" in waiting, waiting
        assert f"'{QUOTA_TYPE} for training job usage' is 1 Instances" in waiting, waiting
        assert describe(served, job_a)["TrainingJobStatus"] == "InProgress"
        assert jobs_named(served, second) == [], "B is not created while A holds the instance"
        release(served, job_a)  # A ends and gives its instance back
        code_a, _, err_a = run_a.finish(timeout=60)
        run_b.wait_for(r"^phase RUNNING", timeout=90)
        release(served, job_b)
        code_b, out_b, err_b = run_b.finish(timeout=60)
    assert code_a == 0, err_a
    assert code_b == 0, err_b
    assert_no_traceback(err_a, err_b)
    phases = re.findall(r"^phase (\w+)", out_b, re.MULTILINE)
    assert phases[0] == "WAITING_FOR_RESOURCES"
    assert phases[-1] == "SUCCEEDED"
    assert "RUNNING" in phases
    a, b = describe(served, job_a), describe(served, job_b)
    assert b["CreationTime"] >= a["TrainingEndTime"], "B was created once A had given its instance back"
    waited = (b["CreationTime"] - a["TrainingEndTime"]).total_seconds()
    print(f"B created {waited:.1f} s after A ended (the plugin's queued-create backoff)")


def test_ctrl_c_while_waiting_for_resources_records_the_abort_and_the_job_is_never_made(quota_served: Served
                                                                                         ) -> None:
    served = quota_served
    with holding_runs(served, "qabort") as (second, job_a, job_b, run_a, run_b):
        run_b.wait_for(r"^phase WAITING_FOR_RESOURCES", timeout=60)
        run_b.popen.send_signal(signal.SIGINT)
        code_b, out_b, err_b = run_b.finish(timeout=60)
        release(served, job_a)  # A ends and gives its instance back; B, aborted, must not take it
        code_a, _, err_a = run_a.finish(timeout=60)
    assert (code_a, code_b) == (0, 130), err_a + err_b
    assert_no_traceback(out_b, err_b)
    assert f"SIGINT: stopping training job {job_b} ...\n" in err_b + "\n", err_b
    assert f"{job_b}: ABORTED (deleted while waiting for resources; the training job was never created)" in out_b, out_b
    assert jobs_named(served, second) == [], "the quota freed when A ended, and B was still not made"
    listed = served.aws.s3.list_objects_v2(Bucket="sagemaker-plugin-local").get("Contents", ())
    assert [o["Key"] for o in listed if job_b in o["Key"] and "sagemaker-plugin-aborted-" in o["Key"]], \
        "the abort is recorded where another process holding the meta would look"


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

    missing = cli(["run", "no-such-task.yaml", "--config", served.config], served.work)
    assert (missing.returncode, missing.stdout) == (2, "")
    assert "no-such-task.yaml: no such task file" in missing.stderr
    usage = cli(["run", "--config", served.config], served.work)
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
    result = cli([command, task, "--config", served.config], served.work)
    assert result.returncode == 2
    assert_no_traceback(result.stderr)
    assert "CUSTOM" not in result.stderr and "container.image" not in result.stderr, result.stderr
    assert result.stderr == TYPO_PROBLEMS


def test_status_stop_and_logs_of_a_missing_job_exit_2_naming_it(served: Served) -> None:
    """A wrong job name is the user's input, not an AWS failure worth retrying: exit 2, the job named."""
    job = unique("missing")
    for command in ("status", "stop", "logs"):
        result = cli([command, job, "--config", served.config], served.work)
        assert (result.returncode, result.stdout) == (2, ""), command
        assert_no_traceback(result.stderr)
        assert f"JOB_NAME: no training job named '{job}' in us-east-1" in result.stderr, result.stderr


def test_aws_backend_refuses_local_inputs_before_any_call(tmp_path: Path) -> None:
    work = copy_examples(tmp_path / "examples")
    config = write_config(tmp_path / "config.yaml", role_arn="arn:aws:iam::123456789012:role/SageMakerRole",
                          output_prefix="s3://e2e-bucket/outputs")
    result = cli(["run", work / "xgboost.yaml", "--backend", "aws", "--region", "us-east-1", "--config", config], work)
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
        status = cli(["status", "some-job", "--config", config], work, timeout=30)
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
