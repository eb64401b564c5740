"""The loopback special case: an endpoint on this machine (a local SageMaker) that refuses a connection has nothing
listening behind it, so a call gives up after one quick retry (a server that is just starting) instead of backing off
for minutes; and what counts as this machine, for the client and for the local SageMaker's own checks.
"""

from __future__ import annotations

import ipaddress
import urllib.parse

import botocore.exceptions as bce

#: a refused connection to a loopback endpoint means nothing listens there: one quick retry, then give up
REFUSED_ATTEMPTS = 2
REFUSED_SLEEP_SECONDS = 0.25


def refused(error: BaseException) -> bool:
    """A connection refused (nothing listens there), as opposed to a timeout or a reset."""
    seen: set[int] = set()
    cause: BaseException | None = error
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, ConnectionRefusedError):
            return True
        seen.add(id(cause))
        inner = cause.kwargs.get("error") if isinstance(cause, bce.BotoCoreError) else None
        cause = inner if isinstance(inner, BaseException) else (cause.__cause__ or cause.__context__)
    return False


def is_loopback(url: str | None) -> bool:
    """The endpoint is on this machine (127.0.0.0/8, ::1, localhost)."""
    return is_loopback_host(urllib.parse.urlsplit(url or "").hostname or "")


def is_loopback_host(name: str) -> bool:
    """A host name or address of this machine: localhost, 127.0.0.0/8, ::1."""
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def nothing_listens(error: BaseException, endpoint_url: str | None) -> bool:
    """A connection to a loopback endpoint was refused: no server there to wait for."""
    return refused(error) and is_loopback(endpoint_url)

