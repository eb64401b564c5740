"""Servers a test starts die with the test process, even when pytest itself is killed (its teardown never runs)."""

from __future__ import annotations

import ctypes
import signal
import sys
from typing import Any

_PR_SET_PDEATHSIG = 1


def _prctl() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl  # looked up here: the child must not load libraries
    except (OSError, AttributeError):
        return None


_PRCTL = _prctl()


def dies_with_test() -> None:
    """A `preexec_fn`: the kernel sends SIGTERM (a server's clean stop) when the test process goes away."""
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
