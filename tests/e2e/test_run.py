"""End to end, for real: `sagemaker-plugin run` on the examples with a local SageMaker that runs the training.

`sagemaker-plugin local serve` (its default `execution: run`) runs in a subprocess; the command line runs the
example tasks against it, exactly as a person would, with no AWS variable in sight. The scripts beside the examples
(examples/trainers/) train a linear model on examples/data: their own lines must appear in the output from every
host (and every MPI rank), the metrics must be the ones they print, and model.tar.gz in the local S3 must hold the
model they wrote, which is unpacked and loaded here.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from children import dies_with_test
from handlers.local_credentials import LocalCredentials
from local_sagemaker.testing import LocalClients

pytestmark = pytest.mark.timeout(240)

REPO = Path(__file__).resolve().parents[2]
SCRIPT = Path(sys.executable).parent / "sagemaker-plugin"
NOWHERE = "http://127.0.0.1:1"
#: The key pair of the server each examples folder's commands use (`local serve` prints it as export lines).
KEYS: dict[Path, LocalCredentials] = {}
#: y = 3*x1 - 2*x2 + 0.5*x3 + noise (examples/make_data.py)
TRUE_WEIGHTS = (3.0, -2.0, 0.5)


def env_for(tmp: Path, keys: LocalCredentials | None = None) -> dict[str, str]:
    """No AWS settings of this machine; the local S3 kept in the test's folder; the server's key pair if given."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("AWS_", "SAGEMAKER_PLUGIN_", "BOTO_"))}
    env.update(AWS_EC2_METADATA_DISABLED="true", AWS_CONFIG_FILE=str(tmp / "none"),
               AWS_SHARED_CREDENTIALS_FILE=str(tmp / "none"), AWS_ENDPOINT_URL=NOWHERE,
               XDG_DATA_HOME=str(tmp / ".local-data"))
    return {**env, **(keys.env() if keys else {})}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path, LocalClients]]:
    """(a copy of examples/, a client config naming the server, clients of the server)."""
    root = tmp_path_factory.mktemp("run")
    work = root / "examples"
    shutil.copytree(REPO / "examples", work, ignore=shutil.ignore_patterns("__pycache__"))
    (root / "server.yaml").write_text("backend: local\n", encoding="utf-8")  # execution: run, the default
    serve = subprocess.Popen([str(SCRIPT), "local", "serve", "--config", str(root / "server.yaml")],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=root,
                             env=env_for(root), preexec_fn=dies_with_test)
    try:
        assert serve.stdout is not None
        deadline = time.monotonic() + 60
        url, exports = "", {}
        # The URL, then the `export NAME=value` lines of the key pair it accepts; SAGEMAKER_PLUGIN_ENDPOINT_URL last.
        while "SAGEMAKER_PLUGIN_ENDPOINT_URL" not in exports:
            line = serve.stdout.readline().strip()
            assert line and time.monotonic() < deadline, "local serve never printed its URL and key pair"
            found = re.search(r"serving at (http://127\.0\.0\.1:\d+)$", line)
            url = found.group(1) if found else url
            if line.startswith("export "):
                name, _, value = line.removeprefix("export ").partition("=")
                exports[name] = value
        keys = LocalCredentials(exports["AWS_ACCESS_KEY_ID"], exports["AWS_SECRET_ACCESS_KEY"])
        KEYS[work] = keys
        config = root / "client.yaml"
        config.write_text(yaml.safe_dump({"backend": "local", "local": {"endpoint_url": url}}), encoding="utf-8")
        yield work, config, LocalClients(url, credentials=keys)
    finally:
        serve.send_signal(signal.SIGTERM)
        try:
            serve.wait(timeout=20)
        except subprocess.TimeoutExpired:
            serve.kill()
            serve.wait()


def run(work: Path, config: Path, task: str) -> tuple[dict[str, Any], str]:
    done = subprocess.run([str(SCRIPT), "run", task, "--json", "--config", str(config)], capture_output=True,
                          text=True, cwd=work, env=env_for(work, KEYS[work]), timeout=200)
    assert done.returncode == 0, done.stderr[-4000:]
    assert "Traceback" not in done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


