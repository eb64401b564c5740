"""The helpers of the end-to-end tests that drive the real `sagemaker-plugin` console script in subprocesses against
local SageMakers (tests/e2e/test_cli*.py, test_kept.py, test_rerun.py, test_first_try.py; their shared servers are
tests/e2e/conftest.py's fixtures).

Never an AWS call: every subprocess runs with the AWS_* variables scrubbed, no shared config or credentials file, the
instance metadata service disabled and AWS_ENDPOINT_URL on a closed loopback port (so even a client that ignored the
local endpoint could not leave this machine), and always with an explicit `--config` (but the README test).

Importable by name (`import cli_e2e as E`): tests/conftest.py puts tests/support on sys.path.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from children import dies_with_test
from handlers.local_credentials import LocalCredentials
from local_sagemaker.testing import LocalClients

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


def describe(served: Served, job: str) -> dict[str, Any]:
    answer: dict[str, Any] = served.aws.sagemaker.describe_training_job(TrainingJobName=job)
    return answer


def jobs_named(served: Served, identity: str, **filters: Any) -> list[dict[str, Any]]:
    pages = served.aws.sagemaker.get_paginator("list_training_jobs").paginate(NameContains=identity, **filters)
    return [summary for page in pages for summary in page["TrainingJobSummaries"]]


def statuses(description: dict[str, Any]) -> list[str]:
    return [t["Status"] for t in description["SecondaryStatusTransitions"]]


# --- 1. a successful XGBoost run ------------------------------------------------------------------------------------
