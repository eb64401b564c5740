"""sagemaker-core's TrainingJob resource (what v3's ModelTrainer builds on) against `local serve`: create, get,
wait, get_all, and stop of a job that would run for minutes ("Stopped" ends the wait without raising)."""

from __future__ import annotations

import sys
import time
from typing import Any

import pytest

from local_sagemaker.testing import unique_name
from local_serve import BUCKET, REGION, Served
from sdk_v3_setup import custom_job, require_sdk_v3

require_sdk_v3()
from sagemaker.core.resources import TrainingJob  # noqa: E402
from sagemaker.core.utils.exceptions import FailedStatusError  # noqa: E402


def _create(session: Any, name: str, code: str) -> TrainingJob:
    return custom_job(session, name, [sys.executable, "-c", code])


def test_create_get_wait_and_get_all(v3_session: Any) -> None:
    name = unique_name("sdk-v3-core")
    job = _create(v3_session, name, "print('hello from a sagemaker-core job')")
    job.wait(logs=True, timeout=300)
    assert job.training_job_status == "Completed"
    got = TrainingJob.get(training_job_name=name, session=v3_session.boto_session, region=REGION)
    assert got.training_job_status == "Completed"
    assert got.model_artifacts.s3_model_artifacts == f"s3://{BUCKET}/sdk-v3-core/{name}/output/model.tar.gz"
    listed = TrainingJob.get_all(name_contains=name, session=v3_session.boto_session, region=REGION)
    assert [each.training_job_name for each in listed] == [name]


def test_stop_ends_a_running_job_and_the_wait_without_raising(served: Served, v3_session: Any) -> None:
    name = unique_name("sdk-v3-stop")
    job = _create(v3_session, name, "import time; print('started', flush=True); time.sleep(600)")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # the job's Training phase has begun once its process printed
        job.refresh()
        if job.secondary_status == "Training":
            break
        time.sleep(0.2)
    assert job.secondary_status == "Training"
    job.stop()
    job.wait(timeout=120)
    assert job.training_job_status == "Stopped"
    described = served.client("sagemaker").describe_training_job(TrainingJobName=name)
    assert described["TrainingJobStatus"] == "Stopped"


def test_a_failing_script_raises_v3s_error_with_its_reason(v3_session: Any) -> None:
    job = _create(v3_session, unique_name("sdk-v3-fail"), "import sys; sys.exit('the data is not what it should be')")
    with pytest.raises(FailedStatusError, match="the data is not what it should be"):
        job.wait(timeout=300)
