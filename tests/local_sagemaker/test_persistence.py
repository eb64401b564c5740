"""The local S3 kept on disk (local_sagemaker/persistence.py): objects outlive the local SageMaker that held them,
every key S3 accepts under a file of its own."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto.s3.models import FakeKey, s3_backends

from local_sagemaker import LocalSageMaker
from local_sagemaker.persistence import LEGACY_BUCKETS_FILE, ORPHAN_SECONDS, S3Mirror, default_data_dir, mirrored
from local_sagemaker.s3_index import INDEX_FILE, OBJECTS_DIR
from local_sagemaker.testing import LocalClients

pytestmark = pytest.mark.timeout(240)

ACCOUNT = "000000000917"  # a test-only account of moto's in-process S3: the local SageMaker's own is left alone
REGION = "us-east-1"


class Moto:
    """moto's in-process S3 for ACCOUNT; `restart()` empties it, as a new local SageMaker starts empty."""

    def bucket(self, bucket: str, region: str = REGION) -> None:
        backend = s3_backends[ACCOUNT]["aws"]
        if bucket not in backend.buckets:
            backend.create_bucket(bucket, region)

    def put(self, bucket: str, key: str, body: bytes, region: str = REGION, **metadata: str) -> FakeKey:
        self.bucket(bucket, region)
        backend = s3_backends[ACCOUNT]["aws"]
        stored: FakeKey = backend.put_object(bucket, key, body)
        stored.set_metadata(dict(metadata))
        return stored

    def delete(self, bucket: str, key: str) -> None:
        s3_backends[ACCOUNT]["aws"].delete_object(bucket, key)

    def get(self, bucket: str, key: str) -> FakeKey | None:
        return s3_backends[ACCOUNT]["aws"].get_object(bucket, key)  # type: ignore[no-any-return]

    def listed(self, bucket: str) -> list[str]:
        """ListObjectsV2 of the whole bucket, page after page."""
        backend = s3_backends[ACCOUNT]["aws"]
        keys: list[str] = []
        token = None
        while True:
            page, truncated, token = backend.list_objects_v2(backend.get_bucket(bucket), None, None, token, None, 1000)
            keys += [item.name for item in page if isinstance(item, FakeKey)]
            if not truncated:
                return keys

    def buckets(self) -> dict[str, str]:
        return {name: bucket.region_name for name, bucket in s3_backends[ACCOUNT]["aws"].buckets.items()}

    def restart(self) -> None:
        backend = s3_backends[ACCOUNT]["aws"]
        for name, bucket in list(backend.buckets.items()):
            for key in list(bucket.keys.keys()):
                backend.delete_object(name, key)
            backend.delete_bucket(name)


@contextlib.contextmanager
def in_process() -> Iterator[Moto]:
    moto = Moto()
    moto.restart()
    try:
        yield moto
    finally:
        moto.restart()


def mirror_of(folder: Path) -> S3Mirror:
    return S3Mirror(folder, account_id=ACCOUNT)


def rows(folder: Path) -> list[tuple[bytes, bytes, str]]:
    """(bucket, key, path) of every object in the index, read with plain sqlite3."""
    with contextlib.closing(sqlite3.connect(folder / "s3" / INDEX_FILE)) as db:
        return list(db.execute("SELECT bucket, key, path FROM objects"))


# --- the file of a key ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["outputs/job/output/model.tar.gz", "a/b/", "../../etc/passwd", "100%/é ü/x?y#z",
                                 "./.hidden", "/leading", "a//b", "x" * 1024, "é" * 512])
def test_every_key_has_its_own_file_inside_the_mirror(key: str, tmp_path: Path) -> None:
    mirror = S3Mirror(tmp_path)
    path = mirror.path_of("bucket", key)
    assert path.resolve().is_relative_to((tmp_path / "s3").resolve())
    assert path != mirror.path_of("bucket", key + "x")
    assert all(len(part.encode()) <= 255 for part in path.parts)


def test_plain_keys_keep_their_names(tmp_path: Path) -> None:
    path = S3Mirror(tmp_path).path_of("sagemaker-plugin-local", "outputs/job-1/output/model.tar.gz")
    assert path == tmp_path / "s3" / "sagemaker-plugin-local" / "outputs" / "job-1" / "output" / "model.tar.gz"


def test_the_default_folder_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert default_data_dir() == tmp_path / "sagemaker-plugin"
    monkeypatch.delenv("XDG_DATA_HOME")
    assert default_data_dir() == Path.home() / ".local" / "share" / "sagemaker-plugin"


