"""The one retry policy: how long to wait after the n-th failure in a row and when to give up (every SageMaker call,
handlers/client.py, and a create queued on quota, plugin/create_queue.py), and the retry budget that stops retrying
when most calls fail, as botocore's standard retry mode does. Which errors are worth a retry is not decided here:
handlers/client.py reads that from botocore's data.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from botocore.retries import quota, standard

#: the installed botocore's standard-mode costs; its private names differ between releases, so each is read with the
#: value botocore has long used as the fallback (the README's install does not pin botocore)
_CHECKER = vars(standard.RetryQuotaChecker)

#: 2**64 times any base is past every cap: a longer exponent would only overflow
_MAX_EXPONENT = 64


@dataclass(frozen=True)
class RetrySettings:
    """Exponential backoff with full jitter (AWS's advice: callers that failed together do not retry together),
    bounded by attempts and by a deadline that counts the sleeps."""

    attempts: int = 8  # total attempts, the first included
    backoff_seconds: float = 0.5  # the backoff's base: the first wait is at most this
    max_backoff_seconds: float = 20.0  # cap of one wait
    deadline_seconds: float = 300.0  # since the first attempt, sleeps included

    def delay(self, failures: int) -> float:
        """Seconds to wait after the `failures`-th failure in a row: uniform in [0, min(cap, base * 2**(n-1))]."""
        exponent = min(max(0, failures - 1), _MAX_EXPONENT)
        return random.uniform(0.0, min(self.max_backoff_seconds, self.backoff_seconds * 2**exponent))

    def gives_up(self, attempts: int, next_start: float) -> bool:
        """No next attempt once `attempts` were made, or if it would start (`next_start` seconds after the first) at
        or past the deadline."""
        return attempts >= self.attempts or next_start >= self.deadline_seconds


class RetryBudget:
    """botocore's standard-mode retry quota, shared by every call of one client: a retry costs tokens (a timeout
    more), a call that succeeds at once earns one back and one that succeeds after retries returns what its last retry
    cost. When the budget cannot pay for a retry the failure is raised at once, so that an outage is not multiplied
    by every call's retries. Thread-safe (botocore's RetryQuota is). The sizes are botocore's own, read from its
    checker (before botocore 1.44: 5 a retry, 10 after a timeout, of 500; from 1.44: 14 a retry)."""

    CAPACITY: int = quota.RetryQuota.INITIAL_CAPACITY
    RETRY_COST: int = int(_CHECKER.get("_RETRY_COST", 5))
    #: botocore before 1.44 charges a retry after a timeout more; later releases do not (and charge every retry 14)
    TIMEOUT_RETRY_COST: int = int(_CHECKER.get("_TIMEOUT_RETRY_REQUEST", RETRY_COST))
    SUCCESS_REFILL: int = int(_CHECKER.get("_NO_RETRY_INCREMENT", 1))

    def __init__(self, capacity: int | None = None) -> None:
        self.capacity = self.CAPACITY if capacity is None else capacity
        self._quota = quota.RetryQuota(self.capacity)

    @property
    def available(self) -> int:
        return int(self._quota.available_capacity)

    def spend(self, timeout: bool) -> int:
        """Pay for one retry: its cost, or 0 when the budget cannot pay (then do not retry)."""
        cost = self.TIMEOUT_RETRY_COST if timeout else self.RETRY_COST
        return cost if self._quota.acquire(cost) else 0

    def succeeded(self, last_retry_cost: int) -> None:
        """A call succeeded: refill what its last retry cost, or SUCCESS_REFILL if it needed none."""
        self._quota.release(last_retry_cost or self.SUCCESS_REFILL)

    def __repr__(self) -> str:
        return f"RetryBudget({self.available} of {self.capacity})"
