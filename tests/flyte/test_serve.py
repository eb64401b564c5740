"""`pyflyte serve connector` serves the connector, found through flytekit's plugin entry point, over gRPC.

This is what propeller talks to in a cluster: CreateTask with the serialized template, input literals and task
execution metadata; GetTask until a terminal phase; DeleteTask on abort. The service runs in its own process with no
`--modules`: flytekit finds the connector through the `flytekit.plugins` entry point (declared in pyproject.toml;
until the project is reinstalled with it, the test declares the same entry point in a temporary dist-info).
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
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
from prometheus_client.parser import text_string_to_metric_families

import fly_service
from fly_service import Connector
from local_sagemaker import LocalSageMaker, LocalSettings
from local_sagemaker.testing import LocalClients
from plugin.flyte import CONNECTOR_NAME, SageMakerBuiltinAlgorithmTask

BUILTIN = "sagemaker_training_job_task"
CUSTOM = "sagemaker_custom_training_job_task"
TERMINAL = {TaskExecution.SUCCEEDED, TaskExecution.FAILED, TaskExecution.ABORTED, TaskExecution.RETRYABLE_FAILED}
# of the module's `server` (tests/conftest.py): a job takes about 1 s
LOCAL_SETTINGS = LocalSettings(execution="simulate", time_scale=5)

train = SageMakerBuiltinAlgorithmTask(name="tests.fly.serve.xgboost", training_job={
    "algorithmSpecification": {"algorithmName": "XGBOOST", "algorithmVersion": "1.7-1"},
    "trainingJobResourceConfig": {"instanceCount": "1", "instanceType": "ml.m5.xlarge"}})


@pytest.fixture(scope="module")
def service(served: Connector) -> grpc.Channel:
    return served.channel


@pytest.fixture(scope="module")
def served(server: LocalSageMaker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Connector]:
    with fly_service.connector_service(server.url, tmp_path_factory.mktemp("serve"),
                                       server.credentials.env(),
                                       # sweeps every second, not 10 s: a job's end is seen within a second of it
                                       tracking={"sweep_interval_seconds": 1}) as connector:
        yield connector


def create_request(data: dict[str, str], execution: str) -> Any:
    return fly_service.create_request(train, data, execution)


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


def test_the_service_lists_the_connector_for_every_task_type(service: grpc.Channel) -> None:
    metadata = agent_pb2_grpc.AgentMetadataServiceStub(service)
    agent = metadata.GetAgent(agent_pb2.GetAgentRequest(name=CONNECTOR_NAME)).agent
    assert sorted(agent.supported_task_types) == sorted([CUSTOM, BUILTIN, "sagemaker_hyperparameter_tuning_job_task"])
    assert sorted(c.name for c in agent.supported_task_categories) == sorted(agent.supported_task_types)
    assert not agent.is_sync


@pytest.fixture(scope="module")
def succeeded(service: grpc.Channel, data: dict[str, str]) -> tuple[Any, Any]:
    """One job created over gRPC and got until it ended: its CreateTask answer and its last resource. The tests that
    only read such a job share it."""
    stub = agent_pb2_grpc.AsyncAgentServiceStub(service)
    created = stub.CreateTask(create_request(data, "servea1"))
    return created, get_until_terminal(stub, created.resource_meta)[-1]


def test_create_get_over_grpc_to_success(succeeded: tuple[Any, Any], server: LocalSageMaker) -> None:
    created, final = succeeded
    meta = json.loads(created.resource_meta)  # JSON, not pickle
    assert meta["job"]["job_name"] == "flytesnacks-development-servea1-n0-0" and meta["error"] == ""
    assert final.phase == TaskExecution.SUCCEEDED, final.message
    assert [link.name for link in final.log_links] == ["Job page (local SageMaker)", "Logs (local SageMaker)",
                                                       "Status (local SageMaker)"]
    described = LocalClients(server.url).sagemaker.describe_training_job(
        TrainingJobName="flytesnacks-development-servea1-n0-0")
    assert final.outputs.literals["model"].scalar.blob.uri == described["ModelArtifacts"]["S3ModelArtifacts"]
    metrics = final.outputs.literals["metrics"].map.literals
    final_metrics = {m["MetricName"]: m["Value"] for m in described["FinalMetricDataList"]}
    assert set(metrics) == set(final_metrics) == {"train:rmse", "validation:rmse"}  # XGBoost's own metrics
    assert metrics["validation:rmse"].scalar.primitive.float_value == pytest.approx(final_metrics["validation:rmse"])


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


def test_the_service_says_at_start_which_backend_region_and_endpoint_it_serves(served: Connector,
                                                                               server: LocalSageMaker) -> None:
    assert f"backend local, region us-east-1, SageMaker endpoint {server.url}, config " in served.log.read_text()


OLD_VERSION_META = json.dumps({"error": "", "job": {
    "job_name": "flytesnacks-development-old-n0-0", "region": "us-east-1", "created_at": 1.0, "version": 0}}).encode()


@pytest.mark.parametrize(("resource_meta", "reason"), [
    (b"", "it is empty"),
    (b"\x80\x04\x95pickled", "it is not JSON"),
    (b'{"job_name": "x"}', "it is not a JSON object with keys job and error"),
    (OLD_VERSION_META, "its job (flytesnacks-development-old-n0-0): resource meta version 0 is not supported"),
])
def test_an_unreadable_resource_meta_fails_the_task_saying_why_instead_of_an_internal_error(
        service: grpc.Channel, resource_meta: bytes, reason: str) -> None:
    stub = agent_pb2_grpc.AsyncAgentServiceStub(service)
    category = agent_pb2.TaskCategory(name=BUILTIN, version=0)
    resource = stub.GetTask(agent_pb2.GetTaskRequest(task_category=category, resource_meta=resource_meta)).resource
    assert resource.phase == TaskExecution.FAILED  # for good: not a system error propeller would retry
    assert resource.message.startswith("the SageMaker connector cannot read this task's resource meta: ")
    assert reason in resource.message
    assert "Traceback" not in resource.message
    # an abort of such a task has nothing it can stop, and says so in the log rather than failing the call
    stub.DeleteTask(agent_pb2.DeleteTaskRequest(task_category=category, resource_meta=resource_meta))


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(url, timeout=10) as answer:
        text = answer.read().decode()
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def test_the_metrics_port_counts_sagemaker_calls_by_operation_and_outcome(served: Connector,
                                                                          succeeded: tuple[Any, Any]) -> None:
    assert succeeded[1].phase == TaskExecution.SUCCEEDED  # a job the service created and followed to its end
    metrics = scrape(served.metrics_url)

    def calls(operation: str, outcome: str = "ok") -> float:
        labels = (("operation", operation), ("outcome", outcome), ("service", "sagemaker"))
        return metrics.get(("sagemaker_plugin_aws_calls_total", labels), 0.0)

    assert calls("CreateTrainingJob") >= 1
    assert calls("DescribeTrainingJob") >= 1  # at least the end of each job, for its outputs
    names = {name for name, _ in metrics}
    assert {"sagemaker_plugin_jobs_waiting_for_quota", "sagemaker_plugin_status_sweep_seconds_count",
            "sagemaker_plugin_status_sweep_failures_total"} <= names
    assert metrics[("sagemaker_plugin_jobs_waiting_for_quota", ())] == 0
    assert ("flyte_connector_requests_success_total",
            (("operation", "create"), ("task_type", BUILTIN))) in metrics  # flytekit's own, on the same port
