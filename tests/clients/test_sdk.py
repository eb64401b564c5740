"""The SageMaker Python SDK 2.x against `sagemaker-plugin local serve`: fit with logs, attach, TrainingJobAnalytics.

The SDK makes its own boto3 clients for CloudWatch Logs and metrics from the session's boto3 Session, so the
endpoint comes from `AWS_ENDPOINT_URL` in this process's environment. Its log tailing polls every 10 s and describes
the job every 30 s; local_serve.FastClock makes those waits short without changing what the SDK asks or prints.
The built-in XGBoost Estimator passes no metric_definitions: SageMaker refuses them for built-in algorithms.
"""

from __future__ import annotations

import contextlib
import io
import os
from typing import Any

import pytest

from lazy_import import Lazy
from local_sagemaker import LOG_GROUP, PLACEHOLDER_ROLE_ARN
from local_sagemaker.testing import unique_name
from local_serve import BUCKET, REGION, Served, sdk_client_session

os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")  # 2.x on purpose: what most users still run
# imported when this module's first test runs, not at collection (tests/support/lazy_import.py says why)
image_uris = Lazy("sagemaker.image_uris")
TrainingJobAnalytics = Lazy("sagemaker.analytics", "TrainingJobAnalytics")
Estimator = Lazy("sagemaker.estimator", "Estimator")
TrainingInput = Lazy("sagemaker.inputs", "TrainingInput")


@pytest.fixture(scope="module", autouse=True)
def sagemaker_sdk() -> Any:
    return pytest.importorskip("sagemaker")  # the `test` extra installs it; skip where it is absent


@pytest.fixture
def sdk_session(served: Served, monkeypatch: pytest.MonkeyPatch) -> Any:
    return sdk_client_session(served, monkeypatch)


def _estimator(session: Any, **extra: Any) -> Estimator:
    return Estimator(
        image_uri=image_uris.retrieve("xgboost", REGION, "1.7-1"),
        role=PLACEHOLDER_ROLE_ARN,
        instance_count=1,
        instance_type="ml.m5.large",
        output_path=f"s3://{BUCKET}/sdk-output",
        sagemaker_session=session,
        hyperparameters={"num_round": "6", "objective": "reg:squarederror"},
        **extra,
    )


def _messages(served: Served, name: str) -> list[str]:
    logs = served.client("logs")
    events = logs.filter_log_events(logGroupName=LOG_GROUP, logStreamNamePrefix=name)["events"]
    return [event["message"] for event in events]


@pytest.fixture(scope="module")
def fitted(served: Served, outside_lookups: list[str]) -> dict[str, Any]:
    """One Estimator.fit(wait=True, logs='All'), its printed output and the job's name (shared: a fit is slow)."""
    name = unique_name("sdk-fit")
    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        estimator = _estimator(sdk_client_session(served, patch))
        channels = {channel: TrainingInput(served.put_csv(f"{name}/{channel}"), content_type="text/csv")
                    for channel in ("train", "validation")}
        with contextlib.redirect_stdout(printed):
            estimator.fit(channels, wait=True, logs="All", job_name=name)
        model_data = estimator.model_data
    return {"name": name, "printed": printed.getvalue(), "model_data": model_data}


def test_fit_with_logs_prints_every_log_line_and_the_billing(served: Served, fitted: dict[str, Any]) -> None:
    name, printed = fitted["name"], fitted["printed"]
    job = served.client("sagemaker").describe_training_job(TrainingJobName=name)
    assert job["TrainingJobStatus"] == "Completed"
    messages = _messages(served, name)
    assert any("#011validation-rmse:" in message for message in messages)
    for message in messages:
        assert message in printed
    assert "Completed - Training job completed" in printed
    assert f"Training seconds: {job['TrainingTimeInSeconds']}" in printed
    assert f"Billable seconds: {job['BillableTimeInSeconds']}" in printed
    assert fitted["model_data"] == f"s3://{BUCKET}/sdk-output/{name}/output/model.tar.gz"


def test_attach_rebuilds_the_estimator_from_describe(sdk_session: Any, fitted: dict[str, Any]) -> None:
    """Before: Estimator.attach failed with KeyError 'KmsKeyId' (DescribeTrainingJob left OutputDataConfig.KmsKeyId
    out; AWS returns "" when none was given)."""
    attached = Estimator.attach(fitted["name"], sagemaker_session=sdk_session)
    assert attached.output_kms_key == ""
    assert (attached.instance_type, attached.instance_count, attached.volume_size) == ("ml.m5.large", 1, 30)
    assert attached.max_run == 24 * 60 * 60  # the SDK's default, echoed back
    assert attached.output_path == f"s3://{BUCKET}/sdk-output"
    assert attached.image_uri == image_uris.retrieve("xgboost", REGION, "1.7-1")
    assert attached.hyperparameters()["num_round"] == "6"
    assert attached.model_data == fitted["model_data"]


def test_training_job_analytics_returns_the_metrics_the_logs_carry(served: Served, sdk_session: Any,
                                                                   fitted: dict[str, Any]) -> None:
    """Before: no CloudWatch metrics were published, so the dataframe was empty."""
    frame = TrainingJobAnalytics(fitted["name"], sagemaker_session=sdk_session).dataframe()
    assert set(frame["metric_name"]) == {"train:rmse", "validation:rmse"}
    for metric in ("train", "validation"):
        logged = [float(part.split(":", 1)[1]) for message in _messages(served, fitted["name"])
                  for part in message.split("#011")[1:] if part.startswith(f"{metric}-rmse:")]
        rows = frame[frame["metric_name"] == f"{metric}:rmse"]
        # One 60 s period holds the whole (time-scaled) job: its Average is the mean of the logged values.
        assert len(logged) == 6 and list(rows["value"]) == pytest.approx([sum(logged) / len(logged)])
    per_second = TrainingJobAnalytics(fitted["name"], metric_names=["train:rmse"], sagemaker_session=sdk_session,
                                      period=1).dataframe()
    assert len(per_second) >= 1 and set(per_second["metric_name"]) == {"train:rmse"}


def test_the_image_the_boto3_tests_name_is_the_one_the_sdk_resolves() -> None:
    """tests/support/local_serve.py's requests name local_sagemaker.testing's XGBoost image, as boto3 users copy it
    from the SDK: the same address."""
    from local_sagemaker.testing import XGBOOST_IMAGE

    assert image_uris.retrieve("xgboost", REGION, "1.7-1") == XGBOOST_IMAGE
