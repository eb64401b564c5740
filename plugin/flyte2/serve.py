"""Flyte 2's connector server (`c0`) made to answer this plugin's task types cleanly.

The server reads a CreateTask's inputs into Python values before any connector sees them, and answers INTERNAL with the
error when they do not convert; it hands get_logs only the meta and the token and get_metrics only the meta, and lets
their errors out as INTERNAL too. `patch_service()` (called when this process is the server) answers unreadable inputs
with INVALID_ARGUMENT naming them, passes GetTaskLogs' line count and GetTaskMetrics' queries, time range and step to
this plugin's connectors, and turns their errors into gRPC codes (plugin/connectors/observe.py); other connectors keep
the server's own handling.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator
from typing import Any

from handlers.errors import AwsError, InputError
from plugin.connectors.observe import details, grpc_code, step_seconds, to_datetime
from plugin.connectors.shared import SERVED_TASK_TYPES

_PATCHED = "_sagemaker_plugin_guards"


def patch_service(connector_type: type) -> None:
    """Answer so for the task types whose connector is a `connector_type` (plugin/flyte2/connector.py's: passed in,
    so that this module does not import it back). Idempotent."""
    from flyte.connectors import (
        ConnectorRegistry,  # type: ignore[import-untyped, import-not-found, unused-ignore]
        _server,  # type: ignore[import-untyped, import-not-found, unused-ignore]
    )
    from flyte.connectors._grpc import grpc  # type: ignore[import-untyped, import-not-found, unused-ignore]

    service = _server.AsyncConnectorService
    if getattr(service, _PATCHED, False):
        return
    original_create, original_logs, original_metrics = service.CreateTask, service.GetTaskLogs, service.GetTaskMetrics

    def ours(category: Any) -> Any:
        if category.name not in SERVED_TASK_TYPES:
            return None
        connector = ConnectorRegistry.get_connector(category.name, category.version)
        return connector if isinstance(connector, connector_type) else None

    async def create_task(self: Any, request: Any, context: Any) -> Any:
        if request.template.type in SERVED_TASK_TYPES:
            problem = await unreadable_inputs(request)
            if problem:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, problem)
        return await original_create(self, request, context)

    async def get_task_logs(self: Any, request: Any, context: Any) -> AsyncIterator[Any]:
        connector = ours(request.task_category)
        if connector is None:
            async for response in original_logs(self, request, context):
                yield response
            return
        try:
            responses = [r async for r in connector.get_logs(connector.metadata_type.decode(request.resource_meta),
                                                             token=request.token, lines=int(request.lines))]
        except (InputError, AwsError) as error:
            await context.abort(grpc_code(error), details(error))
        for response in responses:
            yield response

    async def get_task_metrics(self: Any, request: Any, context: Any) -> Any:
        connector = ours(request.task_category)
        if connector is None:
            return await original_metrics(self, request, context)
        try:
            return await connector.get_metrics(
                connector.metadata_type.decode(request.resource_meta), queries=list(request.queries),
                start_time=to_datetime(request.start_time, "start_time") if request.HasField("start_time") else None,
                end_time=to_datetime(request.end_time, "end_time") if request.HasField("end_time") else None,
                step=step_seconds(request.step) if request.HasField("step") else 0.0)
        except (InputError, AwsError) as error:
            await context.abort(grpc_code(error), details(error))

    service.CreateTask = create_task  # type: ignore[method-assign]
    service.GetTaskLogs = get_task_logs  # type: ignore[method-assign, assignment]
    service.GetTaskMetrics = get_task_metrics  # type: ignore[method-assign]
    setattr(service, _PATCHED, True)


async def unreadable_inputs(request: Any) -> str:
    """What of a CreateTaskRequest's inputs Flyte 2's server cannot read into Python values ("" when it reads all)."""
    from flyte._internal.runtime.convert import (  # type: ignore[import-untyped, import-not-found, unused-ignore]
        Inputs,
        convert_from_inputs_to_native,
    )
    from flyte.models import NativeInterface  # type: ignore[import-untyped, import-not-found, unused-ignore]
    from flyte.types import TypeEngine  # type: ignore[import-untyped, import-not-found, unused-ignore]

    try:
        interface = NativeInterface.from_types(inputs={
            entry.key: (TypeEngine.guess_python_type(entry.value.type), inspect.Parameter.empty)
            for entry in request.template.interface.inputs.variables}, outputs={})
        await convert_from_inputs_to_native(interface, Inputs(proto_inputs=request.inputs))
    except Exception as error:  # the readers raise whatever a value provokes (TypeError, ValueError, msgpack's own)
        return f"inputs: cannot be read ({type(error).__name__}: {str(error)[:300]})"
    return ""
