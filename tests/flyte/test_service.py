"""The connector service as an operator runs it (`pyflyte serve connector`): its config is checked before it listens,
it never falls back to a local SageMaker by default, and GetTask's messages carry SageMaker's own words.

Each service is a real `pyflyte serve connector` process; flytekit finds the connector through the
`flytekit.plugins` entry point (tests/flyte/test_serve.py declares it for an install that predates it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("flytekit")
pytest.importorskip("moto")
pytest.importorskip("grpc_health")

import grpc
from flyteidl.admin import agent_pb2
from flyteidl.core.execution_pb2 import TaskExecution
from flyteidl.service import agent_pb2_grpc

from fly_service import connector_service, create_request, entry_point_path, free_port
from local_sagemaker import LocalSageMaker, LocalSettings
from local_sagemaker.testing import LocalClients
from plugin.config import CONFIG_ENV, ENDPOINT_ENV, Config, parse_config
from plugin.flyte import (
    SageMakerBuiltinAlgorithmTask,
    SageMakerTrainingConnector,
    configure,
    service_problems,
    serving,
    start_service,
)
from server_clock import ManualClock

#: the simulated timeline, in real time: Starting 1 s, Downloading 1 s, Training 2 s, Uploading 1 s (the default), so
#: that sweeps every 0.3 s see each secondary status while it lasts, and a test can hold a job in the one it checks
LOCAL_SETTINGS = LocalSettings(time_scale=1, execution="simulate")
ROLE = "arn:aws:iam::123456789012:role/SageMakerTrainingRole"
BUILTIN = "sagemaker_training_job_task"

train = SageMakerBuiltinAlgorithmTask(name="tests.fly.service.xgboost", training_job={
    "algorithmSpecification": {"algorithmName": "XGBOOST", "algorithmVersion": "1.7-1"},
    "trainingJobResourceConfig": {"instanceCount": "1", "instanceType": "ml.m5.xlarge"}})


def service_env(tmp: Path, config: dict[str, Any] | str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in (CONFIG_ENV, ENDPOINT_ENV)}
    if config is not None:
        path = tmp / "config.yaml"
        path.write_text(config if isinstance(config, str) else json.dumps(config))
        env[CONFIG_ENV] = str(path)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (entry_point_path(tmp), env.get("PYTHONPATH", "")) if p)
    return env


def serve_command(port: int) -> list[str]:
    pyflyte = Path(sys.executable).with_name("pyflyte")
    return [str(pyflyte), "serve", "connector", "--port", str(port), "--prometheus_port", str(free_port())]


# --- start-up -----------------------------------------------------------------------------------------------------


#: configs that keep a service from starting, and what its refusal says of each
REFUSED_CONFIGS = [
    (None, "backend: must be set for the connector service: no config was found ($SAGEMAKER_PLUGIN_CONFIG is not "
           "set and there is no ./config.yaml)"),
    ({"region": "eu-west-1"}, "does not set it"),  # a config that forgets the backend: not the local default
    ({"backend": "aws", "region": "eu-west-1"}, "role_arn: is required with the aws backend"),
    ({"backend": "aws", "role_arn": ROLE, "retry": {"atempts": 3}}, "retry.atempts: unknown field"),
    ("backend: [aws\n", "config"),  # not YAML
]


@pytest.mark.parametrize(("config", "says"), REFUSED_CONFIGS[:1])
def test_a_missing_config_stops_the_service_at_start(tmp_path: Path, config: dict[str, Any] | str | None,
                                                     says: str) -> None:
    """The real `pyflyte serve connector` process: it exits 2 before it listens (the other configs go through the
    same check in-process, below)."""
    done = subprocess.run(serve_command(free_port()), cwd=tmp_path, env=service_env(tmp_path, config),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-2000:]
    assert "sagemaker-plugin connector: cannot start: " in done.stderr
    assert says in done.stderr
    assert "Traceback" not in done.stderr
    assert "Starting the connector service" not in done.stdout  # it never listened


@pytest.mark.parametrize(("config", "says"), REFUSED_CONFIGS[1:])
def test_a_broken_or_incomplete_config_stops_the_service_at_start(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        config: dict[str, Any] | str, says: str) -> None:
    """What the service's start (flytekit's import of the plugin in `pyflyte serve connector`) does with the config:
    exit 2 saying why, and nothing else raised (no traceback)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(CONFIG_ENV, service_env(tmp_path, config)[CONFIG_ENV])
    monkeypatch.delenv(ENDPOINT_ENV, raising=False)
    with pytest.raises(SystemExit) as exited:
        start_service()
    assert exited.value.code == 2 and exited.value.__suppress_context__
    stderr = capsys.readouterr().err
    assert stderr.startswith("sagemaker-plugin connector: cannot start: ") and says in stderr, stderr


