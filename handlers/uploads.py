"""Copying a task's local inputs to S3 (the local backend's S3) before the create.

Only what the task names is read: a folder's files, recursively, with symbolic links skipped so that nothing outside
the named folder is followed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from handlers.client import SageMakerClient
from handlers.errors import InputError, NotFound


def split_s3_uri(uri: str) -> tuple[str, str]:
    rest = uri.split("://", 1)[1]
    bucket, _, key = rest.partition("/")
    return bucket, key


def iter_files(source: Path) -> Iterator[tuple[Path, str]]:
    """(file, key relative to the source) for a file or every regular file in a folder, links not followed."""
    if source.is_symlink():
        raise InputError(f"{source} is a symbolic link; name the file or folder itself")
    if source.is_file():
        yield source, source.name
        return
    for folder, dirs, names in os.walk(source, followlinks=False):
        dirs.sort()
        for name in sorted(names):
            path = Path(folder) / name
            if path.is_file() and not path.is_symlink():
                yield path, path.relative_to(source).as_posix()


def upload(client: SageMakerClient, source: str, destination: str) -> int:
    """Upload a local file or folder under the S3 prefix `destination`; returns the number of files."""
    bucket, prefix = split_s3_uri(destination)
    files = list(iter_files(Path(source)))
    if not files:
        raise InputError(f"local input {source} holds no files")
    ensure_bucket(client, bucket)
    for path, relative in files:
        client.call("s3", "PutObject", Bucket=bucket, Key=prefix.rstrip("/") + "/" + relative, Body=path.read_bytes())
    return len(files)


def ensure_bucket(client: SageMakerClient, bucket: str) -> None:
    try:
        client.call("s3", "HeadBucket", Bucket=bucket)
    except NotFound:
        params: dict[str, object] = {"Bucket": bucket}
        if client.region != "us-east-1":
            params["CreateBucketConfiguration"] = {"LocationConstraint": client.region}
        client.call("s3", "CreateBucket", **params)
