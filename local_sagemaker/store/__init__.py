"""The local SageMaker's records in its data folder: what survives a restart besides the local S3.

A local SageMaker started with a data folder (`LocalSageMaker(data_dir=...)`; the plugin's own use config's
`local.data_dir`) keeps its training jobs, tuning jobs, their CloudWatch log events and their metric series in an
SQLite database there (`local-sagemaker.sqlite3`, database.py), written through as they change (records.py), and loads
them back at its next start, so that Describe, List, logs and metrics answer as before and a job name is taken for
good (ResourceInUse, as on AWS). The local S3 beside it is persistence.py's.

Two local SageMakers on one data folder at once (two `sagemaker-plugin run` in two terminals, each with its own
embedded one; many servers in a test run) share it rather than refuse each other:

- SQLite is the one writer of the folder's records: transactions, a WAL journal, one writer at a time across
  processes. No process writes the records any other way, so two servers can never corrupt them; a process killed
  mid-write leaves the last committed transaction.
- Each server has an owner id, held alive by an exclusive `flock` on its own lock file (`servers/<owner>.lock`,
  folder.py), and runs only the jobs it created. The database's unique (account, region, name) decides a create for
  every server at once, so a name is taken for good across them too.
- Each server shows the others' jobs, logs and metrics from the records (synced at most every few hundred
  milliseconds, and at once when a request names a job it does not know yet), so that Describe, List and the logs of
  a job another server runs answer anywhere and a create that meets ResourceInUse can adopt the job it found. Only
  the owner moves a job: a stop sent to another server is written to the records, where the owner reads it.
- A job whose owner is gone (its lock is free: the kernel drops a dead process's locks) is ended by whichever server
  notices first, at its start or every few seconds: Failed, with a reason that says its local SageMaker stopped and
  when it was last seen. A server that stops cleanly ends its own running jobs the same way.
- `reset` (`sagemaker-plugin local reset`) deletes what the folder keeps only while no server holds the folder's
  shared lock, and no server can start while it runs.
"""

from __future__ import annotations

from pathlib import Path

from local_sagemaker.store import folder
from local_sagemaker.store.database import COMPANIONS, DATABASE, StoreError, read_servers
from local_sagemaker.store.folder import FolderInUse, in_use
from local_sagemaker.store.records import Records

__all__ = ["DATABASE", "FolderInUse", "Records", "StoreError", "check_unused", "clear", "in_use", "kept_entries"]


def kept_entries(data_dir: Path) -> list[Path]:
    """What a data folder keeps, of what exists now: the local S3 (persistence.py's files) and the records. The
    folder's own lock file stays (a server about to start may hold it open)."""
    from local_sagemaker.persistence import LEGACY_BUCKETS_FILE, S3Mirror

    names = [data_dir / (DATABASE + suffix) for suffix in ("", *COMPANIONS)]
    names += [data_dir / folder.SERVERS, S3Mirror(data_dir).root, data_dir / LEGACY_BUCKETS_FILE,
              data_dir / "tmp"]  # where S3Mirror writes a file before renaming it into place
    return [path for path in names if path.exists() or path.is_symlink()]


def clear(data_dir: Path) -> list[Path]:
    """Deletes what the data folder keeps, while no local SageMaker uses it (FolderInUse otherwise, naming them);
    what it deleted."""
    check_unused(data_dir)
    try:
        return folder.clear(data_dir, kept_entries(data_dir))
    except FolderInUse:
        check_unused(data_dir)  # one started meanwhile: name it
        raise


def check_unused(data_dir: Path) -> None:
    """FolderInUse, naming the local SageMakers (process, URL) that use the folder, if any does."""
    if not in_use(data_dir):
        return
    servers = [f"process {server.pid} at {server.url}" for server in read_servers(data_dir / DATABASE)]
    raise FolderInUse(f"a local SageMaker is using the data folder {data_dir}"
                      + (f" ({'; '.join(sorted(servers))})" if servers else ""))
