"""A fake clock for an in-process local SageMaker (`LocalSageMaker(..., clock=...)`).

Simulated jobs move along their timeline and request-rate buckets refill only when the test moves this clock, so a
test about a job's phases or a quota holds the state it checks for as long as it needs, however loaded the machine.
"""

from __future__ import annotations

import threading
import time


class ManualClock:
    """Seconds like time.time(), moved only by `advance`, or by `step` at every read when a test wants time to flow
    with the requests (a client that backs off and retries)."""

    def __init__(self, start: float | None = None, step: float = 0.0) -> None:
        self._lock = threading.Lock()
        self._now = time.time() if start is None else start
        self.step = step

    def __call__(self) -> float:
        with self._lock:
            self._now += self.step
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds
