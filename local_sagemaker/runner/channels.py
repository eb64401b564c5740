"""Data in and out of the hosts' folders: channels and checkpoints from the local S3, outputs back to it.

A channel's data is a list of units, resolved once at Downloading from its S3DataSource as SageMaker reads it:
S3Prefix, every object under the prefix in key order; ManifestFile, the objects the manifest names (its `prefix`
plus each suffix) in its order; AugmentedManifestFile, one unit per JSON line, the line's AttributeNames in their
order (a `-ref` attribute is the object its S3 URI names, any other the attribute's text). ShuffleConfig shuffles
the units with its Seed (for Pipe channels again at every epoch); ShardedByS3Key deals them round-robin to the
hosts. A File channel's objects are downloaded into `/opt/ml/input/data/<channel>/` (the key's path below the
prefix kept); a Pipe channel streams its units through FIFOs (pipes.py).

moto's backends are not thread-safe: every read or write of the local S3 here holds `lock` (the server's), and only
for the moment it takes; files are written outside it.
"""

from __future__ import annotations

import json
import os
import random
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from local_sagemaker import storage
from local_sagemaker.runner.hostdirs import HostDirs, input_mode

T = TypeVar("T")
PIPE = "Pipe"


class ChannelError(Exception):
    """A channel that cannot be delivered; the message is the job's FailureReason."""


@dataclass(frozen=True)
class Where:
    """The job's account and region in the local S3, and the lock that guards moto."""

    account_id: str
    region: str
    lock: threading.Lock

    def read(self, bucket: str, key: str) -> bytes:
        """One object's bytes (KeyError when it is gone)."""
        with self.lock:
            return storage.get_object(self.account_id, self.region, bucket, key)

    def exists(self, bucket: str, key: str) -> bool:
        with self.lock:
            try:
                return storage.object_size(self.account_id, self.region, bucket, key) >= 0
            except KeyError:
                return False


@dataclass(frozen=True)
class ObjectRef:
    """An object of the local S3, and the path below the channel's folder it is downloaded to in File mode."""

    bucket: str
    key: str
    relative: str

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


#: One part of a unit: an object, or bytes given in the manifest itself (an augmented manifest's attribute).
Part = ObjectRef | bytes


@dataclass(frozen=True)
class Source:
    """A channel's data as SageMaker delivers it: its units, and how they are dealt, wrapped and decompressed."""

    name: str
    mode: str  # File or Pipe
    units: tuple[tuple[Part, ...], ...]
    sharded: bool = False
    seed: int | None = None
    record_io: bool = False
    gzip: bool = False

    def share(self, hosts: int, index: int, epoch: int = 0) -> list[tuple[Part, ...]]:
        """Host `index`'s (1-based) units for `epoch`: shuffled with the seed and the epoch, then its shard."""
        units = list(self.units)
        if self.seed is not None:
            random.Random(f"{self.seed}/{epoch}").shuffle(units)
        return shard(units, hosts, index) if self.sharded else units


def shard(keys: Sequence[T], hosts: int, index: int) -> list[T]:
    """Host `index`'s (1-based) share of `keys` under ShardedByS3Key: every `hosts`-th key from its own offset."""
    return [key for position, key in enumerate(keys) if position % hosts == index - 1]


def _relative(key: str, prefix: str) -> str:
    rest = key[len(prefix) :] if key.startswith(prefix) else key.rsplit("/", 1)[-1]
    rest = rest.lstrip("/") or key.rsplit("/", 1)[-1]
    parts = [part for part in rest.split("/") if part not in ("", ".", "..")]
    return "/".join(parts) or "object"


def resolve(where: Where, channel: Mapping[str, Any], job_mode: str | None, missing_reason: str) -> Source:
    """The channel's units, or ChannelError naming what the local runner cannot deliver."""
    name = str(channel.get("ChannelName", ""))
    source = (channel.get("DataSource") or {}).get("S3DataSource")
    if not isinstance(source, Mapping):
        raise ChannelError(f"ClientError: channel {name}: only S3 data sources run locally")
    mode = input_mode(channel, job_mode)
    kind = source.get("S3DataType", "S3Prefix")
    uri = str(source.get("S3Uri", ""))
    parsed = storage.parse_s3_uri(uri)
    if parsed is None:
        raise ChannelError(f"ClientError: channel {name}: {uri} is not an s3:// URI")
    if kind == "S3Prefix":
        with where.lock:
            keys = storage.list_objects(where.account_id, where.region, uri)
        if not keys:
            raise ChannelError(missing_reason)
        units: list[tuple[Part, ...]] = [(ObjectRef(parsed[0], key, _relative(key, parsed[1])),) for key in keys]
    elif kind == "ManifestFile":
        units = [(ref,) for ref in _manifest(where, name, parsed, uri)]
    elif kind == "AugmentedManifestFile":
        if mode != PIPE:
            raise ChannelError(f"ClientError: channel {name}: S3DataType AugmentedManifestFile is supported only for "
                               "channels using Pipe input mode")
        units = _augmented_manifest(where, name, parsed, uri, source.get("AttributeNames"))
    else:
        raise ChannelError(f"ClientError: channel {name}: S3DataType {kind} is not supported by the local runner; "
                           "use S3Prefix, ManifestFile or AugmentedManifestFile")
    shuffle = channel.get("ShuffleConfig") or {}
    seed = shuffle.get("Seed")
    return Source(
        name=name,
        mode=mode,
        units=tuple(units),
        sharded=source.get("S3DataDistributionType") == "ShardedByS3Key",
        seed=int(seed) if isinstance(seed, int) else None,
        record_io=channel.get("RecordWrapperType") == "RecordIO",
        gzip=channel.get("CompressionType") == "Gzip",
    )


