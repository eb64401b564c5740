"""Real AWS clients against `sagemaker-plugin local serve`: one server for the folder, run as a user would run it.

The helpers live in tests/support/local_serve.py.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from local_serve import Served, local_serve


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with local_serve(tmp_path_factory.mktemp("clients")) as server:
        yield server


@pytest.fixture(scope="module")
def outside_lookups() -> Iterator[list[str]]:
    """Hosts other than loopback that a test module here tried to reach; each lookup fails (OSError). Module-scoped,
    so module fixtures that drive clients can ask for it too."""
    looked_up: list[str] = []
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in ("127.0.0.1", "localhost", "::1"):
            looked_up.append(str(host))
            raise OSError(f"tests/clients may not reach {host}")
        return real(host, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket, "getaddrinfo", getaddrinfo)
        yield looked_up


@pytest.fixture(autouse=True)
def loopback_only(outside_lookups: list[str]) -> Iterator[None]:
    """Clients here reach 127.0.0.1 only (an SDK's telemetry, say, would fail the test that set it off)."""
    yield
    assert outside_lookups == [], f"a client tried to reach {outside_lookups}"
