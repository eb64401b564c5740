"""The failures knob: jobs whose name matches fail in a given secondary status with a given reason."""

from __future__ import annotations

from local_sagemaker import FailureRule, LocalSettings
from local_sagemaker.testing import CUSTOM_IMAGE, LocalClients, unique_name
from server_clock import ManualClock, wait_stepping

# tests/conftest.py runs this module's local SageMaker (`server`, and `aws` on it) with LOCAL_SETTINGS.
LOCAL_SETTINGS = LocalSettings(
    execution="simulate",
    time_scale=10,
    failures=(
        FailureRule(name_pattern="nightly-.*", at="Training", reason="AlgorithmError: loss became NaN"),
        FailureRule(name_pattern="boot-.*", at="Starting", reason="InternalServerError: capacity went away"),
        FailureRule(name_pattern="up-.*", at="Uploading", reason="ClientError: output bucket refused the upload"),
    ),
)


def test_a_matching_job_is_seen_training_then_fails_with_the_reason(aws: LocalClients,
                                                                   server_clock: ManualClock) -> None:
    server_clock.hold()  # the test's polls see every 20 ms of the job's life
    name = unique_name("nightly")
    request = aws.training_request(name, image=CUSTOM_IMAGE)
    request["AlgorithmSpecification"]["MetricDefinitions"] = [{"Name": "loss", "Regex": r"loss=([0-9.]+)"}]
    aws.sagemaker.create_training_job(**request)
    training = wait_stepping(aws, server_clock, name, until=lambda job: job["SecondaryStatus"] == "Training")
    assert training["TrainingJobStatus"] == "InProgress"
    job = wait_stepping(aws, server_clock, name)
    assert (job["TrainingJobStatus"], job["SecondaryStatus"]) == ("Failed", "Failed")
    assert job["FailureReason"] == "AlgorithmError: loss became NaN"
    statuses = [t["Status"] for t in job["SecondaryStatusTransitions"]]
    assert statuses == ["Starting", "Downloading", "Training", "Failed"]
    training_window = job["SecondaryStatusTransitions"][2]
    # Halfway through Training (0.2 s at time_scale 10).
    assert abs((training_window["EndTime"] - training_window["StartTime"]).total_seconds() - 0.1) < 0.005
    assert "ModelArtifacts" not in job
    (messages,) = aws.log_messages(name).values()
    assert messages[-1].endswith("AlgorithmError: loss became NaN")
    assert any("Reporting training FAILURE" in m for m in messages)
    assert not any("Reporting training SUCCESS" in m for m in messages)


def test_a_rule_can_fail_jobs_before_they_train(aws: LocalClients) -> None:
    name = unique_name("boot")
    aws.sagemaker.create_training_job(**aws.training_request(name))
    job = aws.wait(name)
    assert job["FailureReason"] == "InternalServerError: capacity went away"
    assert [t["Status"] for t in job["SecondaryStatusTransitions"]] == ["Starting", "Failed"]
    assert aws.log_messages(name) == {}


def test_a_rule_at_uploading_keeps_the_full_logs(aws: LocalClients) -> None:
    name = unique_name("up")
    aws.sagemaker.create_training_job(**aws.training_request(name))
    job = aws.wait(name)
    assert job["TrainingJobStatus"] == "Failed" and job["SecondaryStatus"] == "Failed"
    assert [t["Status"] for t in job["SecondaryStatusTransitions"]][-2:] == ["Uploading", "Failed"]
    assert len(job["FinalMetricDataList"]) == 1  # train:rmse, from every round


def test_the_pattern_must_match_the_whole_name(aws: LocalClients) -> None:
    name = unique_name("not-nightly")  # contains "nightly-" but does not start with it
    aws.sagemaker.create_training_job(**aws.training_request(name))
    assert aws.wait(name)["TrainingJobStatus"] == "Completed"
