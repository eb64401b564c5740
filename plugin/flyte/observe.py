"""Flyte's GetTaskLogs and GetTaskMetrics for SageMaker training jobs: the hosts' CloudWatch lines, the metrics.

The answers (flyteidl.admin's messages, built by plugin/connectors/observe.py, shared with Flyte 2): GetTaskLogs
streams a header (the token of the next page) then a body (the lines, as text and as structured LogLines);
GetTaskMetrics answers one ExecutionMetricResult per metric (a Prometheus-style matrix, as Flyte's console reads).

flytekit 1.16's connector service hands a connector's get_logs/get_metrics only the resource meta (not the request's
token, line count, queries or time range), and answers GetTaskLogs (a server stream) from a coroutine, which sends no
message. `serve_requests()`, called when this process is the connector service, makes the service pass the request's
fields to this plugin's connectors and stream their pages; other connectors keep flytekit's own handling.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from flyteidl.admin import agent_pb2  # type: ignore[import-untyped, import-not-found, unused-ignore]
from flyteidl.core import metrics_pb2  # type: ignore[import-untyped, import-not-found, unused-ignore]

from handlers.client import SageMakerClient
from handlers.errors import AwsError, InputError
from plugin.connectors import observe as shared
from plugin.connectors.observe import (
    MAX_DETAILS,
    MAX_STEP_SECONDS,
    Messages,
    check_token,
    details,
    grpc_code,
    step_seconds,
    to_datetime,
)

log = logging.getLogger(__name__)

__all__ = ["FLYTEKIT_MESSAGES", "MAX_DETAILS", "MAX_STEP_SECONDS", "check_token", "details", "grpc_code",
           "log_responses", "metrics_response", "serve_requests", "step_seconds", "to_datetime"]



FLYTEKIT_MESSAGES = Messages(
    response=agent_pb2.GetTaskLogsResponse, header=agent_pb2.GetTaskLogsResponseHeader,
    body=agent_pb2.GetTaskLogsResponseBody, line=agent_pb2.LogLine,
    user_originator=agent_pb2.LogLineOriginator.Value("USER"), lines_field="structured_lines",
    metrics_response=agent_pb2.GetTaskMetricsResponse, metric_result=metrics_pb2.ExecutionMetricResult)


def log_responses(client: SageMakerClient, job_name: str, token: str = "", lines: int = 0) -> list[Any]:
    """[header (next token), body (lines)]: one page of every host's lines after `token`."""
    return shared.log_responses(FLYTEKIT_MESSAGES, client, job_name, token, lines)


def metrics_response(client: SageMakerClient, job_name: str, queries: Sequence[str] = (),
                     start: datetime | None = None, end: datetime | None = None, step_seconds: float = 0) -> Any:
    """GetTaskMetricsResponse: for each queried metric (all the job's when none), its series per host."""
    return shared.metrics_response(FLYTEKIT_MESSAGES, client, job_name, queries, start, end, step_seconds)


def serve_requests() -> None:
    """Make flytekit's connector service hand GetTaskLogs/GetTaskMetrics requests' fields to our connectors and
    stream the log pages they answer. Idempotent."""
    import grpc  # type: ignore[import-untyped, import-not-found, unused-ignore]
    from flytekit.exceptions.system import (  # type: ignore[import-untyped, import-not-found, unused-ignore]
        FlyteConnectorNotFound,
    )
    from flytekit.extend.backend import connector_service  # type: ignore[import-untyped, import-not-found, unused-ignore]
    from flytekit.extend.backend.base_connector import (  # type: ignore[import-untyped, import-not-found, unused-ignore]
        ConnectorRegistry,
        mirror_async_methods,
    )

    service = connector_service.AsyncConnectorService
    if getattr(service, "_sagemaker_plugin_observes", False):
        return
    original_logs, original_metrics = service.GetTaskLogs, service.GetTaskMetrics

    def connector_for(request: Any) -> Any:
        if request.task_category and request.task_category.name:
            return ConnectorRegistry.get_connector(request.task_category.name, request.task_category.version)
        return ConnectorRegistry.get_connector(request.task_type)

    async def connector_or_abort(request: Any, context: Any) -> Any:
        try:
            return connector_for(request)
        except FlyteConnectorNotFound as error:
            await context.abort(grpc.StatusCode.NOT_FOUND, details(error))

    async def get_task_logs(self: Any, request: Any, context: Any) -> None:
        connector = await connector_or_abort(request, context)
        if not hasattr(connector, "log_stream"):
            await original_logs(self, request, context)
            return
        try:
            meta = connector.metadata_type.decode(request.resource_meta)
            responses: Iterable[Any] = await mirror_async_methods(
                connector.log_stream, resource_meta=meta, token=request.token, lines=int(request.lines))
        except (InputError, AwsError) as error:
            await context.abort(grpc_code(error), details(error))
        for response in responses:
            await context.write(response)

    async def get_task_metrics(self: Any, request: Any, context: Any) -> Any:
        connector = await connector_or_abort(request, context)
        if not hasattr(connector, "log_stream"):
            return await original_metrics(self, request, context)
        try:
            meta = connector.metadata_type.decode(request.resource_meta)
            return await mirror_async_methods(
                connector.get_metrics, resource_meta=meta, queries=list(request.queries),
                start_time=to_datetime(request.start_time, "start_time") if request.HasField("start_time") else None,
                end_time=to_datetime(request.end_time, "end_time") if request.HasField("end_time") else None,
                step=step_seconds(request.step) if request.HasField("step") else 0.0)
        except (InputError, AwsError) as error:
            await context.abort(grpc_code(error), details(error))

    service.GetTaskLogs = get_task_logs
    service.GetTaskMetrics = get_task_metrics
    service._sagemaker_plugin_observes = True
