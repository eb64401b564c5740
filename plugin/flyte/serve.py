"""The connector service (`pyflyte serve connector`) made safe to run: who can reach it, and what it lets in.

flytekit binds the service's gRPC port on every interface (`[::]:<port>`) and its Prometheus port on 0.0.0.0, with no
way to say otherwise. With the local backend the connector runs whatever training command a CreateTask names, on
this machine: `listen_on_loopback()` then makes every gRPC server and metrics server of the process bind 127.0.0.1
only, whatever address it asks for (the process is the connector service and nothing else), or refuses to start
when this grpc or prometheus_client offers no way to do so.

flytekit reads a CreateTask's template, inputs and execution metadata before any connector sees them, and answers
INTERNAL with a traceback when they do not convert (an out-of-range time, a number past a C int): `guard_creates()`
answers INVALID_ARGUMENT naming the field instead, for this plugin's task types.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Collection
from typing import Any

from handlers.errors import InputError

LOOPBACK = "127.0.0.1"
_PATCHED = "_sagemaker_plugin_loopback"


def loopback_address(address: str) -> str:
    """A gRPC bind address moved to loopback: `[::]:8000` -> `127.0.0.1:8000`; loopback addresses and unix sockets
    stay as they are."""
    if address.startswith(("unix:", "unix-abstract:")):
        return address
    host, _, port = address.rpartition(":")
    return address if is_loopback_ip(host.strip("[]")) else f"{LOOPBACK}:{port}"


def is_loopback_ip(host: str) -> bool:
    """An IP address of loopback (127.0.0.0/8, ::1); a name (even `localhost`, which a hosts file may move) is not."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def listen_on_loopback() -> None:
    """Make every gRPC server and Prometheus metrics server this process starts listen on loopback only.

    InputError when grpc or prometheus_client lack what this needs: the service must then not start."""
    import grpc  # type: ignore[import-untyped, import-not-found, unused-ignore]

    for module in (grpc, grpc.aio):
        factory = getattr(module, "server", None)
        if not callable(factory):
            raise InputError(f"{module.__name__}.server is missing: the service cannot be kept to loopback",
                             "backend")
        if not getattr(factory, _PATCHED, False):
            module.server = _loopback_server(factory)
    try:
        import prometheus_client
        from prometheus_client import exposition
    except ImportError:
        return  # flytekit then serves no metrics
    start = getattr(exposition, "start_wsgi_server", None)
    if not callable(start):
        raise InputError("prometheus_client.exposition.start_wsgi_server is missing: the metrics port cannot be kept "
                         "to loopback", "backend")
    if not getattr(start, _PATCHED, False):
        patched = _loopback_metrics(start)
        for holder in (prometheus_client, exposition):
            holder.start_http_server = holder.start_wsgi_server = patched  # type: ignore[attr-defined, unused-ignore]


def _loopback_server(factory: Callable[..., Any]) -> Callable[..., Any]:
    def server(*args: Any, **kwargs: Any) -> Any:
        made = factory(*args, **kwargs)
        insecure, secure = made.add_insecure_port, made.add_secure_port
        made.add_insecure_port = lambda address: insecure(loopback_address(address))
        made.add_secure_port = lambda address, credentials: secure(loopback_address(address), credentials)
        return made

    setattr(server, _PATCHED, True)
    return server


def _loopback_metrics(start: Callable[..., Any]) -> Callable[..., Any]:
    def start_on_loopback(port: int, addr: str = LOOPBACK, *args: Any, **kwargs: Any) -> Any:
        return start(port, addr if is_loopback_ip(addr) else LOOPBACK, *args, **kwargs)

    setattr(start_on_loopback, _PATCHED, True)
    return start_on_loopback


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