def test_an_aws_config_serves_and_says_where(tmp_path: Path) -> None:
    port = free_port()
    config = {"backend": "aws", "region": "eu-west-1", "role_arn": ROLE}
    env = service_env(tmp_path, config)
    log = tmp_path / "connector.log"
    with log.open("w") as out:
        process = subprocess.Popen(serve_command(port), cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT)
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        grpc.channel_ready_future(channel).result(timeout=60)
        assert (f"sagemaker-plugin connector: backend aws, region eu-west-1, SageMaker endpoint "
                f"https://api.sagemaker.eu-west-1.amazonaws.com, config {tmp_path / 'config.yaml'}") in log.read_text()
    finally:
        channel.close()
        process.terminate()
        process.wait(timeout=10)


def test_serving_is_the_connector_service_command_line_only() -> None:
    assert serving(["/venv/bin/pyflyte", "serve", "connector", "--port", "8000"])
    assert serving(["pyflyte", "-v", "serve", "agent"])
    assert serving(["/x/flytekit/clis/sdk_in_container/pyflyte.py", "serve", "connector"])
    assert not serving(["pyflyte", "run", "examples/flyte_workflow.py", "training_workflow"])
    assert not serving(["python", "examples/flyte_workflow.py"])
    assert not serving(["pyflyte", "serve", "connector", "--help"])
    assert not serving(["/venv/bin/pytest", "serve", "connector"])
    assert not serving([])


def test_the_local_backend_serves_only_when_the_config_says_so() -> None:
    assert service_problems(parse_config({"backend": "local"})) == []
    assert [p.path for p in service_problems(parse_config({"region": "us-east-1"}))] == ["backend"]
    assert [p.path for p in service_problems(Config())] == ["backend"]
    assert service_problems(parse_config({"backend": "aws", "role_arn": ROLE})) == []


def test_a_create_from_propeller_in_an_unrecognised_service_refuses_the_implicit_local_backend(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: LocalSageMaker) -> None:
    """A service started some other way than `pyflyte serve connector`: propeller's CreateTask carries the task
    execution metadata (the local mixin's does not), and the forgotten config then fails the task, creating nothing."""
    from flytekit.models.task import TaskExecutionMetadata, TaskTemplate

    (tmp_path / "config.yaml").write_text(json.dumps({"local": {"endpoint_url": server.url}}))  # no backend
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    monkeypatch.delenv(ENDPOINT_ENV, raising=False)
    configure()  # the shared plugin is built from load_config() at first use, as in a service
    try:
        request = create_request(train, {"train": "s3://b/train/", "validation": "s3://b/validation/"}, "implicit1")
        before = len(LocalClients(server.url).sagemaker.list_training_jobs()["TrainingJobSummaries"])
        meta = SageMakerTrainingConnector(BUILTIN).create(
            task_template=TaskTemplate.from_flyte_idl(request.template), output_prefix="s3://b/x",
            task_execution_metadata=TaskExecutionMetadata.from_flyte_idl(request.task_execution_metadata))
        assert meta.job is None
        assert "the SageMaker connector service is not configured" in meta.error
        assert "backend: must be set for the connector service" in meta.error
        assert len(LocalClients(server.url).sagemaker.list_training_jobs()["TrainingJobSummaries"]) == before
    finally:
        configure()


