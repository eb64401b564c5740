"""Pipe mode's parts on their own: input modes, shuffling and sharding, RecordIO, and the FIFO writers' lives."""

from __future__ import annotations

import os
import struct
import threading
import time
from pathlib import Path

import pytest

from local_sagemaker.runner.channels import Source, Where
from local_sagemaker.runner.hostdirs import input_data_config, input_mode, make_hosts
from local_sagemaker.runner.pipes import RECORDIO_MAGIC, Pipes, fifo_path, recordio

pytestmark = pytest.mark.timeout(60)


def test_a_channel_without_input_mode_takes_the_jobs_and_fastfile_reads_as_file() -> None:
    channels = [{"ChannelName": "train"}, {"ChannelName": "validation", "InputMode": "File"},
                {"ChannelName": "fast", "InputMode": "FastFile"}]
    config = input_data_config(channels, "Pipe")
    assert {name: entry["TrainingInputMode"] for name, entry in config.items()} == {
        "train": "Pipe", "validation": "File", "fast": "File"}
    assert input_mode({"ChannelName": "x", "InputMode": "Pipe"}, "File") == "Pipe"
    assert input_mode({"ChannelName": "x"}, None) == "File"


def test_shuffling_is_seeded_per_epoch_and_shards_still_add_up() -> None:
    units = tuple((f"unit-{index}".encode(),) for index in range(12))
    source = Source("train", "Pipe", units, sharded=True, seed=7)
    for epoch in (0, 1, 2):
        shares = [source.share(3, index, epoch) for index in (1, 2, 3)]
        assert sorted(unit for share in shares for unit in share) == sorted(units)
        assert [len(share) for share in shares] == [4, 4, 4]
    assert source.share(3, 1, 0) == Source("train", "Pipe", units, sharded=True, seed=7).share(3, 1, 0)
    assert source.share(3, 1, 0) != source.share(3, 1, 1), "the content a host gets moves between epochs"
    assert Source("train", "Pipe", units).share(1, 1, 5) == list(units), "without ShuffleConfig: key order"


def _records(stream: bytes) -> list[bytes]:
    """A dmlc RecordIO reader: pieces joined again with the magic word they were split at."""
    records: list[bytes] = []
    at, pending = 0, b""
    while at < len(stream):
        magic, header = struct.unpack_from("<II", stream, at)
        assert magic == RECORDIO_MAGIC
        flag, size = header >> 29, header & ((1 << 29) - 1)
        piece = stream[at + 8: at + 8 + size]
        at += 8 + size + (-size % 4)
        if flag in (0, 1):
            pending = piece
        else:
            pending += struct.pack("<I", RECORDIO_MAGIC) + piece
        if flag in (0, 3):
            records.append(pending)
    return records


def test_recordio_wraps_each_record_and_splits_at_an_aligned_magic_word() -> None:
    magic = struct.pack("<I", RECORDIO_MAGIC)
    bodies = [b"", b"abc", b"abcd" + magic + b"xyz", b"ab" + magic + b"unaligned", magic + magic]
    stream = b"".join(piece for body in bodies for piece in recordio(body))
    assert len(stream) % 4 == 0
    assert _records(stream) == bodies
    assert b"".join(recordio(b"abc")) == struct.pack("<II", RECORDIO_MAGIC, 3) + b"abc\0"


def _pipes(tmp_path: Path, units: tuple[tuple[bytes, ...], ...], hosts: int = 1) -> tuple[Pipes, list[Path]]:
    folders = make_hosts(tmp_path, hosts)
    pipes = Pipes(Where("123456789012", "us-east-1", threading.Lock()), [Source("train", "Pipe", units)], folders)
    pipes.start()
    return pipes, [folder.data_dir for folder in folders]


def test_a_fifo_nobody_opens_does_not_hold_the_job(tmp_path: Path) -> None:
    pipes, _ = _pipes(tmp_path, ((b"x" * 10,),), hosts=2)
    assert all(channel.alive for channel in pipes.channels)
    started = time.monotonic()
    pipes.close()
    assert time.monotonic() - started < 2
    assert not any(channel.alive for channel in pipes.channels)


def test_an_epoch_closed_early_is_followed_by_the_next_one_and_a_stalled_reader_does_not_hold_the_job(
        tmp_path: Path) -> None:
    body = os.urandom(5 << 20)  # larger than any FIFO buffer: the writer waits for room
    pipes, (data,) = _pipes(tmp_path, ((body,),))
    with open(data / "train_0", "rb") as fifo:
        assert fifo.read(10) == body[:10]
    deadline = time.monotonic() + 10
    while not (data / "train_1").exists():
        assert time.monotonic() < deadline, "train_1 never appeared after train_0 was closed early"
        time.sleep(0.01)
    stalled = open(data / "train_1", "rb")  # noqa: SIM115 (kept open, unread, while the job ends)
    try:
        assert stalled.read(3) == body[:3]
        pipes.close()
        assert not any(channel.alive for channel in pipes.channels)
    finally:
        stalled.close()
    assert fifo_path(make_hosts(tmp_path, 1)[0], "train", 0) == data / "train_0"
