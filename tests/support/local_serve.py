"""Helpers of tests/clients: a `sagemaker-plugin local serve` process and boto3 clients for it.

The server is a subprocess (its own process group) on a free port; its URL is read from what it prints. If it
prints `export AWS_...=...` lines (a server that signs its clients in with credentials of its own), those credentials
are used, else dummy ones. Every client here reaches it through `AWS_ENDPOINT_URL`, as botocore (>= 1.31) reads it for
every service, so clients that make their own boto3 clients inside (the SageMaker Python SDK's logs and CloudWatch
readers) reach it too.
"""

from __future__ import annotations

import os
import queue
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest

from children import dies_with_test

SCRIPT = Path(sys.executable).parent / "sagemaker-plugin"
ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
BUCKET = "client-tests"
#: Jobs whose name matches fail halfway through Training (the local SageMaker's `failures` setting).
FAILING = "fails-"
#: The jobs play the timeline (these tests are about the API, not about training): Training lasts 1 s (10 timeline
#: seconds at time_scale 10), long enough to stop a job in it, and every host logs metrics.
CONFIG = f"""\
backend: local
local:
  execution: simulate
  time_scale: 10
  timeline: {{Starting: 1, Downloading: 1, Training: 10, Uploading: 1}}
  failures:
    - {{name_pattern: "{FAILING}.*", at: Training, reason: "AlgorithmError: injected by the client tests"}}
"""


@dataclass
class Served:
    """A running `local serve`: its URL, the credentials it printed (or dummy ones), and boto3 clients for it."""

    url: str
    credentials: dict[str, str]
    output: list[str] = field(default_factory=list)
    _clients: dict[str, Any] = field(default_factory=dict)

    def session(self) -> boto3.Session:
        return boto3.Session(
            aws_access_key_id=self.credentials["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=self.credentials["AWS_SECRET_ACCESS_KEY"],
            region_name=REGION,
        )

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.session().client(service, endpoint_url=self.url)  # type: ignore[call-overload]
        return self._clients[service]

    def put_csv(self, key: str, rows: int = 20) -> str:
        """A small CSV object (label first, as the built-in XGBoost reads it) under `key`; its prefix as an S3 URI."""
        body = "".join(f"{i % 7}.0,{i}.0,{i * 2 % 5}.0\n" for i in range(rows)).encode()
        self.client("s3").put_object(Bucket=BUCKET, Key=f"{key}/part-0.csv", Body=body)
        return f"s3://{BUCKET}/{key}/"

    def request(self, name: str, **changes: Any) -> dict[str, Any]:
        """A CreateTrainingJob request for the built-in XGBoost, as boto3 users write it, with data in the local S3."""
        from local_sagemaker import PLACEHOLDER_ROLE_ARN
        from local_sagemaker.testing import XGBOOST_IMAGE  # what the SDK's image_uris gives for us-east-1

        request: dict[str, Any] = {
            "TrainingJobName": name,
            "RoleArn": PLACEHOLDER_ROLE_ARN,
            "AlgorithmSpecification": {
                "TrainingImage": XGBOOST_IMAGE,
                "TrainingInputMode": "File",
            },
            "HyperParameters": {"num_round": "5", "objective": "reg:squarederror"},
            "InputDataConfig": [
                {
                    "ChannelName": "train",
                    "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": self.put_csv(f"{name}/train")}},
                    "ContentType": "text/csv",
                }
            ],
            "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/output"},
            "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
            "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        }
        request.update(changes)
        return request

    def env(self) -> dict[str, str]:
        """The environment a client process would have: the endpoint and the server's credentials."""
        return {"AWS_ENDPOINT_URL": self.url, "AWS_DEFAULT_REGION": REGION, **self.credentials}


class FastClock:
    """Stands in for the `time` module inside sagemaker.session: each sleep takes at most 50 ms of real time but
    advances the clock the SDK reads by the full amount, so its "every 30 s" checks (and a tuner's 5 s polls) come
    round quickly without changing what the SDK asks or prints."""

    def __init__(self) -> None:
        self.offset = 0.0

    def sleep(self, seconds: float) -> None:
        real = min(seconds, 0.05)
        time.sleep(real)
        self.offset += seconds - real

    def time(self) -> float:
        return time.time() + self.offset


#: The SDK's defaults config with telemetry off: tests talk to 127.0.0.1 only (the SDK would call an AWS S3 URL).
SDK_CONFIG = {"SchemaVersion": "1.0", "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}}}


def only_the_server(served: Served, patch: pytest.MonkeyPatch) -> None:
    """This process's AWS environment, for as long as `patch` lasts: the server's endpoint and credentials, nothing of
    the caller's AWS setup (variables, config and credentials files)."""
    for key in list(os.environ):
        if key.startswith("AWS_"):
            patch.delenv(key)
    for key, value in served.env().items():
        patch.setenv(key, value)
    patch.setenv("AWS_CONFIG_FILE", os.devnull)
    patch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)


def sdk_client_session(served: Served, patch: pytest.MonkeyPatch) -> Any:
    """A SageMaker Python SDK session for the server, with this process as its client for as long as `patch` lasts:
    the server's endpoint and credentials and nothing of the caller's AWS setup, and FastClock as the SDK's time."""
    import sagemaker
    import sagemaker.session

    only_the_server(served, patch)
    patch.setattr(sagemaker.session, "time", FastClock())
    return sagemaker.Session(boto_session=served.session(), default_bucket=BUCKET, sagemaker_config=SDK_CONFIG)


def _reader(stream: Any, lines: queue.Queue[str | None]) -> None:
    for line in stream:
        lines.put(line.rstrip("\n"))
    lines.put(None)


@contextmanager
def local_serve(folder: Path, config_text: str = CONFIG) -> Iterator[Served]:
    """Runs `sagemaker-plugin local serve --port 0` (config: `config_text`) until the block ends."""
    config = folder / "config.yaml"
    config.write_text(config_text, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}  # never the caller's own credentials
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    process = subprocess.Popen(
        [str(SCRIPT), "local", "serve", "--port", "0", "--config", str(config)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=folder, start_new_session=True,
        preexec_fn=dies_with_test,
    )
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_reader, args=(process.stdout, lines), daemon=True).start()
    try:
        output: list[str] = []
        url, found_at = None, 0.0
        credentials: dict[str, str] = {}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            # Once the URL is out, a server that prints credentials does so right after it: wait briefly for them.
            wait = 0.1 if url is None else max(0.0, min(deadline, found_at + 2.0) - time.monotonic())
            try:
                line = lines.get(timeout=wait) if wait > 0 else None
            except queue.Empty:
                line = None
            if line is None:
                if url is not None or process.poll() is not None:
                    break
                continue
            output.append(line)
            found = re.search(r"(http://127\.0\.0\.1:\d+)", line)
            if url is None and found:
                url, found_at = found.group(1), time.monotonic()
            exported = re.match(r"\s*export (AWS_ACCESS_KEY_ID|AWS_SECRET_ACCESS_KEY|AWS_SESSION_TOKEN)=(.*)", line)
            if exported:
                credentials[exported.group(1)] = shlex.split(exported.group(2))[0]
            if url is not None and {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= set(credentials):
                break
        assert url is not None, "local serve printed no URL:\n" + "\n".join(output)
        if not credentials:
            credentials = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
        server = Served(url, credentials, output)
        server.client("s3").create_bucket(Bucket=BUCKET)
        yield server
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
