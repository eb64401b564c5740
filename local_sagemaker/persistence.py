"""The local S3 kept on disk, so that a model outlives the local SageMaker that made it.

moto keeps S3 in memory: without this, the `s3://` model URI `run` prints leads nowhere once the command exits. An
`S3Mirror` keeps every object of the local S3 under `<data_dir>/s3/<bucket>/<key>` (written as objects appear or
change, removed when they are deleted) and loads them back into moto's S3 when a local SageMaker starts, so that the
same `s3://` URI works again in the next one. Bucket regions are kept in `<data_dir>/s3-buckets.json`.

Key segments that are not plain file names are percent-encoded (`%2F`-style; an empty segment, as in a key ending
with `/`, is `%00`), so a file always maps back to its key; common keys (`outputs/job/output/model.tar.gz`) map to
themselves. Objects are compared by identity (moto makes a new object for every write), never by reading them while
a request may, and each file is written whole and then renamed into place.

Only this module reaches into moto's S3 backend for persistence; the server is untouched: `mirrored(...)` loads after
the server started (a start resets moto's state) and syncs every `interval` seconds and once more at the end.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from moto.s3.exceptions import MissingBucket
from moto.s3.models import FakeKey, s3_backends
from moto.utilities.utils import get_partition

from local_sagemaker.settings import LOCAL_ACCOUNT_ID

log = logging.getLogger(__name__)

APP_NAME = "sagemaker-plugin"
BUCKETS_FILE = "s3-buckets.json"
_SAFE = " -_.~+=,@!()'&$;"  # kept as they are in file names; everything else is percent-encoded


def default_data_dir() -> Path:
    """`$XDG_DATA_HOME/sagemaker-plugin`, else `~/.local/share/sagemaker-plugin`."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base).expanduser() / APP_NAME


def _segment_name(segment: str) -> str:
    if segment == "":
        return "%00"
    if segment in (".", ".."):
        return segment.replace(".", "%2E")
    return quote(segment, safe=_SAFE)


def _segment_of(name: str) -> str:
    return "" if name == "%00" else unquote(name)


class S3Mirror:
    """The local S3's objects on disk under `<data_dir>/s3/`; `load()` once after the server starts, then `sync()`."""

    def __init__(self, data_dir: Path, account_id: str = LOCAL_ACCOUNT_ID) -> None:
        self.data_dir = data_dir
        self.root = data_dir / "s3"
        self.account_id = account_id
        self._lock = threading.Lock()
        self._written: dict[tuple[str, str], FakeKey] = {}  # what the files hold: moto's object at the last write
        self._failed: dict[tuple[str, str], FakeKey] = {}  # objects that could not be kept: said once, not retried
        self._regions: dict[str, str] = {}

    def path_of(self, bucket: str, key: str) -> Path:
        """The file that holds `s3://bucket/key`."""
        return self.root.joinpath(_segment_name(bucket), *(_segment_name(part) for part in key.split("/")))

    def _backends(self) -> Iterator[Any]:
        yield from list(s3_backends[self.account_id].values())

    def load(self) -> int:
        """Puts every object kept on disk into moto's S3 (buckets created in their regions); how many were loaded."""
        with self._lock:
            regions = self._read_regions()
            loaded = 0
            if not self.root.is_dir():
                return 0
            for bucket_dir in sorted(p for p in self.root.iterdir() if p.is_dir()):
                bucket = _segment_of(bucket_dir.name)
                region = regions.get(bucket, "us-east-1")
                backend = s3_backends[self.account_id][get_partition(region)]
                try:
                    backend.get_bucket(bucket)
                except MissingBucket:
                    backend.create_bucket(bucket, region)
                self._regions[bucket] = region
                for path in sorted(p for p in bucket_dir.rglob("*") if p.is_file() and not p.is_symlink()):
                    key = "/".join(_segment_of(part) for part in path.relative_to(bucket_dir).parts)
                    try:
                        self._written[(bucket, key)] = backend.put_object(bucket, key, path.read_bytes())
                    except OSError as error:
                        log.warning("local S3: cannot load %s: %s", path, error)
                        continue
                    loaded += 1
            return loaded

    def sync(self) -> int:
        """Writes the objects that are new or changed since the last sync, removes the deleted; how many changed."""
        with self._lock:
            current: dict[tuple[str, str], FakeKey] = {}
            for backend in self._backends():
                for name, bucket in list(backend.buckets.items()):
                    self._regions.setdefault(name, getattr(bucket, "region_name", "us-east-1"))
                    for key_name in list(bucket.keys.keys()):
                        key = bucket.keys.get(key_name)
                        if isinstance(key, FakeKey):
                            current[(name, key_name)] = key
            changed = 0
            for where, key in current.items():
                if self._written.get(where) is not key and self._failed.get(where) is not key:
                    changed += self._write(where, key)
            for where in [w for w in self._written if w not in current]:
                with contextlib.suppress(OSError):
                    self.path_of(*where).unlink()
                del self._written[where]
                changed += 1
            if changed:
                self._write_regions()
            return changed

    def _write(self, where: tuple[str, str], key: FakeKey) -> int:
        path = self.path_of(*where)
        try:
            data = key.value
            temporary = self.data_dir / "tmp" / f"{os.getpid()}-{threading.get_ident()}"
            temporary.parent.mkdir(parents=True, exist_ok=True)
            temporary.write_bytes(data)
            path.parent.mkdir(parents=True, exist_ok=True)
            os.replace(temporary, path)
        except (OSError, ValueError) as error:  # a file where a folder is needed (keys `a` and `a/b`), a closed object
            log.warning("local S3: cannot keep s3://%s/%s on disk: %s", *where, error)
            self._failed[where] = key
            return 0
        self._written[where] = key
        return 1

    def _read_regions(self) -> dict[str, str]:
        try:
            data = json.loads((self.data_dir / BUCKETS_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}

    def _write_regions(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        temporary = self.data_dir / f".{BUCKETS_FILE}.{os.getpid()}"
        temporary.write_text(json.dumps(self._regions, sort_keys=True, indent=1), encoding="utf-8")
        os.replace(temporary, self.data_dir / BUCKETS_FILE)


@contextlib.contextmanager
def mirrored(data_dir: Path, interval: float = 1.0) -> Iterator[S3Mirror]:
    """Inside: the local S3 (of a local SageMaker started just before) loaded from and kept in `data_dir`."""
    mirror = S3Mirror(data_dir)
    mirror.load()
    stop = threading.Event()

    def keep() -> None:
        while not stop.wait(interval):
            try:
                mirror.sync()
            except Exception as error:  # never kill the server over a disk problem; the final sync says it again
                log.warning("local S3: cannot sync to %s: %s", data_dir, error)

    thread = threading.Thread(target=keep, name="local-s3-mirror", daemon=True)
    thread.start()
    try:
        yield mirror
    finally:
        stop.set()
        thread.join(timeout=10)
        mirror.sync()
