"""The local S3 kept on disk, so that a model outlives the local SageMaker that made it.

moto keeps S3 in memory: without this, the `s3://` model URI `run` prints leads nowhere once the command exits. An
`S3Mirror` keeps every object of the local S3 in a file of its own under `<data_dir>/s3/` (written as objects appear
or change, removed when they are deleted) and loads them back into moto's S3 when a local SageMaker starts, so that
the same `s3://` URI works again in the next one. Which file holds which key, with the object's content type, user
metadata, ETag and LastModified, and the buckets' regions, is kept in an SQLite index (local_sagemaker/s3_index.py):
every key S3 accepts gets a file of its own, `<bucket>/<key>` itself when it is a plain path
(`outputs/job/output/model.tar.gz`).

Crash-safe: a file is written whole and then renamed into place; the index rows of a sync are committed after those
renames, the rows of deleted objects before their files go. A crash therefore leaves at worst a file no row names
(ignored; private ones are swept at a later load) or a file replaced while its row was not (its md5 differs: loaded
as it is and written again at the next sync), never a row without its file nor two keys at one file. Objects are
compared by identity (moto makes a new object for every write), never by reading them while a request may.

A data folder of the earlier layout (`s3/<bucket>/<percent-encoded key>`, regions in `s3-buckets.json`) is taken
over at its first load: its files stay where they are and get rows.

Only this module reaches into moto's S3 backend for persistence; the server is untouched: `mirrored(...)` loads after
the server started (a start resets moto's state) and syncs every `interval` seconds and once more at the end.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import logging
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from moto.s3.exceptions import MissingBucket
from moto.s3.models import FakeKey, s3_backends
from moto.utilities.utils import get_partition

from handlers.local import LOCAL_ACCOUNT_ID
from local_sagemaker.s3_index import INDEX_FILE, OBJECTS_DIR, Index, Kept, opaque_path, readable_path

log = logging.getLogger(__name__)

APP_NAME = "sagemaker-plugin"
LEGACY_BUCKETS_FILE = "s3-buckets.json"  # the earlier layout's bucket regions
LAYOUT = "2"  # the index's `layout` once a data folder is in this layout
TEMPORARY_DIR = ".tmp"
ORPHAN_SECONDS = 3600.0  # a private file no row names is swept once this old (younger: another sync's, uncommitted)
BATCH_OBJECTS = 1000  # a sync commits every so many objects or bytes: a crash in a long first sync loses little
BATCH_BYTES = 256 << 20
_MD5 = re.compile(r"[0-9a-f]{32}")


def default_data_dir() -> Path:
    """`$XDG_DATA_HOME/sagemaker-plugin`, else `~/.local/share/sagemaker-plugin`."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base).expanduser() / APP_NAME


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _md5_of(data: bytes, etag: str) -> str:
    """moto's ETag of a single-part object is its md5 (hashed once already); a multipart one's (`...-3`) is not."""
    plain = etag.strip('"')
    return plain if _MD5.fullmatch(plain) else _md5(data)


def _uri(bucket: str, key: str) -> str:
    """An object's URI for a message: control characters shown escaped, a long key cut short."""
    text = repr(f"s3://{bucket}/{key}")[1:-1]
    return text if len(text) <= 200 else text[:200] + "..."


def _legacy_segment(name: str) -> str:
    """A bucket or key part as the earlier layout named it on disk (`%00`: an empty part)."""
    return "" if name == "%00" else unquote(name)


