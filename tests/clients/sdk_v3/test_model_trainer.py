"""The SageMaker Python SDK v3's ModelTrainer against `local serve`, on its default path: role validation on
(iam:SimulatePrincipalPolicy, iam:GetRole), the built-in XGBoost from image_uris, InputData from S3 and from a local
folder, logs streamed by train(wait=True, logs=True), the model.tar.gz, a failing job's reason in v3's exception."""

from __future__ import annotations

import io
import json
import logging
import tarfile
from pathlib import Path
from typing import Any

import pytest

from local_sagemaker import LOG_GROUP, PLACEHOLDER_ROLE_ARN
from local_serve import BUCKET, REGION, Served
from sdk_v3_setup import csv_folder, require_sdk_v3

require_sdk_v3()
from sagemaker.core import image_uris  # noqa: E402
from sagemaker.core.helper.iam_role_resolver import RoleValidationError  # noqa: E402
from sagemaker.core.training.configs import Compute, InputData, OutputDataConfig  # noqa: E402
from sagemaker.core.utils.exceptions import FailedStatusError  # noqa: E402
from sagemaker.train import ModelTrainer  # noqa: E402

TRUST_SAGEMAKER = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}]}


def xgboost_trainer(session: Any, role: str | None = PLACEHOLDER_ROLE_ARN, **extra: Any) -> ModelTrainer:
    settings: dict[str, Any] = {"hyperparameters": {"num_round": "5", "objective": "reg:squarederror"}, **extra}
    return ModelTrainer(
        training_image=image_uris.retrieve("xgboost", REGION, "1.7-1"),
        role=role,
        sagemaker_session=session,
        compute=Compute(instance_type="ml.m5.large", instance_count=1),
        output_data_config=OutputDataConfig(s3_output_path=f"s3://{BUCKET}/sdk-v3-output"),
        base_job_name="sdk-v3-xgboost",
        **settings,
    )


class Lines(logging.Handler):
    """What sagemaker-core logs while it waits (the job's log lines among it)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture(scope="module")
def trained(served: Served, v3_session: Any, folder: Path, outside_lookups: list[str]) -> dict[str, Any]:
    """One ModelTrainer.train(wait=True, logs=True) of the built-in XGBoost: `train` from S3, `validation` from a
    local folder (shared: a job takes a while)."""
    served.client("s3").put_object(Bucket=BUCKET, Key="sdk-v3-input/train/data.csv", Body=csv_folder(
        folder / "train").joinpath("data.csv").read_bytes())
    trainer = xgboost_trainer(v3_session)
    lines = Lines()
    logger = logging.getLogger("sagemaker.core.resources")
    logger.addHandler(lines)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        trainer.train(input_data_config=[
            InputData(channel_name="train", data_source=f"s3://{BUCKET}/sdk-v3-input/train/", content_type="text/csv"),
            InputData(channel_name="validation", data_source=str(csv_folder(folder / "validation")),
                      content_type="text/csv"),
        ], wait=True, logs=True)
    finally:
        logger.removeHandler(lines)
        logger.setLevel(level)
    return {"job": trainer._latest_training_job, "messages": lines.messages}


def test_model_trainer_validates_the_placeholder_role_by_default(v3_session: Any) -> None:
    assert xgboost_trainer(v3_session).role == PLACEHOLDER_ROLE_ARN
    assert xgboost_trainer(v3_session, role="LocalSageMakerRole").role == PLACEHOLDER_ROLE_ARN  # a name: GetRole


def test_a_role_created_in_the_local_iam_passes_v3s_validation(served: Served, v3_session: Any) -> None:
    iam = served.client("iam")
    arn = iam.create_role(RoleName="SdkV3Made", AssumeRolePolicyDocument=json.dumps(TRUST_SAGEMAKER))["Role"]["Arn"]
    try:
        assert xgboost_trainer(v3_session, role=arn).role == arn
    finally:
        iam.delete_role(RoleName="SdkV3Made")


def test_v3_refuses_an_unknown_role_as_on_aws(v3_session: Any) -> None:
    with pytest.raises(ValueError, match="IAM role 'NoSuchRole' does not exist"):
        xgboost_trainer(v3_session, role="NoSuchRole")
    with pytest.raises(RoleValidationError, match="NoSuchRole"):
        xgboost_trainer(v3_session, role="arn:aws:iam::123456789012:role/NoSuchRole")


def test_without_a_role_v3_says_the_caller_is_no_role_as_for_an_iam_user_on_aws(v3_session: Any) -> None:
    with pytest.raises(RoleValidationError, match="No IAM role could be resolved from your caller identity"):
        xgboost_trainer(v3_session, role=None)


def test_train_completes_with_data_from_s3_and_from_a_local_folder(served: Served, trained: dict[str, Any]) -> None:
    job = trained["job"]
    assert job.training_job_status == "Completed"
    described = served.client("sagemaker").describe_training_job(TrainingJobName=job.training_job_name)
    sources = {channel["ChannelName"]: channel["DataSource"]["S3DataSource"]["S3Uri"]
               for channel in described["InputDataConfig"]}
    assert sources["train"] == f"s3://{BUCKET}/sdk-v3-input/train/"
    assert sources["validation"].startswith(f"s3://{BUCKET}/")  # v3 uploaded the folder to the default bucket
    bucket, _, prefix = sources["validation"][len("s3://"):].partition("/")
    keys = [item["Key"] for item in served.client("s3").list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]]
    assert [key.rpartition("/")[2] for key in keys] == ["data.csv"]


def test_train_with_logs_streams_the_jobs_log_lines(served: Served, trained: dict[str, Any]) -> None:
    name = trained["job"].training_job_name
    events = served.client("logs").filter_log_events(logGroupName=LOG_GROUP, logStreamNamePrefix=name)["events"]
    assert any("validation-rmse:" in event["message"] for event in events)
    logged = "\n".join(trained["messages"])
    for event in events:
        assert event["message"] in logged
    assert "Final Resource Status: [bold]Completed" in logged


def test_the_model_tar_gz_holds_the_xgboost_model(served: Served, trained: dict[str, Any]) -> None:
    job = trained["job"]
    uri = job.model_artifacts.s3_model_artifacts
    assert uri == f"s3://{BUCKET}/sdk-v3-output/{job.training_job_name}/output/model.tar.gz"
    body = served.client("s3").get_object(Bucket=BUCKET, Key=uri.split("/", 3)[3])["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as archive:
        assert archive.getnames() == ["xgboost-model"]


def test_a_failing_job_raises_v3s_error_carrying_the_reason(v3_session: Any, folder: Path) -> None:
    """The XGBoost container refuses multi:softmax without num_class when it starts, as on SageMaker."""
    trainer = xgboost_trainer(v3_session, hyperparameters={"num_round": "5", "objective": "multi:softmax"})
    with pytest.raises(FailedStatusError) as error:
        trainer.train(input_data_config=[InputData(channel_name="train", data_source=str(csv_folder(folder / "few")),
                                                   content_type="text/csv")], wait=True, logs=False)
    reason = trainer._latest_training_job.failure_reason
    assert reason.startswith("ClientError: Hyperparameter num_class")
    assert reason in str(error.value)
