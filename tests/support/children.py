"""Processes a test starts die with it: at the end of their block, and even when pytest itself is killed (its teardown
never runs)."""

from __future__ import annotations

import contextlib
import ctypes
import signal
import subprocess
import sys
from collections.abc import Iterator
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


@contextlib.contextmanager
def reaped(process: subprocess.Popen[str]) -> Iterator[subprocess.Popen[str]]:
    """`process`, killed and waited for when the block ends if it is still running (a failing test leaves nothing)."""
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
