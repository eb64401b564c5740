"""End to end: built-in XGBoost jobs that really train, driven through the `sagemaker-plugin` console script against a
`sagemaker-plugin local serve` subprocess (execution: run). The model in the local S3 loads with xgboost and gives the
RMSE the last round line reported; two hosts train together; a spot job stopped mid-training and run again with the
same checkpoint URI resumes from its last round."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xgboost as xgb
import yaml

from children import dies_with_test
from handlers.local_credentials import LocalCredentials
from local_sagemaker.testing import LocalClients

pytestmark = pytest.mark.timeout(300)

REPO = Path(__file__).resolve().parents[2]
SCRIPT = Path(sys.executable).parent / "sagemaker-plugin"
LOG_GROUP = "/aws/sagemaker/TrainingJobs"
ROUND = re.compile(r"^\[(\d+)\]#011train-rmse:([0-9.]+)#011validation-rmse:([0-9.]+)$")  # a tab is #011 there


def env(cwd: Path, keys: LocalCredentials | None = None) -> dict[str, str]:
    """No AWS settings of this machine, and no way to AWS (as tests/e2e/test_cli.py's subprocesses); the local S3
    kept in the test's folder; the key pair of the local SageMaker if given."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SAGEMAKER_PLUGIN_", "BOTO_"))}
    clean.update(
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE=str(cwd / "no-aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(cwd / "no-aws-credentials"),
        AWS_ENDPOINT_URL="http://127.0.0.1:1",
        PYTHONPATH=str(REPO),
        XDG_DATA_HOME=str(cwd / ".local-data"),
    )
    return {**clean, **(keys.env() if keys else {})}


class Proc:
    """A console-script subprocess whose output lines are collected as they come."""

    def __init__(self, args: list[str | Path], cwd: Path, keys: LocalCredentials | None = None) -> None:
        self.popen = subprocess.Popen([str(SCRIPT), *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      text=True, cwd=cwd, env=env(cwd, keys), start_new_session=True,
                                      preexec_fn=dies_with_test)
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, pattern: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = next((line for line in list(self.lines) if re.search(pattern, line)), None)
            if found is not None:
                return found
            if self.popen.poll() is not None and not self.reader.is_alive():
                break
            time.sleep(0.1)
        pytest.fail(f"no line matching {pattern!r}:\n" + "\n".join(self.lines))

    def finish(self, timeout: float) -> int:
        code = self.popen.wait(timeout=timeout)
        self.reader.join(timeout=10)
        return code

    def kill(self) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=10)


class Served:
    def __init__(self, root: Path) -> None:
        self.root = root
        server_config = self.write_config("server.yaml", {"execution": "run"})
        self.proc = Proc(["local", "serve", "--port", "0", "--config", server_config], root)
        self.url = self.proc.wait_for(r"^local SageMaker serving at http://127\.0\.0\.1:\d+$", 60).rsplit(" ", 1)[1]
        # It accepts only its own key pair, printed as `export NAME=value` lines (SAGEMAKER_PLUGIN_ENDPOINT_URL last).
        self.proc.wait_for(r"^export SAGEMAKER_PLUGIN_ENDPOINT_URL=", 10)
        exports = dict(line.removeprefix("export ").split("=", 1) for line in list(self.proc.lines)
                       if line.startswith("export "))
        self.keys = LocalCredentials(exports["AWS_ACCESS_KEY_ID"], exports["AWS_SECRET_ACCESS_KEY"])
        self.config = self.write_config("client.yaml", {"endpoint_url": self.url, "execution": "run"})
        self.aws = LocalClients(self.url, credentials=self.keys)
        self.work = root / "examples"
        shutil.copytree(REPO / "examples", self.work, ignore=shutil.ignore_patterns("__pycache__"))

    def write_config(self, name: str, local: dict[str, Any]) -> Path:
        path = self.root / name
        path.write_text(yaml.safe_dump({"backend": "local", "region": "us-east-1", "local": local}))
        return path

    def task(self, change: Callable[[dict[str, Any]], None] | None = None, base: str = "xgboost.yaml") -> Path:
        data = yaml.safe_load((self.work / base).read_text())
        data["execution"]["name"] = f"e2e-xgb-{uuid.uuid4().hex[:8]}"
        if change is not None:
            change(data)
        path = self.work / f"{data['execution']['name']}.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    def run(self, task: Path) -> dict[str, Any]:
        done = subprocess.run([str(SCRIPT), "run", task, "--json", "--config", self.config], capture_output=True,
                              text=True, cwd=self.work, env=env(self.work, self.keys), timeout=240)
        assert done.returncode == 0, done.stdout + done.stderr
        body: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        return body

    def messages(self, job: str, host: int) -> list[str]:
        streams = self.aws.logs.describe_log_streams(logGroupName=LOG_GROUP, logStreamNamePrefix=f"{job}/algo-{host}-")
        out: list[str] = []
        for stream in streams["logStreams"]:
            events = self.aws.logs.get_log_events(logGroupName=LOG_GROUP, logStreamName=stream["logStreamName"],
                                                  startFromHead=True, limit=10000)
            out += [event["message"] for event in events["events"]]
        return out

    def logged(self, job: str, host: int) -> list[str]:
        """`messages`, or none yet while the job's log group is not made."""
        try:
            return self.messages(job, host)
        except self.aws.logs.exceptions.ResourceNotFoundException:
            return []

    def model(self, uri: str) -> xgb.Booster:
        bucket, key = uri.removeprefix("s3://").split("/", 1)
        body = self.aws.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        with tarfile.open(fileobj=io.BytesIO(body)) as archive:
            member = archive.extractfile("xgboost-model")
            assert member is not None
            raw = member.read()
        booster = xgb.Booster()
        booster.load_model(bytearray(raw))
        return booster

    def close(self) -> None:
        self.proc.popen.send_signal(signal.SIGTERM)
        try:
            self.proc.popen.wait(timeout=15)
        finally:
            self.proc.kill()


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    root = Path(tempfile.mkdtemp(prefix="e2e-xgb-"))
    server = Served(root)
    try:
        yield server
    finally:
        server.close()
        shutil.rmtree(root, ignore_errors=True)


def rounds(messages: list[str]) -> list[tuple[int, float]]:
    return [(int(m.group(1)), float(m.group(3))) for m in map(ROUND.match, messages) if m]


def validation_rmse(booster: xgb.Booster) -> float:
    table = np.loadtxt(REPO / "examples" / "data" / "validation" / "validation.csv", delimiter=",")
    predictions = booster.predict(xgb.DMatrix(table[:, 1:]))
    return float(np.sqrt(np.mean((predictions - table[:, 0]) ** 2)))


def test_the_example_trains_for_real(served: Served) -> None:
    body = served.run(served.task())
    assert (body["phase"], body["message"]) == ("SUCCEEDED", "Completed")
    job = body["outputs"]["training_job_name"]
    lines = rounds(served.messages(job, 1))
    assert [index for index, _ in lines] == list(range(20))
    assert abs(validation_rmse(served.model(body["outputs"]["model"])) - lines[-1][1]) < 1e-4
    assert body["outputs"]["metrics"]["validation:rmse"] == lines[-1][1]


def test_the_classification_example_publishes_the_algorithms_own_auc(served: Served) -> None:
    """No metric definitions in the task: the algorithm's own (train:auc, validation:auc) read the round lines."""
    body = served.run(served.task(base="xgboost-classification.yaml"))
    assert body["phase"] == "SUCCEEDED", body
    last = served.messages(body["outputs"]["training_job_name"], 1)
    final = next(m for m in reversed(last) if m.startswith("[29]#011"))
    assert body["outputs"]["metrics"] == {
        name.replace("-", ":"): float(value) for name, value in re.findall(r"#011([a-z]+-auc):([0-9.]+)", final)
    }
    assert set(body["outputs"]["metrics"]) == {"train:auc", "validation:auc"}


def test_two_hosts_train_one_model(served: Served) -> None:
    def two_hosts(task: dict[str, Any]) -> None:
        task["training_job"]["training_job_resource_config"]["instance_count"] = 2

    body = served.run(served.task(two_hosts))
    assert body["phase"] == "SUCCEEDED", body
    job = body["outputs"]["training_job_name"]
    first, second = served.messages(job, 1), served.messages(job, 2)
    assert any("Distributed node training with 2 hosts" in m for m in first + second)
    assert len(rounds(first)) == 20 and rounds(second) == []  # the master prints the rounds
    assert abs(validation_rmse(served.model(body["outputs"]["model"])) - rounds(first)[-1][1]) < 1e-4


def test_a_stopped_spot_job_run_again_resumes_from_its_last_round(served: Served, tmp_path: Path) -> None:
    data = served.work / f"big-{uuid.uuid4().hex[:6]}"
    rng = np.random.default_rng(7)
    # Rounds slow enough (300,000 rows at depth 8) that the job is still training when the stop lands: it is sent the
    # moment round 20 reaches the job's log, from this process (the `stop` command's start-up on a busy machine let
    # 120 more rounds go by). Every round is trained once, by one run or the other: their number is the test's cost.
    rounds_in_all = 200
    for name, rows in (("train", 300000), ("validation", 5000)):
        features = rng.standard_normal((rows, 10))
        labels = features @ np.arange(1, 11) / 10 + rng.standard_normal(rows)
        (data / name).mkdir(parents=True)
        np.savetxt(data / name / f"{name}.csv", np.column_stack([labels, features]), delimiter=",", fmt="%.5f")
    checkpoints = f"s3://sagemaker-plugin-local/checkpoints/{data.name}/"

    def spot(task: dict[str, Any]) -> None:
        task["inputs"].update(train=f"{data.name}/train/", validation=f"{data.name}/validation/")
        task["inputs"]["static_hyperparameters"].update(num_round=rounds_in_all, max_depth=8, eta=0.05)
        task["spot"] = {"max_wait_seconds": 7200, "checkpoint_s3_uri": checkpoints}

    first = Proc(["run", served.task(spot), "--no-logs", "--config", served.config], served.work, served.keys)
    try:
        job = re.search(r"^training job (\S+) on ", first.wait_for(r"^training job \S+ on ", 60))
        assert job is not None
        deadline = time.monotonic() + 120
        while not any(index >= 20 for index, _ in rounds(served.logged(job.group(1), 1))):  # mid-training
            assert first.popen.poll() is None and time.monotonic() < deadline, "\n".join(first.lines)
            time.sleep(0.1)
        served.aws.sagemaker.stop_training_job(TrainingJobName=job.group(1))
        first.finish(120)
    finally:
        first.kill()
    described = served.aws.sagemaker.describe_training_job(TrainingJobName=job.group(1))
    assert described["TrainingJobStatus"] == "Stopped"
    stopped_at = max(index for index, _ in rounds(served.messages(job.group(1), 1)))
    assert stopped_at < rounds_in_all - 1
    print(f"spot: stopped at round {stopped_at} of {rounds_in_all}")

    body = served.run(served.task(spot))
    assert body["phase"] == "SUCCEEDED", body
    again = served.messages(body["outputs"]["training_job_name"], 1)
    resumed = next(m for m in again if "Resuming from iteration" in m)
    start = int(resumed.rsplit(" ", 1)[1])
    assert stopped_at - 5 <= start <= stopped_at + 1  # the last checkpoint uploaded when the job stopped
    assert [index for index, _ in rounds(again)] == list(range(start, rounds_in_all))
    assert served.model(body["outputs"]["model"]).num_boosted_rounds() == rounds_in_all


def test_a_bad_hyperparameter_sent_past_the_plugin_fails_the_job_with_a_client_error(served: Served) -> None:
    """The plugin refuses it before any AWS call; a request made directly reaches the algorithm, which fails as the
    container does, and its reason is the job's."""
    name = f"e2e-xgb-badhp-{uuid.uuid4().hex[:8]}"
    served.aws.sagemaker.create_training_job(**served.aws.training_request(name, hyperparameters={
        "num_round": "5", "eta": "7"}))
    job = served.aws.wait(name, timeout=120, interval=0.2)
    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"] == "ClientError: Hyperparameter eta: 7 is not in [0, 1]"
