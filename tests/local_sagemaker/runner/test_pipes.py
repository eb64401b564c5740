"""Pipe mode for real: a Pipe channel reaches each host as FIFOs `input/data/<channel>_<epoch>`, as on SageMaker.

Each test runs a small script as a custom image's ContainerEntrypoint; what it read is checked from outside (its
log lines), and so is what the job leaves behind (no writer thread, no process).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import textwrap
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from local_sagemaker import LocalSettings
from local_sagemaker.testing import CUSTOM_IMAGE, DATA_BUCKET, LocalClients, unique_name

pytestmark = pytest.mark.timeout(120)

LOCAL_SETTINGS = LocalSettings(execution="run", stop_seconds=1)

#: Reads every epoch named on the command line (`train_0 train_1`) to its end and prints its length and SHA-256;
#: checks on the way that the next epoch's FIFO appears only once this one is closed.
READ_EPOCHS = """
    import hashlib, json, os, stat, sys, time
    data = os.path.dirname(os.environ["SM_CHANNEL_TRAIN"])
    config = json.load(open(os.path.join(os.environ["SM_INPUT_CONFIG_DIR"], "inputdataconfig.json")))
    print("modes", json.dumps({name: c["TrainingInputMode"] for name, c in sorted(config.items())}), flush=True)
    print("folder", os.path.isdir(os.environ["SM_CHANNEL_TRAIN"]), flush=True)
    print("toolkit", os.environ["SM_CHANNEL_TRAIN"] == os.path.join(os.environ["SM_INPUT_DIR"], "data", "train"),
          json.loads(os.environ["SM_INPUT_DATA_CONFIG"]) == config, flush=True)
    for name in sys.argv[1:]:
        path = os.path.join(data, name)
        deadline = time.monotonic() + 30
        while not os.path.exists(path):
            assert time.monotonic() < deadline, f"{name} never appeared"
            time.sleep(0.01)
        assert stat.S_ISFIFO(os.stat(path).st_mode), f"{name} is not a FIFO"
        digest, size = hashlib.sha256(), 0
        with open(path, "rb") as fifo:
            while chunk := fifo.read(1 << 16):
                digest.update(chunk)
                size += len(chunk)
            following = name.rsplit("_", 1)[0] + "_" + str(int(name.rsplit("_", 1)[1]) + 1)
            print("next before close", os.path.exists(os.path.join(data, following)), flush=True)
        print("read", name, size, digest.hexdigest(), flush=True)
