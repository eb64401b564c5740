"""The server itself: start/stop, ports, counts, state per start, serve() and isolation from plain mock_aws."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

import moto_patch
from children import reaped
from handlers.local_credentials import LocalCredentials
from local_sagemaker import LOCAL_ACCOUNT_ID, PLACEHOLDER_ROLE_ARN, LocalSageMaker, LocalSettings
from local_sagemaker.api import patch
from local_sagemaker.testing import LocalClients, unique_name
from server_reset import reset_state

ROOT = Path(__file__).resolve().parents[3]


def test_start_picks_a_free_port_and_answers_at_once() -> None:
    server = LocalSageMaker(LocalSettings(execution="simulate", time_scale=50))
    url = server.start()
    try:
        assert url.startswith("http://127.0.0.1:") and url == server.url
        assert int(url.rsplit(":", 1)[1]) > 0
        assert LocalClients(url).sagemaker.list_training_jobs()["TrainingJobSummaries"] == []
        assert server.start() == url  # idempotent
    finally:
        server.stop()
    with pytest.raises(OSError):
        urllib.request.urlopen(url + "/moto-api/data.json", timeout=1)


def test_a_given_port_is_used() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with LocalSageMaker(LocalSettings(execution="simulate"), port=port) as server:
        assert server.url == f"http://127.0.0.1:{port}"


def test_counts_are_per_operation_and_can_be_reset() -> None:
    with LocalSageMaker(LocalSettings(execution="simulate", time_scale=50)) as server:
        aws = LocalClients(server.url)
        name = unique_name("count")
        aws.sagemaker.create_training_job(**aws.training_request(name))
        aws.wait(name)
        aws.sagemaker.list_training_jobs()
        counts = server.call_counts()
        assert counts["CreateTrainingJob"] == 1
        assert counts["ListTrainingJobs"] == 1
        assert counts["DescribeTrainingJob"] >= 1
        assert "PutObject" not in counts  # S3 is REST, not a target; it is not counted
        aws.log_messages(name)
        assert server.call_counts("logs") == {"DescribeLogStreams": 1, "GetLogEvents": 1}
        server.reset_counts()
        assert server.call_counts() == {} and server.call_counts("logs") == {}


def test_each_start_begins_with_a_clean_state() -> None:
    name = unique_name("old")
    with LocalSageMaker(LocalSettings(execution="simulate", time_scale=50)) as server:
        aws = LocalClients(server.url)
        aws.sagemaker.create_training_job(**aws.training_request(name))
    with LocalSageMaker(LocalSettings(execution="simulate", time_scale=50)) as server:
        aws = LocalClients(server.url)
        with pytest.raises(ClientError) as excinfo:
            aws.sagemaker.describe_training_job(TrainingJobName=name)
        assert excinfo.value.response["Error"]["Message"] == "Requested resource not found."
        aws.sagemaker.create_training_job(**aws.training_request(name))  # the name is free again


def test_a_reset_also_forgets_the_clock_and_capacity_and_motos_own_reset_is_closed() -> None:
    settings = LocalSettings(execution="simulate", time_scale=50, instances={"ml.p3.2xlarge": 1})
    with LocalSageMaker(settings) as server:
        aws = LocalClients(server.url)
        request = aws.training_request(unique_name("held"), instance_type="ml.p3.2xlarge", max_runtime=100000)
        aws.sagemaker.create_training_job(**request)
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(urllib.request.Request(server.url + "/moto-api/reset", data=b"", method="POST"))
        assert refused.value.code == 403
        assert server.engine.in_use(LOCAL_ACCOUNT_ID, "us-east-1", "ml.p3.2xlarge") == 1
        reset_state(server)
        assert server.engine.in_use(LOCAL_ACCOUNT_ID, "us-east-1", "ml.p3.2xlarge") == 0
        aws.sagemaker.create_training_job(**aws.training_request(unique_name("free"), instance_type="ml.p3.2xlarge"))


def test_plain_mock_aws_keeps_motos_behaviour_after_the_patch() -> None:
    with LocalSageMaker(LocalSettings(execution="simulate")):
        assert moto_patch.installed()
    with mock_aws():
        client = boto3.client("sagemaker", region_name="us-east-1")
        request = LocalClients("unused").training_request("plain", channels={"train": "s3://nowhere/x/"})
        client.create_training_job(**request)
        # moto's own: Completed at once, and its own metric definitions.
        job = client.describe_training_job(TrainingJobName="plain")
        assert job["TrainingJobStatus"] == "Completed"
        assert job["AlgorithmSpecification"]["MetricDefinitions"][0]["Name"] == "test:dcg"
        with pytest.raises(NotImplementedError):
            client.stop_training_job(TrainingJobName="plain")


def test_install_is_idempotent_and_uninstall_restores_moto() -> None:
    from moto.sagemaker.responses import SageMakerResponse

    patch.install()
    patched = SageMakerResponse.describe_training_job
    patch.install()
    assert SageMakerResponse.describe_training_job is patched
    moto_patch.uninstall()
    assert not moto_patch.installed() and not hasattr(SageMakerResponse, "stop_training_job")
    patch.install()
    assert moto_patch.installed()


def test_placeholder_role_is_accepted() -> None:
    assert PLACEHOLDER_ROLE_ARN.startswith(f"arn:aws:iam::{LOCAL_ACCOUNT_ID}:role/")


def test_serve_runs_until_sigterm_and_prints_the_url_once_ready() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "local_sagemaker", "--port", "0", "--time-scale", "50"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    with reaped(process):
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        exports = dict(process.stdout.readline().strip().removeprefix("export ").split("=", 1) for _ in range(4))
        assert exports["AWS_ENDPOINT_URL"] == exports["SAGEMAKER_PLUGIN_ENDPOINT_URL"] == url
        keys = LocalCredentials(exports["AWS_ACCESS_KEY_ID"], exports["AWS_SECRET_ACCESS_KEY"])
        aws = LocalClients(url, region="eu-central-1", credentials=keys)
        name = unique_name("served")
        # the built-in XGBoost really trains (execution: run), so it needs the hyperparameter it requires
        aws.sagemaker.create_training_job(**aws.training_request(name, hyperparameters={"num_round": "2"}))
        assert aws.wait(name, timeout=60)["TrainingJobStatus"] == "Completed"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0


def test_serve_in_process_calls_ready_and_stops_on_sigint() -> None:
    from local_sagemaker import serve

    seen: list[str] = []

    def ready(server: LocalSageMaker) -> None:
        seen.append(server.url)
        LocalClients(server.url, credentials=server.credentials).sagemaker.list_training_jobs()
        os.kill(os.getpid(), signal.SIGINT)

    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    started = time.monotonic()
    serve(LocalSettings(execution="simulate"), port=0, ready=ready)
    assert len(seen) == 1 and time.monotonic() - started < 5
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
