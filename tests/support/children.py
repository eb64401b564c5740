"""Processes a test starts die with it: at the end of their block, and even when pytest itself is killed (its teardown
never runs)."""

from __future__ import annotations

import contextlib
import signal
import subprocess
from collections.abc import Iterator

from local_sagemaker.runner.processes import dies_with_parent

#: A `preexec_fn`: the kernel sends SIGTERM (a server's clean stop) when the test process goes away.
dies_with_test = dies_with_parent(signal.SIGTERM)


@contextlib.contextmanager
def reaped(process: subprocess.Popen[str]) -> Iterator[subprocess.Popen[str]]:
    """`process`, killed and waited for when the block ends if it is still running (a failing test leaves nothing)."""
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