def test_a_create_from_propeller_in_an_unrecognised_service_refuses_the_local_backend_it_cannot_keep_to_loopback(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: LocalSageMaker) -> None:
    """Only `pyflyte serve connector` is kept to loopback: a service started otherwise runs no local job."""
    from flytekit.models.task import TaskExecutionMetadata, TaskTemplate

    (tmp_path / "config.yaml").write_text(json.dumps({"backend": "local", "local": {"endpoint_url": server.url}}))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    monkeypatch.delenv(ENDPOINT_ENV, raising=False)
    configure()
    try:
        request = create_request(train, {"train": "s3://b/train/", "validation": "s3://b/validation/"}, "unkept1")
        meta = SageMakerTrainingConnector(BUILTIN).create(
            task_template=TaskTemplate.from_flyte_idl(request.template), output_prefix="s3://b/x",
            task_execution_metadata=TaskExecutionMetadata.from_flyte_idl(request.task_execution_metadata))
        assert meta.job is None
        assert "backend: local runs the command of every task on this machine" in meta.error
        names = [j["TrainingJobName"] for j in LocalClients(server.url).sagemaker.list_training_jobs()[
            "TrainingJobSummaries"]]
        assert "flytesnacks-development-unkept1-n0-0" not in names
    finally:
        configure()


# --- messages -------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def service(server: LocalSageMaker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[grpc.Channel]:
    """A service that tracks jobs with sweeps (every 0.3 s), as in a cluster: statuses come from ListTrainingJobs."""
    with connector_service(server.url, tmp_path_factory.mktemp("messages"), server.credentials.env(),
                           tracking={"sweep_interval_seconds": 0.3}) as connector:
        yield connector.channel


def test_get_task_shows_each_secondary_status_with_sagemakers_message_as_run_does(
        service: grpc.Channel, server: LocalSageMaker, server_clock: ManualClock) -> None:
    """The service's first GetTask of a job already in Training (a real local run gets there within a blink of its
    creation) finds it in its cold-start census or a sweep, whose summaries have the status but not its message: the
    message must still be SageMaker's words, as `run` prints them, and so must every later status's."""
    aws = LocalClients(server.url)
    data = {"train": aws.put_data("messages/train"), "validation": aws.put_data("messages/validation")}
    stub = agent_pb2_grpc.AsyncAgentServiceStub(service)
    category = agent_pb2.TaskCategory(name=BUILTIN, version=0)

    def shown_now(created: agent_pb2.CreateTaskResponse) -> tuple[str, str]:
        resource = stub.GetTask(agent_pb2.GetTaskRequest(task_category=category,
                                                         resource_meta=created.resource_meta)).resource
        return TaskExecution.Phase.Name(resource.phase), resource.message

    with server_clock.held():
        created = stub.CreateTask(create_request(train, data, "messagesa1"))
        server_clock.advance(2.5)  # Starting (1 s) and Downloading (1 s) are over: first asked for in Training
        shown = [shown_now(created)]
    deadline = time.monotonic() + 60
    while shown[-1][0] not in ("SUCCEEDED", "FAILED", "ABORTED") and time.monotonic() < deadline:
        time.sleep(0.1)
        if (entry := shown_now(created)) != shown[-1]:
            shown.append(entry)
    # the words `sagemaker-plugin run` prints for the same statuses (the local SageMaker's, as SageMaker words them)
    assert shown[0] == ("RUNNING", "Training: Training image download completed. Training in progress."), shown
    assert shown[-1] == ("SUCCEEDED", "Completed"), shown
    bare = [message for phase, message in shown[:-1] if ": " not in message]
    assert bare == [], shown  # never the bare status a ListTrainingJobs summary has

