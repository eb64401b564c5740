"""A run's training job caught in Training on the server's clock: the tests that interrupt a local Flyte run (Ctrl-C)
hold the clock from the moment they see the job train until the stop has reached SageMaker, so the job is still
training when the stop comes, however loaded the machine.

Importable by name (`from held_training import ...`): tests/conftest.py puts tests/support on sys.path.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from typing import TypeVar

from local_sagemaker.testing import LocalClients
from server_clock import ManualClock

T = TypeVar("T")


def wait_for(condition: Callable[[], T | None], timeout: float, what: str, interval: float = 0.05) -> T:
    """`condition()`'s first true value, asked every `interval` seconds; TimeoutError saying `what` after `timeout`
    seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(what)


def held_in_training(run: subprocess.Popen[str], aws: LocalClients, server_clock: ManualClock,
                     timeout: float) -> str:
    """The name of the first job seen in Training while `run` lasts, with `server_clock` held from then on (the
    caller runs it again once the stop has reached SageMaker)."""

    def training() -> str | None:
        server_clock.hold()  # a job seen training stays so until the clock runs again
        for summary in aws.sagemaker.list_training_jobs()["TrainingJobSummaries"]:
            job = aws.sagemaker.describe_training_job(TrainingJobName=summary["TrainingJobName"])
            if job["TrainingJobStatus"] == "InProgress" and job["SecondaryStatus"] == "Training":
                return str(job["TrainingJobName"])
        server_clock.run()
        assert run.poll() is None, run.communicate()
        return None

    # a look every 0.1 s sees a job many times in its Training (2 s on the callers' clocks), without asking the server
    # twenty times a second while the run starts
    return wait_for(training, timeout, "the workflow's training job never reached Training", interval=0.1)
