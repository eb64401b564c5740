"""TaskTemplates serialized by flytekit for both task types, parsed by the plugin: the CreateTrainingJob it renders.

No server: templates, literals and execution metadata go through their protobuf form (what the connector service
receives from propeller) and the plugin renders the request without calling AWS.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from collections import OrderedDict
from typing import Any

import pytest

pytest.importorskip("flytekit")

from flytekit.configuration import ImageConfig, SerializationSettings
from flytekit.core.context_manager import FlyteContextManager
from flytekit.core.type_engine import TypeEngine
from flytekit.models import literals
from flytekit.models.core import identifier
from flytekit.models.task import TaskExecutionMetadata, TaskTemplate
from flytekit.tools.translator import get_serializable
from flytekit.types.directory import FlyteDirectory
from flytekit.types.file import FlyteFile
from google.protobuf import struct_pb2

from handlers.errors import InputError
from image_registry import ImageRegistry
from plugin import TrainingJobPlugin, load_task
from plugin.config import parse_config
from plugin.flyte import (
    UNREADABLE_META,
    SageMakerBuiltinAlgorithmTask,
    SageMakerCustomTrainingTask,
    SageMakerJobMeta,
    task_from_template,
)
from plugin.message import TrainingJob
from plugin.meta import ResourceMeta

XGBOOST_JOB = {
    "algorithmSpecification": {
        "algorithmName": "XGBOOST",
        "algorithmVersion": "1.7-1",
        "metricDefinitions": [{"name": "validation:rmse", "regex": "validation-rmse:([0-9\\.]+)"}],
    },
    "trainingJobResourceConfig": {"instanceCount": "1", "instanceType": "ml.m5.xlarge", "volumeSizeInGb": "10"},
}
IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/trainer:1.0"  # the `plugin` fixture's region
CUSTOM_JOB = {
    "algorithmSpecification": {"inputMode": "FILE", "algorithmName": "CUSTOM", "algorithmVersion": "",
                               "metricDefinitions": [{"name": "loss", "regex": "loss=([0-9.]+)"}],
                               "inputContentType": "TEXT_CSV"},
    "trainingJobResourceConfig": {"instanceCount": "2", "instanceType": "ml.p3.16xlarge", "volumeSizeInGb": "50",
                                  "distributedProtocol": "MPI"},
}
HYPERPARAMETERS = {"num_round": 20, "objective": "reg:squarederror", "eta": 0.3,
                   "save_model_on_termination": True}

builtin_task = SageMakerBuiltinAlgorithmTask(name="tests.fly.xgboost", training_job=XGBOOST_JOB)
custom_task = SageMakerCustomTrainingTask(
    name="tests.fly.custom", training_job=CUSTOM_JOB, image=IMAGE, command=["python", "-m", "trainer"],
    args=["--epochs", "3"], env={"LOG_LEVEL": "info"},
    inputs={"train": FlyteFile, "static_hyperparameters": dict, "extra": FlyteDirectory | None},
)


def serialized(task: Any) -> Any:
    """The TaskTemplate as flytekit registers it, through its protobuf (what propeller sends the connector)."""
    template = get_serializable(OrderedDict(), SerializationSettings(ImageConfig.auto_default_image()), task).template
    return TaskTemplate.from_flyte_idl(template.to_flyte_idl())


def literal_map(task: Any, values: dict[str, Any]) -> Any:
    ctx = FlyteContextManager.current_context()
    lm = TypeEngine.dict_to_literal_map(ctx, values, task.get_input_types())
    return literals.LiteralMap.from_flyte_idl(lm.to_flyte_idl())


def execution_metadata(project: str = "flytesnacks", domain: str = "development", name: str = "f3a9c2e1b0",
                       node_id: str = "n1", retry_attempt: int = 1) -> Any:
    task_id = identifier.Identifier(identifier.ResourceType.TASK, project, domain, "tests.fly.xgboost", "v1")
    workflow = identifier.WorkflowExecutionIdentifier(project, domain, name)
    ids = identifier.TaskExecutionIdentifier(task_id, identifier.NodeExecutionIdentifier(node_id, workflow),
                                             retry_attempt)
    metadata = TaskExecutionMetadata(ids, f"{project}-{domain}", {}, {}, "default", {}, None)
    return TaskExecutionMetadata.from_flyte_idl(metadata.to_flyte_idl())


@pytest.fixture(scope="module")
def plugin() -> TrainingJobPlugin:
    return TrainingJobPlugin(parse_config({"backend": "aws", "region": "eu-west-1",
                                           "role_arn": "arn:aws:iam::123456789012:role/SageMakerRole"}))


def test_builtin_template_type_custom_and_interface() -> None:
    template = serialized(builtin_task)
    assert template.type == "sagemaker_training_job_task"
    assert template.container is None
    assert TrainingJob.parse(template.custom) == TrainingJob.parse(XGBOOST_JOB)
    assert template.custom == TrainingJob.parse(XGBOOST_JOB).to_proto3_json()  # proto3 JSON, int64 as strings
    assert set(template.interface.inputs) == {"train", "validation", "static_hyperparameters"}
    assert set(template.interface.outputs) == {"model", "metrics"}
    assert template.interface.outputs["model"].type.blob.dimensionality == 0  # SINGLE: a FlyteFile
    assert template.interface.outputs["metrics"].type.map_value_type.simple == 2  # FLOAT
    assert template.interface.inputs["train"].type.blob.dimensionality == 1  # MULTIPART: a FlyteDirectory


def test_builtin_template_renders_the_create_request(plugin: TrainingJobPlugin) -> None:
    template = serialized(builtin_task)
    inputs = literal_map(builtin_task, {"train": FlyteDirectory("s3://data-bucket/sets/train/"),
                                        "validation": FlyteDirectory("s3://data-bucket/sets/validation/"),
                                        "static_hyperparameters": HYPERPARAMETERS})
    task = task_from_template(template, inputs, "s3://flyte-bucket/metadata/abc/n1/1", execution_metadata(),
                              config=plugin.config)
    assert task["execution"] == {"project": "flytesnacks", "domain": "development", "name": "f3a9c2e1b0",
                                 "node_id": "n1", "retry_attempt": 1}
    assert task["output_prefix"] == "s3://flyte-bucket/metadata/abc/n1/1"  # aws backend, none in config
    rendered = plugin.render(load_task(task, ignore_unknown=True))
    request = rendered.request
    assert request["TrainingJobName"] == "flytesnacks-development-f3a9c2e1b0-n1-1"
    algorithm = request["AlgorithmSpecification"]
    assert algorithm["TrainingImage"] == ImageRegistry.default().uri("xgboost", "1.7-1", "eu-west-1")
    assert algorithm["TrainingImage"].endswith(".dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:1.7-1")
    assert algorithm["TrainingInputMode"] == "File"
    # The TrainingJob's metric definitions are left out (SageMaker refuses them for built-in algorithms), and said.
    assert "MetricDefinitions" not in algorithm
    assert [w.path for w in rendered.warnings] == ["training_job.algorithm_specification.metric_definitions"]
    assert "ContainerEntrypoint" not in algorithm and "Environment" not in request
    assert request["HyperParameters"] == {"num_round": "20", "objective": "reg:squarederror", "eta": "0.3",
                                          "save_model_on_termination": "true"}
    assert [(c["ChannelName"], c["DataSource"]["S3DataSource"]["S3Uri"]) for c in request["InputDataConfig"]] == [
        ("train", "s3://data-bucket/sets/train/"), ("validation", "s3://data-bucket/sets/validation/")]
    assert request["OutputDataConfig"]["S3OutputPath"] == "s3://flyte-bucket/metadata/abc/n1/1"
    assert request["ResourceConfig"] == {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 10}
    tags = {t["Key"]: t["Value"] for t in request["Tags"]}
    assert tags["sagemaker-plugin:project"] == "flytesnacks" and tags["sagemaker-plugin:retry-attempt"] == "1"


def test_custom_template_carries_the_container() -> None:
    template = serialized(custom_task)
    assert template.type == "sagemaker_custom_training_job_task"
    assert template.container.image == IMAGE
    assert list(template.container.command) == ["python", "-m", "trainer"]
    assert list(template.container.args) == ["--epochs", "3"]
    assert template.container.env == {"LOG_LEVEL": "info"}
    assert TrainingJob.parse(template.custom) == TrainingJob.parse(CUSTOM_JOB)
    assert template.interface.inputs["train"].type.blob.dimensionality == 0  # declared a FlyteFile


def test_custom_template_renders_the_create_request(plugin: TrainingJobPlugin) -> None:
    plugin = TrainingJobPlugin(dataclasses.replace(plugin.config, output_prefix="s3://models/out"))
    template = serialized(custom_task)
    inputs = literal_map(custom_task, {"train": FlyteFile("s3://data-bucket/sets/train.csv"),
                                       "static_hyperparameters": {"lr": 0.01, "epochs": 3}, "extra": None})
    task = task_from_template(template, inputs, "s3://flyte-bucket/meta", execution_metadata(node_id="dn0-n2"),
                              config=plugin.config)
    assert "output_prefix" not in task and "extra" not in task["inputs"]  # config's prefix wins; None: no channel
    request = plugin.render(load_task(task)).request
    assert request["TrainingJobName"] == "flytesnacks-development-f3a9c2e1b0-dn0-n2-1"
    algorithm = request["AlgorithmSpecification"]
    assert algorithm["TrainingImage"] == IMAGE
    assert algorithm["ContainerEntrypoint"] == ["python", "-m", "trainer"]
    assert algorithm["ContainerArguments"] == ["--epochs", "3"]
    assert request["Environment"] == {"LOG_LEVEL": "info"}
    assert request["HyperParameters"] == {"lr": "0.01", "epochs": "3", "sagemaker_mpi_enabled": "true",
                                          "sagemaker_mpi_num_of_processes_per_host": "8"}
    assert request["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] == "s3://data-bucket/sets/train.csv"
    assert request["OutputDataConfig"]["S3OutputPath"] == "s3://models/out"
    assert request["ResourceConfig"]["InstanceCount"] == 2


def test_generic_struct_hyperparameters_keep_whole_numbers_whole(plugin: TrainingJobPlugin) -> None:
    """Older flytekit (and other producers) send `dict` as a protobuf Struct, where 20 arrives as 20.0."""
    struct = struct_pb2.Struct()
    struct.update({"num_round": 20, "eta": 0.3, "objective": "reg:squarederror"})
    inputs = literals.LiteralMap({
        "train": literals.Literal(scalar=literals.Scalar(primitive=literals.Primitive(string_value="s3://b/t/"))),
        "static_hyperparameters": literals.Literal(scalar=literals.Scalar(generic=struct)),
    })
    task = task_from_template(serialized(builtin_task), inputs)
    assert task["inputs"] == {"train": "s3://b/t/",
                              "static_hyperparameters": {"num_round": 20, "eta": 0.3, "objective": "reg:squarederror"}}
    assert "execution" not in task and "output_prefix" not in task
    request = plugin.render(load_task({**task, "output_prefix": "s3://models/out"})).request
    assert request["HyperParameters"]["num_round"] == "20"
    assert request["TrainingJobName"].startswith("xgboost-")  # no identity: a unique name


def test_old_flytekit_custom_with_defaults_and_newer_fields_is_accepted() -> None:
    """What json_format wrote with defaults included, plus a field a newer producer added: the connector reads it."""
    custom = {"algorithmSpecification": {"inputMode": "FILE", "algorithmName": "XGBOOST", "algorithmVersion": "1.7-1",
                                         "metricDefinitions": [], "inputContentType": "TEXT_CSV",
                                         "someFutureField": 1},
              "trainingJobResourceConfig": {"instanceCount": "1", "instanceType": "ml.m5.xlarge",
                                            "volumeSizeInGb": "0", "distributedProtocol": "UNSPECIFIED"}}
    template = serialized(builtin_task)
    template._custom = custom
    inputs = literal_map(builtin_task, {"train": FlyteDirectory("s3://b/train/"),
                                        "validation": FlyteDirectory("s3://b/validation/"),
                                        "static_hyperparameters": {}})
    loaded = load_task(task_from_template(template, inputs), ignore_unknown=True)
    assert loaded.training_job.algorithm_specification.algorithm_version == "1.7-1"
    assert [c.name for c in loaded.channels] == ["train", "validation"]


def test_wrong_input_literals_name_the_input() -> None:
    inputs = literals.LiteralMap({
        "train": literals.Literal(scalar=literals.Scalar(primitive=literals.Primitive(integer=3))),
        "static_hyperparameters": literals.Literal(scalar=literals.Scalar(primitive=literals.Primitive(integer=1))),
    })
    with pytest.raises(InputError) as caught:
        task_from_template(serialized(builtin_task), inputs)
    paths = {p.path for p in caught.value.problems}
    assert paths == {"inputs.train", "inputs.static_hyperparameters"}


def test_declaration_errors() -> None:
    with pytest.raises(InputError, match=r"algorithm_name.*SageMakerCustomTrainingTask"):
        SageMakerBuiltinAlgorithmTask(name="t.bad1", training_job=CUSTOM_JOB)
    with pytest.raises(InputError, match="SageMakerBuiltinAlgorithmTask"):
        SageMakerCustomTrainingTask(name="t.bad2", training_job=XGBOOST_JOB, image=IMAGE)
    with pytest.raises(InputError, match=r"container\.image"):
        SageMakerCustomTrainingTask(name="t.bad3", training_job=CUSTOM_JOB, image="")
    with pytest.raises(InputError, match="instanceTyp"):  # a typo is an error that names the field
        SageMakerBuiltinAlgorithmTask(name="t.bad4", training_job={
            "algorithmSpecification": {"algorithmName": "XGBOOST"},
            "trainingJobResourceConfig": {"instanceTyp": "ml.m5.xlarge"}})
    with pytest.raises(InputError, match=r"inputs\.train"):
        SageMakerBuiltinAlgorithmTask(name="t.bad5", training_job=XGBOOST_JOB, inputs={"validation": FlyteDirectory})
    with pytest.raises(InputError) as caught:
        SageMakerBuiltinAlgorithmTask(name="t.bad6", training_job=XGBOOST_JOB,
                                      inputs={"train": int, "static_hyperparameters": str})
    assert {p.path for p in caught.value.problems} == {"inputs.train", "inputs.static_hyperparameters"}
    optional = SageMakerBuiltinAlgorithmTask(name="t.optional", training_job=XGBOOST_JOB, inputs={
        "train": FlyteDirectory, "validation": typing.Optional[FlyteDirectory], "test": FlyteFile | None,  # noqa: UP045
        "manifest": str, "static_hyperparameters": dict[str, int]})
    assert set(serialized(optional).interface.inputs) == {"train", "validation", "test", "manifest",
                                                          "static_hyperparameters"}
    # the parsed message is accepted as well as its JSON
    task = SageMakerBuiltinAlgorithmTask(name="t.ok", training_job=TrainingJob.parse(XGBOOST_JOB),
                                         inputs={"train": FlyteFile, "static_hyperparameters": dict})
    assert task.training_job == TrainingJob.parse(XGBOOST_JOB)


def test_resource_meta_is_json_and_round_trips() -> None:
    meta = SageMakerJobMeta(job=ResourceMeta(job_name="j-1", region="us-east-1", created_at=1.5, fingerprint="f",
                                             job_arn="arn:aws:sagemaker:us-east-1:1:training-job/j-1"))
    blob = meta.encode()
    assert json.loads(blob)["job"]["job_name"] == "j-1"
    assert SageMakerJobMeta.decode(blob) == meta
    failed = SageMakerJobMeta(error="invalid SageMaker training task:\ninputs.train: is required")
    assert SageMakerJobMeta.decode(failed.encode()) == failed
    for bad in (b"", b"\x80\x04pickle", b"[]", b'{"job": null, "error": ""}', b'{"job": {}, "error": "", "x": 1}',
                b'{"job": {"job_name": "j"}, "error": ""}'):
        with pytest.raises(InputError):
            SageMakerJobMeta.parse(bad)
        # what the connector service decodes: never an exception (gRPC INTERNAL, retried by propeller as a system
        # error), but a meta whose get answers FAILED saying why
        unreadable = SageMakerJobMeta.decode(bad)
        assert unreadable.job is None and unreadable.error.startswith(UNREADABLE_META)
    old = json.loads(blob)
    old["job"]["version"] = 0
    unreadable = SageMakerJobMeta.decode(json.dumps(old).encode())
    assert "its job (j-1): resource meta version 0 is not supported (this plugin reads 1)" in unreadable.error
