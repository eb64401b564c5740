"""The Flyte 2 connector as Flyte 2 serves it: a real `c0` process (Flyte 2's connector server) over gRPC, on a local
SageMaker: create / get / delete, an abort, metas that are malformed or not this connector's (FAILED, never
INTERNAL), and the same checks and messages as flytekit's connector (one implementation underneath)."""

from __future__ import annotations

import ipaddress
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("flyte.connectors")
pytest.importorskip("flytekit")  # fly_service (the process's environment) is shared with the flytekit tests
pytest.importorskip("moto")
pytest.importorskip("grpc_health")

import grpc
import psutil
from flyteidl2.connector import connector_pb2, service_pb2_grpc
from flyteidl2.core.execution_pb2 import TaskExecution

import fly2_service
from fly_service import Connector
from local_sagemaker import LocalSageMaker, LocalSettings
from local_sagemaker.testing import LocalClients
from plugin.connectors.meta import UNREADABLE_META, UNTRUSTED_META
from plugin.flyte2 import CONNECTOR_NAME, SageMakerBuiltinAlgorithmTask
from server_clock import ManualClock

#: simulated jobs: Starting 1 s, Downloading 1 s, Training 2 s, Uploading 1 s, sped up 5 times
LOCAL_SETTINGS = LocalSettings(execution="simulate", time_scale=5)
BUILTIN = "sagemaker_training_job_task"
CATEGORY = connector_pb2.TaskCategory(name=BUILTIN, version=0)
TERMINAL = (TaskExecution.SUCCEEDED, TaskExecution.FAILED, TaskExecution.ABORTED)

train = SageMakerBuiltinAlgorithmTask(name="tests.fly2.service.xgboost", training_job={
    "algorithmSpecification": {"algorithmName": "XGBOOST", "algorithmVersion": "1.7-1"},
    "trainingJobResourceConfig": {"instanceCount": "1", "instanceType": "ml.m5.xlarge"}})


@pytest.fixture(scope="module")
def served(server: LocalSageMaker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Connector]:
    with fly2_service.connector_service(server.url, tmp_path_factory.mktemp("serve2"),
                                        server.credentials.env(),
                                        # sweeps every second, not 10 s: a job's end is seen within a second of it
                                        tracking={"sweep_interval_seconds": 1}) as connector:
        yield connector


@pytest.fixture(scope="module")
def stub(served: Connector) -> Any:
    return service_pb2_grpc.AsyncConnectorServiceStub(served.channel)


@pytest.fixture(scope="module")
def data(server: LocalSageMaker) -> dict[str, str]:
    aws = LocalClients(server.url)
    return {"train": aws.put_data("serve2/train"), "validation": aws.put_data("serve2/validation")}


def get(stub: Any, resource_meta: bytes) -> Any:
    return stub.GetTask(connector_pb2.GetTaskRequest(task_category=CATEGORY, resource_meta=resource_meta)).resource


