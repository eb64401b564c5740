"""The SageMaker client as the handlers tests set it up: no client-side rate limits and a clock that sleeps for free.

Importable by name (`from client_setup import quick_client`): tests/conftest.py puts tests/support on sys.path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from handlers.client import ClientSettings, SageMakerClient
from handlers.ratelimit import RateLimits
from handlers.retry import RetrySettings

if TYPE_CHECKING:
    import boto3

UNLIMITED = RateLimits(create_per_second=0, read_per_second=0)


def quick_client(endpoint: str, session: boto3.Session, attempts: int) -> SageMakerClient:
    """A client of `endpoint` with no rate limits, `attempts` tries a call, and backoffs that cost no time."""
    settings = ClientSettings(endpoint_url=endpoint, local_credentials=True, rate_limits=UNLIMITED,
                              retry=RetrySettings(attempts=attempts, backoff_seconds=0.001, max_backoff_seconds=0.001))
    return SageMakerClient(settings, session=session, sleep=lambda _: None)


class FakeClock:
    """A monotonic clock that only moves when something sleeps on it (or a test moves it)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
