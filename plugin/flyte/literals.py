"""Flyte literals <-> the plugin: a TaskTemplate and its inputs as a task file, a Resource and its outputs back."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flyteidl.core.execution_pb2 import TaskExecution, TaskLog  # type: ignore[import-untyped, import-not-found, unused-ignore]
from flytekit.extend.backend.base_connector import (  # type: ignore[import-untyped, import-not-found, unused-ignore]
    Resource,
)
from flytekit.models import literals as _literals  # type: ignore[import-untyped, import-not-found, unused-ignore]
from flytekit.models.core.types import BlobType  # type: ignore[import-untyped, import-not-found, unused-ignore]
from google.protobuf import json_format  # type: ignore[import-untyped, import-not-found, unused-ignore]

from handlers.errors import InputError, Problem, join_path, short_repr
from handlers.status import Phase
from plugin.config import Config
from plugin.connectors.core import TUNING_CONFIG_INPUT, execution_of, refuse_local_paths, task_file, whole
from plugin.jobs.resource import LogLink
from plugin.jobs.resource import Resource as PluginResource
from plugin.task import HYPERPARAMETERS_INPUT

log = logging.getLogger(__name__)

__all__ = ["METRICS_OUTPUT", "MODEL_OUTPUT", "TUNING_CONFIG_INPUT", "execution_of", "inputs_from_literals",
           "outputs_literal_map", "refuse_local_paths", "task_from_template", "to_flyte_resource",
           "tuning_outputs_literal_map"]



MODEL_OUTPUT = "model"


METRICS_OUTPUT = "metrics"


def task_from_template(template: Any, inputs: Any = None, output_prefix: str | None = None,
                       task_execution_metadata: Any = None, *, config: Config | None = None) -> dict[str, Any]:
    """The task, in task-file form, for a flytekit TaskTemplate, its input LiteralMap and execution metadata.

    custom is the TrainingJob in proto3 JSON; each input literal but static_hyperparameters becomes a channel (a
    blob's URI: FlyteFile or FlyteDirectory; or a string URI); static_hyperparameters is a struct (flytekit's generic
    struct or msgpack binary for `dict`, or a literal map). For custom training the container (image, command, args,
    env) comes from the template's container. `output_prefix` (Flyte's) is used for the model only with the aws
    backend when config names no output_prefix and it is an S3 URI.
    """
    container = getattr(template, "container", None)
    return task_file(str(template.type), template.custom or {}, inputs_from_literals(inputs),
                     _container_of(container) if container is not None else None,
                     execution_of(task_execution_metadata), output_prefix, config)


def _container_of(container: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"image": container.image or ""}
    if container.command:
        out["command"] = [str(word) for word in container.command]
    if container.args:
        out["args"] = [str(word) for word in container.args]
    if container.env:
        out["env"] = {str(k): str(v) for k, v in container.env.items()}
    return out


def inputs_from_literals(inputs: Any) -> dict[str, Any]:
    """Task-file inputs from a LiteralMap: channels' URIs, and static_hyperparameters as a dict."""
    literals: Mapping[str, Any] = getattr(inputs, "literals", None) or {}
    out: dict[str, Any] = {}
    problems: list[Problem] = []
    # A LiteralMap is a protobuf map: its order is the sender's whim (Go's is random). Channels go in name order, so
    # that the same inputs always render the same request (and fingerprint: a retried create adopts its own job).
    for name in sorted(literals):
        path = join_path("inputs", name)
        literal = _unwrap(literals[name])
        if literal is None:
            continue  # an Optional input left out
        try:
            out[name] = _hyperparameters(literal, path) if name in (HYPERPARAMETERS_INPUT, TUNING_CONFIG_INPUT) \
                else _uri(literal, path)
        except InputError as error:
            problems.extend(error.problems)
    if problems:
        raise InputError(problems)
    return out


def _unwrap(literal: Any) -> Any:
    """The literal itself, the value of a union (Optional[...]) literal, or None for a none literal."""
    while literal is not None and literal.scalar is not None and literal.scalar.union is not None:
        literal = literal.scalar.union.value
    if literal is None or (literal.scalar is not None and literal.scalar.none_type is not None):
        return None
    return literal


def _uri(literal: Any, path: str) -> str:
    scalar = literal.scalar
    if scalar is not None and scalar.blob is not None and scalar.blob.uri:
        uri = str(scalar.blob.uri)
    elif scalar is not None and scalar.primitive is not None and isinstance(scalar.primitive.value, str):
        uri = scalar.primitive.value
    else:
        raise InputError(Problem(path, f"must be a FlyteFile, a FlyteDirectory or a URI string, not {_kind(literal)}"))
    return uri[len("file://"):] if uri.startswith("file://") else uri