def model(aws: LocalClients, uri: str) -> dict[str, Any]:
    bucket, key = uri[len("s3://"):].split("/", 1)
    body = aws.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(body))) as archive:
        member = archive.extractfile("model.json")
        assert member is not None
        loaded: dict[str, Any] = json.loads(member.read())
    return loaded


def test_the_native_example_trains_on_every_host(served: tuple[Path, Path, LocalClients]) -> None:
    work, config, aws = served
    body, stderr = run(work, config, "custom-native.yaml")
    assert (body["phase"], body["message"]) == ("SUCCEEDED", "Completed")
    for host in ("algo-1", "algo-2"):
        assert re.search(rf"^\[{host}\] {host} of 2 hosts: training on 200 of 400 rows$", stderr, re.MULTILINE)
        assert re.search(rf"^\[{host}\] {host} epoch 200/200 loss=[0-9.]+$", stderr, re.MULTILINE)
    assert "[algo-2] algo-2 sent its weights to algo-1" in stderr
    assert "[algo-1] algo-1 averaged the weights of 2 hosts" in stderr
    printed = re.findall(r"^\[algo-1\] algo-1 final loss=([0-9.]+)$", stderr, re.MULTILINE)
    assert body["outputs"]["metrics"] == {"train:loss": float(printed[-1])}
    trained = model(aws, body["outputs"]["model"])
    assert trained["loss"] == pytest.approx(float(printed[-1]), abs=1e-6)
    assert trained["weights"] == pytest.approx(TRUE_WEIGHTS, abs=0.1)
    assert trained["bias"] == pytest.approx(0.0, abs=0.1)


def test_the_mpi_example_runs_every_rank_under_mpirun(served: tuple[Path, Path, LocalClients]) -> None:
    work, config, aws = served
    body, stderr = run(work, config, "custom-mpi.yaml")
    assert (body["phase"], body["message"]) == ("SUCCEEDED", "Completed")
    ranks = sorted(re.findall(r"^\[algo-1\] \[1,(\d)\]<stdout>: rank \d of 2 on (algo-\d): 200 rows$", stderr,
                              re.MULTILINE))
    assert ranks == [("0", "algo-1"), ("1", "algo-2")], "one rank per host of ml.c5.xlarge, each on its own host"
    assert re.search(r"^\[algo-1\] local SageMaker: .*: mpirun -np 2 .*-m mpi4py mpi_linear\.py --epochs 200 "
                     r"--learning_rate 0\.1", stderr, re.MULTILINE)
    losses = re.findall(r"^\[algo-1\] \[1,0\]<stdout>: epoch \d+/200 loss=([0-9.]+)$", stderr, re.MULTILINE)
    assert len(losses) == 10
    assert body["outputs"]["metrics"] == {"train:loss": float(losses[-1])}
    trained = model(aws, body["outputs"]["model"])
    assert trained["ranks"] == 2
    assert trained["weights"] == pytest.approx(TRUE_WEIGHTS, abs=0.1)


def test_the_pipe_example_streams_every_epoch_through_a_fifo(served: tuple[Path, Path, LocalClients]) -> None:
    work, config, aws = served
    body, stderr = run(work, config, "custom-pipe.yaml")
    assert (body["phase"], body["message"]) == ("SUCCEEDED", "Completed")
    epochs = re.findall(r"^\[algo-1\] epoch (\d+)/20: (\d+) rows streamed from train_(\d+), loss=[0-9.]+$", stderr,
                        re.MULTILINE)
    assert epochs == [(str(n + 1), "400", str(n)) for n in range(20)], "every epoch a FIFO of its own, all rows"
    printed = re.findall(r"^\[algo-1\] final loss=([0-9.]+)$", stderr, re.MULTILINE)
    assert body["outputs"]["metrics"] == {"train:loss": float(printed[-1])}
    trained = model(aws, body["outputs"]["model"])
    assert trained["weights"] == pytest.approx(TRUE_WEIGHTS, abs=0.1)
