"""The one retry policy (backoff, giving up) and the retry budget, alone and inside the client against a moto server.

Faults are raised from a `before-send` handler, so botocore's parsing and the client's loop run as in production;
sleeps and clocks are fakes.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
from pathlib import Path

import boto3
import botocore.exceptions as bce
import pytest

from handlers.client import ClientSettings, SageMakerClient
from handlers.errors import AccessDenied, TransientError
from handlers.ratelimit import RateLimits
from handlers.retry import Patience, RetryBudget, RetrySettings
from plugin.jobs.create_queue import QUEUE_RETRY
from server_clock import ManualClock

UNLIMITED = RateLimits(create_per_second=0, read_per_second=0)


class FakeClock(ManualClock):
    """Held; moved by the client's sleeps, which it remembers."""

    def __init__(self) -> None:
        super().__init__(1000.0)
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.advance(seconds)


class Throttle:
    """Answers the next `times` calls of `operation` with a throttle, then lets requests through to the server."""

    def __init__(self, client: SageMakerClient, times: int, operation: str = "ListTrainingJobs") -> None:
        self.times = times
        self.operation = operation
        client.sagemaker.meta.events.register_first(f"before-send.sagemaker.{operation}", self)

    def __call__(self, request: object, **_: object) -> None:
        if self.times > 0:
            self.times -= 1
            raise bce.ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"},
                                   "ResponseMetadata": {"HTTPStatusCode": 400}}, self.operation)