# --- through a real local SageMaker ---------------------------------------------------------------------------------

KEYS = {"outputs/job/output/model.tar.gz": b"\x1f\x8b model", "odd key/100%/é": b"odd", "folder/": b"",
        "data/train.csv": b"1,2,3\n"}


def test_objects_outlive_the_server_and_come_back_in_the_next(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with LocalSageMaker() as server, mirrored(data, interval=0.1) as mirror:
        s3 = LocalClients(server.url).s3
        s3.create_bucket(Bucket="models")
        s3.create_bucket(Bucket="europe", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        for key, body in KEYS.items():
            s3.put_object(Bucket="models", Key=key, Body=body)
        s3.put_object(Bucket="europe", Key="gone", Body=b"soon deleted")
        mirror.sync()
        assert (data / "s3" / "europe" / "gone").read_bytes() == b"soon deleted"
        s3.delete_object(Bucket="europe", Key="gone")
        s3.put_object(Bucket="models", Key="data/train.csv", Body=b"changed\n")
    assert mirror.path_of("models", "outputs/job/output/model.tar.gz").read_bytes() == b"\x1f\x8b model"
    assert not (data / "s3" / "europe" / "gone").exists()  # deleted in S3, deleted on disk

    with LocalSageMaker() as server, mirrored(data):  # a new server starts empty, then gets them back
        s3 = LocalClients(server.url).s3
        for key, body in {**KEYS, "data/train.csv": b"changed\n"}.items():
            assert s3.get_object(Bucket="models", Key=key)["Body"].read() == body, key
        assert s3.list_objects_v2(Bucket="europe").get("KeyCount") == 0
        assert s3.get_bucket_location(Bucket="europe")["LocationConstraint"] == "eu-west-1"


NAMED = ["nul/a//b", "nul/a/\x00/b", "a/b", "a//b", "a/./b", "a/../b", "k/p", "k/p/q", "k/trail", "k/trail/", "%",
         "%00", "100%/x", "\x00", "é/ü", "e\u0301/u\u0308", "Case/x", "case/x", "CASE/X", "/lead", "//", "x" * 1024,
         "é" * 512, "ab/" * 341 + "c"]


def test_keys_that_shared_a_file_each_come_back_with_their_own_bytes_and_metadata(tmp_path: Path) -> None:
    """The issue's case (`nul/a//b` and `nul/a/\\x00/b` were one file) and the other keys a folder per slash cannot
    hold, through a real restart: ListObjectsV2 gives exactly the keys, each object its bytes, content type, user
    metadata, ETag and LastModified."""
    written: dict[str, dict[str, Any]] = {}
    with LocalSageMaker() as server, mirrored(tmp_path, interval=60):
        s3 = LocalClients(server.url).s3
        s3.create_bucket(Bucket="keys")
        for index, key in enumerate(NAMED):
            s3.put_object(Bucket="keys", Key=key, Body=b"%d:" % index + key.encode(), ContentType=f"text/x-{index}",
                          Metadata={"index": str(index)})
            head = s3.head_object(Bucket="keys", Key=key)
            written[key] = {"ETag": head["ETag"], "LastModified": head["LastModified"]}
    with LocalSageMaker() as server, mirrored(tmp_path, interval=60):
        s3 = LocalClients(server.url).s3
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket="keys")
        assert sorted(item["Key"] for page in pages for item in page.get("Contents", [])) == sorted(NAMED)
        for index, key in enumerate(NAMED):
            got = s3.get_object(Bucket="keys", Key=key)
            assert got["Body"].read() == b"%d:" % index + key.encode(), repr(key)
            assert (got["ContentType"], got["Metadata"]) == (f"text/x-{index}", {"index": str(index)}), repr(key)
            assert {"ETag": got["ETag"], "LastModified": got["LastModified"]} == written[key], repr(key)
    paths = [path for _, _, path in rows(tmp_path)]
    assert len(paths) == len(set(paths)) == len(NAMED)


def test_a_multipart_objects_etag_is_the_same_after_a_restart(tmp_path: Path) -> None:
    """A multipart upload's ETag (`"<md5 of the parts' md5s>-2"`) is not the md5 of the bytes: kept as it was."""
    part = 5 << 20  # S3's smallest part but the last
    with LocalSageMaker() as server, mirrored(tmp_path, interval=60):
        s3 = LocalClients(server.url).s3
        s3.create_bucket(Bucket="parts")
        upload = s3.create_multipart_upload(Bucket="parts", Key="big/model.tar.gz", ContentType="application/x-tar")
        etags = [s3.upload_part(Bucket="parts", Key="big/model.tar.gz", UploadId=upload["UploadId"], PartNumber=n,
                                Body=bytes([n]) * (part if n == 1 else 10))["ETag"] for n in (1, 2)]
        done = s3.complete_multipart_upload(
            Bucket="parts", Key="big/model.tar.gz", UploadId=upload["UploadId"],
            MultipartUpload={"Parts": [{"ETag": etag, "PartNumber": n} for n, etag in enumerate(etags, 1)]})
        assert done["ETag"].endswith('-2"')
    with LocalSageMaker() as server, mirrored(tmp_path, interval=60):
        head = LocalClients(server.url).s3.head_object(Bucket="parts", Key="big/model.tar.gz")
        assert (head["ETag"], head["ContentType"], head["ContentLength"]) == (done["ETag"], "application/x-tar",
                                                                              part + 10)


def test_a_key_and_a_key_under_it_are_both_kept(tmp_path: Path) -> None:
    """S3 holds both `a` and `a/b` (and `c/` beside `c`); a folder cannot be a file too: both are kept all the same."""
    with LocalSageMaker() as server, mirrored(tmp_path, interval=60) as mirror:
        s3 = LocalClients(server.url).s3
        s3.create_bucket(Bucket="clash")
        for key in ("a", "a/b", "c/", "c"):
            s3.put_object(Bucket="clash", Key=key, Body=key.encode())
        assert mirror.sync() == 4
    assert (tmp_path / "s3" / "clash" / "a").read_bytes() == b"a"  # the first keeps its readable name
    with LocalSageMaker() as server, mirrored(tmp_path, interval=60):
        s3 = LocalClients(server.url).s3
        for key in ("a", "a/b", "c/", "c"):
            assert s3.get_object(Bucket="clash", Key=key)["Body"].read() == key.encode()


# --- every key S3 accepts, by hypothesis -----------------------------------------------------------------------------

SETTINGS = settings(max_examples=200, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
_SEGMENTS = ["", ".", "..", "...", "%", "%00", "%2F", "%2e", "%25", "\x00", "\x00\x00", "a", "A", "b", "k", "K", "p",
             "P", "q", "t", "é", "É", "e\u0301", "ü" * 100, "x" * 255, "y" * 300, "model.tar.gz", " ", "a b", "\\",
             "~", "-", ".hidden", OBJECTS_DIR, ".tmp", INDEX_FILE, "\n", "\u202e", "😀"]
SEGMENT = st.one_of(st.sampled_from(range(len(_SEGMENTS))).map(_SEGMENTS.__getitem__), st.text(max_size=6))


def _fit(key: str) -> str:
    """At most 1024 bytes, as S3 takes."""
    return key.encode()[:1024].decode(errors="ignore")


def _to_1024(key: str) -> str:
    return _fit(key + "/" + "z" * 1024)


VARIANTS: list[Callable[[str], str]] = [lambda k: k + "/", lambda k: k + "/q", lambda k: k + "//", str.swapcase,
                                        str.upper, str.lower, lambda k: k.rpartition("/")[0], lambda k: k + "\x00",
                                        _to_1024]


@st.composite
def key_sets(draw: st.DrawFn) -> list[str]:
    """Keys from odd segments and `/` runs, each with some of its prefix, case and length neighbours."""
    keys = draw(st.lists(st.lists(SEGMENT, min_size=1, max_size=6).map("/".join).filter(bool), min_size=1,
                         max_size=6))
    more = [variant(key) for key in keys for variant in draw(st.lists(st.sampled_from(VARIANTS), max_size=3))]
    return sorted({key for key in map(_fit, keys + more) if key})


@SETTINGS
@given(keys=key_sets(), data=st.data())
def test_every_key_comes_back_after_a_restart_byte_exact(keys: list[str], data: st.DataObject) -> None:
    buckets = ("prop-keys", "Prop_Keys")  # a readable bucket name and one that is not
    written = {(buckets[index % 2], key): b"%d:" % index + key.encode() for index, key in enumerate(keys)}
    gone = set(data.draw(st.lists(st.sampled_from(sorted(written)), max_size=3)))
    with tempfile.TemporaryDirectory() as folder, in_process() as moto:
        before = mirror_of(Path(folder))
        moto.bucket(buckets[1], "eu-west-1")
        for (bucket, key), body in written.items():
            moto.put(bucket, key, body, **{"Content-Type": f"text/x-{len(body)}", "x-amz-meta-key": key.encode().hex()})
        assert before.sync() == len(written)
        for where in gone:
            moto.delete(*where)
        assert before.sync() == len(gone)
        etags = {where: moto.get(*where).etag for where in written if where not in gone}  # type: ignore[union-attr]
        before.close()

        moto.restart()
        after = mirror_of(Path(folder))
        assert after.load() == len(etags)
        for (bucket, key), etag in etags.items():
            got = moto.get(bucket, key)
            assert got is not None and got.value == written[(bucket, key)], repr(key)
            assert got.metadata["content-type"] == f"text/x-{len(got.value)}"
            assert got.metadata["x-amz-meta-key"] == key.encode().hex()
            assert got.etag == etag
        for bucket in {bucket for bucket, _ in written}:
            assert sorted(moto.listed(bucket)) == sorted(k for b, k in etags if b == bucket)
        assert moto.buckets()[buckets[1]] == "eu-west-1"
        assert after.sync() == 0  # nothing written again
        files = {after.path_of(*where) for where in etags}
        assert len(files) == len(etags) and all(file.is_file() for file in files)
        after.close()


# --- crashes, leftovers, the earlier layout --------------------------------------------------------------------------


def test_a_file_replaced_without_its_row_is_loaded_as_it_is_and_kept_again(tmp_path: Path,
                                                                           caplog: pytest.LogCaptureFixture) -> None:
    """A crash between an overwrite's rename and its commit: the file has the new bytes, the row the old md5."""
    with in_process() as moto:
        moto.put("crash-bucket", "k", b"old", **{"Content-Type": "text/old"})
        mirror = mirror_of(tmp_path)
        mirror.sync()
        mirror.close()
        mirror.path_of("crash-bucket", "k").write_bytes(b"new bytes")
        moto.restart()
        mirror = mirror_of(tmp_path)
        with caplog.at_level(logging.WARNING, logger="local_sagemaker.persistence"):
            assert mirror.load() == 1
        got = moto.get("crash-bucket", "k")
        assert got is not None and got.value == b"new bytes"
        assert got.etag == f'"{hashlib.md5(b"new bytes").hexdigest()}"'  # not the old bytes' ETag
        assert "changed on disk without its index entry" in caplog.text
        assert mirror.sync() == 1  # its row is written again
        mirror.close()
        moto.restart()
        assert mirror_of(tmp_path).load() == 1
        assert moto.get("crash-bucket", "k").etag == got.etag  # type: ignore[union-attr]


def test_a_readable_path_taken_by_a_leftover_file_is_not_needed(tmp_path: Path) -> None:
    """A crash after a delete's commit leaves the file behind; a key that needs its place as a folder gets another."""
    with in_process() as moto:
        mirror = mirror_of(tmp_path)
        moto.put("left-bucket", "seed", b"seed")
        mirror.sync()
        leftover = tmp_path / "s3" / "left-bucket" / "k" / "p"
        leftover.parent.mkdir(parents=True)
        leftover.write_bytes(b"no row names me")
        moto.put("left-bucket", "k/p/q", b"under")
        assert mirror.sync() == 1
        assert mirror.path_of("left-bucket", "k/p/q").read_bytes() == b"under"
        mirror.close()
        moto.restart()
        assert mirror_of(tmp_path).load() == 2
        assert moto.get("left-bucket", "k/p/q").value == b"under"  # type: ignore[union-attr]


def test_private_leftovers_are_swept_once_old(tmp_path: Path) -> None:
    with in_process() as moto:
        moto.put("sweep-bucket", "keep me", b"kept")  # an opaque name (a space)
        mirror = mirror_of(tmp_path)
        mirror.sync()
        mirror.close()
        kept = mirror.path_of("sweep-bucket", "keep me")
        assert kept.relative_to(tmp_path / "s3").parts[0] == OBJECTS_DIR
        old, young = kept.with_name("0" * 64), kept.with_name("1" * 64)
        scratch = tmp_path / "s3" / ".tmp" / "123-abc"
        for file in (old, young, scratch):
            file.write_bytes(b"leftover")
        an_hour_ago = time.time() - ORPHAN_SECONDS - 60
        for file in (old, scratch):
            os.utime(file, (an_hour_ago, an_hour_ago))
        moto.restart()
        mirror_of(tmp_path).load()
        assert kept.is_file() and young.is_file()  # young: perhaps another sync's, not committed yet
        assert not old.exists() and not scratch.exists()


LEGACY = {  # files of the earlier layout (a folder per slash, percent-encoded parts, `%00` an empty part)
    "mirror-models/outputs/job/output/model.tar.gz": ("outputs/job/output/model.tar.gz", b"\x1f\x8b model"),
    "mirror-models/odd%20key/100%25/%C3%A9": ("odd key/100%/é", b"odd"),
    "mirror-models/folder/%00": ("folder/", b""),
    "mirror-models/a/%00/b": ("a//b", b"double slash"),
    "mirror-models/Case/x": ("Case/x", b"upper"),
    "mirror-models/case/x": ("case/x", b"lower"),  # told apart from the one above by case only
    "mirror-europe/data/train.csv": ("data/train.csv", b"1,2\n"),
}


def test_a_data_folder_of_the_earlier_layout_is_taken_over_once(tmp_path: Path) -> None:
    for path, (_, body) in LEGACY.items():
        (tmp_path / "s3" / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "s3" / path).write_bytes(body)
    (tmp_path / "s3" / "mirror-empty").mkdir()
    (tmp_path / LEGACY_BUCKETS_FILE).write_text(json.dumps({"mirror-europe": "eu-west-1"}), encoding="utf-8")
    with in_process() as moto:
        for attempt in range(2):  # the second start finds the index, not the earlier layout
            mirror = mirror_of(tmp_path)
            assert mirror.load() == len(LEGACY)
            for path, (key, body) in LEGACY.items():
                got = moto.get(path.partition("/")[0], key)
                assert got is not None and got.value == body, (attempt, key)
            assert moto.buckets() == {"mirror-models": REGION, "mirror-europe": "eu-west-1", "mirror-empty": REGION}
            model = mirror.path_of("mirror-models", "outputs/job/output/model.tar.gz")
            assert model == tmp_path / "s3" / "mirror-models" / "outputs" / "job" / "output" / "model.tar.gz"
            assert not (tmp_path / LEGACY_BUCKETS_FILE).exists()
            mirror.close()
            moto.restart()
    assert len({path for _, _, path in rows(tmp_path)}) == len(LEGACY)


# --- a SIGKILL mid-sync ---------------------------------------------------------------------------------------------

WRITER = """
import sys
from pathlib import Path
from moto.s3.models import s3_backends
from local_sagemaker.persistence import S3Mirror
account, folder = sys.argv[1], Path(sys.argv[2])
keys = ["k", "k/", "k/p", "k/p/q", "K/P", "a//b", "a/\\x00/b", "%00", "é" * 400, "m/" * 200 + "x"]
backend = s3_backends[account]["aws"]
mirror = S3Mirror(folder, account_id=account)
mirror.load()
if "crash-sigkill" not in backend.buckets:
    backend.create_bucket("crash-sigkill", "us-east-1")
round = 0
while True:
    for index, key in enumerate(keys):
        if (round + index) % 4 == 0 and backend.get_object("crash-sigkill", key) is not None:
            backend.delete_object("crash-sigkill", key)
        else:
            backend.put_object("crash-sigkill", key, (key + "|%d|" % round).encode() * (1 + 997 * index * round % 5000))
    mirror.sync()
    print(round, flush=True)
    round += 1
"""


def test_a_sigkill_mid_sync_leaves_every_row_with_its_own_file_and_bytes(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[2]),
                                                        os.environ.get("PYTHONPATH", "")])}
    for attempt, delay in enumerate((0.0, 0.003, 0.011, 0.029, 0.047)):
        with subprocess.Popen([sys.executable, "-c", WRITER, ACCOUNT, str(tmp_path)], stdout=subprocess.PIPE,
                              env=env, text=True) as writer:
            try:
                assert writer.stdout is not None
                for _ in range(2 + attempt):  # a few whole syncs, then one cut short
                    assert writer.stdout.readline(), "the writer died"
                time.sleep(delay)
            finally:
                writer.send_signal(signal.SIGKILL)
        kept = rows(tmp_path)
        assert len({path for _, _, path in kept}) == len(kept)  # never two keys at one file
        for _, key, path in kept:
            assert (tmp_path / "s3" / path).is_file(), (key, path)  # never a row without its file
        with in_process() as moto:
            assert mirror_of(tmp_path).load() == len(kept)
            for _, raw, _ in kept:
                key = raw.decode()
                assert moto.get("crash-sigkill", key).value.startswith(f"{key}|".encode()), key  # type: ignore
