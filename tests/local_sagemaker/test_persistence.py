"""The local S3 kept on disk (local_sagemaker/persistence.py): objects outlive the local SageMaker that held them."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from local_sagemaker import LocalSageMaker
from local_sagemaker.persistence import S3Mirror, default_data_dir, mirrored
from local_sagemaker.testing import LocalClients

pytestmark = pytest.mark.timeout(120)


@pytest.mark.parametrize("key", ["outputs/job/output/model.tar.gz", "a/b/", "../../etc/passwd", "100%/é ü/x?y#z",
                                 "./.hidden", "/leading", "a//b"])
def test_every_key_has_its_own_file_inside_the_bucket_folder(key: str, tmp_path: Path) -> None:
    mirror = S3Mirror(tmp_path)
    path = mirror.path_of("bucket", key)
    assert path.resolve().is_relative_to((tmp_path / "s3" / "bucket").resolve())
    assert path != mirror.path_of("bucket", key + "x")


def test_plain_keys_keep_their_names(tmp_path: Path) -> None:
    path = S3Mirror(tmp_path).path_of("sagemaker-plugin-local", "outputs/job-1/output/model.tar.gz")
    assert path == tmp_path / "s3" / "sagemaker-plugin-local" / "outputs" / "job-1" / "output" / "model.tar.gz"


def test_the_default_folder_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert default_data_dir() == tmp_path / "sagemaker-plugin"
    monkeypatch.delenv("XDG_DATA_HOME")
    assert default_data_dir() == Path.home() / ".local" / "share" / "sagemaker-plugin"


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


def test_a_key_that_cannot_be_a_file_is_skipped_with_a_warning(tmp_path: Path,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    """S3 holds both `a` and `a/b`; a folder cannot be both: one of them is not kept, the rest is."""
    with LocalSageMaker() as server, mirrored(tmp_path, interval=60) as mirror, \
            caplog.at_level(logging.WARNING, logger="local_sagemaker.persistence"):
        s3 = LocalClients(server.url).s3
        s3.create_bucket(Bucket="clash")
        s3.put_object(Bucket="clash", Key="a", Body=b"file")
        s3.put_object(Bucket="clash", Key="a/b", Body=b"under")
        s3.put_object(Bucket="clash", Key="c", Body=b"fine")
        assert mirror.sync() == 2
    assert (tmp_path / "s3" / "clash" / "c").read_bytes() == b"fine"
    assert any("cannot keep s3://clash/" in record.getMessage() for record in caplog.records)
