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

from handlers.client import ClientSettings, RateLimits, SageMakerClient
from handlers.errors import TransientError
from handlers.retry import RetryBudget, RetrySettings
from plugin.create_queue import QUEUE_RETRY
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
    """Answers the next `times` ListTrainingJobs with a throttle, then lets requests through to the server."""

    def __init__(self, client: SageMakerClient, times: int) -> None:
        self.times = times
        client.sagemaker.meta.events.register_first("before-send.sagemaker.ListTrainingJobs", self)

    def __call__(self, request: object, **_: object) -> None:
        if self.times > 0:
            self.times -= 1
            raise bce.ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"},
                                   "ResponseMetadata": {"HTTPStatusCode": 400}}, "ListTrainingJobs")


def client_on(endpoint: str, clock: FakeClock, budget: int, attempts: int = 8) -> SageMakerClient:
    settings = ClientSettings(endpoint_url=endpoint, rate_limits=UNLIMITED,
                              retry=RetrySettings(attempts=attempts, backoff_seconds=0.5))
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


def test_the_create_queue_uses_the_same_policy_slower(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("handlers.retry.random.uniform", lambda low, high: high)
    assert [QUEUE_RETRY.delay(n) for n in range(1, 6)] == [5.0, 10.0, 20.0, 40.0, 60.0]
    assert not QUEUE_RETRY.gives_up(10_000, 0.0)  # only its deadline (limits.resource_wait_seconds) ends it


# --- the budget -----------------------------------------------------------------------------------------------------


def test_the_budget_reads_the_costs_of_a_botocore_that_names_them_otherwise() -> None:
    """botocore 1.44 dropped the timeout cost and charges every retry 14: the README's install takes whatever botocore
    is newest, so the budget must load with either (run in a fresh interpreter, as the module reads them once)."""
    probe = ("from botocore.retries import standard\n"
             "del standard.RetryQuotaChecker._TIMEOUT_RETRY_REQUEST\n"
             "standard.RetryQuotaChecker._RETRY_COST = 14\n"
             "from handlers.retry import RetryBudget\n"
             "budget = RetryBudget()\n"
             "print(budget.RETRY_COST, budget.TIMEOUT_RETRY_COST, budget.spend(timeout=True), budget.available)\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["14", "14", "14", "486"]


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
