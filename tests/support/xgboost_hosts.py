"""Host folders for local_sagemaker.xgboost, laid out as the local SageMaker lays them out, and the program run on them
in a subprocess, as the local SageMaker runs it."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_DATA = REPO / "examples" / "data"
REGRESSION = {"train": EXAMPLE_DATA / "train", "validation": EXAMPLE_DATA / "validation"}
CLASSIFICATION = {
    "train": EXAMPLE_DATA / "classification" / "train",
    "validation": EXAMPLE_DATA / "classification" / "validation",
}
ROUND = re.compile(r"^\[(\d+)\]((?:\t[\w:-]+-[\w@:-]+:-?[0-9.]+(?:e[-+]?\d+)?)+)$")


@dataclass(frozen=True)
class Channel:
    files: Sequence[Path]  # copied into input/data/<channel>/ (Pipe: streamed through the FIFO <channel>_0)
    content_type: str = "text/csv"
    mode: str = "File"
    distribution: str = "FullyReplicated"


def files_of(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file())


def csv_channels(folders: Mapping[str, Path] = REGRESSION) -> dict[str, Channel]:
    return {name: Channel(files_of(folder)) for name, folder in folders.items()}


def make_root(
    base: Path,
    hyperparameters: Mapping[str, str],
    channels: Mapping[str, Channel],
    host: str = "algo-1",
    hosts: Sequence[str] = ("algo-1",),
) -> Path:
    root = base / host
    config = root / "input" / "config"
    config.mkdir(parents=True)
    for folder in ("model", "output/data", "checkpoints"):
        (root / folder).mkdir(parents=True)
    (config / "hyperparameters.json").write_text(json.dumps(dict(hyperparameters)))
    resources = {"current_host": host, "hosts": list(hosts), "network_interface_name": "eth0"}
    (config / "resourceconfig.json").write_text(json.dumps(resources))
    data_config = {
        name: {"ContentType": c.content_type, "TrainingInputMode": c.mode, "S3DistributionType": c.distribution}
        for name, c in channels.items()
    }
    (config / "inputdataconfig.json").write_text(json.dumps(data_config))
    for name, channel in channels.items():
        folder = root / "input" / "data" / name
        if channel.mode == "Pipe":
            folder.parent.mkdir(parents=True, exist_ok=True)
            os.mkfifo(folder.with_name(f"{name}_0"))
            continue
        folder.mkdir(parents=True)
        for path in channel.files:
            shutil.copy(path, folder / path.name)
    return root


class PipeWriters:
    """Streams each Pipe channel's files into its FIFO from a thread, as the local SageMaker does (chunk by chunk);
    on leaving, a writer whose reader never came is let go, so no thread is left behind."""

    def __init__(self, root: Path, channels: Mapping[str, Channel], chunk: int = 4096) -> None:
        self.threads: list[threading.Thread] = []
        self.fifos: list[Path] = []
        self.errors: list[BaseException] = []
        for name, channel in channels.items():
            if channel.mode == "Pipe":
                fifo = root / "input" / "data" / f"{name}_0"
                self.fifos.append(fifo)
                self.threads.append(threading.Thread(target=self._write, args=(fifo, channel.files, chunk),
                                                     daemon=True))

    def _write(self, fifo: Path, files: Sequence[Path], chunk: int) -> None:
        try:
            with fifo.open("wb") as out:
                for path in files:
                    body = path.read_bytes()
                    for start in range(0, len(body), chunk):
                        out.write(body[start:start + chunk])
        except BrokenPipeError:
            pass  # the reader went away early (a job that failed): as SageMaker, the stream just ends
        except BaseException as error:  # said by the test
            self.errors.append(error)

    def __enter__(self) -> PipeWriters:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for fifo, thread in zip(self.fifos, self.threads, strict=True):
            deadline = time.monotonic() + 30
            while thread.is_alive() and time.monotonic() < deadline:
                # no reader came: one that opens and goes lets the writer's open return, and its writes fail
                os.close(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))
                thread.join(timeout=0.2)
            assert not thread.is_alive(), f"the writer of {fifo} is still running"


def host_env(port: int | None = None) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    if port is not None:
        env.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    return env


def command(root: Path, version: str) -> list[str]:
    return [sys.executable, "-m", "local_sagemaker.xgboost", "--root", str(root), "--version", version]


def run(root: Path, version: str = "1.7-1", timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command(root, version), capture_output=True, text=True, env=host_env(), timeout=timeout)


def start(root: Path, version: str, port: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        command(root, version),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=host_env(port),
        start_new_session=True,
    )


def rounds(stdout: str) -> list[tuple[int, dict[str, float]]]:
    """The round lines, each as (round, {"validation-rmse": value, ...}); every line must be in the format."""
    found = []
    for line in stdout.splitlines():
        if not re.match(r"^\[\d+\]\t", line):  # not e.g. xgboost's own "[08:31:53] Task 0 got rank 0"
            continue
        match = ROUND.match(line)
        assert match, f"not a round line in the container's format: {line!r}"
        values = dict(part.rsplit(":", 1) for part in match.group(2).split("\t")[1:])
        found.append((int(match.group(1)), {name: float(value) for name, value in values.items()}))
    return found
