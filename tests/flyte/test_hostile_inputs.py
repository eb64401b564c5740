"""Random and hostile metas, templates and literals thrown at one served connector over real gRPC: every answer is an
answer (a phase, or a gRPC error such as INVALID_ARGUMENT or NOT_FOUND), never INTERNAL or UNKNOWN, and the service
logs no traceback.

Bounded and derandomized (a fixed seed, no example database), so that CI runs the same examples each time.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("flytekit")
pytest.importorskip("moto")
pytest.importorskip("grpc_health")

import grpc
from flyteidl.admin import agent_pb2
from flyteidl.core import literals_pb2
from flyteidl.service import agent_pb2_grpc
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import fly_service
from fly_service import Connector
from handlers.log_cursor import encode_token
from local_sagemaker import LocalSageMaker, LocalSettings
from local_sagemaker.testing import LocalClients
from plugin.flyte import (
    SageMakerBuiltinAlgorithmTask,
    SageMakerCustomTrainingTask,
    SageMakerHyperparameterTuningTask,
)

LOCAL_SETTINGS = LocalSettings(execution="simulate", time_scale=50)
BAD_CODES = (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN)
DEADLINE = 30
EXAMPLES = settings(max_examples=150, derandomize=True, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])
TASK_TYPES = ("sagemaker_training_job_task", "sagemaker_custom_training_job_task",
              "sagemaker_hyperparameter_tuning_job_task")
JOB = {"algorithmSpecification": {"algorithmName": "XGBOOST", "algorithmVersion": "1.7-1"},
       "trainingJobResourceConfig": {"instanceCount": "1", "instanceType": "ml.m5.xlarge"}}
builtin = SageMakerBuiltinAlgorithmTask(name="tests.fly.hostile.xgboost", training_job=JOB)
custom = SageMakerCustomTrainingTask(
    name="tests.fly.hostile.custom", image="python:3.12", command=["python", "-c", "print(1)"],
    training_job={**JOB, "algorithmSpecification": {"algorithmName": "CUSTOM"}})
tuning = SageMakerHyperparameterTuningTask(name="tests.fly.hostile.tuning", training_task=builtin,
                                           max_number_of_training_jobs=2, max_parallel_training_jobs=1)
DATA = {"train": "s3://hostile/train/", "validation": "s3://hostile/v/"}
TUNING_CONFIG = {"hyperparameterRanges": {"parameterRangeMap": {
    "eta": {"continuousParameterRange": {"minValue": 0.1, "maxValue": 0.5}}}},
    "tuningStrategy": "RANDOM", "tuningObjective": {"objectiveType": "MINIMIZE", "metricName": "validation:rmse"}}
#: a valid request of each task type, for the examples to mangle
BASES = [fly_service.create_request(builtin, DATA, "hostile1"), fly_service.create_request(custom, DATA, "hostile1"),
         fly_service.create_request(tuning, DATA, "hostile1", hyperparameter_tuning_job_config=TUNING_CONFIG)]
BASE = BASES[0]
NOW = time.time()  # fixed: a strategy must draw alike every time
EXISTING = "flytesnacks-development-hostile1-n0-0"  # made by `served` before the examples: metas may name it


@pytest.fixture(scope="module")
def served(server: LocalSageMaker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Connector]:
    aws = LocalClients(server.url, credentials=server.credentials)
    for channel in ("train", "v"):
        aws.put_data(channel, bucket="hostile")
    with fly_service.connector_service(server.url, tmp_path_factory.mktemp("hostile"), server.credentials.env(),
                                       tracking={"not_found_grace_seconds": 0.5}) as connector:
        agent_pb2_grpc.AsyncAgentServiceStub(connector.channel).CreateTask(BASE, timeout=DEADLINE)
        yield connector


@pytest.fixture(scope="module")
def stub(served: Connector) -> Any:
    return agent_pb2_grpc.AsyncAgentServiceStub(served.channel)


def answered(call: Any) -> Any:
    """The call's answer (a stream read to its end), or None for a gRPC error that is not INTERNAL/UNKNOWN."""
    try:
        answer = call()
        return list(answer) if hasattr(answer, "__next__") else answer
    except grpc.RpcError as error:
        assert error.code() not in BAD_CODES, f"{error.code()}: {(error.details() or '')[:3000]}"
        assert "Traceback" not in (error.details() or "")
        return None


# --- strategies -----------------------------------------------------------------------------------------------------

