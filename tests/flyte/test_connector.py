"""The connector through flytekit's own ConnectorRegistry, against the local SageMaker.

What the connector service does with each call is done here the same way: the template and literals go through
their protobuf form, the resource meta through bytes (decoded by `connector.metadata_type`, as after a restart), and
the Resource through `to_flyte_idl()` (what propeller receives and shows).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("flytekit")
pytest.importorskip("moto")

from flyteidl.core.execution_pb2 import TaskExecution
from flytekit.core.context_manager import FlyteContextManager
from flytekit.core.type_engine import TypeEngine
from flytekit.extend.backend.base_connector import ConnectorRegistry
from flytekit.models.core import identifier
from flytekit.models.task import TaskExecutionMetadata
from flytekit.types.directory import FlyteDirectory
from flytekit.types.file import FlyteFile

from fly_service import literal_map, serialized
from handlers.status import phase_of
from local_sagemaker import LocalSageMaker, LocalSettings
from local_sagemaker.testing import LocalClients
from plugin import Phase, Resource, TrainingJobPlugin
from plugin.config import Config, parse_config
from plugin.flyte import (
    CONNECTOR_NAME,
    SageMakerBuiltinAlgorithmTask,
    SageMakerCustomTrainingTask,
    SageMakerTrainingConnector,
    configure,
    to_flyte_resource,
)
from plugin.jobs.resource import LogLink
from server_clock import ManualClock

BUILTIN = "sagemaker_training_job_task"
CUSTOM = "sagemaker_custom_training_job_task"
TERMINAL = {TaskExecution.SUCCEEDED, TaskExecution.FAILED, TaskExecution.ABORTED, TaskExecution.RETRYABLE_FAILED}
XGBOOST_JOB = {
    "algorithmSpecification": {
        "algorithmName": "XGBOOST", "algorithmVersion": "1.7-1",
        "metricDefinitions": [{"name": "train:rmse", "regex": "train-rmse:([0-9\\.]+)"},
                              {"name": "validation:rmse", "regex": "validation-rmse:([0-9\\.]+)"}],
    },
    "trainingJobResourceConfig": {"instanceCount": "1", "instanceType": "ml.m5.xlarge"},
}
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/team/trainer:1.0"
CUSTOM_JOB = {"algorithmSpecification": {"metricDefinitions": [{"name": "loss", "regex": "loss[=:] *([0-9.]+)"}]},
              "trainingJobResourceConfig": {"instanceCount": "2", "instanceType": "ml.m5.xlarge"}}

builtin_task = SageMakerBuiltinAlgorithmTask(name="tests.fly.connector.xgboost", training_job=XGBOOST_JOB)
custom_task = SageMakerCustomTrainingTask(name="tests.fly.connector.custom", training_job=CUSTOM_JOB, image=IMAGE,
                                          command=["python", "-m", "trainer"], args=["--epochs", "2"],
                                          env={"LOG_LEVEL": "debug"},
                                          inputs={"train": FlyteFile, "static_hyperparameters": dict})


# --- fixtures and helpers (server and aws: tests/conftest.py) -------------------------------------------------------

LOCAL_SETTINGS = LocalSettings(execution="simulate", time_scale=5)  # a job takes about 1 s


@pytest.fixture(scope="module")
def config(server: LocalSageMaker) -> Config:
    return parse_config({"backend": "local", "local": {"endpoint_url": server.url},
                         "retry": {"backoff_seconds": 0.01, "max_backoff_seconds": 0.05},
                         "rate_limits": {"create_per_second": 0, "read_per_second": 0},
                         # every poll asks SageMaker, so the tests see each phase a one-second job passes through
                         "tracking": {"sweep_interval_seconds": 0}})


@pytest.fixture(autouse=True)
def shared_plugin(config: Config, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("SAGEMAKER_PLUGIN_ENDPOINT_URL", raising=False)  # it would win over config's endpoint
    configure(config)
    yield
    configure()


@pytest.fixture(scope="module")
def data(aws: LocalClients) -> dict[str, str]:
    rows = b"".join(f"{i % 7}.0,{i}.0,{i * 2}.0\n".encode() for i in range(50))
    return {"train": aws.put_data("fly/train", rows), "validation": aws.put_data("fly/validation", rows)}


_counter = iter(range(10**6))


def metadata(retry_attempt: int = 0, name: str | None = None) -> Any:
    name = name or f"fly{time.time_ns() % 10**9}{next(_counter)}"
    task_id = identifier.Identifier(identifier.ResourceType.TASK, "flytesnacks", "development", "t", "v1")
    ids = identifier.TaskExecutionIdentifier(
        task_id, identifier.NodeExecutionIdentifier("n0", identifier.WorkflowExecutionIdentifier(
            "flytesnacks", "development", name)), retry_attempt)
    return TaskExecutionMetadata.from_flyte_idl(
        TaskExecutionMetadata(ids, "flytesnacks-development", {}, {}, "default", {}, None).to_flyte_idl())


def builtin_inputs(data: dict[str, str]) -> Any:
    return literal_map(builtin_task, {"train": FlyteDirectory(data["train"]),
                                      "validation": FlyteDirectory(data["validation"]),
                                      "static_hyperparameters": {"num_round": 10, "objective": "reg:squarederror"}})


def create(task_type: str, template: Any, inputs: Any, meta: Any = None) -> bytes:
    """CreateTask as the connector service runs it; the resource meta as bytes, as propeller keeps it."""
    connector = ConnectorRegistry.get_connector(task_type)
    return bytes(connector.create(task_template=template, inputs=inputs, output_prefix="s3://flyte/metadata/x",
                                  task_execution_metadata=meta or metadata()).encode())


def get(task_type: str, blob: bytes) -> Any:
    connector = ConnectorRegistry.get_connector(task_type)
    return connector.get(resource_meta=connector.metadata_type.decode(blob))


def follow(task_type: str, blob: bytes, timeout: float = 30.0, held: ManualClock | None = None) -> list[Any]:
    """Every resource `get` returns until a terminal phase; polls 50 ms apart, of the wall clock, or of the `held`
    server clock, moved here (the job then cannot skip a phase between two polls, however slow a poll)."""
    seen: list[Any] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        resource = get(task_type, blob)
        seen.append(resource)
        if resource.phase in TERMINAL:
            return seen
        if held is None:
            time.sleep(0.05)
        else:
            held.advance(0.05)
    raise TimeoutError(f"still {TaskExecution.Phase.Name(seen[-1].phase)} after {timeout} s")


def job_name(blob: bytes) -> str:
    meta = SageMakerTrainingConnector().metadata_type.decode(blob)
    return str(meta.job.job_name)


# --- tests ----------------------------------------------------------------------------------------------------------


def test_every_task_type_is_registered_with_flytekit() -> None:
    tuning = "sagemaker_hyperparameter_tuning_job_task"
    for task_type in (BUILTIN, CUSTOM, tuning):
        connector = ConnectorRegistry.get_connector(task_type)
        assert isinstance(connector, SageMakerTrainingConnector)
        assert connector.task_category.name == task_type
    (agent,) = [a for a in ConnectorRegistry.list_connectors() if a.name == CONNECTOR_NAME]
    assert sorted(agent.supported_task_types) == sorted([CUSTOM, BUILTIN, tuning])
    assert not agent.is_sync


def test_builtin_job_runs_to_success_with_flyte_outputs(aws: LocalClients, data: dict[str, str],
                                                        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        blob = create(BUILTIN, serialized(builtin_task), builtin_inputs(data))
    assert job_name(blob).startswith("flytesnacks-development-fly")
    # XGBOOST_JOB carries metricDefinitions, as flytekit's old tasks wrote them: left out of the request, and said.
    assert [r.getMessage() for r in caplog.records if "metric_definitions" in r.getMessage()] == [
        f"{job_name(blob)}: training_job.algorithm_specification.metric_definitions: left out of the request: "
        "SageMaker refuses metric definitions for its built-in algorithms; built-in XGBoost publishes its own metrics "
        "(train:rmse, validation:auc, ... after its eval_metric)"]
    # Describe lists SageMaker's own definitions for the algorithm; the caller's are not among them.
    listed = aws.sagemaker.describe_training_job(TrainingJobName=job_name(blob))["AlgorithmSpecification"]
    given = {d["regex"] for d in XGBOOST_JOB["algorithmSpecification"]["metricDefinitions"]}
    assert given.isdisjoint(d["Regex"] for d in listed.get("MetricDefinitions", []))
    resources = follow(BUILTIN, blob)
    final = resources[-1]
    assert final.phase == TaskExecution.SUCCEEDED, final.message
    described = aws.sagemaker.describe_training_job(TrainingJobName=job_name(blob))
    # outputs: a LiteralMap that flytekit turns into the declared python types
    assert set(final.outputs.literals) == {"model", "metrics"}
    values = TypeEngine.literal_map_to_kwargs(FlyteContextManager.current_context(), final.outputs,
                                              {"model": FlyteFile, "metrics": dict[str, float]})
    assert values["model"].remote_source == described["ModelArtifacts"]["S3ModelArtifacts"]
    assert values["metrics"] == {m["MetricName"]: pytest.approx(m["Value"]) for m in described["FinalMetricDataList"]}
    assert set(values["metrics"]) == {"train:rmse", "validation:rmse"}
    bucket, key = values["model"].remote_source[len("s3://"):].split("/", 1)
    assert aws.s3.head_object(Bucket=bucket, Key=key)["ContentLength"] > 0
    # what propeller receives
    pb = asyncio.run(final.to_flyte_idl())
    assert pb.phase == TaskExecution.SUCCEEDED
    assert pb.outputs.literals["model"].scalar.blob.uri == described["ModelArtifacts"]["S3ModelArtifacts"]
    assert pb.custom_info["training_job_name"] == job_name(blob)


def test_phases_messages_and_log_links_as_flyte_shows_them(data: dict[str, str], server_clock: ManualClock) -> None:
    server_clock.hold()
    blob = create(BUILTIN, serialized(builtin_task), builtin_inputs(data))
    name = job_name(blob)
    resources = follow(BUILTIN, blob, held=server_clock)
    shown = []
    for resource in resources:
        pb = asyncio.run(resource.to_flyte_idl())
        entry = (TaskExecution.Phase.Name(pb.phase), pb.message.split(":")[0])
        if not shown or shown[-1] != entry:
            shown.append(entry)
    phases = [phase for phase, _ in shown]
    assert phases[-1] == "SUCCEEDED" and "RUNNING" in phases and "INITIALIZING" in phases
    order = ["QUEUED", "INITIALIZING", "RUNNING", "SUCCEEDED"]
    assert [order.index(p) for p in phases] == sorted(order.index(p) for p in phases)
    assert next(m for p, m in shown if p == "INITIALIZING") == "Starting"
    assert "Training" in [m for p, m in shown if p == "RUNNING"]
    assert shown[-1] == ("SUCCEEDED", "Completed")
    pb = asyncio.run(resources[0].to_flyte_idl())
    links = {link.name: link.uri for link in pb.log_links}  # a local job has no console page
    assert set(links) == {"Job page (local SageMaker)", "Logs (local SageMaker)", "Status (local SageMaker)"}
    assert links["Logs (local SageMaker)"].startswith("SAGEMAKER_PLUGIN_ENDPOINT_URL=http://127.0.0.1:")
    assert links["Logs (local SageMaker)"].endswith(f" sagemaker-plugin logs {name} --follow --region us-east-1")


def test_delete_stops_the_job_and_flyte_sees_aborted(aws: LocalClients, data: dict[str, str],
                                                     server_clock: ManualClock) -> None:
    connector = ConnectorRegistry.get_connector(BUILTIN)
    with server_clock.held():  # the job still runs when the delete comes
        blob = create(BUILTIN, serialized(builtin_task), builtin_inputs(data))
        first = get(BUILTIN, blob)
        assert first.phase in (TaskExecution.QUEUED, TaskExecution.INITIALIZING, TaskExecution.RUNNING)
        connector.delete(resource_meta=connector.metadata_type.decode(blob))
    final = follow(BUILTIN, blob)[-1]
    assert final.phase == TaskExecution.ABORTED, final.message
    assert final.outputs is None
    described = aws.sagemaker.describe_training_job(TrainingJobName=job_name(blob))
    assert described["TrainingJobStatus"] == "Stopped"
    connector.delete(resource_meta=connector.metadata_type.decode(blob))  # idempotent: nothing left to stop
    assert get(BUILTIN, blob).phase == TaskExecution.ABORTED


def test_custom_job_with_a_local_file_input(aws: LocalClients, tmp_path: Any) -> None:
    train = tmp_path / "train.csv"
    train.write_text("1.0,2.0\n3.0,4.0\n")
    inputs = literal_map(custom_task, {"train": FlyteFile(str(train)), "static_hyperparameters": {"lr": 0.1}})
    blob = create(CUSTOM, serialized(custom_task), inputs)
    final = follow(CUSTOM, blob)[-1]
    assert final.phase == TaskExecution.SUCCEEDED, final.message
    described = aws.sagemaker.describe_training_job(TrainingJobName=job_name(blob))
    assert described["AlgorithmSpecification"]["TrainingImage"] == IMAGE
    assert described["HyperParameters"]["lr"] == "0.1"
    assert described["ResourceConfig"]["InstanceCount"] == 2
    uri = described["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"]
    bucket, prefix = uri[len("s3://"):].split("/", 1)
    listed = aws.s3.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]
    assert [o["Key"].rsplit("/", 1)[-1] for o in listed] == ["train.csv"]  # the plugin uploaded the local file


def test_create_is_idempotent_per_attempt_and_a_retry_is_a_new_job(data: dict[str, str]) -> None:
    meta = metadata()
    first = create(BUILTIN, serialized(builtin_task), builtin_inputs(data), meta)
    again = create(BUILTIN, serialized(builtin_task), builtin_inputs(data), meta)  # CreateTask retried by propeller
    assert job_name(again) == job_name(first)
    retried = metadata(retry_attempt=1, name=meta.task_execution_id.node_execution_id.execution_id.name)
    retry = create(BUILTIN, serialized(builtin_task), builtin_inputs(data), retried)
    assert job_name(retry) == job_name(first)[: -1] + "1"
    for blob in (first, retry):
        assert follow(BUILTIN, blob)[-1].phase == TaskExecution.SUCCEEDED


def test_a_restarted_connector_continues_from_the_meta_bytes(config: Config, data: dict[str, str]) -> None:
    blob = create(BUILTIN, serialized(builtin_task), builtin_inputs(data))
    restarted = SageMakerTrainingConnector(BUILTIN, plugin=TrainingJobPlugin(config))
    deadline = time.monotonic() + 30
    while (resource := restarted.get(restarted.metadata_type.decode(blob))).phase not in TERMINAL:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert resource.phase == TaskExecution.SUCCEEDED


def test_an_invalid_task_fails_for_good_with_every_problem(aws: LocalClients, data: dict[str, str]) -> None:
    template = serialized(builtin_task)
    template._custom = {**XGBOOST_JOB, "trainingJobResourceConfig": {"instanceType": "ml.m5.huge"}}
    inputs = literal_map(builtin_task, {"train": FlyteDirectory(data["train"]),
                                        "validation": FlyteDirectory(data["validation"]),
                                        "static_hyperparameters": {"nested": {"no": 1}}})
    before = len(aws.sagemaker.list_training_jobs()["TrainingJobSummaries"])
    blob = create(BUILTIN, template, inputs)
    resource = get(BUILTIN, blob)
    assert resource.phase == TaskExecution.FAILED
    assert "training_job.training_job_resource_config.instance_type" in resource.message
    assert "inputs.static_hyperparameters.nested" in resource.message
    assert len(aws.sagemaker.list_training_jobs()["TrainingJobSummaries"]) == before  # nothing was created
    ConnectorRegistry.get_connector(BUILTIN).delete(resource_meta=SageMakerTrainingConnector().metadata_type.decode(
        blob))  # nothing to stop


def test_bad_xgboost_hyperparameters_fail_the_task_before_any_create(aws: LocalClients, data: dict[str, str]) -> None:
    inputs = literal_map(builtin_task, {"train": FlyteDirectory(data["train"]),
                                        "validation": FlyteDirectory(data["validation"]),
                                        "static_hyperparameters": {"num_rounds": 20, "eta": 2,
                                                                   "objective": "multi:softmax"}})
    before = len(aws.sagemaker.list_training_jobs()["TrainingJobSummaries"])
    resource = get(BUILTIN, create(BUILTIN, serialized(builtin_task), inputs))
    assert resource.phase == TaskExecution.FAILED
    for expected in ("inputs.static_hyperparameters.num_rounds: is not a hyperparameter of SageMaker XGBoost 1.7-1 "
                     "(did you mean 'num_round'?)", "inputs.static_hyperparameters.num_round: is required",
                     "inputs.static_hyperparameters.eta: 2 is not in [0, 1]",
                     "inputs.static_hyperparameters.num_class: is required with objective multi:softmax"):
        assert expected in resource.message
    assert len(aws.sagemaker.list_training_jobs()["TrainingJobSummaries"]) == before  # nothing was created


@pytest.mark.parametrize("phase", list(Phase))
def test_every_phase_maps_to_flytes_own(phase: Phase) -> None:
    outputs = {"model": "s3://b/out/model.tar.gz", "metrics": {"loss": 0.5}} if phase == Phase.SUCCEEDED else {}
    resource = to_flyte_resource(Resource(phase, "why", outputs, (LogLink("CloudWatch Logs", "https://x"),)), "j", "r")
    assert TaskExecution.Phase.Name(resource.phase) == phase.name
    assert resource.phase == int(phase)
    assert resource.message == "why"
    assert [(link.name, link.uri) for link in resource.log_links] == [("CloudWatch Logs", "https://x")]
    assert (resource.outputs is not None) == (phase == Phase.SUCCEEDED)


def test_success_without_a_model_is_a_failure() -> None:
    """The rule is handlers/status.py's, so that the command line reports the same phase."""
    status = phase_of({"TrainingJobStatus": "Completed", "SecondaryStatus": "Completed"})
    resource = to_flyte_resource(Resource(status.phase, status.message))
    assert resource.phase == TaskExecution.FAILED
    assert "model artifacts" in resource.message
