"""A training job whose life follows real processes (`execution: run`) instead of a planned timeline.

It shares everything the API shows with the simulated job (DescribeTrainingJob, listing, transitions, metrics): only
who moves it differs. Nothing here runs by itself; the job's runner (runner.py) calls these methods, holding the
server's lock, as things really happen.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

from handlers.local import LocalSettings
from local_sagemaker.jobs import LocalTrainingJob
from local_sagemaker.logs import LogLine, stream_name, to_datetime

#: FailureReason is at most this long in SageMaker's service model.
MAX_REASON = 1024


class RunTrainingJob(LocalTrainingJob):
    """A LocalTrainingJob moved by its runner; `stop_event` tells the runner to stop it and `stop_status` how."""

    __module__ = "moto.sagemaker.models"

    def __init__(
        self, account_id: str, region_name: str, request: Mapping[str, Any], settings: LocalSettings, now_ms: int
    ) -> None:
        self.stop_event = threading.Event()
        self.stop_status = "Stopped"
        super().__init__(account_id, region_name, request, settings, now_ms)
        self.time_scale = 1.0  # real seconds are the job's seconds

    def _plan(self, request: Mapping[str, Any], settings: LocalSettings, now_ms: int) -> None:
        self._steps, self._lines, self._phase_ms = [], [], {}
        self._enter("Starting", now_ms)

    # The simulated clock has nothing to do for this job.
    def advance(self, now_ms: int) -> None:
        return None

    def next_wake_ms(self) -> int | None:
        return None

    def stop(self, now_ms: int, stop_ms: int) -> None:
        """StopTrainingJob: Stopping now; the runner ends the processes and then the job."""
        self._enter("Stopping", now_ms)
        self.stop_status = "Stopped"
        self.stop_event.set()

    def limit(self, status: str) -> None:
        """MaxRuntimeExceeded or MaxWaitTimeExceeded: the runner stops the job with that status."""
        if not self.stop_event.is_set():
            self.stop_status = status
            self.stop_event.set()

    # ----- what the runner reports (under the server's lock) ----------------------------------------------------

    def enter(self, status: str, at_ms: int) -> None:
        if self.finished or self.secondary_status == "Stopping":
            return
        self._enter(status, at_ms)
        if status == "Downloading":
            self.training_start_ms = at_ms
            self.training_start_time = to_datetime(at_ms)

    def open_streams(self, hosts: int, at_ms: int) -> None:
        epoch = at_ms // 1000
        for host in range(1, hosts + 1):
            self.streams[host] = stream_name(self.training_job_name, host, epoch)
        self._open_streams(list(self.streams.values()))

    def write_lines(self, lines: Sequence[LogLine]) -> None:
        """Appends lines (each host's in time order) to the hosts' streams, and reads metrics from them; a line longer
        than a CloudWatch event may be is written as several events (log_limits)."""
        by_host: dict[int, list[LogLine]] = {}
        for line in lines:
            by_host.setdefault(line.host, []).append(line)
            self._metrics.feed(line)
        for host, batch in by_host.items():
            stream = self.streams.get(host)
            if stream is not None:
                self._put_lines(stream, batch)
        self.changed()  # the final metric values moved with the lines

    def model_written(self, uri: str) -> None:
        self.model_uri = uri
        self.model_artifacts = {"S3ModelArtifacts": uri}
        self.changed()

    def end(self, status: str, at_ms: int, reason: str | None = None) -> None:
        """The terminal secondary status (Completed, Failed, Stopped, MaxRuntimeExceeded, MaxWaitTimeExceeded)."""
        if self.finished:
            return
        self.failure_reason = reason[:MAX_REASON] if status == "Failed" and reason else None
        if self.training_start_ms is None:
            self.training_start_ms = at_ms
            self.training_start_time = to_datetime(at_ms)
        self.training_end_ms = at_ms
        self.training_end_time = to_datetime(at_ms)
        self._enter(status, at_ms, terminal=True)

    def missing_input_reason(self, uri: str) -> str:
        return self._no_objects_reason(uri)
