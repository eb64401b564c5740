"""The data folder's locks (local_sagemaker/store/folder.py) and its database's refusals (database.py)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from local_sagemaker.store import DATABASE, FolderInUse, StoreError, clear, folder, in_use
from local_sagemaker.store.database import Database

pytestmark = pytest.mark.timeout(60)


def test_an_owner_is_alive_while_it_holds_its_lease(tmp_path: Path) -> None:
    lease = folder.lease(tmp_path)
    assert folder.owners(tmp_path) == {lease.owner} and in_use(tmp_path)
    with folder.if_gone(tmp_path, lease.owner) as gone:
        assert not gone
    with pytest.raises(FolderInUse):
        clear(tmp_path)
    lease.release()
    assert folder.owners(tmp_path) == set() and not in_use(tmp_path)
    with folder.if_gone(tmp_path, lease.owner) as gone:
        assert gone


def test_an_owner_killed_outright_is_gone_and_its_lock_file_removed_once_recovered(tmp_path: Path) -> None:
    child = subprocess.Popen([sys.executable, "-c", "import sys, time; from pathlib import Path; "
                              "from local_sagemaker.store import folder; "
                              "print(folder.lease(Path(sys.argv[1])).owner, flush=True); time.sleep(600)",
                              str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        owner = child.stdout.readline().strip()
        with folder.if_gone(tmp_path, owner) as gone:
            assert not gone
        assert in_use(tmp_path)
    finally:
        child.kill()
        child.wait()
    assert not in_use(tmp_path)
    with folder.if_gone(tmp_path, owner) as gone:
        assert gone
    assert folder.owners(tmp_path) == set()


def test_clear_deletes_only_what_the_folder_keeps(tmp_path: Path) -> None:
    Database(tmp_path / DATABASE).close()
    (tmp_path / "s3" / "bucket").mkdir(parents=True)
    (tmp_path / "s3" / "bucket" / "key").write_bytes(b"x")
    (tmp_path / "mine.txt").write_text("not the local SageMaker's", encoding="utf-8")
    removed = clear(tmp_path)
    assert {path.name for path in removed} >= {DATABASE, "s3"}
    assert sorted(path.name for path in tmp_path.iterdir()) == [folder.FOLDER_LOCK, "mine.txt"]


def test_a_file_that_is_not_the_records_is_refused_with_what_to_do(tmp_path: Path) -> None:
    (tmp_path / DATABASE).write_bytes(b"certainly not an SQLite database" * 100)
    with pytest.raises(StoreError, match="cannot use the local SageMaker's records"):
        Database(tmp_path / DATABASE)
    other = tmp_path / "newer.sqlite3"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE t (x)")
        db.execute("PRAGMA user_version = 99")
    with pytest.raises(StoreError, match="local reset"):
        Database(other)