def _hyperparameters(literal: Any, path: str) -> dict[str, Any]:
    scalar = literal.scalar
    if scalar is not None and scalar.generic is not None:
        return {k: whole(v) for k, v in json_format.MessageToDict(scalar.generic).items()}
    if scalar is not None and scalar.binary is not None and scalar.binary.tag == "msgpack":
        import msgpack  # type: ignore[import-untyped, import-not-found, unused-ignore]

        try:
            value = msgpack.unpackb(scalar.binary.value, strict_map_key=False)
        except (ValueError, TypeError, msgpack.UnpackException) as error:  # malformed, truncated, too deep, extra data
            why = f"{type(error).__name__}: {short_repr(str(error))}" if str(error) else type(error).__name__
            raise InputError(Problem(path, f"is a msgpack binary that does not decode ({why})")) from None
        if isinstance(value, dict):
            return {str(k): v for k, v in value.items()}
        raise InputError(Problem(path, f"must be a map of hyperparameters, not {type(value).__name__}"))
    if literal.map is not None:
        out: dict[str, Any] = {}
        for key, item in literal.map.literals.items():
            primitive = item.scalar.primitive if item.scalar is not None else None
            if primitive is None:
                raise InputError(Problem(join_path(path, key), f"must be a string, number or boolean, not "
                                         f"{_kind(item)}"))
            out[key] = primitive.value
        return out
    raise InputError(Problem(path, f"must be a dict of hyperparameters, not {_kind(literal)}"))


def _kind(literal: Any) -> str:
    if literal.scalar is not None:
        for kind in ("primitive", "blob", "binary", "schema", "structured_dataset", "generic", "error"):
            if getattr(literal.scalar, kind, None) is not None:
                return kind
    for kind in ("collection", "map"):
        if getattr(literal, kind, None) is not None:
            return f"a {kind} literal"
    return "this literal"


def to_flyte_resource(resource: PluginResource, job_name: str = "", region: str = "") -> Any:
    """flytekit's Resource for the plugin's: same phase and message, TaskLogs, and on SUCCEEDED a LiteralMap."""
    phase = resource.phase
    message = resource.message
    outputs = None
    if phase == Phase.SUCCEEDED and "best_training_job_name" in resource.outputs:  # a tuning job
        outputs = tuning_outputs_literal_map(resource.outputs)
    elif phase == Phase.SUCCEEDED:  # always with a model (handlers/status.py)
        outputs = outputs_literal_map(str(resource.outputs[MODEL_OUTPUT]), resource.outputs.get(METRICS_OUTPUT) or {})
    info: dict[str, Any] = {"training_job_name": job_name or resource.outputs.get("training_job_name", ""),
                            "region": region}
    for key in ("training_job_arn", "training_seconds", "billable_seconds"):
        if resource.outputs.get(key) is not None:
            info[key] = resource.outputs[key]
    return Resource(phase=TaskExecution.Phase.Value(phase.name), message=message,
                    log_links=[task_log(link) for link in resource.log_links], outputs=outputs, custom_info=info)


def task_log(link: LogLink) -> Any:
    return TaskLog(name=link.name, uri=link.uri)


def outputs_literal_map(model_uri: str, metrics: Mapping[str, float]) -> Any:
    """`model` as a FlyteFile blob, `metrics` as a Dict[str, float] literal map."""
    blob = _literals.Blob(metadata=_literals.BlobMetadata(type=BlobType(
        format="", dimensionality=BlobType.BlobDimensionality.SINGLE)), uri=model_uri)
    metric_literals = {str(name): _literals.Literal(scalar=_literals.Scalar(primitive=_literals.Primitive(
        float_value=float(value)))) for name, value in metrics.items()}
    return _literals.LiteralMap(literals={
        MODEL_OUTPUT: _literals.Literal(scalar=_literals.Scalar(blob=blob)),
        METRICS_OUTPUT: _literals.Literal(map=_literals.LiteralMap(literals=metric_literals)),
    })


def tuning_outputs_literal_map(outputs: Mapping[str, Any]) -> Any:
    """A tuning job's outputs: the best trial's `model`, `objective` {metric name: value}, `best_hyperparameters`."""
    objective = outputs.get("objective") or {}
    value = objective.get("value")
    base = outputs_literal_map(str(outputs.get(MODEL_OUTPUT) or ""),
                               {str(objective.get("metric_name")): float(value)} if value is not None else {})
    hyperparameters = {str(k): _literals.Literal(scalar=_literals.Scalar(primitive=_literals.Primitive(
        string_value=str(v)))) for k, v in (outputs.get("best_hyperparameters") or {}).items()}
    return _literals.LiteralMap(literals={
        MODEL_OUTPUT: base.literals[MODEL_OUTPUT],
        "objective": base.literals[METRICS_OUTPUT],
        "best_hyperparameters": _literals.Literal(map=_literals.LiteralMap(literals=hyperparameters)),
    })
