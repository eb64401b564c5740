"""Flyte 2's async connector for the SageMaker task types: a thin adapter of plugin/connectors/core.py.

Flyte 2's connector server (`c0`) hands `create` the TaskTemplate (flyteidl2) and the inputs as Python values
(flyte.io.Dir, flyte.io.File, str, dict), the same values a local run's task passes; `get` answers with Flyte 2's
Resource, its outputs as Python values (`model: flyte.io.File`, `metrics: dict[str, float]`). Importing this module
registers one connector per task type with flyte.connectors.ConnectorRegistry (the server imports it through the
`flyte.connectors` entry point); in the server (`serving()`) it also checks the config first, as flytekit's service
does (plugin/connectors/shared.py).
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

try:
    import flyte.io  # type: ignore[import-untyped, import-not-found, unused-ignore]
    from flyte.connectors import (  # type: ignore[import-untyped, import-not-found, unused-ignore]
        AsyncConnector,
        ConnectorRegistry,
        Resource,
    )
    from flyte.connectors import (  # type: ignore[import-untyped, import-not-found, unused-ignore]
        ResourceMeta as FlyteResourceMeta,
    )
    from flyteidl2.connector import connector_pb2  # type: ignore[import-untyped, import-not-found, unused-ignore]
    from flyteidl2.core import metrics_pb2  # type: ignore[import-untyped, import-not-found, unused-ignore]
    from flyteidl2.core.execution_pb2 import (  # type: ignore[import-untyped, import-not-found, unused-ignore]
        TaskExecution,
        TaskLog,
    )
    from flyteidl2.logs.dataplane import payload_pb2  # type: ignore[import-untyped, import-not-found, unused-ignore]
except ImportError as _error:
    raise ImportError(f"plugin.flyte2 needs Flyte 2 with its connector extra: pip install "
                      f"'sagemaker-plugin[flyte2]' ({_error})") from _error
from google.protobuf import json_format  # type: ignore[import-untyped, import-not-found, unused-ignore]

from handlers.errors import InputError, Problem, join_path
from handlers.status import Phase
from plugin.config import Config
from plugin.connectors import observe
from plugin.connectors.core import (
    TUNING_CONFIG_INPUT,
    ConnectorCore,
    execution_of,
    task_file,
    whole,
)
from plugin.connectors.meta import JobMeta
from plugin.connectors.shared import SERVED_TASK_TYPES, start_checked_service
from plugin.jobs.resource import Resource as PluginResource
from plugin.task import BUILTIN_TASK, HYPERPARAMETERS_INPUT

log = logging.getLogger(__name__)

CONNECTOR_NAME = "SageMaker Training Job Connector"
MODEL_OUTPUT = "model"
METRICS_OUTPUT = "metrics"
#: the container config key holding a custom task's command (Flyte 2 serializes a container's command empty)
COMMAND_KEY = "sagemaker_command"
SERVER_COMMANDS = ("c0",)  # Flyte 2's connector server

MESSAGES = observe.Messages(
    response=connector_pb2.GetTaskLogsResponse, header=connector_pb2.GetTaskLogsResponseHeader,
    body=connector_pb2.GetTaskLogsResponseBody, line=payload_pb2.LogLine,
    user_originator=payload_pb2.LogLineOriginator.Value("USER"), lines_field="lines",
    metrics_response=connector_pb2.GetTaskMetricsResponse, metric_result=metrics_pb2.ExecutionMetricResult)


def serving(argv: Sequence[str] | None = None) -> bool:
    """Whether this process is Flyte 2's connector server (`c0`), which imports this module before it listens."""
    args = list(sys.argv if argv is None else argv)
    return bool(args) and Path(args[0]).name in SERVER_COMMANDS and not {"--help", "-h"} & set(args[1:])


@dataclass
class SageMakerJobMeta(JobMeta, FlyteResourceMeta):  # type: ignore[misc]
    """Flyte 2's ResourceMeta for one job: plugin/connectors/meta.py's JSON (a job, or why it failed)."""


class SageMakerConnector(AsyncConnector[SageMakerJobMeta]):  # type: ignore[misc]
    """Flyte 2's async connector for one task type; the blocking SageMaker calls run in a worker thread."""

    name = CONNECTOR_NAME
    metadata_type = SageMakerJobMeta

    def __init__(self, task_type: str = BUILTIN_TASK, plugin: Any = None, *, served: bool | None = None) -> None:
        self.task_type_name = task_type
        self.task_type_version = 0
        self.core = ConnectorCore(task_type, plugin, served=serving() if served is None else served,
                                  service_command="c0")

    async def create(self, task_template: Any, output_prefix: str = "", inputs: Mapping[str, Any] | None = None,
                     task_execution_metadata: Any = None, **kwargs: Any) -> SageMakerJobMeta:
        def read(config: Config) -> dict[str, Any]:
            return task_from_template(task_template, inputs, output_prefix, task_execution_metadata, config=config)

        meta = await asyncio.to_thread(self.core.create, read, from_service=task_execution_metadata is not None,
                                       what=str(getattr(getattr(task_template, "id", None), "name", "")))
        return SageMakerJobMeta(job=meta.job, error=meta.error)

    async def get(self, resource_meta: SageMakerJobMeta, **kwargs: Any) -> Any:
        followed = await asyncio.to_thread(self.core.get, resource_meta)
        if isinstance(followed, str):
            return Resource(phase=TaskExecution.FAILED, message=followed)
        resource, job = followed
        return to_resource(resource, job.job_name, job.region)

    async def delete(self, resource_meta: SageMakerJobMeta, **kwargs: Any) -> None:
        await asyncio.to_thread(self.core.delete, resource_meta)

    async def get_logs(self, resource_meta: SageMakerJobMeta, token: str = "", lines: int = 0,  # type: ignore[override]
                       **kwargs: Any) -> AsyncIterator[Any]:
        """GetTaskLogs' stream: a header with the next page's token, then the lines."""
        client, job_name = await asyncio.to_thread(self.core.client_of, resource_meta)
        for response in await asyncio.to_thread(observe.log_responses, MESSAGES, client, job_name, token, lines):
            yield response

    async def get_metrics(self, resource_meta: SageMakerJobMeta, queries: Sequence[str] = (), start_time: Any = None,
                          end_time: Any = None, step: float = 0.0, **kwargs: Any) -> Any:
        """The job's metric series per host (`queries` names some; none = all), over [start_time, end_time)."""
        client, job_name = await asyncio.to_thread(self.core.client_of, resource_meta)
        return await asyncio.to_thread(observe.metrics_response, MESSAGES, client, job_name, queries, start_time,
                                       end_time, step)