def client_on(endpoint: str, clock: FakeClock, budget: int, attempts: int = 8,
              retry: RetrySettings | None = None) -> SageMakerClient:
    settings = ClientSettings(endpoint_url=endpoint, rate_limits=UNLIMITED,
                              retry=retry or RetrySettings(attempts=attempts, backoff_seconds=0.5))
    session = boto3.Session(region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
    client = SageMakerClient(settings, session=session, sleep=clock.sleep, clock=clock)
    client.budget = RetryBudget(budget)
    return client


# --- the policy -----------------------------------------------------------------------------------------------------


def test_the_nth_wait_is_full_jitter_under_a_doubling_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    policy = RetrySettings(backoff_seconds=0.5, max_backoff_seconds=3.0)
    for failures in range(1, 12):
        assert 0.0 <= policy.delay(failures) <= min(3.0, 0.5 * 2 ** (failures - 1))
    monkeypatch.setattr("handlers.retry.random.uniform", lambda low, high: high)
    assert [policy.delay(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert policy.delay(10_000) == 3.0  # no overflow however long it has failed


def test_it_gives_up_on_attempts_or_when_the_next_would_start_past_the_deadline() -> None:
    policy = RetrySettings(attempts=3, deadline_seconds=10.0)
    assert not policy.gives_up(2, 9.9)
    assert policy.gives_up(3, 0.0)
    assert policy.gives_up(1, 10.0)


def test_a_patient_call_gives_up_only_at_the_deadline() -> None:
    policy = RetrySettings(attempts=3, deadline_seconds=10.0)
    assert not policy.gives_up(3, 0.0, Patience.DEADLINE)
    assert not policy.gives_up(10_000, 9.9, Patience.DEADLINE)
    assert policy.gives_up(1, 10.0, Patience.DEADLINE)


def test_a_retry_the_budget_cannot_pay_waits_in_the_caps_upper_half() -> None:
    policy = RetrySettings(backoff_seconds=0.5, max_backoff_seconds=8.0)
    waits = [policy.unpaid_delay() for _ in range(200)]
    assert all(4.0 <= wait <= 8.0 for wait in waits)
    assert max(waits) - min(waits) > 1.0  # jittered: followers that failed together do not retry together


def test_the_create_queue_uses_the_same_policy_slower(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("handlers.retry.random.uniform", lambda low, high: high)
    assert [QUEUE_RETRY.delay(n) for n in range(1, 6)] == [5.0, 10.0, 20.0, 40.0, 60.0]
    assert not QUEUE_RETRY.gives_up(10_000, 0.0)  # only its deadline (limits.resource_wait_seconds) ends it


# --- the budget -----------------------------------------------------------------------------------------------------


def test_a_botocore_that_renames_its_private_retry_tables_changes_nothing_we_retry_or_pay() -> None:
    """botocore 1.44 dropped the timeout cost and charges every retry 14; a release may rename its private lists of
    retryable codes too. What we retry and what a retry costs is our own policy: a botocore without those names (run
    in a fresh interpreter, as the module reads botocore once) retries the same errors at the same costs."""
    probe = ("from botocore.retries import standard\n"
             "for name in ('_TIMEOUT_RETRY_REQUEST', '_RETRY_COST', '_NO_RETRY_INCREMENT'):\n"
             "    setattr(standard.RetryQuotaChecker, name, 14)\n"
             "del standard.ThrottledRetryableChecker._THROTTLED_ERROR_CODES\n"
             "del standard.TransientRetryableChecker._TRANSIENT_ERROR_CODES\n"
             "del standard.TransientRetryableChecker._TRANSIENT_STATUS_CODES\n"
             "from handlers.retry import RetryBudget, standard_checker\n"
             "budget = RetryBudget()\n"
             "print(budget.RETRY_COST, budget.TIMEOUT_RETRY_COST, budget.spend(timeout=True), budget.available,\n"
             "      'SlowDown' in standard_checker().throttling_codes, 503 in standard_checker().transient_statuses)\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["5", "10", "10", "490", "True", "True"]


def test_retries_spend_the_budget_and_an_empty_one_pays_for_none() -> None:
    budget = RetryBudget()
    assert (budget.capacity, budget.RETRY_COST, budget.TIMEOUT_RETRY_COST) == (500, 5, 10)  # botocore's sizes
    spent = [budget.spend(timeout=False) for _ in range(100)]
    assert spent == [5] * 100 and budget.available == 0
    assert budget.spend(timeout=False) == 0
    budget.succeeded(0)  # a call that needed no retry earns one token: not yet enough for a retry
    assert budget.available == 1 and budget.spend(timeout=False) == 0


def test_successes_refill_the_budget_up_to_its_capacity() -> None:
    budget = RetryBudget(20)
    assert budget.spend(timeout=True) == 10 and budget.available == 10
    budget.succeeded(10)  # succeeded after a retry: what that retry cost comes back
    assert budget.available == 20
    budget.succeeded(0)
    assert budget.available == 20  # never past its capacity


def test_the_budget_is_safe_across_threads() -> None:
    budget = RetryBudget(500)
    paid: list[int] = []

    def spend() -> None:
        for _ in range(50):
            paid.append(budget.spend(timeout=False))

    threads = [threading.Thread(target=spend) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert paid.count(5) == 100 and budget.available == 0


# --- in the client --------------------------------------------------------------------------------------------------


def test_a_call_that_succeeds_after_retries_gives_back_its_last_retry(endpoint: str) -> None:
    clock = FakeClock()
    client = client_on(endpoint, clock, budget=500)
    Throttle(client, times=2)
    client.list_training_jobs()
    assert client.attempts["ListTrainingJobs"] == 3
    assert client.budget.available == 500 - 5 - 5 + 5


def test_an_empty_budget_fails_fast_without_a_retry_line(endpoint: str, caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    client = client_on(endpoint, clock, budget=10)
    Throttle(client, times=100)
    with caplog.at_level(logging.INFO, logger="handlers.client"), pytest.raises(TransientError) as caught:
        client.list_training_jobs()
    assert client.attempts["ListTrainingJobs"] == 3  # two retries paid for, the third could not be
    assert "failed after 3 attempts" in str(caught.value) and "retry budget is spent" in str(caught.value)
    assert len([r for r in caplog.records if r.getMessage().startswith("retrying ")]) == 2

    with pytest.raises(TransientError) as again:
        client.list_training_jobs()
    assert client.attempts["ListTrainingJobs"] == 4  # one attempt, no sleep: failed at once
    assert len(clock.sleeps) == 2
    assert "failed after 1 attempt " in str(again.value)


def test_an_empty_budget_refills_as_calls_succeed(endpoint: str) -> None:
    clock = FakeClock()
    client = client_on(endpoint, clock, budget=10)
    assert client.budget.spend(timeout=True) == 10 and client.budget.available == 0
    for _ in range(5):
        client.list_training_jobs()  # each earns a token
    Throttle(client, times=1)
    client.list_training_jobs()  # five tokens pay for one retry again
    assert client.attempts["ListTrainingJobs"] == 7
    assert client.budget.available == 5


# --- reads that follow a job: until the deadline ---------------------------------------------------------------------

#: 3 attempts for an impatient call, 60 s for a patient one, waits of at most 4 s
FOLLOW = RetrySettings(attempts=3, backoff_seconds=0.5, max_backoff_seconds=4.0, deadline_seconds=60.0)


def test_a_read_that_follows_a_job_outlasts_the_attempt_cap(endpoint: str) -> None:
    """Ten throttles in a row: the plain read gives up at its third attempt; the same read through `following()`
    goes on and gets its answer at the eleventh."""
    clock = FakeClock()
    client = client_on(endpoint, clock, budget=500, retry=FOLLOW)
    Throttle(client, times=10)
    with pytest.raises(TransientError, match="failed after 3 attempts"):
        client.list_training_jobs()
    follower = client.following()
    follower.list_training_jobs()
    assert client.attempts["ListTrainingJobs"] == 3 + 8  # the counters are shared: the view is the same client
    assert follower.budget is client.budget and client.patience is Patience.ATTEMPTS
    assert follower.following() is follower


def test_a_read_that_follows_a_job_gives_up_at_the_deadline(endpoint: str, caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    follower = client_on(endpoint, clock, budget=500, retry=FOLLOW).following()
    Throttle(follower, times=10_000)
    with caplog.at_level(logging.INFO, logger="handlers.client"), pytest.raises(TransientError) as caught:
        follower.list_training_jobs()
    tries = follower.attempts["ListTrainingJobs"]
    assert tries > 3 * FOLLOW.attempts
    assert 60.0 - FOLLOW.max_backoff_seconds <= sum(clock.sleeps) < 60.0
    assert f"failed after {tries} attempts over {sum(clock.sleeps):.1f} s" in str(caught.value)
    assert "retry budget" not in str(caught.value)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("retrying ")]
    assert len(lines) == tries - 1 and lines[-1].endswith(f"(attempt {tries} until 60 s)")


def test_a_write_keeps_the_attempt_cap_even_through_following(endpoint: str) -> None:
    clock = FakeClock()
    follower = client_on(endpoint, clock, budget=500, retry=FOLLOW).following()
    Throttle(follower, times=10, operation="StopTrainingJob")
    with pytest.raises(TransientError, match="StopTrainingJob failed after 3 attempts"):
        follower.stop_training_job("some-job")
    assert follower.attempts["StopTrainingJob"] == 3


def test_followers_in_an_outage_are_paced_by_the_spent_budget(endpoint: str,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Every call fails for ever; the jitter is at its lowest, so that only the budget holds the rate down. The
    budget pays for two retries; after that each of the followers waits half a cap (2 s) between attempts: over the
    60 s deadline at most 31 attempts each, against the thousands that unpaid zero-second waits would make."""
    monkeypatch.setattr("handlers.retry.random.uniform", lambda low, high: low)
    clock = FakeClock()
    client = client_on(endpoint, clock, budget=2 * RetryBudget.RETRY_COST, retry=FOLLOW)
    Throttle(client, times=10_000)
    followers = 3
    for _ in range(followers):
        with pytest.raises(TransientError):
            client.following().list_training_jobs()
    paid = 2
    assert clock.sleeps[:paid] == [0.0, 0.0]  # what the budget paid for: the backoff as jittered
    assert all(wait == FOLLOW.max_backoff_seconds / 2 for wait in clock.sleeps[paid:])
    per_follower = int(FOLLOW.deadline_seconds / (FOLLOW.max_backoff_seconds / 2)) + 1
    assert client.attempts["ListTrainingJobs"] <= followers * per_follower + paid
    assert client.budget.available == 0  # failures earn nothing back


def test_a_follower_fails_fast_on_what_retries_cannot_mend(endpoint: str) -> None:
    """Credentials refused, or a request SageMaker rejects: one attempt, however patient the call."""
    clock = FakeClock()
    follower = client_on(endpoint, clock, budget=500, retry=FOLLOW).following()

    def expired(request: object, **_: object) -> None:
        raise bce.ClientError({"Error": {"Code": "ExpiredTokenException", "Message": "The security token included "
                                         "in the request is expired"}, "ResponseMetadata": {"HTTPStatusCode": 400}},
                              "DescribeTrainingJob")

    follower.sagemaker.meta.events.register_first("before-send.sagemaker.DescribeTrainingJob", expired)
    with pytest.raises(AccessDenied, match="credentials have expired"):
        follower.describe_training_job("some-job")
    assert follower.attempts["DescribeTrainingJob"] == 1 and clock.sleeps == []
