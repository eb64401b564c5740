"""What a job leaves behind: CloudWatch streams per host, lines over time, metrics, model.tar.gz; and missing data."""

from __future__ import annotations

import io
import re
import tarfile

import pytest

from local_sagemaker import LOG_GROUP, LocalSettings
from local_sagemaker.testing import CUSTOM_IMAGE, DATA_BUCKET, LocalClients, unique_name
from server_clock import ManualClock

# tests/conftest.py runs this module's local SageMaker (`server`, and `aws` on it) with LOCAL_SETTINGS.
# Starting 0.1 s, Downloading 0.1 s, Training 0.4 s, Uploading 0.1 s: long enough to read logs mid-Training.
LOCAL_SETTINGS = LocalSettings(execution="simulate", timeline={"Starting": 1, "Downloading": 1, "Training": 4,
                                                               "Uploading": 1}, time_scale=10)
XGBOOST_ROUND = re.compile(r"^\[(\d+)\]#011train-rmse:([0-9.]+)(?:#011validation-rmse:([0-9.]+))?$")


def _rounds(messages: list[str]) -> list[tuple[int, float, float | None]]:
    out = []
    for message in messages:
        match = XGBOOST_ROUND.match(message)
        if match:
            out.append((int(match[1]), float(match[2]), float(match[3]) if match[3] else None))
    return out


def test_xgboost_streams_per_host_with_its_round_format(aws: LocalClients) -> None:
    name = unique_name("xgb")
    channels = {"train": aws.put_data(f"d/{name}/train"), "validation": aws.put_data(f"d/{name}/validation")}
    request = aws.training_request(name, channels=channels, hyperparameters={"num_round": "25"}, instance_count=2)
    aws.sagemaker.create_training_job(**request)
    job = aws.wait(name)
    streams = aws.log_messages(name)
    epoch = int(job["SecondaryStatusTransitions"][2]["StartTime"].timestamp())
    assert sorted(streams) == [f"{name}/algo-1-{epoch}", f"{name}/algo-2-{epoch}"]
    for messages in streams.values():
        rounds = _rounds(messages)
        assert [r[0] for r in rounds] == list(range(25))
        train = [r[1] for r in rounds]
        validation = [r[2] for r in rounds]
        assert train == sorted(train, reverse=True) and train[0] > train[-1]
        assert all(v is not None and v > t for t, v in zip(train, validation, strict=True))
        assert any("Distributed node training with 2 hosts" in m for m in messages)
    # The same job name gives the same values.
    assert streams[f"{name}/algo-1-{epoch}"] == streams[f"{name}/algo-2-{epoch}"]


def test_xgboost_without_validation_logs_train_only_and_defaults_to_10_rounds(aws: LocalClients) -> None:
    name = unique_name("xgbtrain")
    aws.sagemaker.create_training_job(**aws.training_request(name))
    aws.wait(name)
    (messages,) = aws.log_messages(name).values()
    rounds = _rounds(messages)
    assert len(rounds) == 10
    assert all(v is None for _, _, v in rounds)


def test_lines_appear_over_time_not_all_at_once(aws: LocalClients, server_clock: ManualClock) -> None:
    name = unique_name("partial")
    server_clock.hold()  # only the test moves the job along
    aws.sagemaker.create_training_job(**aws.training_request(name, hyperparameters={"num_round": "50"}))
    server_clock.advance(0.3)  # 0.1 s into Training (0.2 s to 0.6 s)
    assert aws.sagemaker.describe_training_job(TrainingJobName=name)["SecondaryStatus"] == "Training"
    (during,) = aws.log_messages(name).values()
    server_clock.advance(1.0)
    aws.wait(name)
    (after,) = aws.log_messages(name).values()
    assert 0 < len(during) < len(after)
    assert after[: len(during)] == during
    events = aws.logs.get_log_events(
        logGroupName=LOG_GROUP, logStreamName=next(iter(aws.log_messages(name))), startFromHead=True
    )["events"]
    job = aws.sagemaker.describe_training_job(TrainingJobName=name)
    training = job["SecondaryStatusTransitions"][2]
    start_ms = int(training["StartTime"].timestamp() * 1000)
    end_ms = int(training["EndTime"].timestamp() * 1000)
    assert all(start_ms <= event["timestamp"] < end_ms for event in events)
    assert [e["timestamp"] for e in events] == sorted(e["timestamp"] for e in events)


def test_final_metrics_of_built_in_xgboost_are_its_own_last_values(aws: LocalClients) -> None:
    name = unique_name("metrics")
    channels = {"train": aws.put_data(f"d/{name}/train"), "validation": aws.put_data(f"d/{name}/validation")}
    request = aws.training_request(name, channels=channels, hyperparameters={"num_round": "12"})
    aws.sagemaker.create_training_job(**request)  # no MetricDefinitions: SageMaker refuses them for XGBoost
    job = aws.wait(name)
    (messages,) = aws.log_messages(name).values()
    last = _rounds(messages)[-1]
    assert len(_rounds(messages)) == 12
    metrics = {m["MetricName"]: m for m in job["FinalMetricDataList"]}
    assert set(metrics) == {"train:rmse", "validation:rmse"}  # SageMaker's built-in XGBoost metrics
    assert metrics["train:rmse"]["Value"] == pytest.approx(last[1])
    assert metrics["validation:rmse"]["Value"] == pytest.approx(last[2])
    training = job["SecondaryStatusTransitions"][2]
    assert training["StartTime"] <= metrics["validation:rmse"]["Timestamp"] <= training["EndTime"]


