"""The data folder's database: SQLite (the standard library's), one file, every write a transaction.

WAL journal with `synchronous=NORMAL`: a process killed at any instant leaves the last committed transaction (a power
loss may lose the last few, never the file's consistency). Several processes may open it at once: SQLite lets one
write at a time (others wait, up to `BUSY_SECONDS`) and readers never wait for a writer.

Tables: `servers` (the live local SageMakers and when each was last seen), `training_jobs` and `tuning_jobs` (one
row per job: its request, its state as the job's `state()` gives it, its tags, the owner that runs it; the name is
unique per account and region, which is what makes a name taken for good, across servers too), `log_streams`,
`log_events` (their rowid is the order events were stored in) and `metric_points` (one row per value a job
published). Every change to a job row takes a new `version` from `counter`, so that a reader can ask for what changed
since the last version it saw; events and points are only appended, so their rowids serve the same purpose. Only a
job's owner writes its status and state; any server may write its tags and `stop` (a request to its owner), and
then becomes the row's `writer`, which the owner reads back.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DATABASE = "local-sagemaker.sqlite3"
#: The files SQLite keeps beside the database in WAL mode.
COMPANIONS = ("-wal", "-shm", "-journal")
SCHEMA_VERSION = 1
BUSY_SECONDS = 30.0
KINDS = {"training": "training_jobs", "tuning": "tuning_jobs"}
#: Statuses of a job (of either kind) that its server still moves.
RUNNING = ("InProgress", "Stopping")

_SCHEMA = """
CREATE TABLE servers (owner TEXT PRIMARY KEY, pid INTEGER NOT NULL, url TEXT NOT NULL, started_ms INTEGER NOT NULL,
                      seen_ms INTEGER NOT NULL);
CREATE TABLE counter (id INTEGER PRIMARY KEY CHECK (id = 0), version INTEGER NOT NULL);
INSERT INTO counter VALUES (0, 0);
CREATE TABLE log_streams (id INTEGER PRIMARY KEY, account TEXT NOT NULL, region TEXT NOT NULL, grp TEXT NOT NULL,
                          name TEXT NOT NULL, owner TEXT NOT NULL, creation_us INTEGER NOT NULL,
                          UNIQUE (account, region, grp, name));
CREATE TABLE log_events (id INTEGER PRIMARY KEY, stream INTEGER NOT NULL, timestamp_ms INTEGER NOT NULL,
                         ingestion_ms INTEGER NOT NULL, message TEXT NOT NULL);
CREATE TABLE metric_points (id INTEGER PRIMARY KEY, job INTEGER NOT NULL, name TEXT NOT NULL, host INTEGER NOT NULL,
                            timestamp_ms INTEGER NOT NULL, value REAL NOT NULL);
""" + "".join(f"""
CREATE TABLE {table} (id INTEGER PRIMARY KEY, account TEXT NOT NULL, region TEXT NOT NULL, name TEXT NOT NULL,
                      owner TEXT NOT NULL, writer TEXT NOT NULL, version INTEGER NOT NULL, status TEXT NOT NULL,
                      request TEXT NOT NULL, state TEXT NOT NULL, tags TEXT NOT NULL, stop INTEGER NOT NULL DEFAULT 0,
                      UNIQUE (account, region, name));
