"""The one retry policy, stated as ours, in the small pieces botocore's standard retry mode has: what is worth a retry
(`RetryChecker`), how long to wait after the n-th failure in a row (`RetrySettings.delay`, the backoff), when to give
up (`RetrySettings.gives_up`, by the call's `Patience`), and whether a retry can be afforded (`RetryBudget`, the
quota shared by every call of a client, so that an outage is not multiplied by every call's retries); `decide` puts
them together for one failed attempt. Used by every SageMaker call (handlers/client.py) and by a create queued on
quota (plugin/jobs/create_queue.py).

What is retried comes from botocore's public retry data (botocore/data/_retry.json, read through its loader) joined
with our own table below, and the budget's costs are our own table: botocore keeps its standard mode's lists and
costs in private names that a release renamed once, so nothing here reads them and no botocore release can change
what we retry or what a retry costs.
"""

from __future__ import annotations

import builtins
import enum
import functools
import random
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import botocore.exceptions as bce
import botocore.loaders
import urllib3.exceptions

#: 2**64 times any base is past every cap: a longer exponent would only overflow
_MAX_EXPONENT = 64

# --- what is retried: our table (the AWS SDKs' standard retry mode, "Retry behavior" in the AWS SDKs and Tools
# reference guide), joined at run time with the codes and statuses of botocore's public retry data ------------------

#: errors AWS answers when a caller goes too fast: retried, and counted as throttles
OWN_THROTTLING_CODES = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
    "TooManyRequestsException", "ProvisionedThroughputExceededException", "TransactionInProgressException",
    "RequestLimitExceeded", "BandwidthLimitExceeded", "LimitExceededException", "RequestThrottled", "SlowDown",
    "PriorRequestNotComplete", "EC2ThrottledException",
})
#: errors of a request that may well succeed if sent again
OWN_TRANSIENT_CODES = frozenset({"RequestTimeout", "RequestTimeoutException", "PriorRequestNotComplete"})
#: server statuses worth a retry whatever the code (501 Not Implemented is not: it will not change)
OWN_TRANSIENT_STATUSES = frozenset({500, 502, 503, 504})
THROTTLING_STATUS = 429
#: network faults: botocore's connection and HTTP client errors (connect/read timeouts, closed connections, endpoint
#: unreachable), and the urllib3/socket errors that can escape botocore while a response body is read
NETWORK_ERRORS: tuple[type[Exception], ...] = (
    bce.ConnectionError,
    bce.HTTPClientError,
    urllib3.exceptions.ProtocolError,
    urllib3.exceptions.ReadTimeoutError,
    builtins.ConnectionError,
)
#: a retry after these costs the budget more (the request may still be running on the server)
TIMEOUT_ERRORS: tuple[type[Exception], ...] = (bce.ReadTimeoutError, bce.ConnectTimeoutError)


def error_fields(error: bce.ClientError) -> tuple[str, str, int | None]:
    """An AWS answer's error code, message and HTTP status."""
    response: Mapping[str, Any] = error.response or {}
    err = response.get("Error") or {}
    status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
    return str(err.get("Code") or ""), str(err.get("Message") or ""), status if isinstance(status, int) else None


def botocore_retry_data() -> tuple[frozenset[str], frozenset[int]]:
    """The error codes and the 5xx statuses botocore's public retry data retries (empty if a botocore lacks it)."""
    try:
        definitions = botocore.loaders.create_loader().load_data("_retry")["definitions"].values()
    except (bce.DataNotFoundError, KeyError, AttributeError):  # pragma: no cover - depends on the botocore installed
        return frozenset(), frozenset()
    responses = [d["applies_when"]["response"] for d in definitions if "response" in d.get("applies_when", {})]
    codes = frozenset(str(r["service_error_code"]) for r in responses if "service_error_code" in r)
    statuses = frozenset(int(r["http_status_code"]) for r in responses
                         if "service_error_code" not in r and int(r.get("http_status_code", 0)) >= 500)
    return codes, statuses


