"""StopTrainingJob (which moto lacks), MaxRuntimeInSeconds and MaxWaitTimeInSeconds."""

from __future__ import annotations

import time

import pytest
from botocore.exceptions import ClientError

from local_sagemaker import LocalSettings
from local_sagemaker.testing import LocalClients, unique_name

# tests/conftest.py runs this module's local SageMaker (`server`, and `aws` on it) with LOCAL_SETTINGS.
# Starting 0.2 s, Downloading 0.2 s, Training 0.4 s, Uploading 0.2 s; Stopping lasts 0.2 s.
LOCAL_SETTINGS = LocalSettings(execution="simulate", time_scale=5, stop_seconds=1)


def _error(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    error = excinfo.value.response["Error"]
    return error["Code"], error["Message"]


def test_stop_goes_through_stopping_to_stopped(aws: LocalClients) -> None:
    name = unique_name("stop")
    aws.sagemaker.create_training_job(**aws.training_request(name))
    aws.wait(name, until=lambda job: job["SecondaryStatus"] == "Training", interval=0.01)
    aws.sagemaker.stop_training_job(TrainingJobName=name)
    stopping = aws.sagemaker.describe_training_job(TrainingJobName=name)
    assert (stopping["TrainingJobStatus"], stopping["SecondaryStatus"]) == ("Stopping", "Stopping")
    assert stopping["LastModifiedTime"] == stopping["SecondaryStatusTransitions"][-1]["StartTime"]
    stopped = aws.wait(name, until=lambda job: job["TrainingJobStatus"] != "Stopping", timeout=5)
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
    time.sleep(0.5)
    assert aws.sagemaker.describe_training_job(TrainingJobName=name)["SecondaryStatus"] == "Stopped"


def test_stopping_while_starting_stops_without_logs_or_model(aws: LocalClients) -> None:
    name = unique_name("stopearly")
    aws.sagemaker.create_training_job(**aws.training_request(name))
    aws.sagemaker.stop_training_job(TrainingJobName=name)
    job = aws.wait(name)
    assert [t["Status"] for t in job["SecondaryStatusTransitions"]] == ["Starting", "Stopping", "Stopped"]
    assert "ModelArtifacts" not in job
    assert aws.log_messages(name) == {}


@pytest.mark.parametrize("wait_for", ["Stopping", "Stopped", "Completed"])
def test_stopping_a_job_that_is_not_in_progress_is_a_validation_error(aws: LocalClients, wait_for: str) -> None:
    name = unique_name("stopagain")
    aws.sagemaker.create_training_job(**aws.training_request(name))
    if wait_for != "Completed":
        aws.sagemaker.stop_training_job(TrainingJobName=name)
    aws.wait(name, until=lambda job: job["TrainingJobStatus"] == wait_for, interval=0.01)
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
