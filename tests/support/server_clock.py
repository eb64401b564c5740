"""A fake clock for an in-process local SageMaker (`LocalSageMaker(..., clock=...)`).

Simulated jobs move along their timeline and request-rate buckets refill only as this clock moves, so a test about a
job's phases or a quota holds the state it checks for as long as it needs, however loaded the machine.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from local_sagemaker.testing import LocalClients, ended


class ManualClock:
    """Seconds like time.time(). Held, it moves only by `advance`; running (`run()`, or `running=True`), it also
    follows the wall clock, until `hold()`."""

    def __init__(self, start: float | None = None, *, running: bool = False) -> None:
        self._lock = threading.Lock()
        self._base = time.time() if start is None else start
        self._since = time.monotonic() if running else None
        self._made_running = running

    def _now(self) -> float:
        return self._base + (0.0 if self._since is None else time.monotonic() - self._since)

    def __call__(self) -> float:
        with self._lock:
            return self._now()

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._base += seconds

    def hold(self) -> None:
        with self._lock:
            self._base, self._since = self._now(), None

    def run(self) -> None:
        """Follow the wall clock again, from the wall clock's time (or from this clock's, if a test moved it ahead):
        server times stay comparable with the test's own, and never go back."""
        with self._lock:
            if self._since is None:
                self._base, self._since = max(self._now(), time.time()), time.monotonic()

    def restore(self) -> None:
        """Back to how it was made, running or held (after a test that may have left it otherwise)."""
        if self._made_running:
            self.run()
        else:
            self.hold()

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Time stands still inside (jobs stay in the phase they are in), and runs again after."""
        self.hold()
        try:
            yield
        finally:
            self.run()


def wait_stepping(aws: LocalClients, clock: ManualClock, name: str,
                  until: Callable[[Mapping[str, Any]], bool] = ended, step: float = 0.02) -> dict[str, Any]:
    """LocalClients.wait on a held clock: describe the job, move the clock `step` seconds, until `until(job)`. A
    poller that sees every `step` seconds of the job's life, whatever a describe costs on a loaded machine."""
    for _ in range(100_000):
        job: dict[str, Any] = aws.sagemaker.describe_training_job(TrainingJobName=name)
        if until(job):
            return job
        clock.advance(step)
    raise TimeoutError(f"{name}: still {job['TrainingJobStatus']}/{job['SecondaryStatus']}")