class S3Mirror:
    """The local S3's objects on disk under `<data_dir>/s3/`; `load()` once after the server starts, then `sync()`."""

    def __init__(self, data_dir: Path, account_id: str = LOCAL_ACCOUNT_ID) -> None:
        self.data_dir = data_dir
        self.root = data_dir / "s3"
        self.account_id = account_id
        self._lock = threading.Lock()
        self._index: Index | None = None  # opened by the first load or sync that needs it
        self._written: dict[tuple[str, str], FakeKey] = {}  # what the files hold: moto's object at the last write
        self._failed: dict[tuple[str, str], FakeKey] = {}  # objects that could not be kept: said once, not retried
        self._regions: dict[str, str] = {}  # the buckets the index has, as this mirror last saw them
        self._root = str(self.root)
        self._folders: set[str] = set()  # folders made since the last removal: a sync of many objects makes each once

    def path_of(self, bucket: str, key: str) -> Path:
        """The file that holds `s3://bucket/key`; for a key not kept yet, the file it would get now."""
        with self._lock:
            if self._index is not None:
                return self.root / self._index.file_of(bucket, key)
        index = None
        try:  # another process may be keeping this folder: its index, read only
            index = Index(self.root / INDEX_FILE, read_only=True)
            return self.root / index.file_of(bucket, key)
        except sqlite3.Error:  # no index yet (nothing kept, or the earlier layout): where a first write would go
            return self.root / (readable_path(bucket, key) or opaque_path(bucket, key))
        finally:
            if index is not None:
                index.close()

    def close(self) -> None:
        """Closes the index (a later load or sync opens it again)."""
        with self._lock:
            if self._index is not None:
                self._index.close()
                self._index = None

    def load(self) -> int:
        """Puts every object kept on disk into moto's S3 (buckets created in their regions); how many were loaded."""
        with self._lock:
            if not self.root.is_dir() and not (self.data_dir / LEGACY_BUCKETS_FILE).is_file():
                return 0
            index = self._opened()
            regions = index.buckets()
            for bucket, region in regions.items():
                self._bucket(bucket, region)
            loaded = 0
            missing = []
            for kept in index.objects():
                try:
                    data = (self.root / kept.path).read_bytes()
                except OSError as error:
                    log.warning("local S3: %s is lost: %s", _uri(kept.bucket, kept.key), error)
                    missing.append((kept.bucket, kept.key))
                    continue
                self._put(self._bucket(kept.bucket, regions.get(kept.bucket, "us-east-1")), kept, data)
                loaded += 1
            if missing:
                with index.transaction():
                    index.forget(missing)
            self._sweep(index)
            return loaded

    def _put(self, backend: Any, kept: Kept, data: bytes) -> None:
        intact = _md5(data) == kept.md5
        key = backend.put_object(kept.bucket, kept.key, data, etag=kept.etag.strip('"') if intact else None)
        key.set_metadata(dict(kept.metadata))
        with contextlib.suppress(ValueError):
            key.last_modified = datetime.datetime.fromisoformat(kept.modified)
        if intact:
            self._written[(kept.bucket, kept.key)] = key
        else:  # replaced on disk, its row not yet (a crash in between): the next sync writes the row again
            log.warning("local S3: %s was changed on disk without its index entry; loaded as it is",
                        _uri(kept.bucket, kept.key))

    def _bucket(self, bucket: str, region: str) -> Any:
        """moto's S3 backend that holds `bucket`, created in `region` unless it exists."""
        backend = s3_backends[self.account_id][get_partition(region)]
        try:
            backend.get_bucket(bucket)
        except MissingBucket:
            backend.create_bucket(bucket, region)
        self._regions[bucket] = region
        return backend

    def sync(self) -> int:
        """Writes the objects that are new or changed since the last sync, removes the deleted; how many changed."""
        with self._lock:
            current: dict[tuple[str, str], FakeKey] = {}
            regions: dict[str, str] = {}
            for backend in list(s3_backends[self.account_id].values()):
                for name, held in list(backend.buckets.items()):
                    regions[name] = getattr(held, "region_name", "us-east-1")
                    for key_name in list(held.keys.keys()):
                        key = held.keys.get(key_name)
                        if isinstance(key, FakeKey):
                            current[(name, key_name)] = key
            changes = [(where, key) for where, key in current.items()
                       if self._written.get(where) is not key and self._failed.get(where) is not key]
            gone = [where for where in self._written if where not in current]
            gone_buckets = [bucket for bucket in self._regions if bucket not in regions]
            new_buckets = {bucket: region for bucket, region in regions.items() if self._regions.get(bucket) != region}
            if not (changes or gone or gone_buckets or new_buckets):
                return 0
            index = self._opened()
            if gone or gone_buckets:
                self._forget(index, gone, gone_buckets)
            with index.transaction():
                for bucket, region in new_buckets.items():
                    index.set_bucket(bucket, region)
            self._regions.update(new_buckets)
            return len(gone) + sum(self._write(index, batch) for batch in _batches(changes))

    def _forget(self, index: Index, gone: list[tuple[str, str]], gone_buckets: list[str]) -> None:
        """Rows first, files once the rows are gone: a crash in between leaves files no row names."""
        with index.transaction():
            paths = index.forget(gone)
            for bucket in gone_buckets:
                index.forget_bucket(bucket)
        for where in gone:
            del self._written[where]
        for bucket in gone_buckets:
            del self._regions[bucket]
        for path in paths:
            self._remove(self.root / path)

    def _write(self, index: Index, batch: list[tuple[tuple[str, str], FakeKey]]) -> int:
        """One transaction: files renamed into place, then their rows committed."""
        written = {}
        with index.transaction():
            for where, key in batch:
                if self._store(index, where, key):
                    written[where] = key
        self._written.update(written)
        return len(written)

    def _store(self, index: Index, where: tuple[str, str], key: FakeKey) -> bool:
        bucket, name = where
        temporary: str | None = None
        try:
            data = key.value
            etag = key.etag
            kept = Kept(bucket, name, index.file_of(bucket, name), _md5_of(data, etag), etag, dict(key.metadata),
                        key.last_modified.isoformat())
            temporary = self._temporary(data)
            try:
                self._place(temporary, kept.path)
            except OSError:  # a readable path blocked by a file no row names (a crash's leftover): an opaque one
                if index.path_of(bucket, name) is not None or kept.path.startswith(OBJECTS_DIR + "/"):
                    raise
                kept = Kept(bucket, name, index.choose(bucket, name, readable=False), kept.md5, kept.etag,
                            kept.metadata, kept.modified)
                self._place(temporary, kept.path)
        except (OSError, ValueError) as error:  # a full disk, a closed object
            log.warning("local S3: cannot keep %s on disk: %s", _uri(bucket, name), error)
            self._failed[where] = key
            if temporary is not None:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)
            return False
        index.put(kept)
        return True

    def _temporary(self, data: bytes) -> str:
        """`data` in this mirror's temporary file (one at a time: the lock is held), written whole."""
        folder = self.root / TEMPORARY_DIR
        scratch = str(folder / f"{os.getpid()}-{id(self):x}")
        try:
            handle = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        except FileNotFoundError:  # the first write, or the folder was swept as empty
            folder.mkdir(parents=True, exist_ok=True)
            handle = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(handle, view):]
        finally:
            os.close(handle)
        return scratch

    def _place(self, temporary: str, path: str) -> None:
        target = os.path.join(self._root, path)
        folder = os.path.dirname(target)
        if folder not in self._folders:
            os.makedirs(folder, exist_ok=True)
            self._folders.add(folder)
        os.replace(temporary, target)

    def _remove(self, file: Path) -> None:
        """Deletes a file and the folders it leaves empty."""
        self._folders.clear()
        with contextlib.suppress(OSError):
            file.unlink()
        folder = file.parent
        while folder != self.root and folder.is_relative_to(self.root):
            try:
                folder.rmdir()
            except OSError:
                return
            folder = folder.parent

    def _sweep(self, index: Index) -> None:
        """Deletes private files no row names (a crash's leftovers), once old enough not to be a sync's in flight."""
        known = index.paths()
        cutoff = time.time() - ORPHAN_SECONDS
        for private in (OBJECTS_DIR, TEMPORARY_DIR):
            for file in list((self.root / private).rglob("*")):
                with contextlib.suppress(OSError):
                    if (file.relative_to(self.root).as_posix() not in known and not file.is_dir()
                            and file.lstat().st_mtime < cutoff):
                        self._remove(file)

    def _opened(self) -> Index:
        if self._index is None:
            self.root.mkdir(parents=True, exist_ok=True)
            index = Index(self.root / INDEX_FILE)
            try:
                self._take_over(index)
            except BaseException:
                index.close()
                raise
            self._index = index
        return self._index

    def _take_over(self, index: Index) -> None:
        """Gives the files of the earlier layout rows, once (the index's `layout` says it was done)."""
        relinked: list[Path] = []
        legacy = self.data_dir / LEGACY_BUCKETS_FILE
        with index.transaction():
            if index.meta("layout") is not None:
                return
            regions = _legacy_regions(legacy)
            for bucket, region in regions.items():
                index.set_bucket(bucket, region)
            taken = 0
            for folder in sorted(self.root.iterdir()):
                if folder.is_dir() and not folder.is_symlink() and folder.name not in (OBJECTS_DIR, TEMPORARY_DIR):
                    taken += self._take_over_bucket(index, folder, regions, relinked)
            index.set_meta("layout", LAYOUT)
        if taken or regions:
            log.info("local S3: %d objects of %s taken over into its index", taken, self.root)
        for file in relinked:  # committed: their rows name their new links
            self._remove(file)
        with contextlib.suppress(OSError):
            legacy.unlink()

    def _take_over_bucket(self, index: Index, folder: Path, regions: dict[str, str], relinked: list[Path]) -> int:
        bucket = _legacy_segment(folder.name)
        if bucket not in regions:
            index.set_bucket(bucket, "us-east-1")
        taken = 0
        for file in sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()):
            key = "/".join(_legacy_segment(part) for part in file.relative_to(folder).parts)
            path = file.relative_to(self.root).as_posix()
            if index.path_of(bucket, key) is not None:
                log.warning("local S3: %s is not taken over: %s has a file already", file, _uri(bucket, key))
                continue
            try:
                md5 = _file_md5(file)
                if not index.free(path):  # differs from another file by case only: a link of its own
                    path = index.choose(bucket, key, readable=False)
                    _link(file, self.root / path)
                    relinked.append(file)
                modified = datetime.datetime.fromtimestamp(file.stat().st_mtime, datetime.timezone.utc)
            except OSError as error:
                log.warning("local S3: %s is not taken over: %s", file, error)
                continue
            index.put(Kept(bucket, key, path, md5, f'"{md5}"', {}, modified.replace(tzinfo=None).isoformat()))
            taken += 1
        return taken


def _batches(changes: list[tuple[tuple[str, str], FakeKey]]) -> Iterator[list[tuple[tuple[str, str], FakeKey]]]:
    batch: list[tuple[tuple[str, str], FakeKey]] = []
    size = 0
    for change in changes:
        batch.append(change)
        size += change[1].size
        if len(batch) >= BATCH_OBJECTS or size >= BATCH_BYTES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _legacy_regions(file: Path) -> dict[str, str]:
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _file_md5(file: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with file.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _link(source: Path, target: Path) -> None:
    """`target` holds what `source` holds, `source` untouched (a hard link, else a copy)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        target.unlink()
    try:
        os.link(source, target)
    except OSError:
        temporary = target.with_name(target.name + ".copy")
        temporary.write_bytes(source.read_bytes())
        os.replace(temporary, target)


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
        try:
            mirror.sync()
        except (OSError, sqlite3.Error) as error:  # said, not raised: the command's own answer matters more
            log.warning("local S3: cannot sync to %s: %s", data_dir, error)
        finally:
            mirror.close()
