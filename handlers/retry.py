"""The one retry policy, in small pieces as botocore's standard retry mode has them: how long to wait after the n-th
failure in a row (`RetrySettings.delay`), when to give up (`RetrySettings.gives_up`, by the call's `Patience`), and
whether a retry can be afforded (`RetryBudget`, shared by every call of a client, so that an outage is not multiplied
by every call's retries). Used by every SageMaker call (handlers/client.py) and by a create queued on quota
(plugin/create_queue.py). Which errors are worth a retry is not decided here: handlers/client.py reads that from
botocore's data, and it also says which calls are patient.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass

from botocore.retries import quota, standard

#: the installed botocore's standard-mode costs; its private names differ between releases, so each is read with the
#: value botocore has long used as the fallback (the README's install does not pin botocore)
_CHECKER = vars(standard.RetryQuotaChecker)

#: 2**64 times any base is past every cap: a longer exponent would only overflow
_MAX_EXPONENT = 64


class Patience(enum.Enum):
    """How long a failing call keeps retrying: botocore stops at an attempt cap, which suits a write and an answer a
    person waits for, but not a read that follows a job known to exist: a storm of throttles outlasts any cap now and
    then, and giving up there ends the watch of a healthy job."""

    ATTEMPTS = "attempts"  # until `RetrySettings.attempts` (or the deadline, if sooner): writes, what a person waits on
    DEADLINE = "deadline"  # until `RetrySettings.deadline_seconds`: reads that follow a job known to exist


@dataclass(frozen=True)
class RetrySettings:
    """Exponential backoff with full jitter (AWS's advice: callers that failed together do not retry together),
    bounded by attempts (a `Patience.ATTEMPTS` call) and by a deadline that counts the sleeps (every call)."""

    attempts: int = 8  # total attempts, the first included
    backoff_seconds: float = 0.5  # the backoff's base: the first wait is at most this
    max_backoff_seconds: float = 20.0  # cap of one wait
    deadline_seconds: float = 300.0  # since the first attempt, sleeps included

    def delay(self, failures: int) -> float:
        """Seconds to wait after the `failures`-th failure in a row: uniform in [0, min(cap, base * 2**(n-1))]."""
        exponent = min(max(0, failures - 1), _MAX_EXPONENT)
        return random.uniform(0.0, min(self.max_backoff_seconds, self.backoff_seconds * 2**exponent))

    def unpaid_delay(self) -> float:
        """Seconds to wait before a patient retry the budget could not pay for: in the cap's upper half, so that in
        an outage each follower asks at most once per half cap, however many there are and however long it lasts."""
        return random.uniform(self.max_backoff_seconds / 2, self.max_backoff_seconds)

    def gives_up(self, attempts: int, next_start: float, patience: Patience = Patience.ATTEMPTS) -> bool:
        """No next attempt once `attempts` were made (unless patient till the deadline), or if it would start
        (`next_start` seconds after the first) at or past the deadline."""
        capped = patience is Patience.ATTEMPTS and attempts >= self.attempts
        return capped or next_start >= self.deadline_seconds


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
        """Pay for one retry: its cost, or 0 when the budget cannot pay (then do not retry, or, for a patient read,
        wait `RetrySettings.unpaid_delay`)."""
        cost = self.TIMEOUT_RETRY_COST if timeout else self.RETRY_COST
        return cost if self._quota.acquire(cost) else 0

    def succeeded(self, last_retry_cost: int) -> None:
        """A call succeeded: refill what its last retry cost, or SUCCESS_REFILL if it needed none."""
        self._quota.release(last_retry_cost or self.SUCCESS_REFILL)

    def __repr__(self) -> str:
        return f"RetryBudget({self.available} of {self.capacity})"
