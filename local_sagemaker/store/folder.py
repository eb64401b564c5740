"""Who uses a data folder: a shared lock every live local SageMaker holds on the folder, and an exclusive one of its
own (its owner id) that says its jobs still have a server; `reset` clears the folder while nobody uses it.

Locks are `flock(2)` locks on files in the folder: the kernel drops them when their process dies, however it dies, so
a lock that can be taken is a server that is gone. They are per open file, so two servers in one process are two
owners too. The files are opened close-on-exec: a job's processes never inherit them.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

#: Held shared by every live local SageMaker on the folder, exclusively by `reset`.
FOLDER_LOCK = "local-sagemaker.lock"
#: `<owner>.lock` for each live server, held exclusively for its life.
SERVERS = "servers"
#: How long a starting server waits while a `reset` clears the folder.
WAIT_SECONDS = 10.0


class FolderInUse(Exception):
    """The folder is in use by a live local SageMaker (for `reset`), or being reset (for a server's start)."""


@dataclass
class Lease:
    """A live server's hold on a data folder: the folder lock (shared) and its owner lock (exclusive)."""

    data_dir: Path
    owner: str
    _folder: int
    _mine: int

    def release(self) -> None:
        """The server is gone: its owner lock file removed, both locks dropped."""
        with contextlib.suppress(OSError):
            owner_path(self.data_dir, self.owner).unlink()
        for descriptor in (self._mine, self._folder):
            with contextlib.suppress(OSError):
                os.close(descriptor)


def owner_path(data_dir: Path, owner: str) -> Path:
    return data_dir / SERVERS / f"{owner}.lock"


def _open(path: Path) -> int:
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)


def _try_lock(descriptor: int, kind: int) -> bool:
    try:
        fcntl.flock(descriptor, kind | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def lease(data_dir: Path, wait_seconds: float = WAIT_SECONDS) -> Lease:
    """A new owner's hold on `data_dir` (made if missing); FolderInUse if a reset holds it longer than the wait."""
    data_dir.mkdir(parents=True, exist_ok=True)
    folder = _open(data_dir / FOLDER_LOCK)
    deadline = time.monotonic() + wait_seconds
    while not _try_lock(folder, fcntl.LOCK_SH):
        if time.monotonic() > deadline:
            os.close(folder)
            raise FolderInUse(f"the data folder {data_dir} is being cleared (`sagemaker-plugin local reset`)")
        time.sleep(0.05)
    owner = uuid.uuid4().hex[:16]
    try:
        (data_dir / SERVERS).mkdir(exist_ok=True)
        # locked under another name, then renamed: nobody ever sees this owner's lock file unlocked (and free)
        making = data_dir / SERVERS / f"{owner}.new"
        mine = _open(making)
        fcntl.flock(mine, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.replace(making, owner_path(data_dir, owner))
    except OSError:
        os.close(folder)
        raise
    return Lease(data_dir, owner, folder, mine)


def owners(data_dir: Path) -> set[str]:
    """The owners that have a lock file (live, or gone without removing it)."""
    try:
        return {path.stem for path in (data_dir / SERVERS).glob("*.lock")}
    except OSError:
        return set()


@contextlib.contextmanager
def if_gone(data_dir: Path, owner: str) -> Iterator[bool]:
    """Inside: True (holding its lock, so that no one else recovers it at the same time) if `owner`'s server is
    gone, False while it lives. Its lock file is removed when a gone owner's block ends without an error."""
    path = owner_path(data_dir, owner)
    try:
        descriptor = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        yield True  # never made, or removed by whoever recovered it: nothing holds it
        return
    try:
        gone = _try_lock(descriptor, fcntl.LOCK_EX)
        yield gone
        if gone:
            with contextlib.suppress(OSError):
                path.unlink()
    finally:
        os.close(descriptor)


def in_use(data_dir: Path) -> bool:
    """Whether a live local SageMaker holds the folder."""
    path = data_dir / FOLDER_LOCK
    if not path.exists():
        return False
    descriptor = _open(path)
    try:
        return not _try_lock(descriptor, fcntl.LOCK_EX)
    finally:
        os.close(descriptor)


def clear(data_dir: Path, entries: Iterable[Path]) -> list[Path]:
    """Deletes `entries` (files or folders inside `data_dir`) while no local SageMaker uses the folder, which none can
    start meanwhile; returns those that existed. FolderInUse while one lives."""
    if not data_dir.is_dir():
        return []
    descriptor = _open(data_dir / FOLDER_LOCK)
    try:
        if not _try_lock(descriptor, fcntl.LOCK_EX):
            raise FolderInUse(f"a local SageMaker is using the data folder {data_dir}")
        removed = []
        for entry in entries:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            elif entry.exists() or entry.is_symlink():
                entry.unlink()
            else:
                continue
            removed.append(entry)
        return removed
    finally:
        os.close(descriptor)
