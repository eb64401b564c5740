"""Poll until done: the one loop behind every wait (as botocore's `Waiter.wait` is one loop with data for its
acceptors). Each caller says what one look is and when it is done; the loop owns the deadline and the sleeping."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def poll_until(look: Callable[[], T], done: Callable[[T], bool], interval: float, timeout: float | None = None,
               sleep: Callable[[float], None] = time.sleep) -> T:
    """Call `look` every `interval` seconds until `done` accepts its answer or `timeout` seconds have passed (None:
    no limit; 0: one look); the last answer."""
    deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
    while True:
        answer = look()
        if done(answer) or (deadline is not None and time.monotonic() >= deadline):
            return answer
        sleep(interval)
