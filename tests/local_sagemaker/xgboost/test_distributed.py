"""Two hosts train one model with xgboost's collective (tracker on the master's MASTER_ADDR:MASTER_PORT), each on its
own shard, as the container does; a host without data leaves and the other trains alone."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

from xgboost_hosts import Channel, csv_channels, files_of, make_root, rounds, run, start

pytestmark = pytest.mark.timeout(300)

HPS = {"num_round": "15", "objective": "reg:squarederror", "max_depth": "4", "eta": "0.3"}
HOSTS = ("algo-1", "algo-2")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def shards(tmp_path: Path) -> list[Path]:
    """The example's training rows split in two files, as ShardedByS3Key would give one to each host."""
    lines = files_of(csv_channels()["train"].files[0].parent)[0].read_text().splitlines()
    paths = []
    for index in range(2):
        path = tmp_path / f"part-{index}.csv"
        path.write_text("\n".join(lines[index::2]) + "\n")
        paths.append(path)
    return paths


def run_hosts(roots: list[Path]) -> list[subprocess.CompletedProcess[str]]:
    port = free_port()
    processes = [start(root, "1.7-1", port) for root in reversed(roots)]  # workers may start before the master
    try:
        outputs = [p.communicate(timeout=240) for p in processes]
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
    return list(reversed([subprocess.CompletedProcess(p.args, p.returncode, o, e) for p, (o, e) in
                          zip(processes, outputs, strict=True)]))


def test_two_hosts_reach_the_validation_rmse_of_one(tmp_path: Path) -> None:
    parts = shards(tmp_path)
    validation = csv_channels()["validation"]
    single = make_root(tmp_path / "single", HPS, {"train": Channel(parts), "validation": validation})
    alone = run(single)
    assert alone.returncode == 0, alone.stderr
    roots = [
        make_root(tmp_path / "pair", HPS, {"train": Channel([part], distribution="ShardedByS3Key"),
                                           "validation": validation}, host=host, hosts=HOSTS)
        for host, part in zip(HOSTS, parts, strict=True)
    ]
    master, worker = run_hosts(roots)
    assert master.returncode == 0 and worker.returncode == 0, master.stderr + worker.stderr
    lines = rounds(master.stdout)
    assert [index for index, _ in lines] == list(range(15)) and rounds(worker.stdout) == []
    assert "Train matrix has 200 rows" in master.stderr  # each host trains on its own shard
    together, one = lines[-1][1]["validation-rmse"], rounds(alone.stdout)[-1][1]["validation-rmse"]
    assert abs(together - one) / one < 0.01, (together, one)
    assert (roots[0] / "model" / "xgboost-model").is_file() and not (roots[1] / "model" / "xgboost-model").exists()
    assert len(list((roots[0] / "checkpoints").iterdir())) == 5 and not any((roots[1] / "checkpoints").iterdir())


def test_a_host_without_training_data_leaves_and_the_other_trains(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    train = csv_channels()["train"]
    roots = [
        make_root(tmp_path, {**HPS, "num_round": "4"}, {"train": channel}, host=host, hosts=HOSTS)
        for host, channel in zip(HOSTS, (Channel([empty]), train), strict=True)
    ]
    first, second = run_hosts(roots)
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert "Host algo-1 not being used for distributed training." in first.stderr
    assert len(rounds(second.stdout)) == 4 and rounds(first.stdout) == []
    assert (roots[1] / "model" / "xgboost-model").is_file()