HOSTILE_TEXT = st.sampled_from([
    "", " ", "x" * 1_000, "../../etc/passwd", "/etc/passwd", "file:///etc/passwd", "\x00", "a\nb", "%00", "{}",
    "http://127.0.0.1:1", "http://169.254.169.254/latest/meta-data/", "s3://other-bucket/x", "us-east-1\n",
    "us-east-1.evil.example", "ＵＳ-EAST-1", "\u202e", "${HOME}", "$(touch /tmp/pwned)", "-" * 63, "a" * 64,
    "flytesnacks-development-x-n0-0", "eu-west-1"])
TEXT = st.text(max_size=80) | HOSTILE_TEXT
SCALARS = (st.none() | st.booleans() | st.integers() | st.integers(min_value=-(2**70), max_value=2**70)
           | st.floats() | TEXT)
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=12), inner, max_size=4), max_leaves=16)


def mostly(good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """`good` three times in four: most examples get past the first check to the code behind it."""
    return st.sampled_from((True, True, True, False)).flatmap(lambda right: good if right else bad)


#: names SageMaker could have given (the one job that exists among them), and hostile ones
NAMES = mostly(st.just(EXISTING) | st.from_regex(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,20}", fullmatch=True), TEXT | JSON)


@st.composite
def jobs(draw: st.DrawFn, endpoint_url: str) -> dict[str, Any]:
    """The job of a meta in the connector's own shape: every field right but one at most, which is wrong in some
    way (a hostile value of the right type, or another type)."""
    good: dict[str, st.SearchStrategy[Any]] = {
        "job_name": NAMES, "region": st.just("us-east-1"),
        "created_at": st.floats(min_value=0, max_value=NOW, allow_nan=False), "version": st.just(1),
        "endpoint_url": st.just(endpoint_url), "fingerprint": st.text(alphabet="0123456789abcdef", max_size=32),
        "job_arn": st.just(""), "queued_message": st.just(""), "adopted": st.booleans(),
        "queued_request": st.none(),
    }
    bad: dict[str, st.SearchStrategy[Any]] = {
        "job_name": TEXT | JSON, "region": TEXT | JSON,
        "created_at": st.floats() | st.integers(min_value=-(2**70), max_value=2**70) | JSON,
        "version": st.sampled_from([0, 2, "1", None, True, 1.0]),
        "endpoint_url": st.just(endpoint_url.upper()) | st.none() | TEXT | JSON,
        "fingerprint": TEXT | JSON, "job_arn": TEXT | JSON, "queued_message": TEXT | JSON, "adopted": JSON,
        "queued_request": JSON | st.dictionaries(st.sampled_from(
            ["TrainingJobName", "RoleArn", "OutputDataConfig", "Tags", "AlgorithmSpecification",
             "HyperParameterTuningJobName", "TrainingJobDefinition"]), JSON, max_size=5),
        "unknown": JSON,
    }
    broken = draw(st.sampled_from([None, *bad]))
    job = {key: draw(strategy) for key, strategy in good.items() if draw(st.booleans()) or key in
           ("job_name", "region", "created_at", "version", "endpoint_url")}
    if broken is not None:
        job[broken] = draw(bad[broken])
    return job


def metas(endpoint_url: str) -> st.SearchStrategy[bytes]:
    """Resource metas: the connector's own shape (`jobs`), any JSON, raw bytes, JSON nested deep."""
    wrapped = st.fixed_dictionaries({"job": mostly(jobs(endpoint_url), JSON), "error": mostly(st.just(""), TEXT)})
    as_json = mostly(wrapped, JSON).map(lambda value: json.dumps(value, allow_nan=True).encode())
    deep = st.integers(min_value=1, max_value=100_000).map(
        lambda n: b'{"job":' + b"[" * n + b"]" * n + b',"error":""}')
    return mostly(as_json, st.binary(max_size=200) | deep)


def structs() -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(st.text(max_size=12), JSON, max_size=5)


def literals() -> st.SearchStrategy[Any]:
    """Literal protobufs of every kind, with hostile values where flytekit or the connector reads them."""
    int64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)

    def primitive(kind: str) -> st.SearchStrategy[Any]:
        def build(value: Any) -> Any:
            literal = literals_pb2.Literal()
            if kind in ("datetime", "duration"):
                getattr(literal.scalar.primitive, kind).seconds = value
            else:
                setattr(literal.scalar.primitive, kind, value)
            return literal
        values = {"string_value": TEXT, "integer": int64, "float_value": st.floats(), "boolean": st.booleans(),
                  "datetime": int64, "duration": int64}[kind]
        return values.map(build)

    def blob(uri: str) -> Any:
        literal = literals_pb2.Literal()
        literal.scalar.blob.uri = uri
        literal.scalar.blob.metadata.type.dimensionality = 1
        return literal

    def binary(args: tuple[bytes, str]) -> Any:
        return literals_pb2.Literal(scalar=literals_pb2.Scalar(binary=literals_pb2.Binary(value=args[0],
                                                                                           tag=args[1])))

    def generic(value: dict[str, Any]) -> Any:
        literal = literals_pb2.Literal()
        with contextlib.suppress(ValueError, TypeError):  # a Struct takes no int past 2**63: then left empty
            literal.scalar.generic.update(value)
        return literal

    def other(kind: str) -> Any:
        literal = literals_pb2.Literal()
        if kind == "none":
            literal.scalar.none_type.SetInParent()
        elif kind == "error":
            literal.scalar.error.message = "boom"
        elif kind == "structured_dataset":
            literal.scalar.structured_dataset.uri = "s3://x/y"
        elif kind == "schema":
            literal.scalar.schema.uri = "/etc"
        elif kind == "offloaded":
            literal.offloaded_metadata.uri = "s3://x/offloaded"
        else:
            literal.SetInParent()
        return literal

    msgpack_like = st.binary(max_size=64) | st.sampled_from([b"\xc1", b"\x81", b"\x91" * 3000, b"\x81\xa1a\xc4\x01x",
                                                             b"\x81\xa1a\xd4\x01\x01", b"\x81\x01\x02"])
    leaves = st.one_of(
        *(primitive(kind) for kind in ("string_value", "integer", "float_value", "boolean", "datetime", "duration")),
        TEXT.map(blob), st.tuples(msgpack_like, st.sampled_from(["msgpack", "", "pickle"])).map(binary),
        structs().map(generic),
        st.sampled_from(["none", "error", "structured_dataset", "schema", "offloaded", "empty"]).map(other))

    def nest(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        def as_map(items: dict[str, Any]) -> Any:
            literal = literals_pb2.Literal()
            for key, value in items.items():
                literal.map.literals[key].CopyFrom(value)
            return literal

        def as_collection(items: list[Any]) -> Any:
            literal = literals_pb2.Literal()
            literal.collection.literals.extend(items)
            return literal

        def as_union(value: Any) -> Any:
            literal = literals_pb2.Literal()
            literal.scalar.union.value.CopyFrom(value)
            return literal

        return (st.dictionaries(st.text(max_size=8), inner, max_size=3).map(as_map)
                | st.lists(inner, max_size=3).map(as_collection) | inner.map(as_union))

    return st.recursive(leaves, nest, max_leaves=8)


INPUT_NAMES = mostly(st.sampled_from(["train", "validation", "static_hyperparameters",
                                      "hyperparameter_tuning_job_config"]), st.text(max_size=10))


@st.composite
def create_requests(draw: st.DrawFn) -> Any:
    """propeller's CreateTaskRequest for one of the task types, its template, inputs or metadata mangled in places."""
    request = agent_pb2.CreateTaskRequest()
    request.CopyFrom(draw(st.sampled_from(BASES)))
    request.template.type = draw(mostly(st.just(request.template.type), st.sampled_from(TASK_TYPES)))
    change = draw(st.sampled_from([None, None, "custom", "member", "container", "inputs"]))
    if change == "custom":
        custom = draw(structs())
        request.template.custom.Clear()
        with contextlib.suppress(ValueError, TypeError):
            request.template.custom.update(custom)
    elif change == "member":  # one member of the real custom replaced
        key = draw(st.sampled_from(sorted(request.template.custom) or ["x"]))
        with contextlib.suppress(ValueError, TypeError):
            request.template.custom.update({key: draw(JSON)})
    elif change == "container":
        request.template.container.command[:] = draw(st.lists(TEXT, max_size=3))
        request.template.container.image = draw(TEXT)
    elif change == "inputs":
        request.inputs.Clear()
    for name, literal in draw(mostly(st.just({}), st.dictionaries(INPUT_NAMES, literals(), max_size=2))).items():
        request.inputs.literals[name].CopyFrom(literal)
    execution = request.task_execution_metadata.task_execution_id.node_execution_id.execution_id
    execution.name = draw(mostly(st.from_regex(r"[a-z][a-z0-9]{0,12}", fullmatch=True), TEXT))
    if draw(st.sampled_from([False, False, False, True])):
        execution.project = draw(TEXT)
        request.task_execution_metadata.task_execution_id.retry_attempt = draw(
            st.integers(min_value=0, max_value=2**32 - 1))
    request.output_prefix = draw(mostly(st.just("s3://flyte/metadata/x"), TEXT))
    return request


# --- the properties ---------------------------------------------------------------------------------------------------


def category(task_type: str) -> Any:
    return agent_pb2.TaskCategory(name=task_type, version=0)


def test_get_and_delete_answer_every_meta(stub: Any, server: LocalSageMaker) -> None:
    @EXAMPLES
    @given(meta=metas(server.url), task_type=st.sampled_from(TASK_TYPES))
    @example(meta=json.dumps({"job": {"job_name": "flytesnacks-development-hostile-n0-0", "region": "us-east-1",
                                      "created_at": time.time() + 1e9, "adopted": True, "version": 1,
                                      "endpoint_url": server.url}, "error": ""}).encode(),
             task_type=TASK_TYPES[0])  # created "in the future": a delete must not wait for it for years
    def check(meta: bytes, task_type: str) -> None:
        resource = answered(lambda: stub.GetTask(agent_pb2.GetTaskRequest(
            task_category=category(task_type), resource_meta=meta), timeout=DEADLINE))
        assert resource is not None  # GetTask answers a phase for every meta (FAILED for what it cannot follow)
        answered(lambda: stub.DeleteTask(agent_pb2.DeleteTaskRequest(
            task_category=category(task_type), resource_meta=meta), timeout=DEADLINE))

    check()


def test_logs_and_metrics_answer_every_meta_and_request(stub: Any, server: LocalSageMaker) -> None:
    streams = st.dictionaries(mostly(st.just(f"{EXISTING}/algo-1-1"), TEXT), TEXT, max_size=3)

    @EXAMPLES
    @given(meta=metas(server.url), token=mostly(st.just("") | streams.map(encode_token), TEXT),
           lines=mostly(st.integers(min_value=0, max_value=100), st.integers(min_value=0, max_value=2**64 - 1)),
           queries=st.lists(mostly(st.sampled_from(["train:rmse", "validation:rmse"]), TEXT), max_size=3),
           times=mostly(st.tuples(st.integers(min_value=0, max_value=int(NOW)), st.just(0)),
                        st.tuples(st.integers(min_value=-(2**63), max_value=2**63 - 1),
                                  st.integers(min_value=0, max_value=999_999_999))),
           step=mostly(st.integers(min_value=0, max_value=3600), st.integers(min_value=-(2**40), max_value=2**40)))
    def check(meta: bytes, token: str, lines: int, queries: list[str], times: tuple[int, int], step: int) -> None:
        answered(lambda: stub.GetTaskLogs(agent_pb2.GetTaskLogsRequest(
            task_category=category(TASK_TYPES[0]), resource_meta=meta, token=token, lines=lines), timeout=DEADLINE))
        request = agent_pb2.GetTaskMetricsRequest(task_category=category(TASK_TYPES[0]), resource_meta=meta,
                                                  queries=queries)
        request.start_time.seconds, request.start_time.nanos = times
        request.step.seconds = step
        answered(lambda: stub.GetTaskMetrics(request, timeout=DEADLINE))

    check()


def with_literal(name: str, literal: Any) -> Any:
    request = agent_pb2.CreateTaskRequest()
    request.CopyFrom(BASE)
    request.task_execution_metadata.task_execution_id.node_execution_id.execution_id.name = "explicit"
    request.inputs.literals[name].CopyFrom(literal)
    return request


def test_create_answers_every_template_and_literal(stub: Any) -> None:
    undecodable = literals_pb2.Literal(scalar=literals_pb2.Scalar(binary=literals_pb2.Binary(value=b"\xc1",
                                                                                             tag="msgpack")))
    out_of_range = literals_pb2.Literal()
    out_of_range.scalar.primitive.datetime.seconds = 10**15

    @EXAMPLES
    @example(request=with_literal("static_hyperparameters", undecodable))
    @example(request=with_literal("train", out_of_range))
    @given(request=create_requests())
    def check(request: Any) -> None:
        created = answered(lambda: stub.CreateTask(request, timeout=DEADLINE))
        if created is not None:
            resource = answered(lambda: stub.GetTask(agent_pb2.GetTaskRequest(
                task_category=category(request.template.type), resource_meta=created.resource_meta),
                timeout=DEADLINE))
            assert resource is not None

    check()


def test_the_service_logged_no_traceback(served: Connector) -> None:
    """After everything above (run in file order): the service's log holds no traceback."""
    assert "Traceback" not in served.log.read_text()
