"""Pipe mode for real: a Pipe channel reaches each host as FIFOs `input/data/<channel>_<epoch>`, as on SageMaker.

Each test runs a small script as a custom image's ContainerEntrypoint; what it read is checked from outside (its
log lines), and so is what the job leaves behind (no writer thread, no process).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import textwrap

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


def test_a_script_that_never_opens_its_fifo_still_completes_and_leaves_nothing(aws: LocalClients,
                                                                                 tmp_path: Path) -> None:
    uri = put(aws, f"pipenever/{unique_name('d')}", OBJECTS)
    path = script(tmp_path, "print('not reading', flush=True)\n")
    name = unique_name("pipenever")
    pipe_job(aws, name, ["python", str(path)], {"train": uri, "validation": uri})
    job = wait(aws, name)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert no_pipe_thread_left(name)


def test_stopping_a_job_while_it_streams_ends_the_writer_and_the_script(aws: LocalClients, tmp_path: Path) -> None:
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
    pipe_job(aws, name, ["python", str(path)], {"train": uri})
    aws.wait(name, until=lambda job: "read 1000000" in logs(aws, name).get("algo-1", []), timeout=60, interval=0.1)
    assert pipe_threads(name), "no writer while the script reads"
    aws.sagemaker.stop_training_job(TrainingJobName=name)
    job = wait(aws, name)
    assert job["TrainingJobStatus"] == "Stopped"
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
    assert f"read train_0 {digest(b''.join(OBJECTS[k] for k in sorted(OBJECTS)))}" in lines
    assert "validation 4,5,6" in lines and "validation fifo False" in lines


def _json_lines(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(row) + "\n" for row in rows).encode()