@dataclass(frozen=True)
class RetryChecker:
    """What is worth a retry: throttling, transient codes, HTTP 429 and transient 5xx, network faults; never a request
    SageMaker refused."""

    throttling_codes: frozenset[str]
    transient_codes: frozenset[str]
    transient_statuses: frozenset[int]

    def is_throttle(self, error: BaseException) -> bool:
        return isinstance(error, bce.ClientError) and error_fields(error)[0] in self.throttling_codes

    def is_retryable(self, error: BaseException) -> bool:
        if isinstance(error, bce.ClientError):
            code, _, status = error_fields(error)
            return (code in self.throttling_codes or code in self.transient_codes or status == THROTTLING_STATUS
                    or status in self.transient_statuses)
        return isinstance(error, NETWORK_ERRORS)


@functools.lru_cache(maxsize=1)
def standard_checker() -> RetryChecker:
    """Our table joined with botocore's public retry data."""
    codes, _ = botocore_retry_data()  # its statuses add 509, which standard mode (and so ours) does not retry
    return RetryChecker(OWN_THROTTLING_CODES | codes, OWN_TRANSIENT_CODES, OWN_TRANSIENT_STATUSES)


def is_retryable(error: BaseException) -> bool:
    """The standard checker's answer (`RetryChecker.is_retryable`)."""
    return standard_checker().is_retryable(error)


# --- how long, and until when ---------------------------------------------------------------------------------------


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


# --- what a retry costs ---------------------------------------------------------------------------------------------


class RetryBudget:
    """The retry quota shared by every call of one client, sized as botocore's standard mode sized it before 1.44 (our
    own table, stated here): a retry costs RETRY_COST tokens, one after a timeout TIMEOUT_RETRY_COST (the request may
    still be running on the server), of CAPACITY; a call that succeeds at once earns SUCCESS_REFILL back and one that
    succeeds after retries returns what its last retry cost. When the budget cannot pay for a retry the failure is
    raised at once, so that an outage is not multiplied by every call's retries. Thread-safe."""

    CAPACITY: int = 500
    RETRY_COST: int = 5
    TIMEOUT_RETRY_COST: int = 10
    SUCCESS_REFILL: int = 1

    def __init__(self, capacity: int | None = None) -> None:
        self.capacity = self.CAPACITY if capacity is None else capacity
        self._available = self.capacity
        self._lock = threading.Lock()

    @property
    def available(self) -> int:
        with self._lock:
            return self._available

    def spend(self, timeout: bool) -> int:
        """Pay for one retry: its cost, or 0 when the budget cannot pay (then do not retry, or, for a patient read,
        wait `RetrySettings.unpaid_delay`)."""
        cost = self.TIMEOUT_RETRY_COST if timeout else self.RETRY_COST
        with self._lock:
            if cost > self._available:
                return 0
            self._available -= cost
            return cost

    def succeeded(self, last_retry_cost: int) -> None:
        """A call succeeded: refill what its last retry cost, or SUCCESS_REFILL if it needed none."""
        with self._lock:
            self._available = min(self.capacity, self._available + (last_retry_cost or self.SUCCESS_REFILL))

    def __repr__(self) -> str:
        return f"RetryBudget({self.available} of {self.capacity})"


# --- one failed attempt: retry or give up ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    """After a failed attempt: sleep this long, then retry (None: give up); `cost` is what the budget was paid for the
    retry (-1: it could not pay, the reason to give up; 0: nothing, or a patient read retried unpaid)."""

    sleep: float | None
    cost: int = 0


GIVE_UP = Decision(None)


def decide(settings: RetrySettings, budget: RetryBudget, tries: int, elapsed: float, patience: Patience, *,
           timeout: bool, sleep: float | None = None) -> Decision:
    """Whether a retryable failure after `tries` attempts over `elapsed` seconds is retried, and after how long
    (`sleep`, else the backoff's): not past the attempt cap or the deadline, and only if the budget pays for it, except
    that a patient read retries unpaid after a longer wait."""
    wait = settings.delay(tries) if sleep is None else sleep
    if settings.gives_up(tries, elapsed + wait, patience):
        return GIVE_UP
    cost = budget.spend(timeout)
    if cost:
        return Decision(wait, cost)
    if patience is Patience.ATTEMPTS:
        return Decision(None, -1)
    wait = max(wait, settings.unpaid_delay())
    return GIVE_UP if settings.gives_up(tries, elapsed + wait, patience) else Decision(wait, 0)
