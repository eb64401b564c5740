"""`pyflyte serve connector` serves the connector, found through flytekit's plugin entry point, over gRPC.

This is what propeller talks to in a cluster: CreateTask with the serialized template, input literals and task
execution metadata; GetTask until a terminal phase; DeleteTask on abort. The service runs in its own process with no
`--modules`: flytekit finds the connector through the `flytekit.plugins` entry point (declared in pyproject.toml;
until the project is reinstalled with it, the test declares the same entry point in a temporary dist-info).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections import OrderedDict
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("flytekit")
pytest.importorskip("moto")
pytest.importorskip("prometheus_client")  # flytekit[connector]: the connector service's own dependencies
pytest.importorskip("grpc_health")

import grpc
from flyteidl.admin import agent_pb2
from flyteidl.core.execution_pb2 import TaskExecution
from flyteidl.service import agent_pb2_grpc
from flytekit.configuration import ImageConfig, SerializationSettings
from flytekit.core.context_manager import FlyteContextManager
from flytekit.core.type_engine import TypeEngine
from flytekit.models.core import identifier
from flytekit.models.task import TaskExecutionMetadata
from flytekit.tools.translator import get_serializable
from flytekit.types.directory import FlyteDirectory

from local_sagemaker import LocalSageMaker, LocalSettings
from local_sagemaker.testing import LocalClients
from plugin.flyte import CONNECTOR_NAME, SageMakerBuiltinAlgorithmTask

BUILTIN = "sagemaker_training_job_task"
CUSTOM = "sagemaker_custom_training_job_task"
ENTRY_POINT = "plugin.flyte"
TERMINAL = {TaskExecution.SUCCEEDED, TaskExecution.FAILED, TaskExecution.ABORTED, TaskExecution.RETRYABLE_FAILED}
LOCAL_SETTINGS = LocalSettings(time_scale=5)  # of the module's `server` (tests/conftest.py): a job takes about 1 s

train = SageMakerBuiltinAlgorithmTask(name="tests.fly.serve.xgboost", training_job={
    "algorithmSpecification": {"algorithmName": "XGBOOST", "algorithmVersion": "1.7-1",
                               "metricDefinitions": [{"name": "validation:rmse",
                                                      "regex": "validation-rmse:([0-9\\.]+)"}]},
    "trainingJobResourceConfig": {"instanceCount": "1", "instanceType": "ml.m5.xlarge"}})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def entry_point_path(tmp: Path) -> str:
    """A sys.path entry declaring the flytekit.plugins entry point, unless the installed project declares it."""
    if any(ep.value == ENTRY_POINT for ep in entry_points(group="flytekit.plugins")):
        return ""
    dist = tmp / "entry-points" / "sagemaker_plugin_flyte_entry_points-0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: sagemaker-plugin-flyte-entry-points\nVersion: 0\n")
    (dist / "entry_points.txt").write_text(f"[flytekit.plugins]\nsagemaker_plugin = {ENTRY_POINT}\n")
    return str(dist.parent)


@pytest.fixture(scope="module")
def service(server: LocalSageMaker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[grpc.Channel]:
    tmp = tmp_path_factory.mktemp("serve")
    config = {"backend": "local", "local": {"endpoint_url": server.url},
              "rate_limits": {"create_per_second": 0, "read_per_second": 0}}
    (tmp / "config.json").write_text(json.dumps(config))
    env = {k: v for k, v in os.environ.items() if k not in ("SAGEMAKER_PLUGIN_CONFIG", "SAGEMAKER_PLUGIN_ENDPOINT_URL")}
    env["SAGEMAKER_PLUGIN_CONFIG"] = str(tmp / "config.json")
    env.update(server.credentials.env())  # the local SageMaker takes requests signed with its own key pair only
    env["PYTHONPATH"] = os.pathsep.join(p for p in (entry_point_path(tmp), env.get("PYTHONPATH", "")) if p)
    port = free_port()
    pyflyte = Path(sys.executable).with_name("pyflyte")
    command = [str(pyflyte), "serve", "connector", "--port", str(port), "--prometheus_port", str(free_port())]
    log = (tmp / "connector.log").open("w")
    process = subprocess.Popen(command, cwd=tmp, env=env, stdout=log, stderr=subprocess.STDOUT)
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        grpc.channel_ready_future(channel).result(timeout=60)
        yield channel
    except grpc.FutureTimeoutError:
        pytest.fail(f"pyflyte serve connector did not start:\n{(tmp / 'connector.log').read_text()[-3000:]}")
    finally:
        channel.close()
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def create_request(data: dict[str, str], execution: str) -> Any:
    ctx = FlyteContextManager.current_context()
    template = get_serializable(OrderedDict(), SerializationSettings(ImageConfig.auto_default_image()), train).template
    inputs = TypeEngine.dict_to_literal_map(ctx, {"train": FlyteDirectory(data["train"]),
                                                  "validation": FlyteDirectory(data["validation"]),
                                                  "static_hyperparameters": {"num_round": 5}},
                                            train.get_input_types())
    task_id = identifier.Identifier(identifier.ResourceType.TASK, "flytesnacks", "development", train.name, "v1")
    ids = identifier.TaskExecutionIdentifier(task_id, identifier.NodeExecutionIdentifier(
        "n0", identifier.WorkflowExecutionIdentifier("flytesnacks", "development", execution)), 0)
    metadata = TaskExecutionMetadata(ids, "flytesnacks-development", {}, {}, "default", {}, None)
    return agent_pb2.CreateTaskRequest(inputs=inputs.to_flyte_idl(), template=template.to_flyte_idl(),
                                       output_prefix="s3://flyte/metadata/propeller/x",
                                       task_execution_metadata=metadata.to_flyte_idl())


def get_until_terminal(stub: Any, resource_meta: bytes, timeout: float = 30) -> list[Any]:
    category = agent_pb2.TaskCategory(name=BUILTIN, version=0)
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        resource = stub.GetTask(agent_pb2.GetTaskRequest(task_category=category, resource_meta=resource_meta)).resource
        seen.append(resource)
        if resource.phase in TERMINAL:
            return seen
        time.sleep(0.1)
    raise TimeoutError(f"still {TaskExecution.Phase.Name(seen[-1].phase)}")


@pytest.fixture(scope="module")
def data(server: LocalSageMaker) -> dict[str, str]:
    aws = LocalClients(server.url)
    return {"train": aws.put_data("serve/train"), "validation": aws.put_data("serve/validation")}


def test_the_service_lists_the_connector_for_both_task_types(service: grpc.Channel) -> None:
    metadata = agent_pb2_grpc.AgentMetadataServiceStub(service)
    agent = metadata.GetAgent(agent_pb2.GetAgentRequest(name=CONNECTOR_NAME)).agent
    assert sorted(agent.supported_task_types) == [CUSTOM, BUILTIN]
    assert sorted(c.name for c in agent.supported_task_categories) == [CUSTOM, BUILTIN]
    assert not agent.is_sync


def test_create_get_over_grpc_to_success(service: grpc.Channel, server: LocalSageMaker,
                                          data: dict[str, str]) -> None:
    stub = agent_pb2_grpc.AsyncAgentServiceStub(service)
    created = stub.CreateTask(create_request(data, "servea1"))
    meta = json.loads(created.resource_meta)  # JSON, not pickle
    assert meta["job"]["job_name"] == "flytesnacks-development-servea1-n0-0" and meta["error"] == ""
    final = get_until_terminal(stub, created.resource_meta)[-1]
    assert final.phase == TaskExecution.SUCCEEDED, final.message
    assert [link.name for link in final.log_links] == ["CloudWatch Logs", "SageMaker Training Job"]
    described = LocalClients(server.url).sagemaker.describe_training_job(
        TrainingJobName="flytesnacks-development-servea1-n0-0")
    assert final.outputs.literals["model"].scalar.blob.uri == described["ModelArtifacts"]["S3ModelArtifacts"]
    metrics = final.outputs.literals["metrics"].map.literals
    assert metrics["validation:rmse"].scalar.primitive.float_value == pytest.approx(
        described["FinalMetricDataList"][0]["Value"])


def test_delete_over_grpc_aborts_the_job(service: grpc.Channel, server: LocalSageMaker, data: dict[str, str]) -> None:
    stub = agent_pb2_grpc.AsyncAgentServiceStub(service)
    created = stub.CreateTask(create_request(data, "serveb1"))
    stub.DeleteTask(agent_pb2.DeleteTaskRequest(task_category=agent_pb2.TaskCategory(name=BUILTIN, version=0),
                                                resource_meta=created.resource_meta))
    final = get_until_terminal(stub, created.resource_meta)[-1]
    assert final.phase == TaskExecution.ABORTED, final.message
    described = LocalClients(server.url).sagemaker.describe_training_job(
        TrainingJobName="flytesnacks-development-serveb1-n0-0")
    assert described["TrainingJobStatus"] == "Stopped"
