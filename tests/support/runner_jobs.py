"""Custom-image jobs of the local runner's tests: a script in a folder, its request, its end, its logs, its model."""

from __future__ import annotations

import gzip
import io
import tarfile
import textwrap
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from local_sagemaker.testing import CUSTOM_IMAGE, LocalClients


def script(folder: Path, body: str, name: str = "train.py") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


def create(aws: LocalClients, name: str, entrypoint: list[str] | None, **kwargs: Any) -> dict[str, Any]:
    request = aws.training_request(name, image=CUSTOM_IMAGE, **kwargs)
    if entrypoint is not None:
        request["AlgorithmSpecification"]["ContainerEntrypoint"] = entrypoint
    aws.sagemaker.create_training_job(**request)
    return request


def wait(aws: LocalClients, name: str, timeout: float = 60.0) -> dict[str, Any]:
    return aws.wait(name, timeout=timeout, interval=0.05)


def logs(aws: LocalClients, name: str) -> dict[str, list[str]]:
    """host name (algo-n) -> its lines."""
    return {stream.split("/")[1].rsplit("-", 1)[0]: lines for stream, lines in aws.log_messages(name).items()}


def model_files(aws: LocalClients, job: Mapping[str, Any]) -> dict[str, bytes]:
    uri = job["ModelArtifacts"]["S3ModelArtifacts"]
    bucket, key = uri[len("s3://"):].split("/", 1)
    body = aws.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(body))) as archive:
        return {m.name: archive.extractfile(m).read() for m in archive.getmembers() if m.isfile()}  # type: ignore[union-attr]


def wheel(package: str, value: int = 42) -> bytes:
    """The wheel of a one-module package `package` (VALUE = `value`), version 1.0, installable without an index."""
    info = f"{package}-1.0.dist-info"
    files = {f"{package}/__init__.py": f"VALUE = {value}\n",
             f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {package}\nVersion: 1.0\n",
             f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    files[f"{info}/RECORD"] = "".join(f"{name},,\n" for name in [*files, f"{info}/RECORD"])
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return raw.getvalue()
