"""Several hosts training one model with xgboost's own collective, set up as the container sets up rabit.

The master host (first of the sorted hosts) runs the tracker at MASTER_ADDR:MASTER_PORT; every host waits until the
tracker answers, then joins with its position among the sorted hosts as task id, so the master is rank 0 (it prints
the rounds, writes checkpoints and the model). First the hosts tell each other whether they have training data: a
host without data leaves (exit 0, with the container's warning), and when some leave the others form a new group on a
tracker of their own, as the container's second rabit group. Each host trains on the data it was given.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

from xgboost import collective
from xgboost.tracker import RabitTracker

from local_sagemaker.xgboost.failures import AlgorithmError
from local_sagemaker.xgboost.host import Host
from local_sagemaker.xgboost.logs import LOG

T = TypeVar("T")
CONNECT_SECONDS = 600.0  # hosts start within moments of each other here; SageMaker's can take minutes


class LeaveCluster(Exception):
    """This host has no data: it takes no part in training and ends successfully."""


@dataclass(frozen=True)
class Member:
    is_master: bool
    distributed: bool


@contextmanager
def cluster(host: Host, has_data: bool) -> Iterator[Member]:
    """Joins the hosts for the duration of training; LeaveCluster when this host is not needed."""
    LOG.info("Distributed node training with %d hosts: %s", len(host.hosts), list(host.hosts))
    index = host.hosts.index(host.current_host)
    tracker = _start_tracker(host, len(host.hosts), host.master_port) if host.is_master else None
    with _group(host, index, host.master_port, tracker) as first:
        flags = [collective.broadcast(has_data if first == i else None, i) for i in range(len(host.hosts))]
        staying = [name for name, flag in zip(host.hosts, flags, strict=True) if flag]
        if len(staying) == len(host.hosts):
            yield Member(is_master=first == 0, distributed=True)
            return
        if not staying:
            raise AlgorithmError("No hosts received training data.")
        # the first host with data starts the second group's tracker on a free port and tells the others
        leader = host.current_host == staying[0] and len(staying) > 1
        second = _start_tracker(host, len(staying), 0) if leader else None
        port = int(second.worker_args()["dmlc_tracker_port"]) if second else 0
        port = int(collective.broadcast(port, host.hosts.index(staying[0])))
    if not has_data:
        LOG.warning("Host %s not being used for distributed training.", host.current_host)
        raise LeaveCluster()
    if len(staying) == 1:
        LOG.info("Only 1 host with training data, starting single node training job from: %s", host.current_host)
        yield Member(is_master=True, distributed=False)
        return
    with _group(host, staying.index(host.current_host), port, second) as rank:
        yield Member(is_master=rank == 0, distributed=True)


def from_master(value: T | None, member: Member) -> T:
    """The master's value on every host (the checkpoint to resume from: only the master writes them)."""
    result = collective.broadcast(value, 0) if member.distributed else value
    assert result is not None
    return result  # type: ignore[no-any-return]


def _start_tracker(host: Host, workers: int, port: int) -> RabitTracker:
    try:
        tracker = RabitTracker(n_workers=workers, host_ip=host.master_addr, port=port, sortby="task")
        tracker.start()
    except Exception as error:  # e.g. the port taken by another program meanwhile
        raise AlgorithmError(f"Cannot start the Rabit tracker on {host.master_addr}:{port}: {error}") from None
    LOG.info("RabitTracker worker_args: %s", tracker.worker_args())
    return tracker


@contextmanager
def _group(host: Host, index: int, port: int, tracker: RabitTracker | None) -> Iterator[int]:
    """One collective group; the host holding its tracker stops it at the end, after the others have left."""
    if tracker is None:
        _wait_for(host.master_addr, port)
    try:
        collective.init(dmlc_tracker_uri=host.master_addr, dmlc_tracker_port=port, dmlc_task_id=str(index))
    except Exception as error:
        raise AlgorithmError(f"Failed to join the other hosts through the tracker: {error}") from None
    LOG.info("Connected to RabitTracker, current_host=%s", host.current_host)
    # On an error this host leaves without the goodbyes, which could wait for hosts still training: its exit fails
    # the job, and the local SageMaker stops the other hosts.
    yield collective.get_rank()
    collective.finalize()
    _stop(tracker)


def _stop(tracker: RabitTracker | None) -> None:
    if tracker is None:
        return
    try:
        tracker.wait_for(60)
    except Exception as error:  # a host went away: it has said why itself
        LOG.warning("The tracker stopped waiting for the hosts: %s", error)
    tracker.free()


def _wait_for(address: str, port: int) -> None:
    """The container's check that the tracker is up before joining (rabit gives up on a tracker not yet there)."""
    deadline = time.monotonic() + CONNECT_SECONDS
    while True:
        try:
            with socket.create_connection((address, port), timeout=5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise AlgorithmError(f"Failed to connect to Rabit Tracker at {address}:{port}") from None
            time.sleep(0.1)