def _read_manifest(where: Where, name: str, parsed: tuple[str, str], uri: str) -> bytes:
    try:
        return where.read(*parsed)
    except KeyError:
        raise ChannelError(f"ClientError: channel {name}: the manifest {uri} does not exist") from None


def _manifest(where: Where, name: str, parsed: tuple[str, str], uri: str) -> list[ObjectRef]:
    """A manifest: a JSON array, `{"prefix": "s3://bucket/prefix/"}` first, then keys relative to that prefix."""
    problem = (f"ClientError: channel {name}: the manifest {uri} is not a JSON array of a "
               '{"prefix": "s3://..."} object followed by relative keys')
    try:
        entries = json.loads(_read_manifest(where, name, parsed, uri))
    except ValueError:
        raise ChannelError(problem) from None
    if not (isinstance(entries, list) and entries and isinstance(entries[0], Mapping)
            and all(isinstance(entry, str) for entry in entries[1:])):
        raise ChannelError(problem)
    prefix = storage.parse_s3_uri(str(entries[0].get("prefix", "")))
    if prefix is None:
        raise ChannelError(problem)
    refs = [ObjectRef(prefix[0], prefix[1] + suffix, _relative(prefix[1] + suffix, prefix[1]))
            for suffix in entries[1:]]
    if not refs:
        raise ChannelError(f"ClientError: channel {name}: the manifest {uri} names no object")
    for ref in refs:
        if not where.exists(ref.bucket, ref.key):
            raise ChannelError(f"ClientError: channel {name}: {ref.uri}, named in the manifest {uri}, does not exist")
    return refs


def _augmented_manifest(where: Where, name: str, parsed: tuple[str, str], uri: str,
                        attributes: Any) -> list[tuple[Part, ...]]:
    """JSON lines; per line, each of AttributeNames in order: `-ref` ones the object they name, others their text."""
    if not (isinstance(attributes, list) and attributes and all(isinstance(a, str) for a in attributes)):
        raise ChannelError(f"ClientError: channel {name}: S3DataType AugmentedManifestFile needs AttributeNames")
    units: list[tuple[Part, ...]] = []
    text = _read_manifest(where, name, parsed, uri).decode("utf-8", errors="replace")
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if not isinstance(record, Mapping):
            raise ChannelError(f"ClientError: channel {name}: line {number} of the augmented manifest {uri} is not "
                               "a JSON object")
        parts: list[Part] = []
        for attribute in attributes:
            if attribute not in record:
                raise ChannelError(f"ClientError: channel {name}: line {number} of the augmented manifest {uri} has "
                                   f"no attribute {attribute}")
            value = record[attribute]
            if attribute.endswith("-ref"):
                target = storage.parse_s3_uri(value) if isinstance(value, str) else None
                if target is None or not where.exists(*target):
                    raise ChannelError(f"ClientError: channel {name}: line {number} of the augmented manifest {uri}: "
                                       f"{attribute} {value!r} is not an existing s3:// object")
                parts.append(ObjectRef(target[0], target[1], _relative(target[1], "")))
            else:
                parts.append(value.encode() if isinstance(value, str) else
                             json.dumps(value, separators=(",", ":")).encode())
        units.append(tuple(parts))
    if not units:
        raise ChannelError(f"ClientError: channel {name}: the augmented manifest {uri} has no line")
    return units


def download_channel(where: Where, source: Source, hosts: Sequence[HostDirs]) -> int:
    """Writes a File channel's objects into each host's folder; returns the number of objects read."""
    wanted: dict[ObjectRef, list[HostDirs]] = {}
    for host in hosts:
        for unit in source.share(len(hosts), host.index):
            for part in unit:
                if isinstance(part, ObjectRef):
                    wanted.setdefault(part, []).append(host)
    for ref, receivers in wanted.items():
        try:
            body = where.read(ref.bucket, ref.key)
        except KeyError:
            continue  # deleted since the listing
        for host in receivers:
            target = host.channel_dir(source.name) / ref.relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(body)
    for host in hosts:
        host.channel_dir(source.name).mkdir(parents=True, exist_ok=True)
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