def get_until_terminal(stub: Any, resource_meta: bytes, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        resource = get(stub, resource_meta)
        if resource.phase in TERMINAL:
            return resource
        time.sleep(0.1)
    raise TimeoutError(f"still {TaskExecution.Phase.Name(resource.phase)}")


def literals(outputs: Any) -> dict[str, Any]:
    return {named.name: named.value for named in outputs.literals}


def test_the_server_lists_the_connector_for_every_task_type(served: Connector) -> None:
    metadata = service_pb2_grpc.ConnectorMetadataServiceStub(served.channel)
    connector = metadata.GetConnector(connector_pb2.GetConnectorRequest(name=CONNECTOR_NAME)).connector
    assert sorted(c.name for c in connector.supported_task_categories) == sorted(
        [BUILTIN, "sagemaker_custom_training_job_task", "sagemaker_hyperparameter_tuning_job_task"])
    # with the local backend it runs any task's command on its machine: loopback only (plugin/connectors/loopback.py),
    # its gRPC and metrics ports both, though c0 asks for every interface
    assert "listening on 127.0.0.1 only" in served.log.read_text()
    bound = {(c.laddr.ip, c.laddr.port) for c in psutil.Process(served.pid).net_connections(kind="inet")
             if c.status == psutil.CONN_LISTEN}
    assert {port for _, port in bound} >= {served.port, served.metrics_port}
    addresses = [ipaddress.ip_address(ip) for ip, _ in bound]  # ::ffff:127.0.0.1: loopback on a dual-stack socket
    assert all(a.is_loopback or getattr(a, "ipv4_mapped", None) in ipaddress.ip_network("127.0.0.0/8")
               for a in addresses), bound


@pytest.fixture(scope="module")
def succeeded(stub: Any, data: dict[str, str]) -> tuple[Any, Any]:
    """One job created and got until it ended: its CreateTask answer and its last resource. The tests that only read
    such a job share it."""
    created = stub.CreateTask(fly2_service.create_request(train, data, "servetwo1"))
    return created, get_until_terminal(stub, created.resource_meta)


def test_create_get_to_success(stub: Any, server: LocalSageMaker, data: dict[str, str],
                               succeeded: tuple[Any, Any]) -> None:
    created, final = succeeded
    meta = json.loads(created.resource_meta)  # the same JSON meta as flytekit's connector
    assert meta["job"]["job_name"] == "flytesnacks-development-servetwo1-n0-0" and meta["error"] == ""
    assert final.phase == TaskExecution.SUCCEEDED, final.message
    assert "Logs (local SageMaker)" in [link.name for link in final.log_links]
    described = LocalClients(server.url).sagemaker.describe_training_job(
        TrainingJobName="flytesnacks-development-servetwo1-n0-0")
    outputs = literals(final.outputs)
    assert outputs["model"].scalar.blob.uri == described["ModelArtifacts"]["S3ModelArtifacts"]
    final_metrics = {m["MetricName"]: m["Value"] for m in described["FinalMetricDataList"]}
    assert set(final_metrics) == {"train:rmse", "validation:rmse"}
    assert final.custom_info["training_job_name"] == "flytesnacks-development-servetwo1-n0-0"
    # a second CreateTask of the same execution adopts the job (idempotent), and its GetTask says the same
    again = stub.CreateTask(fly2_service.create_request(train, data, "servetwo1"))
    assert json.loads(again.resource_meta)["job"]["job_name"] == meta["job"]["job_name"]


def test_delete_aborts_the_job(stub: Any, server: LocalSageMaker, server_clock: ManualClock,
                               data: dict[str, str]) -> None:
    created = stub.CreateTask(fly2_service.create_request(train, data, "servetwo2"))
    name = json.loads(created.resource_meta)["job"]["job_name"]
    aws = LocalClients(server.url)
    server_clock.hold()  # the job stays in progress until the stop has reached it
    try:
        assert aws.sagemaker.describe_training_job(TrainingJobName=name)["TrainingJobStatus"] == "InProgress"
        stub.DeleteTask(connector_pb2.DeleteTaskRequest(task_category=CATEGORY, resource_meta=created.resource_meta))
        stub.DeleteTask(connector_pb2.DeleteTaskRequest(task_category=CATEGORY, resource_meta=created.resource_meta))
    finally:
        server_clock.run()
    final = get_until_terminal(stub, created.resource_meta)
    assert final.phase == TaskExecution.ABORTED, final.message
    assert aws.sagemaker.describe_training_job(TrainingJobName=name)["TrainingJobStatus"] in ("Stopping", "Stopped")


@pytest.mark.parametrize(("meta", "says"), [
    (b"", "it is empty"),
    (b"\xff\xfe not json", "it is not JSON"),
    (b'{"job": 1}', "not a JSON object with keys job and error"),
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    (b'{"job": {"job_name": "x"}, "error": ""}', "its job (x)"),
])
def test_a_malformed_meta_is_failed_never_internal(stub: Any, meta: bytes, says: str) -> None:
    resource = get(stub, meta)  # grpc.RpcError (INTERNAL) would fail the test here
    assert resource.phase == TaskExecution.FAILED
    assert resource.message.startswith(UNREADABLE_META) and says in resource.message
    stub.DeleteTask(connector_pb2.DeleteTaskRequest(task_category=CATEGORY, resource_meta=meta))  # nothing to stop


def test_a_meta_naming_another_endpoint_is_failed(stub: Any, data: dict[str, str]) -> None:
    created = stub.CreateTask(fly2_service.create_request(train, data, "servetwo3"))
    meta = json.loads(created.resource_meta)
    meta["job"]["endpoint_url"] = "http://attacker.example:8080"
    resource = get(stub, json.dumps(meta).encode())
    assert resource.phase == TaskExecution.FAILED
    assert UNTRUSTED_META in resource.message and "attacker.example" in resource.message


@pytest.mark.parametrize(("values", "says"), [
    ({"static_hyperparameters": {"num_round": "many"}}, "num_round"),
    ({"train": "/etc"}, "is a path on the connector's machine"),
])
def test_an_invalid_task_is_failed_with_its_problems(stub: Any, data: dict[str, str], values: dict[str, Any],
                                                     says: str) -> None:
    task = train if "train" not in values else SageMakerBuiltinAlgorithmTask(
        name="tests.fly2.service.uri", training_job=train.training_job, inputs={"train": str, "validation": str,
                                                                                "static_hyperparameters": dict})
    request = fly2_service.create_request(task, data, "servetwo4", **(
        {"validation": data["validation"], **values} if "train" in values else values))
    resource = get(stub, stub.CreateTask(request).resource_meta)
    assert resource.phase == TaskExecution.FAILED
    assert resource.message.startswith("invalid SageMaker training task") and says in resource.message


def test_unknown_task_type_is_not_found(stub: Any) -> None:
    category = connector_pb2.TaskCategory(name="not_a_sagemaker_task", version=0)
    with pytest.raises(grpc.RpcError) as raised:
        stub.GetTask(connector_pb2.GetTaskRequest(task_category=category, resource_meta=b"{}"))
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND


def test_pyproject_declares_the_entry_point_flyte_2_loads() -> None:
    import tomllib

    project = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())["project"]
    assert project["entry-points"]["flyte.connectors"] == {"sagemaker_plugin": f"{fly2_service.MODULE}:"
                                                                               "SageMakerConnector"}


