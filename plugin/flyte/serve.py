"""The connector service (`pyflyte serve connector`) made safe to run: who can reach it, and what it lets in.

Who can reach it: plugin/connectors/loopback.py (shared with Flyte 2's connector server), re-exported here.

flytekit reads a CreateTask's template, inputs and execution metadata before any connector sees them, and answers
INTERNAL with a traceback when they do not convert (an out-of-range time, a number past a C int): `guard_creates()`
answers INVALID_ARGUMENT naming the field instead, for this plugin's task types.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from plugin.connectors.loopback import LOOPBACK, is_loopback_ip, listen_on_loopback, loopback_address

__all__ = ["LOOPBACK", "guard_creates", "is_loopback_ip", "listen_on_loopback", "loopback_address", "unreadable_part"]


def guard_creates(task_types: Collection[str]) -> None:
    """Make the service answer a CreateTask of `task_types` whose parts flytekit cannot read with INVALID_ARGUMENT
    naming the part, rather than INTERNAL with a traceback. Idempotent."""
    import grpc  # type: ignore[import-untyped, import-not-found, unused-ignore]
    from flytekit.extend.backend import connector_service  # type: ignore[import-untyped, import-not-found, unused-ignore]

    service = connector_service.AsyncConnectorService
    if getattr(service, "_sagemaker_plugin_guards", False):
        return
    original = service.CreateTask

    async def create_task(self: Any, request: Any, context: Any) -> Any:
        if request.template.type in task_types:
            problem = unreadable_part(request)
            if problem:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, problem)
        return await original(self, request, context)

    service.CreateTask = create_task
    service._sagemaker_plugin_guards = True


def unreadable_part(request: Any) -> str:
    """What of a CreateTaskRequest flytekit cannot read ("" when it reads all): the field, and why."""
    from flytekit.models.literals import LiteralMap  # type: ignore[import-untyped, import-not-found, unused-ignore]
    from flytekit.models.task import (  # type: ignore[import-untyped, import-not-found, unused-ignore]
        TaskExecutionMetadata,
        TaskTemplate,
    )

    parts = (("template", TaskTemplate, request.template), ("inputs", LiteralMap, request.inputs),
             ("task_execution_metadata", TaskExecutionMetadata, request.task_execution_metadata))
    for name, model, value in parts:
        try:
            model.from_flyte_idl(value)
        except Exception as error:  # flytekit's readers raise whatever the value provokes (ValueError, OverflowError)
            return f"{name}: cannot be read ({type(error).__name__}: {str(error)[:300]})"
    return ""
