"""The served connector as an attacker who reaches its port finds it: loopback only with the local backend, requests
only to its own config's endpoint and region, and a clean answer (FAILED, INVALID_ARGUMENT) for every malformed meta,
template and literal, never INTERNAL with a traceback.

Each service is a real `pyflyte serve connector` process over gRPC (tests/support/fly_service.py).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import socket
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("flytekit")
pytest.importorskip("moto")
pytest.importorskip("grpc_health")
pytest.importorskip("psutil")

import grpc
import psutil
from flyteidl.admin import agent_pb2
from flyteidl.core import literals_pb2
from flyteidl.core.execution_pb2 import TaskExecution
from flyteidl.service import agent_pb2_grpc

import fly_service
from fly_service import Connector
from handlers.log_cursor import encode_token
from handlers.request import FINGERPRINT_TAG, fingerprint
from local_sagemaker import LocalSageMaker, LocalSettings
from local_sagemaker.testing import LocalClients
from plugin.config import parse_config
from plugin.flyte import SageMakerBuiltinAlgorithmTask, task_from_template
from plugin.jobs.training_job import TrainingJobPlugin
from plugin.meta import ResourceMeta

LOCAL_SETTINGS = LocalSettings(execution="simulate", time_scale=5)
BUILTIN = "sagemaker_training_job_task"
CATEGORY = agent_pb2.TaskCategory(name=BUILTIN, version=0)
ROLE = "arn:aws:iam::123456789012:role/SageMakerTrainingRole"
#: an answer within this, or the test fails (a request sent to a listener that never answers hangs far longer)
DEADLINE = 30
#: credentials that sign nothing real, and no other source of them
FAKE_AWS = {"AWS_ACCESS_KEY_ID": "AKIAFAKEFAKEFAKEFAKE", "AWS_SECRET_ACCESS_KEY": "fake-secret",
            "AWS_SESSION_TOKEN": "fake-session-token", "AWS_CONFIG_FILE": "/nonexistent",
            "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent", "AWS_EC2_METADATA_DISABLED": "true"}

train = SageMakerBuiltinAlgorithmTask(name="tests.fly.safely.xgboost", training_job={
    "algorithmSpecification": {"algorithmName": "XGBOOST", "algorithmVersion": "1.7-1"},
    "trainingJobResourceConfig": {"instanceCount": "1", "instanceType": "ml.m5.xlarge"}})
DATA = {"train": "s3://safely/train/", "validation": "s3://safely/validation/"}


@pytest.fixture(scope="module")
def local(server: LocalSageMaker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Connector]:
    with fly_service.connector_service(server.url, tmp_path_factory.mktemp("safely-local"), server.credentials.env(),
                                       tracking={"not_found_grace_seconds": 1}) as connector:
        yield connector


@pytest.fixture(scope="module")
def aws(server: LocalSageMaker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Connector]:
    """A service on the aws backend, signing with fake credentials: nothing it sends may leave for the meta's host."""
    with fly_service.connector_service(server.url, tmp_path_factory.mktemp("safely-aws"), FAKE_AWS, backend="aws",
                                       region="us-east-1", role_arn=ROLE) as connector:
        yield connector


def stub(connector: Connector) -> Any:
    return agent_pb2_grpc.AsyncAgentServiceStub(connector.channel)


def job_meta(**fields: Any) -> dict[str, Any]:
    return {"job_name": "flytesnacks-development-safely-n0-0", "region": "us-east-1", "created_at": 1.0,
            "version": 1, **fields}


def encoded(job: dict[str, Any]) -> bytes:
    return json.dumps({"job": job, "error": ""}).encode()


def get_task(connector: Connector, resource_meta: bytes) -> Any:
    return stub(connector).GetTask(agent_pb2.GetTaskRequest(task_category=CATEGORY, resource_meta=resource_meta),
                                   timeout=DEADLINE).resource