def test_final_metrics_are_the_last_values_the_regexes_capture(aws: LocalClients) -> None:
    name = unique_name("regexes")
    request = aws.training_request(name, image=CUSTOM_IMAGE, hyperparameters={"epochs": "4"})
    request["AlgorithmSpecification"]["MetricDefinitions"] = [
        {"Name": "epoch", "Regex": r"^epoch ([0-9]+)/"},
        {"Name": "never", "Regex": r"no such line ([0-9]+)"},
    ]
    aws.sagemaker.create_training_job(**request)
    job = aws.wait(name)
    metrics = {m["MetricName"]: m for m in job["FinalMetricDataList"]}
    assert metrics["epoch"]["Value"] == 4.0
    assert "never" not in metrics
    training = job["SecondaryStatusTransitions"][2]
    assert training["StartTime"] <= metrics["epoch"]["Timestamp"] <= training["EndTime"]


def test_custom_image_logs_epochs_on_every_host(aws: LocalClients) -> None:
    name = unique_name("custom")
    request = aws.training_request(name, image=CUSTOM_IMAGE, instance_count=2)
    request["AlgorithmSpecification"]["ContainerArguments"] = ["--epochs", "3"]
    request["AlgorithmSpecification"]["MetricDefinitions"] = [{"Name": "loss", "Regex": r"loss=([0-9.]+)"}]
    aws.sagemaker.create_training_job(**request)
    job = aws.wait(name)
    streams = aws.log_messages(name)
    assert len(streams) == 2
    for messages in streams.values():
        epochs = [m for m in messages if m.startswith("epoch ")]
        assert [m.split()[1] for m in epochs] == ["1/3", "2/3", "3/3"]
        losses = [float(re.search(r"loss=([0-9.]+)", m)[1]) for m in epochs]  # type: ignore[index]
        assert losses == sorted(losses, reverse=True)
    (loss,) = job["FinalMetricDataList"]
    assert loss["Value"] == pytest.approx(losses[-1])


def test_mpi_jobs_log_mpirun_on_the_first_host(aws: LocalClients) -> None:
    name = unique_name("mpi")
    hyperparameters = {
        "sagemaker_mpi_enabled": "true",
        "sagemaker_mpi_num_of_processes_per_host": "4",
        "sagemaker_mpi_custom_mpi_options": "-x FI_EFA_USE_DEVICE_RDMA=1",
    }
    request = aws.training_request(name, image=CUSTOM_IMAGE, instance_count=2, hyperparameters=hyperparameters)
    aws.sagemaker.create_training_job(**request)
    aws.wait(name)
    streams = aws.log_messages(name)
    first = next(messages for stream, messages in streams.items() if "/algo-1-" in stream)
    second = next(messages for stream, messages in streams.items() if "/algo-2-" in stream)
    (mpirun,) = [m for m in first if m.startswith("mpirun ")]
    assert "--host algo-1:4,algo-2:4 -np 8" in mpirun and "-x FI_EFA_USE_DEVICE_RDMA=1" in mpirun
    assert any(m.startswith("[1,0]<stdout>:epoch 1/") for m in first)
    assert not any(m.startswith("mpirun ") for m in second)
    assert any("Starting MPI run as worker node." in m for m in second)


def test_a_completed_job_writes_a_real_model_tar_gz(aws: LocalClients) -> None:
    name = unique_name("model")
    aws.s3.create_bucket(Bucket="fresh-output-bucket")  # SageMaker writes to a bucket that exists, never makes one
    request = aws.training_request(name, OutputDataConfig={"S3OutputPath": "s3://fresh-output-bucket/models/"})
    aws.sagemaker.create_training_job(**request)
    job = aws.wait(name)
    uri = job["ModelArtifacts"]["S3ModelArtifacts"]
    assert uri == f"s3://fresh-output-bucket/models/{name}/output/model.tar.gz"
    body = aws.s3.get_object(Bucket="fresh-output-bucket", Key=f"models/{name}/output/model.tar.gz")["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as archive:
        assert archive.getnames() == ["xgboost-model"]


def test_a_job_without_input_objects_fails_in_downloading(aws: LocalClients) -> None:
    name = unique_name("nodata")
    uri = f"s3://{DATA_BUCKET}/nothing/here/{name}/"
    aws.put_data("somewhere/else")  # the bucket exists; the prefix is empty
    aws.sagemaker.create_training_job(**aws.training_request(name, channels={"train": uri}))
    job = aws.wait(name)
    assert job["TrainingJobStatus"] == "Failed"
    assert job["SecondaryStatus"] == "Failed"
    assert job["FailureReason"] == (
        f'ClientError: No S3 objects found under S3 URL "{uri}" given in input data source. Please ensure that the '
        "bucket exists in the selected region (us-east-1), that objects exist under that S3 prefix, and that the role "
        f'"{job["RoleArn"]}" has "s3:ListBucket" permissions on bucket "{DATA_BUCKET}".'
    )
    assert [t["Status"] for t in job["SecondaryStatusTransitions"]] == ["Starting", "Downloading", "Failed"]
    assert "ModelArtifacts" not in job
    assert aws.log_messages(name) == {}


def test_a_missing_bucket_fails_the_same_way(aws: LocalClients) -> None:
    name = unique_name("nobucket")
    uri = "s3://no-such-bucket-anywhere/train/"
    request = aws.training_request(name, channels={"train": aws.put_data(f"d/{name}"), "extra": uri})
    aws.sagemaker.create_training_job(**request)
    job = aws.wait(name)
    assert job["TrainingJobStatus"] == "Failed"
    assert f'No S3 objects found under S3 URL "{uri}"' in job["FailureReason"]
