"""A thread-safe token bucket that keeps calls to SageMaker's control plane under its rate limits.

SageMaker throttles CreateTrainingJob at about one request a second and Describe/List at undocumented rates; retrying
after a ThrottlingException works but wastes attempts and time. Pacing the calls on our side first means a burst of
calls (many tasks created or polled at once) waits its turn instead of failing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class RateLimits:
    """Client-side pacing, per second; <= 0 means unlimited. Reads: Describe*, List*, Get*, logs; writes: the rest."""

    create_per_second: float = 1.0
    read_per_second: float = 10.0


class TokenBucket:
    """`rate_per_second` tokens a second, at most `burst` saved up; `acquire()` takes one, waiting if need be.

    A waiting caller reserves its token before it sleeps (the balance may go below zero), so callers are served in
    the order they arrived, each sleeps once, and the lock is never held while sleeping. A rate of None or <= 0
    means unlimited. `clock` and `sleep` are injectable so that tests need not wait.
    """

    def __init__(
        self,
        rate_per_second: float | None,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate: float | None = rate_per_second if rate_per_second is not None and rate_per_second > 0 else None
        if burst is not None and burst < 1:
            raise ValueError(f"burst must be at least 1 token, got {burst}")
        self.burst: float = burst if burst is not None else max(1.0, self.rate or 1.0)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tokens = self.burst
        self._last = clock()
        #: tokens handed out so far and seconds callers spent waiting, for tests and benchmarks
        self.acquired = 0
        self.waited_seconds = 0.0

    @property
    def unlimited(self) -> bool:
        return self.rate is None

    def acquire(self) -> float:
        """Take one token, sleeping until it is due; returns the seconds this caller waited."""
        with self._lock:
            self.acquired += 1
            if self.rate is None:
                return 0.0
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            self._last = now
            self._tokens -= 1.0
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
            self.waited_seconds += wait
        if wait > 0:
            self._sleep(wait)
        return wait

    def __repr__(self) -> str:
        rate = "unlimited" if self.rate is None else f"{self.rate:g}/s"
        return f"TokenBucket({rate}, burst={self.burst:g})"