CREATE INDEX {table}_version ON {table} (version);
CREATE INDEX {table}_status ON {table} (status);
""" for table in KINDS.values())

JobKey = tuple[str, str, str, str]  # kind, account, region, name
StreamKey = tuple[str, str, str, str]  # account, region, log group, stream


class StoreError(Exception):
    """The database cannot be used (another program's file, a newer schema, a disk error): the message says which."""


@dataclass(frozen=True)
class JobRow:
    kind: str
    id: int
    account: str
    region: str
    name: str
    owner: str
    writer: str
    status: str
    request: dict[str, Any]
    state: dict[str, Any]
    tags: list[dict[str, str]]
    stop: bool = False  # another server asked the owner to stop it

    @property
    def key(self) -> JobKey:
        return (self.kind, self.account, self.region, self.name)


@dataclass(frozen=True)
class Server:
    owner: str
    pid: int
    url: str
    started_ms: int
    seen_ms: int


@dataclass(frozen=True)
class Event:
    stream: StreamKey
    timestamp_ms: int
    ingestion_ms: int
    message: str


@dataclass(frozen=True)
class Point:
    account: str
    region: str
    job: str
    name: str
    host: int
    timestamp_ms: int
    value: float


@dataclass(frozen=True)
class Cursor:
    """How far a reader has read: the last job version, stream, event and metric point it saw."""

    version: int = 0
    stream: int = 0
    event: int = 0
    point: int = 0


@dataclass
class Changes:
    """What others wrote after a cursor, oldest first, and the cursor after it."""

    jobs: list[JobRow]
    streams: list[tuple[StreamKey, int]]  # with their creation time, epoch microseconds
    events: list[Event]
    points: list[Point]
    cursor: Cursor


@dataclass
class Batch:
    """What one server's writer commits at once: job states (the latest per job), tags, streams, events, points."""

    states: dict[JobKey, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    tags: dict[JobKey, list[dict[str, str]]] = field(default_factory=dict)
    streams: dict[StreamKey, int] = field(default_factory=dict)  # creation time, epoch microseconds
    events: list[Event] = field(default_factory=list)
    points: list[tuple[int, str, int, int, float]] = field(default_factory=list)  # job row id, name, host, ms, value

    def __bool__(self) -> bool:
        return bool(self.states or self.tags or self.streams or self.events or self.points)


@dataclass(frozen=True)
class Recovery:
    """What recovering one gone owner's running jobs writes: each job's new status and state, and events."""

    states: dict[JobKey, tuple[str, dict[str, Any]]]
    events: list[Event]


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


class Database:
    """One connection to the data folder's database, safe to share between threads (it serializes them)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stream_ids: dict[StreamKey, int] = {}
        try:
            self._db = sqlite3.connect(path, timeout=BUSY_SECONDS, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            with self.transaction() as db:
                found = int(db.execute("PRAGMA user_version").fetchone()[0])
                if found == 0 and not db.execute("SELECT 1 FROM sqlite_master").fetchone():
                    for statement in _SCHEMA.split(";\n"):  # one by one: executescript would COMMIT first
                        if statement.strip():
                            db.execute(statement)
                    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                elif found != SCHEMA_VERSION:
                    raise StoreError(f"{path} holds records of another version ({found}, this one reads "
                                     f"{SCHEMA_VERSION}): clear it with `sagemaker-plugin local reset`")
        except sqlite3.Error as error:
            raise StoreError(f"cannot use the local SageMaker's records in {path}: {error}") from None

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def transaction(self, write: bool = True) -> Iterator[sqlite3.Connection]:
        """BEGIN (IMMEDIATE when writing: the write lock at once, so it never has to be upgraded) ... COMMIT."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def data_version(self) -> int:
        """Changes when another connection commits (SQLite's `PRAGMA data_version`)."""
        with self._lock:
            return int(self._db.execute("PRAGMA data_version").fetchone()[0])

    # ----- servers ------------------------------------------------------------------------------------------------

    def register(self, server: Server) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO servers VALUES (?, ?, ?, ?, ?)",
                       (server.owner, server.pid, server.url, server.started_ms, server.seen_ms))

    def unregister(self, owner: str) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM servers WHERE owner = ?", (owner,))

    def servers(self) -> dict[str, Server]:
        with self.transaction(write=False) as db:
            rows = db.execute("SELECT owner, pid, url, started_ms, seen_ms FROM servers").fetchall()
        return {row[0]: Server(*row) for row in rows}

    def running_owners(self) -> set[str]:
        """Owners of jobs still InProgress or Stopping (whether or not their server has a row)."""
        marks = ",".join("?" * len(RUNNING))
        with self.transaction(write=False) as db:
            return {owner for table in KINDS.values() for (owner,) in
                    db.execute(f"SELECT DISTINCT owner FROM {table} WHERE status IN ({marks})", RUNNING)}

    # ----- jobs ---------------------------------------------------------------------------------------------------

    def claim(self, kind: str, account: str, region: str, owner: str, request: Mapping[str, Any],
              state: Mapping[str, Any], tags: Sequence[Mapping[str, str]]) -> int | None:
        """Inserts a new job's row; its row id, or None if the name is taken (for good, by any server)."""
        name = str(request[_NAME_MEMBER[kind]])
        try:
            with self.transaction() as db:
                version = _next_version(db)
                cursor = db.execute(
                    f"INSERT INTO {KINDS[kind]} (account, region, name, owner, writer, version, status, request, state,"
                    " tags) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (account, region, name, owner, owner, version, str(state["status"]), _dumps(request),
                     _dumps(state), _dumps(list(tags))))
        except sqlite3.IntegrityError:
            return None
        return int(cursor.lastrowid or 0)

    def request_stop(self, key: JobKey, writer: str) -> None:
        """Asks the owner of a job to stop it (it reads this with the changes of others)."""
        kind, account, region, name = key
        with self.transaction() as db:
            db.execute(f"UPDATE {KINDS[kind]} SET stop = 1, writer = ?, version = ? WHERE account = ? AND region = ? "
                       "AND name = ?", (writer, _next_version(db), account, region, name))

    def write(self, batch: Batch, owner: str, seen_ms: int) -> None:
        """One transaction: the batch, and the owner's sign of life."""
        with self.transaction() as db:
            version = _next_version(db) if batch.states or batch.tags else 0
            for (kind, account, region, name), (status, state) in batch.states.items():
                db.execute(f"UPDATE {KINDS[kind]} SET status = ?, state = ?, version = ? WHERE account = ? AND "
                           "region = ? AND name = ? AND owner = ?",
                           (status, _dumps(state), version, account, region, name, owner))
            for (kind, account, region, name), tags in batch.tags.items():
                db.execute(f"UPDATE {KINDS[kind]} SET tags = ?, writer = ?, version = ? WHERE account = ? AND "
                           "region = ? AND name = ?", (_dumps(tags), owner, version, account, region, name))
            for stream, creation_us in batch.streams.items():
                db.execute("INSERT OR IGNORE INTO log_streams (account, region, grp, name, owner, creation_us) "
                           "VALUES (?, ?, ?, ?, ?, ?)", (*stream, owner, creation_us))
            self._append(db, batch.events, owner)
            db.executemany("INSERT INTO metric_points (job, name, host, timestamp_ms, value) VALUES (?, ?, ?, ?, ?)",
                           batch.points)
            db.execute("UPDATE servers SET seen_ms = ? WHERE owner = ?", (seen_ms, owner))

    def _append(self, db: sqlite3.Connection, events: Iterable[Event], owner: str) -> None:
        rows = []
        for event in events:
            stream = self._stream_ids.get(event.stream)
            if stream is None:
                db.execute("INSERT OR IGNORE INTO log_streams (account, region, grp, name, owner, creation_us) "
                           "VALUES (?, ?, ?, ?, ?, ?)", (*event.stream, owner, event.timestamp_ms * 1000))
                found = db.execute("SELECT id FROM log_streams WHERE account = ? AND region = ? AND grp = ? AND "
                                   "name = ?", event.stream).fetchone()
                stream = self._stream_ids[event.stream] = int(found[0])
            rows.append((stream, event.timestamp_ms, event.ingestion_ms, event.message))
        db.executemany("INSERT INTO log_events (stream, timestamp_ms, ingestion_ms, message) VALUES (?, ?, ?, ?)",
                       rows)

    # ----- reading ------------------------------------------------------------------------------------------------

    def changes(self, owner: str, after: Cursor) -> Changes:
        """Everything others wrote after `after`, in one consistent snapshot: jobs of other owners (and this owner's
        jobs whose tags another server changed), their streams, events and metric points."""
        with self.transaction(write=False) as db:
            cursor = Cursor(*(int(db.execute(query).fetchone()[0]) for query in (
                "SELECT version FROM counter", "SELECT coalesce(max(id), 0) FROM log_streams",
                "SELECT coalesce(max(id), 0) FROM log_events", "SELECT coalesce(max(id), 0) FROM metric_points")))
            jobs = _job_rows(db, "version > ? AND version <= ? AND (owner != ? OR writer != ?) ORDER BY version",
                             (after.version, cursor.version, owner, owner))
            streams = [((row[0], row[1], row[2], row[3]), int(row[4])) for row in db.execute(
                "SELECT account, region, grp, name, creation_us FROM log_streams WHERE id > ? AND id <= ? AND "
                "owner != ? ORDER BY id", (after.stream, cursor.stream, owner))]
            events = [Event((row[0], row[1], row[2], row[3]), row[4], row[5], row[6]) for row in db.execute(
                "SELECT s.account, s.region, s.grp, s.name, e.timestamp_ms, e.ingestion_ms, e.message FROM log_events "
                "e JOIN log_streams s ON s.id = e.stream WHERE e.id > ? AND e.id <= ? AND s.owner != ? ORDER BY e.id",
                (after.event, cursor.event, owner))]
            points = [Point(*row) for row in db.execute(
                "SELECT j.account, j.region, j.name, p.name, p.host, p.timestamp_ms, p.value FROM metric_points p "
                "JOIN training_jobs j ON j.id = p.job WHERE p.id > ? AND p.id <= ? AND j.owner != ? ORDER BY p.id",
                (after.point, cursor.point, owner))]
        return Changes(jobs, streams, events, points, cursor)

    # ----- recovery -----------------------------------------------------------------------------------------------

    def recover(self, owner: str, fail: Callable[[Sequence[JobRow], Server | None], Recovery], writer: str) -> int:
        """Ends a gone owner's running jobs as `fail` says, in one transaction that also forgets the owner's server
        row (call it holding the owner's lock: folder.if_gone). How many jobs it ended."""
        marks = ",".join("?" * len(RUNNING))
        with self.transaction() as db:
            found = db.execute("SELECT owner, pid, url, started_ms, seen_ms FROM servers WHERE owner = ?",
                               (owner,)).fetchone()
            rows = _job_rows(db, f"owner = ? AND status IN ({marks}) ORDER BY id", (owner, *RUNNING))
            if rows:
                recovery = fail(rows, Server(*found) if found else None)
                version = _next_version(db)
                for (kind, account, region, name), (status, state) in recovery.states.items():
                    db.execute(f"UPDATE {KINDS[kind]} SET status = ?, state = ?, version = ? WHERE account = ? AND "
                               "region = ? AND name = ?", (status, _dumps(state), version, account, region, name))
                self._append(db, recovery.events, writer)
            db.execute("DELETE FROM servers WHERE owner = ?", (owner,))
        return len(rows)