def test_inputs_the_server_cannot_read_are_invalid_argument_never_internal(stub: Any, data: dict[str, str]) -> None:
    request = fly2_service.create_request(train, data, "servetwo5")
    for named in request.inputs.literals:
        if named.name == "static_hyperparameters":
            named.value.scalar.binary.value = b"\xc1"  # a byte msgpack never uses
    with pytest.raises(grpc.RpcError) as raised:
        stub.CreateTask(request)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT, raised.value.details()
    assert raised.value.details().startswith("inputs: cannot be read")


def test_logs_and_metrics_of_a_job_and_clean_codes_for_a_foreign_meta(stub: Any, succeeded: tuple[Any, Any]) -> None:
    created, final = succeeded
    assert final.phase == TaskExecution.SUCCEEDED
    header, body = list(stub.GetTaskLogs(connector_pb2.GetTaskLogsRequest(
        task_category=CATEGORY, resource_meta=created.resource_meta, lines=1000)))
    assert header.header.token and body.body.results
    assert all(line.startswith("[algo-1] ") for line in body.body.results)
    metrics = stub.GetTaskMetrics(connector_pb2.GetTaskMetricsRequest(
        task_category=CATEGORY, resource_meta=created.resource_meta, queries=["validation:rmse"]))
    assert [result.metric for result in metrics.results] == ["validation:rmse"]
    foreign = json.loads(created.resource_meta)
    foreign["job"]["endpoint_url"] = "http://attacker.example:8080"
    for call, request in ((lambda r: list(stub.GetTaskLogs(r)), connector_pb2.GetTaskLogsRequest(
            task_category=CATEGORY, resource_meta=json.dumps(foreign).encode())),
                          (stub.GetTaskMetrics, connector_pb2.GetTaskMetricsRequest(
                              task_category=CATEGORY, resource_meta=json.dumps(foreign).encode()))):
        with pytest.raises(grpc.RpcError) as raised:
            call(request)
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT, raised.value.details()
        assert UNTRUSTED_META in raised.value.details()


@pytest.mark.parametrize(("config", "says"), [
    (None, "backend: must be set for the connector service: no config was found"),
    ({"backend": "aws", "region": "eu-west-1"}, "role_arn: is required with the aws backend"),
])
def test_c0_refuses_to_start_without_a_config_that_can_serve(tmp_path: Path, config: dict[str, Any] | None,
                                                            says: str) -> None:
    import os
    import subprocess
    import sys

    from fly_service import free_port
    from plugin.config import CONFIG_ENV, ENDPOINT_ENV

    env = {k: v for k, v in os.environ.items() if k not in (CONFIG_ENV, ENDPOINT_ENV)}
    if config is not None:
        (tmp_path / "config.json").write_text(json.dumps(config))
        env[CONFIG_ENV] = str(tmp_path / "config.json")
    c0 = str(Path(sys.executable).with_name("c0"))
    done = subprocess.run([c0, "--port", str(free_port()), "--prometheus_port", str(free_port()), "--modules",
                           fly2_service.MODULE], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-2000:]
    assert "sagemaker-plugin connector: cannot start: " in done.stderr and says in done.stderr
    assert "Traceback" not in done.stderr
