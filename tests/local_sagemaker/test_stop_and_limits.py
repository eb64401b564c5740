"""StopTrainingJob (which moto lacks), MaxRuntimeInSeconds and MaxWaitTimeInSeconds.

The stop tests hold the server's clock (tests/conftest.py `server_clock`) and move it themselves: a job is stopped in
exactly the phase the test means, however loaded the machine.
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from local_sagemaker import LocalSettings
from local_sagemaker.testing import LocalClients, unique_name
from server_clock import ManualClock

# tests/conftest.py runs this module's local SageMaker (`server`, and `aws` on it) with LOCAL_SETTINGS.
# Starting 0.2 s, Downloading 0.2 s, Training 0.4 s, Uploading 0.2 s; Stopping lasts 0.2 s.
LOCAL_SETTINGS = LocalSettings(execution="simulate", time_scale=5, stop_seconds=1)


def _error(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    error = excinfo.value.response["Error"]
    return error["Code"], error["Message"]


def _describe(aws: LocalClients, name: str) -> dict[str, Any]:
    job: dict[str, Any] = aws.sagemaker.describe_training_job(TrainingJobName=name)
    return job


def test_stop_goes_through_stopping_to_stopped(aws: LocalClients, server_clock: ManualClock) -> None:
    name = unique_name("stop")
    server_clock.hold()
    aws.sagemaker.create_training_job(**aws.training_request(name))
    server_clock.advance(0.5)  # into Training (0.4 s to 0.8 s)
    assert _describe(aws, name)["SecondaryStatus"] == "Training"
    aws.sagemaker.stop_training_job(TrainingJobName=name)
    stopping = _describe(aws, name)
    assert (stopping["TrainingJobStatus"], stopping["SecondaryStatus"]) == ("Stopping", "Stopping")
    assert stopping["LastModifiedTime"] == stopping["SecondaryStatusTransitions"][-1]["StartTime"]
    server_clock.advance(0.1)
    assert _describe(aws, name)["TrainingJobStatus"] == "Stopping", "Stopping lasts 0.2 s"
    server_clock.advance(0.15)
    stopped = _describe(aws, name)
    assert (stopped["TrainingJobStatus"], stopped["SecondaryStatus"]) == ("Stopped", "Stopped")
    statuses = [t["Status"] for t in stopped["SecondaryStatusTransitions"]]
    assert statuses == ["Starting", "Downloading", "Training", "Stopping", "Stopped"]
    delay = stopped["TrainingEndTime"] - stopping["SecondaryStatusTransitions"][-1]["StartTime"]
    assert 0.15 <= delay.total_seconds() <= 0.25
    assert "FailureReason" not in stopped
    assert stopped["TrainingTimeInSeconds"] >= 1
    # It reached Training, so SageMaker saved what the algorithm had: the model is uploaded.
    assert stopped["ModelArtifacts"]["S3ModelArtifacts"].endswith(f"/{name}/output/model.tar.gz")
    # And it stays stopped: no later step of the original timeline comes back.
    server_clock.advance(5.0)
    assert _describe(aws, name)["SecondaryStatus"] == "Stopped"


def test_stopping_while_starting_stops_without_logs_or_model(aws: LocalClients, server_clock: ManualClock) -> None:
    name = unique_name("stopearly")
    with server_clock.held():  # still Starting when stopped
        aws.sagemaker.create_training_job(**aws.training_request(name))
        aws.sagemaker.stop_training_job(TrainingJobName=name)
    job = aws.wait(name)
    assert [t["Status"] for t in job["SecondaryStatusTransitions"]] == ["Starting", "Stopping", "Stopped"]
    assert "ModelArtifacts" not in job
    assert aws.log_messages(name) == {}


@pytest.mark.parametrize("wait_for", ["Stopping", "Stopped", "Completed"])
def test_stopping_a_job_that_is_not_in_progress_is_a_validation_error(aws: LocalClients, server_clock: ManualClock,
                                                                       wait_for: str) -> None:
    name = unique_name("stopagain")
    server_clock.hold()  # a Stopping job stays Stopping until the clock moves
    aws.sagemaker.create_training_job(**aws.training_request(name))
    if wait_for != "Completed":
        aws.sagemaker.stop_training_job(TrainingJobName=name)
    server_clock.advance({"Stopping": 0.0, "Stopped": 0.5, "Completed": 5.0}[wait_for])
    assert _describe(aws, name)["TrainingJobStatus"] == wait_for
    with pytest.raises(ClientError) as excinfo:
        aws.sagemaker.stop_training_job(TrainingJobName=name)
    code, message = _error(excinfo)
    assert code == "ValidationException"
    assert message.endswith(f"the training job is in status {wait_for}.")


def test_stopping_a_missing_job_is_not_found(aws: LocalClients) -> None:
    with pytest.raises(ClientError) as excinfo:
        aws.sagemaker.stop_training_job(TrainingJobName=unique_name("ghost"))
    assert _error(excinfo) == ("ValidationException", "Requested resource not found.")


def test_max_runtime_stops_the_job_at_creation_plus_the_limit(aws: LocalClients) -> None:
    name = unique_name("maxrt")
    # The timeline needs 5 timeline seconds; 3 of them are allowed (0.6 s at time_scale 5), so it ends in Training.
    aws.sagemaker.create_training_job(**aws.training_request(name, max_runtime=3))
    job = aws.wait(name)
    assert (job["TrainingJobStatus"], job["SecondaryStatus"]) == ("Stopped", "MaxRuntimeExceeded")
    assert [t["Status"] for t in job["SecondaryStatusTransitions"]] == [
        "Starting",
        "Downloading",
        "Training",
        "MaxRuntimeExceeded",
    ]
    runtime = job["TrainingEndTime"] - job["CreationTime"]
    assert abs(runtime.total_seconds() - 0.6) < 0.005
    assert "FailureReason" not in job


def test_a_limit_the_timeline_fits_in_changes_nothing(aws: LocalClients) -> None:
    name = unique_name("fits")
    aws.sagemaker.create_training_job(**aws.training_request(name, max_runtime=5))
    assert aws.wait(name)["TrainingJobStatus"] == "Completed"


def test_max_wait_stops_a_spot_job(aws: LocalClients) -> None:
    name = unique_name("maxwait")
    # Spot: MaxRuntime counts from Downloading (4 s of timeline left < 5), MaxWait from creation (4 s < 5 s).
    request = aws.training_request(
        name,
        EnableManagedSpotTraining=True,
        StoppingCondition={"MaxRuntimeInSeconds": 4, "MaxWaitTimeInSeconds": 4},
    )
    aws.sagemaker.create_training_job(**request)
    job = aws.wait(name)
    assert (job["TrainingJobStatus"], job["SecondaryStatus"]) == ("Stopped", "MaxWaitTimeExceeded")
    assert abs((job["TrainingEndTime"] - job["CreationTime"]).total_seconds() - 0.8) < 0.005
    assert job["BillableTimeInSeconds"] <= job["TrainingTimeInSeconds"]
