"""Which file keeps which object of the local S3: one file per (bucket, key), never two keys at one file.

S3 keys are any string of up to 1024 bytes (`a//b`, `a/./b`, `k/p` beside `k/p/q`, `k/t` beside `k/t/`, NUL, `%`),
file names are not: a folder per slash cannot hold both `k/p` and `k/p/q`, a name has at most 255 bytes, and macOS
does not tell `A` from `a`. So the mapping is kept, not computed: an SQLite index (standard library, crash-safe,
one writer at a time) maps the exact bucket and key to a file under the mirror's root, with the object's metadata.

A file's name is chosen once, when its key first appears: `<bucket>/<key>` as it is when every part is a plain name
and no other file stands in the way (so `outputs/job/output/model.tar.gz` is easy to find), else an opaque
`.objects/<2 hex>/<sha256 of bucket and key>`. `folded` (the lower-cased path) is unique, so two files never differ
by case only, and a readable path is taken only where no other file is its folder or lies in it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from local_sagemaker.store.database import StoreError

INDEX_FILE = ".index.sqlite3"
OBJECTS_DIR = ".objects"  # opaque files; no readable path reaches it (a readable bucket starts with [a-z0-9])
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{0,62}")
_SEGMENT = re.compile(r"[A-Za-z0-9_.~+=,@-]{1,200}")  # ASCII only: one byte a character, the same name everywhere
_READABLE_KEY_BYTES = 400  # with the data folder in front, well within macOS' 1024-byte path limit

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS buckets (bucket BLOB PRIMARY KEY, region TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS objects (
    bucket BLOB NOT NULL,
    key BLOB NOT NULL,
    path TEXT NOT NULL,
    folded TEXT NOT NULL UNIQUE,
    md5 TEXT NOT NULL,
    etag TEXT NOT NULL,
    metadata TEXT NOT NULL,
    modified TEXT NOT NULL,
    PRIMARY KEY (bucket, key)
) WITHOUT ROWID;
"""


def _raw(text: str) -> bytes:
    """A bucket or key as the exact bytes the index keeps (any Python string, NUL and lone surrogates included)."""
    return text.encode("utf-8", "surrogatepass")


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogatepass")


def readable_path(bucket: str, key: str) -> str | None:
    """`bucket/key` when every part is a plain file name, else None."""
    if not _BUCKET.fullmatch(bucket) or len(key) > _READABLE_KEY_BYTES:
        return None
    parts = key.split("/")
    if any(part in (".", "..") or not _SEGMENT.fullmatch(part) for part in parts):
        return None
    return "/".join((bucket, *parts))


def opaque_path(bucket: str, key: str, attempt: int = 0) -> str:
    """A file name for any bucket and key (`attempt` > 0 only if another key's hash were the same)."""
    raw = _raw(bucket)
    digest = hashlib.sha256(b"%d:" % len(raw) + raw + _raw(key)).hexdigest()
    return f"{OBJECTS_DIR}/{digest[:2]}/{digest}" + (f"-{attempt}" if attempt else "")


@dataclass(frozen=True)
class Kept:
    """One object as the index keeps it: where its bytes are, and what S3 says about them."""

    bucket: str
    key: str
    path: str  # relative to the mirror's root, `/`-separated
    md5: str  # of the file's bytes: a file replaced without its row (a crash in between) is told apart
    etag: str
    metadata: dict[str, str] = field(default_factory=dict)  # Content-Type, x-amz-meta-*, ... as moto keeps them
    modified: str = ""  # LastModified, ISO 8601


class Index:
    """The SQLite index of one mirror root. Not thread-safe: its owner (S3Mirror) holds a lock around it."""

    def __init__(self, file: Path, *, read_only: bool = False) -> None:
        if read_only:  # a reader asks whether another process keeps an index here: sqlite3's errors say no
            self._db = sqlite3.connect(f"{file.as_uri()}?mode=ro", uri=True, isolation_level=None,
                                       check_same_thread=False)
            return
        try:
            self._db = sqlite3.connect(file, isolation_level=None, check_same_thread=False, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # WAL: a commit survives a crash of the process
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as error:  # damaged or foreign: said as the data folder's problem, never a traceback
            raise StoreError(f"cannot use the local S3's index {file}: {error} (move the file away, or clear the "
                             "data folder with `sagemaker-plugin local reset`)") from None

    def close(self) -> None:
        self._db.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """All or nothing; the write lock is taken at once, so a choice of file made inside holds at the commit."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def meta(self, name: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return str(row[0]) if row else None

    def set_meta(self, name: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)", (name, value))

    def buckets(self) -> dict[str, str]:
        return {_text(bucket): str(region) for bucket, region in self._db.execute("SELECT bucket, region FROM buckets")}

    def set_bucket(self, bucket: str, region: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO buckets (bucket, region) VALUES (?, ?)", (_raw(bucket), region))

    def forget_bucket(self, bucket: str) -> None:
        self._db.execute("DELETE FROM buckets WHERE bucket = ?", (_raw(bucket),))

    def objects(self) -> Iterator[Kept]:
        for row in self._db.execute("SELECT bucket, key, path, md5, etag, metadata, modified FROM objects "
                                    "ORDER BY bucket, key").fetchall():
            yield Kept(_text(row[0]), _text(row[1]), row[2], row[3], row[4], json.loads(row[5]), row[6])

    def paths(self) -> set[str]:
        return {str(path) for (path,) in self._db.execute("SELECT path FROM objects")}

    def path_of(self, bucket: str, key: str) -> str | None:
        row = self._db.execute("SELECT path FROM objects WHERE bucket = ? AND key = ?",
                               (_raw(bucket), _raw(key))).fetchone()
        return str(row[0]) if row else None

    def file_of(self, bucket: str, key: str) -> str:
        """The file that holds this key, else the one it would get now."""
        return self.path_of(bucket, key) or self.choose(bucket, key)

    def free(self, path: str) -> bool:
        """No file at `path` (whatever the case), none where `path` needs a folder, none inside `path`."""
        folded = path.lower()
        parts = folded.split("/")
        taken = [folded, *("/".join(parts[:end]) for end in range(1, len(parts)))]
        marks = ",".join("?" * len(taken))
        # `/` is followed by `0` in code point order: the range is everything inside the folder `path`
        return not self._db.execute(f"SELECT 1 FROM objects WHERE folded IN ({marks}) "
                                    "OR (folded >= ? AND folded < ?) LIMIT 1",
                                    (*taken, folded + "/", folded + "0")).fetchone()

    def choose(self, bucket: str, key: str, *, readable: bool = True) -> str:
        """The file a new key gets: its readable path if it has one and it is free, else an opaque one."""
        path = readable_path(bucket, key) if readable else None
        if path is not None and self.free(path):
            return path
        attempt = 0
        while not self.free(opaque := opaque_path(bucket, key, attempt)):
            attempt += 1
        return opaque

    def put(self, kept: Kept) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO objects (bucket, key, path, folded, md5, etag, metadata, modified) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (_raw(kept.bucket), _raw(kept.key), kept.path, kept.path.lower(), kept.md5, kept.etag,
             json.dumps(kept.metadata, sort_keys=True, default=str), kept.modified))

    def forget(self, where: Iterable[tuple[str, str]]) -> list[str]:
        """Drops these objects' rows; the files they named (to delete once the drop is committed)."""
        paths = []
        for bucket, key in where:
            path = self.path_of(bucket, key)
            if path is not None:
                self._db.execute("DELETE FROM objects WHERE bucket = ? AND key = ?", (_raw(bucket), _raw(key)))
                paths.append(path)
        return paths
