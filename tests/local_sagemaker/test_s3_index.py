"""Which file keeps which key (local_sagemaker/s3_index.py): readable where a key is plain and nothing is in the way,
opaque otherwise, never one file for two keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from local_sagemaker.s3_index import OBJECTS_DIR, Index, Kept, opaque_path, readable_path


@pytest.mark.parametrize(("bucket", "key", "path"), [
    ("models", "outputs/job-1/output/model.tar.gz", "models/outputs/job-1/output/model.tar.gz"),
    ("models", "a/b", "models/a/b"),
    ("models", "a//b", None), ("models", "a/./b", None), ("models", "a/../b", None), ("models", "k/t/", None),
    ("models", "/lead", None), ("models", "%", None), ("models", "a\x00b", None), ("models", "é", None),
    ("models", "a b", None), ("models", "x" * 201, None), ("models", "x/" * 250 + "x", None),
    ("Models", "a", None), (".objects", "a", None), ("my_bucket", "a", None),
])
def test_a_readable_path_only_for_plain_names(bucket: str, key: str, path: str | None) -> None:
    assert readable_path(bucket, key) == path


def test_opaque_names_tell_bucket_and_key_apart() -> None:
    assert opaque_path("ab", "c") != opaque_path("a", "bc")
    assert opaque_path("b", "a//b") != opaque_path("b", "a/\x00/b")
    assert opaque_path("b", "k").startswith(OBJECTS_DIR + "/")
    assert len(opaque_path("b", "é" * 512).rpartition("/")[2]) < 255


def kept(index: Index, bucket: str, key: str) -> str:
    path = index.choose(bucket, key)
    index.put(Kept(bucket, key, path, "md5", '"etag"'))
    return path


@pytest.mark.parametrize("keys", [("k/p", "k/p/q"), ("k/p/q", "k/p"), ("Case/x", "case/x"), ("k/p/q", "K/P"),
                                  ("a", "A/b")])
def test_the_second_of_two_keys_that_cannot_both_be_readable_gets_an_opaque_file(keys: tuple[str, str],
                                                                                 tmp_path: Path) -> None:
    index = Index(tmp_path / "index.sqlite3")
    first, second = (kept(index, "b", key) for key in keys)
    assert first == f"b/{keys[0]}"
    assert second.startswith(OBJECTS_DIR + "/")
    assert index.path_of("b", keys[0]) == first and index.path_of("b", keys[1]) == second


def test_an_opaque_name_another_key_holds_is_not_shared(tmp_path: Path) -> None:
    """Were two keys' hashes ever the same, the second gets a name of its own."""
    index = Index(tmp_path / "index.sqlite3")
    index.put(Kept("b", "other", opaque_path("b", "a b"), "md5", '"etag"'))
    assert index.choose("b", "a b") == opaque_path("b", "a b", 1)


def test_keys_are_kept_as_exact_strings(tmp_path: Path) -> None:
    index = Index(tmp_path / "index.sqlite3")
    for key in ("a\x00", "a", "\udcff", "é", "e\u0301"):
        kept(index, "b", key)
    assert sorted(item.key for item in index.objects()) == sorted(["a\x00", "a", "\udcff", "é", "e\u0301"])
