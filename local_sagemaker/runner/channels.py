"""Data in and out of the hosts' folders: channels and checkpoints from the local S3, outputs back to it.

SageMaker downloads every object under a channel's S3 prefix into `/opt/ml/input/data/<channel>/` (the key's path
below the prefix kept); FullyReplicated gives every host all of them, ShardedByS3Key gives each host its share
(objects dealt round-robin in key order). Pipe channels are delivered as files too: the local runner has no FIFOs.

moto's backends are not thread-safe: every read or write of the local S3 here holds `lock` (the server's), and only
for the moment it takes; files are written outside it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local_sagemaker import storage
from local_sagemaker.runner.hostdirs import HostDirs


class ChannelError(Exception):
    """A channel that cannot be delivered; the message is the job's FailureReason."""


@dataclass(frozen=True)
class Where:
    """The job's account and region in the local S3, and the lock that guards moto."""

    account_id: str
    region: str
    lock: threading.Lock


def shard(keys: Sequence[str], hosts: int, index: int) -> list[str]:
    """Host `index`'s (1-based) share of `keys` under ShardedByS3Key: every `hosts`-th key from its own offset."""
    return [key for position, key in enumerate(keys) if position % hosts == index - 1]


def _relative(key: str, prefix: str) -> str:
    rest = key[len(prefix) :] if key.startswith(prefix) else key.rsplit("/", 1)[-1]
    rest = rest.lstrip("/") or key.rsplit("/", 1)[-1]
    parts = [part for part in rest.split("/") if part not in ("", ".", "..")]
    return "/".join(parts) or "object"


def download_channel(where: Where, channel: Mapping[str, Any], hosts: Sequence[HostDirs],
                     missing_reason: str) -> int:
    """Writes one channel's objects into each host's folder; returns the number of objects read."""
    name = str(channel.get("ChannelName", ""))
    source = (channel.get("DataSource") or {}).get("S3DataSource")
    if not isinstance(source, Mapping):
        raise ChannelError(f"ClientError: channel {name}: only S3 data sources run locally")
    kind = source.get("S3DataType", "S3Prefix")
    if kind != "S3Prefix":
        raise ChannelError(f"ClientError: channel {name}: S3DataType {kind} is not supported by the local runner; "
                           "use S3Prefix")
    uri = str(source.get("S3Uri", ""))
    parsed = storage.parse_s3_uri(uri)
    if parsed is None:
        raise ChannelError(f"ClientError: channel {name}: {uri} is not an s3:// URI")
    bucket, prefix = parsed
    with where.lock:
        keys = storage.list_objects(where.account_id, where.region, uri)
    if not keys:
        raise ChannelError(missing_reason)
    sharded = source.get("S3DataDistributionType") == "ShardedByS3Key"
    wanted: dict[str, list[HostDirs]] = {}
    for host in hosts:
        for key in shard(keys, len(hosts), host.index) if sharded else keys:
            wanted.setdefault(key, []).append(host)
    for key, receivers in wanted.items():
        with where.lock:
            try:
                body = storage.get_object(where.account_id, where.region, bucket, key)
            except KeyError:
                continue  # deleted since the listing
        for host in receivers:
            target = host.channel_dir(name) / _relative(key, prefix)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(body)
    for host in hosts:
        host.channel_dir(name).mkdir(parents=True, exist_ok=True)
    return len(wanted)


def checkpoint_uri(request: Mapping[str, Any]) -> str | None:
    config = request.get("CheckpointConfig") or {}
    uri = config.get("S3Uri")
    return str(uri) if uri else None


def download_checkpoints(where: Where, uri: str, hosts: Sequence[HostDirs]) -> int:
    """Every object under the checkpoint URI into each host's checkpoints/ (a resumed spot job starts from them)."""
    parsed = storage.parse_s3_uri(uri)
    if parsed is None:
        return 0
    bucket, prefix = parsed
    with where.lock:
        keys = storage.list_objects(where.account_id, where.region, uri) or []
    for key in keys:
        with where.lock:
            try:
                body = storage.get_object(where.account_id, where.region, bucket, key)
            except KeyError:
                continue
        for host in hosts:
            target = host.checkpoint_dir / _relative(key, prefix)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(body)
    return len(keys)


def upload_folder(where: Where, folder: Path, uri: str, seen: dict[Path, int] | None = None) -> int:
    """Every file of `folder` to the S3 prefix `uri` (paths kept); returns the number of files put.

    With `seen` (path -> modification time of the copy already put), only new and changed files are put: the
    periodic sync of checkpoints during Training."""
    count = 0
    base = uri.rstrip("/")
    for parent, _dirs, names in os.walk(folder):
        for name in sorted(names):
            path = Path(parent) / name
            # SageMaker's sync skips files being written under this suffix (the algorithms' temporary files)
            if not path.is_file() or path.is_symlink() or name.endswith(".sagemaker-ignore"):
                continue
            try:
                modified = path.stat().st_mtime_ns
                if seen is not None and seen.get(path) == modified:
                    continue
                body = path.read_bytes()
            except FileNotFoundError:  # removed meanwhile, e.g. an old checkpoint the algorithm let go
                continue
            if seen is not None:
                seen[path] = modified
            with where.lock:
                storage.put_object(where.account_id, where.region, f"{base}/{path.relative_to(folder).as_posix()}",
                                   body)
            count += 1
    return count