def grpc_error(call: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as raised:
        answer = call()
        for _ in answer if hasattr(answer, "__next__") else ():
            pass
    return raised.value


@contextlib.contextmanager
def listener() -> Iterator[tuple[str, socket.socket]]:
    """An endpoint on another 127.0.0.1 port that accepts connections and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}", sock


def connections(sock: socket.socket) -> int:
    sock.setblocking(False)
    count = 0
    while True:
        try:
            sock.accept()[0].close()
        except BlockingIOError:
            return count
        count += 1


# --- who can reach it -----------------------------------------------------------------------------------------------


def listening(pid: int) -> set[tuple[str, int]]:
    return {(c.laddr.ip, c.laddr.port) for c in psutil.Process(pid).net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN}


def loopback(ip: str) -> bool:
    """127.0.0.0/8 or ::1, also as an IPv4-mapped address (::ffff:127.0.0.1, how a dual-stack socket shows it)."""
    address = ipaddress.ip_address(ip)
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or (mapped is not None and mapped.is_loopback)


def test_with_the_local_backend_the_service_and_its_metrics_listen_on_loopback_only(local: Connector) -> None:
    bound = listening(local.pid)
    assert {port for _, port in bound} >= {local.port, local.metrics_port}
    assert all(loopback(ip) for ip, _ in bound), bound
    assert "listening on 127.0.0.1 only (its gRPC and metrics ports)" in local.log.read_text()


# --- where requests go ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["local", "aws"])
def test_a_meta_naming_another_endpoint_is_failed_and_nothing_is_sent_there(
        backend: str, request: pytest.FixtureRequest) -> None:
    connector: Connector = request.getfixturevalue(backend)
    with listener() as (url, sock):
        # another spelling of the same endpoint is still another endpoint: case and default ports aside, it is
        # the scheme, host and port that count
        for endpoint in (url, url.upper().replace("HTTP://", "http://"), url + "/sagemaker"):
            meta = encoded(job_meta(endpoint_url=endpoint))
            resource = get_task(connector, meta)
            assert resource.phase == TaskExecution.FAILED
            assert "resource_meta.endpoint_url: names endpoint" in resource.message
            assert "requests go only where the connector's config says" in resource.message
            stub(connector).DeleteTask(agent_pb2.DeleteTaskRequest(task_category=CATEGORY, resource_meta=meta),
                                       timeout=DEADLINE)
            for call in (lambda meta=meta: stub(connector).GetTaskLogs(agent_pb2.GetTaskLogsRequest(
                             task_category=CATEGORY, resource_meta=meta), timeout=DEADLINE),
                         lambda meta=meta: stub(connector).GetTaskMetrics(agent_pb2.GetTaskMetricsRequest(
                             task_category=CATEGORY, resource_meta=meta), timeout=DEADLINE)):
                error = grpc_error(call)
                assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
                assert "resource_meta.endpoint_url" in (error.details() or "")
        assert connections(sock) == 0
    assert "Traceback" not in connector.log.read_text()


def test_a_meta_of_another_region_is_failed(local: Connector, server: LocalSageMaker) -> None:
    resource = get_task(local, encoded(job_meta(endpoint_url=server.url, region="eu-west-1")))
    assert resource.phase == TaskExecution.FAILED
    assert "resource_meta.region: 'eu-west-1' is not this connector's region (us-east-1)" in resource.message


def queued_meta(server: LocalSageMaker, execution: str, **changes: Any) -> ResourceMeta:
    """A meta whose create waits for quota, as this service's config renders it; `changes` replace request members
    (the fingerprint made to match, as a forger would)."""
    config = parse_config(fly_service.local_config(server.url))
    task = task_from_template(fly_service.serialized(train), fly_service.literal_map(train, {
        "train": DATA["train"], "validation": DATA["validation"], "static_hyperparameters": {"num_round": 2}}))
    task["execution"] = {"project": "flytesnacks", "domain": "development", "name": execution}
    request = {**TrainingJobPlugin(config, embedded=False).render(task).request, **changes}
    request["Tags"] = [t for t in request["Tags"] if t["Key"] != FINGERPRINT_TAG]
    request["Tags"].append({"Key": FINGERPRINT_TAG, "Value": fingerprint(request)})
    return ResourceMeta(job_name=request["TrainingJobName"], region="us-east-1", created_at=time.time(),
                        fingerprint=fingerprint(request), endpoint_url=server.url, queued_request=request,
                        queued_message="ResourceLimitExceeded")


def test_a_queued_request_is_followed_only_as_the_config_renders_it(local: Connector, server: LocalSageMaker) -> None:
    aws = LocalClients(server.url, credentials=server.credentials)
    forged = queued_meta(server, "forged1", RoleArn="arn:aws:iam::123456789012:role/Admin",
                         OutputDataConfig={"S3OutputPath": "s3://forged-bucket/x"})
    resource = get_task(local, encoded(asdict(forged)))
    assert resource.phase == TaskExecution.FAILED
    assert "resource_meta.queued_request.RoleArn: is 'arn:aws:iam::123456789012:role/Admin', not the config's " \
           "'arn:aws:iam::123456789012:role/LocalSageMakerRole'" in resource.message
    assert "resource_meta.queued_request.OutputDataConfig.S3OutputPath: 's3://forged-bucket/x' is not under the " \
           "config's output_prefix" in resource.message
    stub(local).DeleteTask(agent_pb2.DeleteTaskRequest(task_category=CATEGORY,
                                                       resource_meta=encoded(asdict(forged))), timeout=DEADLINE)
    names = [j["TrainingJobName"] for j in aws.sagemaker.list_training_jobs()["TrainingJobSummaries"]]
    assert forged.job_name not in names  # no job made with the forged role
    buckets = [b["Name"] for b in aws.s3.list_buckets()["Buckets"]]
    assert "forged-bucket" not in buckets  # no abort mark written where the meta said

    genuine = queued_meta(server, "genuine1")
    resource = get_task(local, encoded(asdict(genuine)))
    assert resource.phase != TaskExecution.FAILED, resource.message  # its own: the queued create is retried
    stub(local).DeleteTask(agent_pb2.DeleteTaskRequest(task_category=CATEGORY,
                                                       resource_meta=encoded(asdict(genuine))), timeout=DEADLINE)


# --- malformed input --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("resource_meta", "says"), [
    (b'{"job":' + b"[" * 200_000 + b"]" * 200_000 + b',"error":""}', "it is nested too deeply"),
    (b'{"job": {}, "error": "' + b"x" * 2**20 + b'"}', "more than the 1048576 a meta of this connector ever takes"),
    (encoded(job_meta(job_name=7)), "resource meta field job_name has the wrong type (int)"),
    (encoded(job_meta(job_name="../../x" * 100)), "resource_meta.job_name: "),
    (encoded(job_meta(created_at=float("nan"))), "resource_meta.created_at: must be a finite number"),
    (encoded(job_meta(queued_request={"TrainingJobName": ["x"]})), "resource_meta.queued_request.TrainingJobName"),
])
def test_a_malformed_meta_is_failed_saying_what_is_wrong(local: Connector, resource_meta: bytes, says: str) -> None:
    resource = get_task(local, resource_meta)
    assert resource.phase == TaskExecution.FAILED
    assert says in resource.message
    stub(local).DeleteTask(agent_pb2.DeleteTaskRequest(task_category=CATEGORY, resource_meta=resource_meta),
                           timeout=DEADLINE)
    assert "Traceback" not in local.log.read_text()


@pytest.mark.parametrize("resource_meta", [b"", b"\x80pickle", b'{"job":' + b"[" * 200_000 + b"]" * 200_000 + b"}"])
def test_logs_and_metrics_of_an_unreadable_meta_are_invalid_arguments(local: Connector, resource_meta: bytes) -> None:
    for call in (lambda: stub(local).GetTaskLogs(agent_pb2.GetTaskLogsRequest(
                     task_category=CATEGORY, resource_meta=resource_meta), timeout=DEADLINE),
                 lambda: stub(local).GetTaskMetrics(agent_pb2.GetTaskMetricsRequest(
                     task_category=CATEGORY, resource_meta=resource_meta), timeout=DEADLINE)):
        error = grpc_error(call)
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "resource_meta: this task has no training job: the SageMaker connector cannot read" in error.details()
    assert "Traceback" not in local.log.read_text()


def test_a_log_token_naming_another_jobs_streams_and_times_out_of_range_are_invalid_arguments(
        local: Connector, server: LocalSageMaker) -> None:
    meta = encoded(job_meta(endpoint_url=server.url))
    token = encode_token({"another-job/algo-1-1700000000": ""})
    error = grpc_error(lambda: stub(local).GetTaskLogs(agent_pb2.GetTaskLogsRequest(
        task_category=CATEGORY, resource_meta=meta, token=token), timeout=DEADLINE))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "token: names log streams that are not training job flytesnacks-development-safely-n0-0's" \
        in error.details()
    metrics = agent_pb2.GetTaskMetricsRequest(task_category=CATEGORY, resource_meta=meta)
    metrics.start_time.seconds = 10**15
    error = grpc_error(lambda: stub(local).GetTaskMetrics(metrics, timeout=DEADLINE))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().startswith("start_time: ")


def create_request(execution: str, data: dict[str, str] = DATA) -> Any:
    return fly_service.create_request(train, data, execution)


def test_hyperparameters_as_a_msgpack_binary_that_does_not_decode_fail_the_task(local: Connector) -> None:
    request = create_request("msgpack1")
    request.inputs.literals["static_hyperparameters"].CopyFrom(literals_pb2.Literal(scalar=literals_pb2.Scalar(
        binary=literals_pb2.Binary(value=b"\xc1\x00", tag="msgpack"))))
    created = stub(local).CreateTask(request, timeout=DEADLINE)
    resource = get_task(local, created.resource_meta)
    assert resource.phase == TaskExecution.FAILED
    assert "inputs.static_hyperparameters: is a msgpack binary that does not decode (FormatError)" in resource.message


def test_a_literal_flytekit_cannot_read_is_an_invalid_argument_naming_the_inputs(local: Connector) -> None:
    request = create_request("badtime1")
    request.inputs.literals["when"].scalar.primitive.datetime.seconds = 10**15
    error = grpc_error(lambda: stub(local).CreateTask(request, timeout=DEADLINE))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().startswith("inputs: cannot be read (ValueError: ")
    assert "Traceback" not in local.log.read_text()


def test_the_service_reads_no_file_of_its_own_machine(local: Connector, server: LocalSageMaker,
                                                      tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "key.txt").write_text("do not upload me")
    request = create_request("localpath1", {"train": str(secret), "validation": DATA["validation"]})
    created = stub(local).CreateTask(request, timeout=DEADLINE)
    resource = get_task(local, created.resource_meta)
    assert resource.phase == TaskExecution.FAILED
    assert "inputs.train: '/" in resource.message  # the literal's URI: flytekit's copy of the folder, here
    assert "is a path on the connector's machine: the connector service reads no local file" in resource.message
    aws = LocalClients(server.url, credentials=server.credentials)
    names = [j["TrainingJobName"] for j in aws.sagemaker.list_training_jobs()["TrainingJobSummaries"]]
    assert "flytesnacks-development-localpath1-n0-0" not in names
