"""A served connector kept to loopback: with the local backend it runs the training command of every task it is
given on its machine, so only that machine may call it (both Flyte generations' connector servers).

Neither flytekit's service nor Flyte 2's (`c0`) lets one choose the address: both bind their gRPC port on every
interface (`[::]:<port>`) and their Prometheus port on 0.0.0.0. `listen_on_loopback()` makes every gRPC server and
metrics server of the process bind 127.0.0.1 only, whatever address it asks for (the process is the connector
service and nothing else), or refuses to start when this grpc or prometheus_client offers no way to do so.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
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