def task_from_template(template: Any, inputs: Mapping[str, Any] | None = None, output_prefix: str | None = None,
                       task_execution_metadata: Any = None, *, config: Config | None = None) -> dict[str, Any]:
    """The task, in task-file form, for a flyteidl2 TaskTemplate and its inputs as Python values."""
    custom = json_format.MessageToDict(template.custom) if template.HasField("custom") else {}
    container = _container_of(template.container) if template.HasField("container") else None
    return task_file(str(template.type), custom, inputs_from_values(inputs or {}), container,
                     execution_of(task_execution_metadata), output_prefix, config)


def _container_of(container: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"image": container.image or ""}
    config = {pair.key: pair.value for pair in container.config}
    if COMMAND_KEY in config:
        out["command"] = [str(word) for word in json_loads_list(config[COMMAND_KEY], "container.config.command")]
    if container.args:
        out["args"] = [str(word) for word in container.args]
    if container.env:
        out["env"] = {pair.key: pair.value for pair in container.env}
    return out


def json_loads_list(text: str, path: str) -> list[Any]:
    import json

    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        value = None
    if not isinstance(value, list):
        raise InputError(Problem(path, "must be a JSON list of words"))
    return value


def inputs_from_values(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """Task-file inputs from Python values: a Dir's or File's path (or a URI string) per channel, in name order (the
    same inputs always render the same request), and static_hyperparameters (a tuning config) as a dict."""
    out: dict[str, Any] = {}
    problems: list[Problem] = []
    for name in sorted(inputs):
        value, path = inputs[name], join_path("inputs", name)
        if value is None:
            continue  # an Optional input left out
        if name in (HYPERPARAMETERS_INPUT, TUNING_CONFIG_INPUT):
            if isinstance(value, dict):
                out[name] = {str(k): whole(v) for k, v in value.items()}
            else:
                problems.append(Problem(path, f"must be a dict of hyperparameters, not {type(value).__name__}"))
        elif isinstance(value, (flyte.io.Dir, flyte.io.File)):
            out[name] = _local(str(value.path))
        elif isinstance(value, str):
            out[name] = _local(value)
        else:
            problems.append(Problem(path, f"must be a flyte.io.Dir, a flyte.io.File or a URI string, not "
                                    f"{type(value).__name__}"))
    if problems:
        raise InputError(problems)
    return out


def _local(uri: str) -> str:
    return uri[len("file://"):] if uri.startswith("file://") else uri


def to_resource(resource: PluginResource, job_name: str = "", region: str = "") -> Any:
    """Flyte 2's Resource for the plugin's: the same phase and message, TaskLogs, and on SUCCEEDED the outputs
    `model` (flyte.io.File) and `metrics` (a tuning job's: the best trial's objective)."""
    outputs = None
    if resource.phase == Phase.SUCCEEDED:
        model, metrics = resource_outputs(resource)
        outputs = {MODEL_OUTPUT: flyte.io.File(path=model), METRICS_OUTPUT: metrics}
    info: dict[str, Any] = {"training_job_name": job_name or resource.outputs.get("training_job_name", ""),
                            "region": region}
    for key in ("training_job_arn", "training_seconds", "billable_seconds", "best_training_job_name"):
        if resource.outputs.get(key) is not None:
            info[key] = resource.outputs[key]
    return Resource(phase=TaskExecution.Phase.Value(resource.phase.name), message=resource.message,
                    log_links=[TaskLog(name=link.name, uri=link.uri) for link in resource.log_links],
                    outputs=outputs, custom_info=info)


def resource_outputs(resource: PluginResource) -> tuple[str, dict[str, float]]:
    """(model URI, metrics) of a succeeded job; of a tuning job, the best trial's model and objective."""
    if "best_training_job_name" in resource.outputs:
        objective = resource.outputs.get("objective") or {}
        value = objective.get("value")
        metrics = {str(objective.get("metric_name")): float(value)} if value is not None else {}
        return str(resource.outputs.get(MODEL_OUTPUT) or ""), metrics
    return (str(resource.outputs[MODEL_OUTPUT]),
            {str(k): float(v) for k, v in (resource.outputs.get(METRICS_OUTPUT) or {}).items()})


def register() -> None:
    """Register a connector for each task type with Flyte 2's ConnectorRegistry (once; done at import)."""
    for task_type in SERVED_TASK_TYPES:
        try:
            known = ConnectorRegistry.get_connector(task_type)
        except ValueError:  # FlyteConnectorNotFound
            known = None
        if isinstance(known, SageMakerConnector):
            continue
        if known is not None:
            log.warning("task type %s is already served by %r; the SageMaker connector does not replace it",
                        task_type, known)
            continue
        ConnectorRegistry.register(SageMakerConnector(task_type))


register()
if serving():
    from plugin.flyte2.serve import patch_service

    start_checked_service(lambda: patch_service(SageMakerConnector))
