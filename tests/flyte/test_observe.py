"""Flyte reads a job's logs and metric series over gRPC (GetTaskLogs, GetTaskMetrics) from `pyflyte serve connector`.

GetTaskLogs is a server stream: a header with the next page's token, then the lines. Paging with the token Flyte hands
back reads every line of every host once. GetTaskMetrics answers one result per queried metric, a Prometheus-style
matrix with one series per host, the values the job logged.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("flytekit")
pytest.importorskip("moto")
pytest.importorskip("prometheus_client")
pytest.importorskip("grpc_health")

import grpc
from flyteidl.admin import agent_pb2
from flyteidl.core.execution_pb2 import TaskExecution
from flyteidl.service import agent_pb2_grpc
from google.protobuf import json_format
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

import fly_service
from local_sagemaker import LocalSageMaker, LocalSettings
from local_sagemaker.testing import LocalClients
from plugin.flyte import SageMakerBuiltinAlgorithmTask

BUILTIN = "sagemaker_training_job_task"
CATEGORY = agent_pb2.TaskCategory(name=BUILTIN, version=0)
TERMINAL = {TaskExecution.SUCCEEDED, TaskExecution.FAILED, TaskExecution.ABORTED}
LOCAL_SETTINGS = LocalSettings(execution="simulate", time_scale=5)
ROUNDS = 5  # fly_service.create_request's num_round

train = SageMakerBuiltinAlgorithmTask(name="tests.fly.observe.xgboost", training_job={
    "algorithmSpecification": {"algorithmName": "XGBOOST", "algorithmVersion": "1.7-1"},
    "trainingJobResourceConfig": {"instanceCount": "2", "instanceType": "ml.m5.xlarge"}})


@pytest.fixture(scope="module")
def stub(server: LocalSageMaker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with fly_service.connector_service(server.url, tmp_path_factory.mktemp("observe"),
                                       server.credentials.env()) as connector:
        try:
            yield agent_pb2_grpc.AsyncAgentServiceStub(connector.channel)
        except grpc.RpcError:
            print(connector.log.read_text()[-3000:])
            raise


@pytest.fixture(scope="module")
def finished(stub: Any, server: LocalSageMaker) -> tuple[bytes, str]:
    """A two-host XGBoost job created and followed over gRPC to its end: (resource meta, job name)."""
    aws = LocalClients(server.url)
    data = {"train": aws.put_data("observe/train"), "validation": aws.put_data("observe/validation")}
    created = stub.CreateTask(fly_service.create_request(train, data, "observe1"))
    deadline = time.monotonic() + 60
    while True:
        resource = stub.GetTask(agent_pb2.GetTaskRequest(task_category=CATEGORY,
                                                         resource_meta=created.resource_meta)).resource
        if resource.phase in TERMINAL or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert resource.phase == TaskExecution.SUCCEEDED, resource.message
    return created.resource_meta, json.loads(created.resource_meta)["job"]["job_name"]


def test_get_task_logs_pages_every_hosts_lines_once_with_flytes_token(stub: Any, finished: tuple[bytes, str],
                                                                       server: LocalSageMaker) -> None:
    meta, job = finished
    expected = Counter()
    for stream, messages in LocalClients(server.url).log_messages(job).items():
        host = stream[len(job) + 1:].rsplit("-", 1)[0]
        expected.update(f"[{host}] {message}" for message in messages)
    assert sum(expected.values()) > 2 * ROUNDS

    got: Counter[str] = Counter()
    token, pages = "", 0
    while True:
        answers = list(stub.GetTaskLogs(agent_pb2.GetTaskLogsRequest(task_category=CATEGORY, resource_meta=meta,
                                                                     lines=7, token=token)))
        assert [a.WhichOneof("part") for a in answers] == ["header", "body"]
        header, body = answers[0].header, answers[1].body
        assert len(body.results) <= 7
        assert [line.message for line in body.structured_lines] == list(body.results)
        got.update(body.results)
        pages += 1
        if not body.results:
            assert header.token == token  # nothing new: the same token again
            break
        assert header.token and header.token != token
        token = header.token
        assert pages < 100
    assert got == expected
    assert pages >= sum(expected.values()) // 7


def test_get_task_metrics_answers_each_metric_per_host_as_the_job_logged_it(stub: Any,
                                                                            finished: tuple[bytes, str]) -> None:
    meta, job = finished
    answer = stub.GetTaskMetrics(agent_pb2.GetTaskMetricsRequest(task_category=CATEGORY, resource_meta=meta,
                                                                 queries=["validation:rmse"]))
    [result] = answer.results
    assert result.metric == "validation:rmse"
    data = json_format.MessageToDict(result.data)
    assert data["resultType"] == "matrix"
    assert sorted(series["metric"]["host"] for series in data["result"]) == ["algo-1", "algo-2"]
    for series in data["result"]:
        assert series["metric"]["job"] == job
        values = [float(value) for _, value in series["values"]]
        assert len(values) == ROUNDS
        assert values[0] > values[-1]  # rmse falls over the rounds

    everything = stub.GetTaskMetrics(agent_pb2.GetTaskMetricsRequest(task_category=CATEGORY, resource_meta=meta))
    assert [r.metric for r in everything.results] == ["train:rmse", "validation:rmse"]


def test_get_task_metrics_honours_the_time_range_flyte_asks_for(stub: Any, finished: tuple[bytes, str],
                                                                server: LocalSageMaker) -> None:
    meta, job = finished
    described = LocalClients(server.url).sagemaker.describe_training_job(TrainingJobName=job)
    start, end = Timestamp(), Timestamp()
    start.FromSeconds(int(described["TrainingEndTime"].timestamp()) + 2)  # periods start on whole seconds
    end.FromSeconds(start.seconds + 60)
    after_the_end = stub.GetTaskMetrics(agent_pb2.GetTaskMetricsRequest(
        task_category=CATEGORY, resource_meta=meta, queries=["train:rmse"], start_time=start, end_time=end,
        step=Duration(seconds=1)))
    assert json_format.MessageToDict(after_the_end.results[0].data)["result"] == []
    start.FromSeconds(int(described["TrainingStartTime"].timestamp()))
    over_the_job = stub.GetTaskMetrics(agent_pb2.GetTaskMetricsRequest(
        task_category=CATEGORY, resource_meta=meta, queries=["train:rmse"], start_time=start, end_time=end))
    assert len(json_format.MessageToDict(over_the_job.results[0].data)["result"]) == 2