"""


def script(folder: Path, body: str) -> Path:
    (folder / "train.py").write_text(textwrap.dedent(body), encoding="utf-8")
    return folder / "train.py"


def wait(aws: LocalClients, name: str) -> dict[str, Any]:
    return aws.wait(name, timeout=60, interval=0.05)


def logs(aws: LocalClients, name: str) -> dict[str, list[str]]:
    """host name (algo-n) -> its lines."""
    return {stream.split("/")[1].rsplit("-", 1)[0]: lines for stream, lines in aws.log_messages(name).items()}


def put(aws: LocalClients, prefix: str, objects: Mapping[str, bytes]) -> str:
    aws.put_data(f"{prefix}-bucket")  # the bucket exists, whichever test runs first
    for key, body in objects.items():
        aws.s3.put_object(Bucket=DATA_BUCKET, Key=f"{prefix}/{key}", Body=body)
    return f"s3://{DATA_BUCKET}/{prefix}/"


def pipe_job(aws: LocalClients, name: str, command: list[str], channels: Mapping[str, str], *,
             job_mode: str = "Pipe", channel_modes: Mapping[str, str | None] | None = None, sharded: bool = False,
             **extra: Any) -> dict[str, Any]:
    request = aws.training_request(name, image=CUSTOM_IMAGE, channels=channels, **extra)
    request["AlgorithmSpecification"]["TrainingInputMode"] = job_mode
    request["AlgorithmSpecification"]["ContainerEntrypoint"] = command
    for channel in request["InputDataConfig"]:
        mode = (channel_modes or {}).get(channel["ChannelName"])
        channel.pop("InputMode")
        if mode:
            channel["InputMode"] = mode
        if sharded:
            channel["DataSource"]["S3DataSource"]["S3DataDistributionType"] = "ShardedByS3Key"
    aws.sagemaker.create_training_job(**request)
    return request


def digest(body: bytes) -> str:
    return f"{len(body)} {hashlib.sha256(body).hexdigest()}"


def pipe_threads(name: str) -> list[str]:
    return [thread.name for thread in threading.enumerate() if thread.name.startswith(f"pipe-{name}-")]


def no_pipe_thread_left(name: str, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while pipe_threads(name) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not pipe_threads(name)


OBJECTS = {"a.bin": os.urandom(300_000), "b.bin": os.urandom(2_500_000), "c.bin": b"seven b"}


def test_a_script_reads_two_epochs_of_a_pipe_channel_byte_for_byte(aws: LocalClients, tmp_path: Path) -> None:
    uri = put(aws, f"pipe/{unique_name('d')}", OBJECTS)
    path = script(tmp_path, READ_EPOCHS)
    name = unique_name("pipe2")
    pipe_job(aws, name, ["python", str(path), "train_0", "train_1"], {"train": uri},
             job_mode="File", channel_modes={"train": "Pipe"})
    job = wait(aws, name)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    lines = logs(aws, name)["algo-1"]
    whole = digest(OBJECTS["a.bin"] + OBJECTS["b.bin"] + OBJECTS["c.bin"])  # key order
    assert f"read train_0 {whole}" in lines and f"read train_1 {whole}" in lines
    assert lines.count("next before close False") == 2, "an epoch's FIFO appeared before the last one was closed"
    assert 'modes {"train": "Pipe"}' in lines and "folder False" in lines
    assert no_pipe_thread_left(name)


def test_sharded_by_s3_key_streams_each_host_its_share(aws: LocalClients, tmp_path: Path) -> None:
    objects = {f"part-{index}.csv": f"{index}\n".encode() * (index + 1) for index in range(5)}
    uri = put(aws, f"pipeshard/{unique_name('d')}", objects)
    path = script(tmp_path, """
        import os
        with open(os.environ["SM_CHANNEL_TRAIN"] + "_0", "rb") as fifo:
            print("got", fifo.read().decode().split(), flush=True)
    """)
    name = unique_name("pipeshard")
    pipe_job(aws, name, ["python", str(path)], {"train": uri}, instance_count=2, sharded=True)
    job = wait(aws, name)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    got = {host: lines[-1] for host, lines in logs(aws, name).items()}
    assert got == {"algo-1": f"got {['0', '2', '2', '2', '4', '4', '4', '4', '4']}",
                   "algo-2": f"got {['1', '1', '3', '3', '3', '3']}"}


@pytest.mark.parametrize("code", [0, 3])
def test_a_script_that_never_opens_its_fifo_still_ends_the_job_and_leaves_nothing(aws: LocalClients, tmp_path: Path,
                                                                                   code: int) -> None:
    uri = put(aws, f"pipenever/{unique_name('d')}", OBJECTS)
    path = script(tmp_path, """
        import os, stat
        fifo = os.environ["SM_CHANNEL_TRAIN"] + "_0"
        print("not reading", os.path.exists(fifo) and stat.S_ISFIFO(os.stat(fifo).st_mode), flush=True)
        raise SystemExit(int(os.environ["EXIT_CODE"]))
    """)
    name = unique_name("pipenever")
    pipe_job(aws, name, ["python", str(path)], {"train": uri, "validation": uri}, Environment={"EXIT_CODE": str(code)})
    job = wait(aws, name)
    assert job["TrainingJobStatus"] == ("Completed" if code == 0 else "Failed"), job.get("FailureReason")
    assert "not reading True" in logs(aws, name)["algo-1"]
    assert no_pipe_thread_left(name)


@pytest.mark.parametrize("how", ["StopTrainingJob", "MaxRuntimeInSeconds"])
def test_stopping_a_job_while_it_streams_ends_the_writer_and_the_script(aws: LocalClients, tmp_path: Path,
                                                                         how: str) -> None:
    big = {"big.bin": os.urandom(8_000_000)}
    uri = put(aws, f"pipestop/{unique_name('d')}", big)
    pid_file = tmp_path / "pid"
    path = script(tmp_path, f"""
        import os, time
        open({str(pid_file)!r}, "w").write(str(os.getpid()))
        fifo = open(os.environ["SM_CHANNEL_TRAIN"] + "_0", "rb")
        print("read", len(fifo.read(1_000_000)), flush=True)
        time.sleep(300)
    """)
    name = unique_name("pipestop")
    pipe_job(aws, name, ["python", str(path)], {"train": uri}, max_runtime=8 if how == "MaxRuntimeInSeconds" else 600)
    aws.wait(name, until=lambda job: "read 1000000" in logs(aws, name).get("algo-1", []) or job["TrainingJobStatus"]
             != "InProgress", timeout=60, interval=0.05)
    if how == "StopTrainingJob":
        assert pipe_threads(name), "no writer while the script reads"
        aws.sagemaker.stop_training_job(TrainingJobName=name)
    job = wait(aws, name)
    assert (job["TrainingJobStatus"], job["SecondaryStatus"]) == (
        "Stopped", "Stopped" if how == "StopTrainingJob" else "MaxRuntimeExceeded")
    assert "read 1000000" in logs(aws, name)["algo-1"]
    assert no_pipe_thread_left(name)
    assert not Path(f"/proc/{pid_file.read_text()}").exists(), "the script outlived its stopped job"


def test_a_channel_inherits_pipe_from_the_job_beside_a_file_channel(aws: LocalClients, tmp_path: Path) -> None:
    train = put(aws, f"pipemixed/{unique_name('t')}", OBJECTS)
    validation = aws.put_data(f"pipemixed/{unique_name('v')}", body=b"4,5,6\n")
    path = script(tmp_path, READ_EPOCHS + """
    with open(os.path.join(os.environ["SM_CHANNEL_VALIDATION"], "part-0.csv")) as csv:
        print("validation", csv.read().strip(), flush=True)
    print("validation fifo", os.path.exists(os.environ["SM_CHANNEL_VALIDATION"] + "_0"), flush=True)
    """)
    name = unique_name("pipemixed")
    pipe_job(aws, name, ["python", str(path), "train_0"], {"train": train, "validation": validation},
             job_mode="Pipe", channel_modes={"train": None, "validation": "File"})
    job = wait(aws, name)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    lines = logs(aws, name)["algo-1"]
    assert 'modes {"train": "Pipe", "validation": "File"}' in lines
    assert "toolkit True True" in lines, "SM_CHANNEL_TRAIN and SM_INPUT_DATA_CONFIG are not the toolkit's"
    assert f"read train_0 {digest(b''.join(OBJECTS[k] for k in sorted(OBJECTS)))}" in lines
    assert "validation 4,5,6" in lines and "validation fifo False" in lines


def _json_lines(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(row) + "\n" for row in rows).encode()


def test_a_manifest_file_streams_the_objects_it_names_in_its_order_and_downloads_them_in_file_mode(
        aws: LocalClients, tmp_path: Path) -> None:
    prefix = f"pipemanifest/{unique_name('d')}"
    uri = put(aws, prefix, {**OBJECTS, "sub/d.bin": b"in a folder"})
    manifest = [{"prefix": uri}, "c.bin", "sub/d.bin", "a.bin"]
    aws.s3.put_object(Bucket=DATA_BUCKET, Key=f"{prefix}-manifests/train.manifest", Body=json.dumps(manifest).encode())
    manifest_uri = f"s3://{DATA_BUCKET}/{prefix}-manifests/train.manifest"
    path = script(tmp_path, READ_EPOCHS + """
    folder = os.environ["SM_CHANNEL_VALIDATION"]
    print("files", sorted(os.path.relpath(os.path.join(p, f), folder) for p, _, fs in os.walk(folder) for f in fs),
          flush=True)
    """)
    name = unique_name("pipemanifest")
    job_request = aws.training_request(name, image=CUSTOM_IMAGE, channels={"train": manifest_uri,
                                                                           "validation": manifest_uri})
    job_request["AlgorithmSpecification"]["ContainerEntrypoint"] = ["python", str(path), "train_0"]
    for channel, mode in zip(job_request["InputDataConfig"], ("Pipe", "File"), strict=True):
        channel["InputMode"] = mode
        channel["DataSource"]["S3DataSource"]["S3DataType"] = "ManifestFile"
    aws.sagemaker.create_training_job(**job_request)
    job = wait(aws, name)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    lines = logs(aws, name)["algo-1"]
    assert f"read train_0 {digest(OBJECTS['c.bin'] + b'in a folder' + OBJECTS['a.bin'])}" in lines
    assert f"files {['a.bin', 'c.bin', 'sub/d.bin']}" in lines


def test_an_augmented_manifest_streams_its_attributes_as_recordio_records(aws: LocalClients, tmp_path: Path) -> None:
    prefix = f"pipeaugmented/{unique_name('d')}"
    uri = put(aws, prefix, OBJECTS)
    rows = [{"source-ref": f"{uri}b.bin", "label": 1, "other": "ignored"},
            {"label": {"k": [1, 2]}, "source-ref": f"{uri}c.bin"},
            {"source-ref": f"{uri}a.bin", "label": "text"}]
    aws.s3.put_object(Bucket=DATA_BUCKET, Key=f"{prefix}-m/train.jsonl", Body=_json_lines(rows))
    path = script(tmp_path, """
        import hashlib, os, struct
        stream = open(os.environ["SM_CHANNEL_TRAIN"] + "_0", "rb").read()
        at = 0
        while at < len(stream):
            magic, header = struct.unpack_from("<II", stream, at)
            size = header & ((1 << 29) - 1)
            print("record", hex(magic), header >> 29, size, hashlib.sha256(stream[at + 8:at + 8 + size]).hexdigest(),
                  flush=True)
            at += 8 + size + (-size % 4)
    """)
    name = unique_name("pipeaug")
    request = aws.training_request(name, image=CUSTOM_IMAGE, channels={"train": f"s3://{DATA_BUCKET}/{prefix}-m/"
                                                                                 "train.jsonl"})
    request["AlgorithmSpecification"].update(TrainingInputMode="Pipe", ContainerEntrypoint=["python", str(path)])
    channel = request["InputDataConfig"][0]
    channel.update(InputMode="Pipe", RecordWrapperType="RecordIO")
    channel["DataSource"]["S3DataSource"].update(S3DataType="AugmentedManifestFile",
                                                 AttributeNames=["source-ref", "label"])
    aws.sagemaker.create_training_job(**request)
    job = wait(aws, name)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    expected = [OBJECTS["b.bin"], b"1", OBJECTS["c.bin"], b'{"k":[1,2]}', OBJECTS["a.bin"], b"text"]
    assert [line for line in logs(aws, name)["algo-1"] if line.startswith("record ")] == [
        f"record 0xced7230a 0 {len(body)} {hashlib.sha256(body).hexdigest()}" for body in expected]


@pytest.mark.parametrize(("kind", "mode", "body", "reason"), [
    ("AugmentedManifestFile", "File", b'{"a": 1}\n',
     "S3DataType AugmentedManifestFile is supported only for channels using Pipe input mode"),
    ("ManifestFile", "Pipe", b'["no prefix"]', 'is not a JSON array of a {"prefix": "s3://..."} object followed by'),
    ("ManifestFile", "Pipe", None, "names no object"),
])
def test_a_manifest_the_local_runner_cannot_read_fails_the_job_saying_why(
        aws: LocalClients, kind: str, mode: str, body: bytes | None, reason: str) -> None:
    prefix = f"pipebad/{unique_name('d')}"
    uri = put(aws, prefix, {"x": b"x"})
    manifest = body if body is not None else json.dumps([{"prefix": uri}]).encode()
    aws.s3.put_object(Bucket=DATA_BUCKET, Key=f"{prefix}/m", Body=manifest)
    name = unique_name("pipebad")
    request = aws.training_request(name, image=CUSTOM_IMAGE, channels={"train": f"{uri}m"})
    request["AlgorithmSpecification"]["ContainerEntrypoint"] = ["python", "-c", "pass"]
    channel = request["InputDataConfig"][0]
    channel["InputMode"] = mode
    channel["DataSource"]["S3DataSource"].update(S3DataType=kind, AttributeNames=["a"])
    aws.sagemaker.create_training_job(**request)
    job = wait(aws, name)
    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"].startswith("ClientError: channel train: ") and reason in job["FailureReason"]
    assert [t["Status"] for t in job["SecondaryStatusTransitions"]][-2:] == ["Downloading", "Failed"]


@pytest.mark.parametrize("gzipped", [True, False])
def test_a_gzip_channel_streams_decompressed_and_one_that_is_not_gzip_fails_the_job(
        aws: LocalClients, tmp_path: Path, gzipped: bool) -> None:
    bodies = {key: gzip.compress(body) if gzipped else body for key, body in OBJECTS.items()}
    uri = put(aws, f"pipegzip/{unique_name('d')}", bodies)
    path = script(tmp_path, READ_EPOCHS)
    name = unique_name("pipegzip")
    request = aws.training_request(name, image=CUSTOM_IMAGE, channels={"train": uri})
    request["AlgorithmSpecification"].update(ContainerEntrypoint=["python", str(path), "train_0"])
    request["InputDataConfig"][0].update(InputMode="Pipe", CompressionType="Gzip")
    aws.sagemaker.create_training_job(**request)
    job = wait(aws, name)
    if gzipped:
        assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
        assert f"read train_0 {digest(b''.join(OBJECTS[k] for k in sorted(OBJECTS)))}" in logs(aws, name)["algo-1"]
    else:
        assert job["TrainingJobStatus"] == "Failed"
        assert job["FailureReason"] == (f"ClientError: channel train: {uri}a.bin is not gzip data (the channel's "
                                        "CompressionType is Gzip)")
    assert no_pipe_thread_left(name)


def test_a_libsvm_channel_inheriting_pipe_is_refused_by_xgboost_as_its_container_does(aws: LocalClients) -> None:
    """The channel has no InputMode: it is Pipe, as the job is, and XGBoost reads no LibSVM in Pipe mode."""
    uri = aws.put_data(f"pipelibsvm/{unique_name('d')}", body=b"1 1:0.5 2:0.25\n0 1:0.1 2:0.75\n")
    name = unique_name("pipelibsvm")
    request = aws.training_request(name, channels={"train": uri}, hyperparameters={"num_round": "2"})
    request["AlgorithmSpecification"]["TrainingInputMode"] = "Pipe"
    channel = request["InputDataConfig"][0]
    del channel["InputMode"]
    channel["ContentType"] = "text/libsvm"
    aws.sagemaker.create_training_job(**request)
    job = wait(aws, name)
    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"].startswith("ClientError: Channel configuration for 'train' channel is not supported")
    assert "'TrainingInputMode': 'Pipe'" in job["FailureReason"]