def read_servers(path: Path) -> list[Server]:
    """The servers a database lists, read without writing anything (none if it cannot be read)."""
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=BUSY_SECONDS)
    except sqlite3.Error:
        return []
    try:
        return [Server(*row) for row in db.execute("SELECT owner, pid, url, started_ms, seen_ms FROM servers")]
    except sqlite3.Error:
        return []
    finally:
        db.close()


_NAME_MEMBER = {"training": "TrainingJobName", "tuning": "HyperParameterTuningJobName"}


def _job_rows(db: sqlite3.Connection, where: str, parameters: Sequence[Any]) -> list[JobRow]:
    """The rows of both kinds of job that match `where` (training jobs first)."""
    return [JobRow(kind, int(row[0]), str(row[1]), str(row[2]), str(row[3]), str(row[4]), str(row[5]), str(row[6]),
                   json.loads(row[7]), json.loads(row[8]), json.loads(row[9]), bool(row[10]))
            for kind, table in KINDS.items()
            for row in db.execute(f"SELECT id, account, region, name, owner, writer, status, request, state, tags, "
                                  f"stop FROM {table} WHERE {where}", parameters)]


def _next_version(db: sqlite3.Connection) -> int:
    db.execute("UPDATE counter SET version = version + 1")
    return int(db.execute("SELECT version FROM counter").fetchone()[0])
