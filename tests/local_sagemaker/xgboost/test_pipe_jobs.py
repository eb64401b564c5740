"""End to end through the local SageMaker (execution: run): built-in XGBoost jobs whose channels stream through the
FIFOs the local SageMaker makes (Pipe mode) train the same model as File mode on the same data, for every content
type the container reads in Pipe mode; RecordIO-protobuf and Parquet train in File mode too; the content types the
container does not read in Pipe mode fail the job with its message as FailureReason."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pytest

from image_registry import ImageRegistry
from local_sagemaker import LocalSettings
from local_sagemaker.testing import DATA_BUCKET, LocalClients, unique_name
from local_sagemaker.xgboost import parquet, recordio
from xgboost_hosts import REGRESSION, files_of

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
LOCAL_SETTINGS = LocalSettings(execution="run", stop_seconds=1)
HPS = {"num_round": "12", "objective": "reg:squarederror", "max_depth": "4", "eta": "0.3"}
CSV, RECORDIO, PARQUET = "text/csv", "application/x-recordio-protobuf", "application/x-parquet"


def _rows(channel: str) -> np.ndarray:
    return np.loadtxt(files_of(REGRESSION[channel])[0], delimiter=",", dtype=np.float32, ndmin=2)


def _objects(channel: str, content_type: str) -> dict[str, bytes]:
    """The example's data in the content type, `train` in two objects (streamed one after the other)."""
    rows = _rows(channel)
    parts = (rows[:150], rows[150:]) if channel == "train" else (rows,)
    if content_type == CSV:
        bodies = ["".join(",".join(f"{v:.5f}" for v in row) + "\n" for row in part).encode() for part in parts]
    elif content_type == PARQUET:
        bodies = [parquet.write(part) for part in parts]
    else:
        bodies = [recordio.write_dense(part[:, 1:], part[:, 0]) for part in parts]
    return {f"part-{index}": body for index, body in enumerate(bodies)}


def _put(aws: LocalClients, content_type: str) -> dict[str, str]:
    prefix = f"pipe-xgb/{unique_name('data')}"
    aws.put_data(f"{prefix}/ensure-bucket")
    uris = {}
    for channel in ("train", "validation"):
        for key, body in _objects(channel, content_type).items():
            aws.s3.put_object(Bucket=DATA_BUCKET, Key=f"{prefix}/{channel}/{key}", Body=body)
        uris[channel] = f"s3://{DATA_BUCKET}/{prefix}/{channel}/"
    return uris


def _job(aws: LocalClients, channels: Mapping[str, str], content_type: str, mode: str,
         version: str = "1.7-1", hosts: int = 1) -> dict[str, Any]:
    name = unique_name(f"xgb-{mode.lower()}")
    image = ImageRegistry.default().uri("xgboost", version, "us-east-1")
    request = aws.training_request(name, image=image, channels=channels, hyperparameters=HPS, instance_count=hosts)
    request["AlgorithmSpecification"]["TrainingInputMode"] = mode
    for channel in request["InputDataConfig"]:
        channel["ContentType"] = content_type
        channel.pop("InputMode", None)  # inherits the job's mode, as the service model says
        if hosts > 1 and channel["ChannelName"] == "train":
            channel["DataSource"]["S3DataSource"]["S3DataDistributionType"] = "ShardedByS3Key"
    aws.sagemaker.create_training_job(**request)
    return aws.wait(name, timeout=240, interval=0.25)  # a job takes seconds: each ask costs CPU here and there


def _validation_rmse(job: Mapping[str, Any]) -> float:
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    final = {m["MetricName"]: m["Value"] for m in job["FinalMetricDataList"]}
    return float(final["validation:rmse"])


@pytest.fixture(scope="module")
def file_mode(aws: LocalClients) -> Callable[[str], tuple[dict[str, str], float]]:
    """A content type's File-mode job on the example's data, run once for the module (its tests only read its
    validation RMSE): (its channels, that RMSE)."""
    done: dict[str, tuple[dict[str, str], float]] = {}

    def run_once(content_type: str) -> tuple[dict[str, str], float]:
        if content_type not in done:
            channels = _put(aws, content_type)
            done[content_type] = channels, _validation_rmse(_job(aws, channels, content_type, "File"))
        return done[content_type]

    return run_once


@pytest.mark.parametrize("content_type", [CSV, RECORDIO, PARQUET])
def test_pipe_mode_trains_the_model_file_mode_trains(aws: LocalClients, content_type: str,
                                                     file_mode: Callable[[str], tuple[dict[str, str], float]]) -> None:
    channels, by_file = file_mode(content_type)
    by_pipe = _validation_rmse(_job(aws, channels, content_type, "Pipe"))
    assert by_pipe == pytest.approx(by_file, abs=1e-4)
    assert by_pipe < float(np.std(_rows("validation")[:, 0])) / 2  # it learnt from the streamed rows


def test_two_hosts_train_on_their_shares_of_a_pipe_channel_as_of_files(aws: LocalClients) -> None:
    """ShardedByS3Key: each host's FIFO streams its share of train's two objects; the hosts train together."""
    channels = _put(aws, RECORDIO)
    by_file = _validation_rmse(_job(aws, channels, RECORDIO, "File", hosts=2))
    piped = _job(aws, channels, RECORDIO, "Pipe", hosts=2)
    assert _validation_rmse(piped) == pytest.approx(by_file, abs=1e-4)
    shares = sorted(int(match.group(1)) for lines in aws.log_messages(piped["TrainingJobName"]).values()
                    for line in lines if (match := re.search(r"Train matrix has (\d+) rows", line)))
    assert shares == [150, 250]  # part-0 to one host, part-1 to the other


@pytest.mark.parametrize("content_type", [RECORDIO, PARQUET])
def test_recordio_protobuf_and_parquet_in_file_mode_train_as_csv(
        content_type: str, file_mode: Callable[[str], tuple[dict[str, str], float]]) -> None:
    by_csv, by_other = file_mode(CSV)[1], file_mode(content_type)[1]
    assert by_other == pytest.approx(by_csv, abs=1e-4)


@pytest.mark.parametrize(("content_type", "version", "reason"), [
    ("text/libsvm", "1.7-1", "ClientError: Channel configuration for 'train' channel is not supported: {"),
    (CSV, "3.2-0", "ClientError: Pipe mode for CSV is no longer supported. Please use Fast File mode (default) "
                   "instead. Set input_mode='File' in your SageMaker Estimator or TrainingInput."),
])
def test_a_pipe_channel_the_container_does_not_read_fails_with_its_message(aws: LocalClients, content_type: str,
                                                                             version: str, reason: str) -> None:
    job = _job(aws, _put(aws, CSV), content_type, "Pipe", version)
    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"].startswith(reason), job["FailureReason"]
    if content_type == "text/libsvm":  # the channel's configuration as the container got it
        assert "'ContentType': 'text/libsvm'" in job["FailureReason"]
        assert "'TrainingInputMode': 'Pipe'" in job["FailureReason"]


def test_a_hosts_process_loads_no_aws_client_library() -> None:
    """Every XGBoost host is a `python -m local_sagemaker.xgboost` process: the package it loads first must not bring
    botocore and boto3 (a quarter of a second of CPU per host, for a constant) when the host makes no AWS call."""
    probe = "import sys, local_sagemaker.xgboost.run; print(sorted({'botocore', 'boto3'} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stdout.strip()) == (0, "[]"), done.stderr[-2000:]
