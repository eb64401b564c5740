"""What the plugin and the local SageMaker both know of each other: one statement each (plugin/jobs/render.py fills in
the role and output prefix a local task leaves out; local_sagemaker/ serves that account and bucket), and the local
SageMaker's settings: config.yaml's `local` section (plugin/config.py) is read into them, the server runs on them.

Durations are given in timeline seconds, the seconds a real job would spend; `time_scale` divides every one of them
(the timeline, the stop delay), so a benchmark can run thousands of jobs quickly without changing their shape.
Request rates are never scaled: they are quotas on real requests.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

#: moto's default account, the one any key pair it does not know maps to (the local SageMaker's own included).
LOCAL_ACCOUNT_ID = "123456789012"
#: A role ARN SageMaker's pattern accepts, for callers without one (nothing checks roles locally).
PLACEHOLDER_ROLE_ARN = f"arn:aws:iam::{LOCAL_ACCOUNT_ID}:role/LocalSageMakerRole"
#: The bucket the local S3 holds from the start, where local jobs write unless the task names an output prefix.
LOCAL_OUTPUT_BUCKET = "sagemaker-plugin-local"
LOCAL_OUTPUT_PREFIX = f"s3://{LOCAL_OUTPUT_BUCKET}/outputs"

#: The secondary statuses a local job passes through while InProgress, in order.
LOCAL_PHASES: tuple[str, ...] = ("Starting", "Downloading", "Training", "Uploading")
#: Timeline seconds per secondary status: a few seconds in all by default.
DEFAULT_TIMELINE: Mapping[str, float] = {"Starting": 1.0, "Downloading": 1.0, "Training": 2.0, "Uploading": 1.0}
#: Buckets the local S3 holds from the start, as an AWS account holds its own: SageMaker never creates a bucket (a job
#: whose output bucket is missing fails), so the plugin's default local output bucket is there for jobs to write to.
DEFAULT_BUCKETS: tuple[str, ...] = (LOCAL_OUTPUT_BUCKET,)
#: How jobs happen: `run` executes each host's processes on this machine; `simulate` plays a timeline.
EXECUTIONS: tuple[str, ...] = ("run", "simulate")


@dataclass(frozen=True)
class FailureRule:
    """Jobs whose whole name matches `name_pattern` (`re.fullmatch`) fail halfway through secondary status `at`.

    Halfway, so that a poller sees the job in `at` before it fails, as with a real AlgorithmError.
    """

    name_pattern: str
    at: str = "Training"
    reason: str = "AlgorithmError: injected failure"

    def __post_init__(self) -> None:
        if self.at not in LOCAL_PHASES:
            known = ", ".join(LOCAL_PHASES)
            raise ValueError(f"failure rule {self.name_pattern!r}: 'at' must be one of {known}, not {self.at!r}")
        try:
            re.compile(self.name_pattern)
        except re.error as error:
            message = f"failure rule: name_pattern {self.name_pattern!r} is not a regular expression: {error}"
            raise ValueError(message) from None
        if not self.reason:
            raise ValueError(f"failure rule {self.name_pattern!r}: 'reason' must not be empty")

    def matches(self, job_name: str) -> bool:
        return re.fullmatch(self.name_pattern, job_name) is not None


#: What an event fault does to the EventBridge events of the jobs it matches (local_sagemaker/api/events.py).
EVENT_FAULTS: tuple[str, ...] = ("drop", "duplicate", "delay")


@dataclass(frozen=True)
class EventFault:
    """The state-change events of jobs whose whole name matches `name_pattern` are dropped, sent twice, or sent
    `delay_seconds` (timeline seconds) late; only the event entering secondary status `status` when one is named.

    As AWS may lose none yet send several and out of order, these let tests prove the tracker's safety net."""

    name_pattern: str
    fault: str
    status: str | None = None
    delay_seconds: float = 5.0

    def __post_init__(self) -> None:
        if self.fault not in EVENT_FAULTS:
            raise ValueError(f"event fault: 'fault' must be one of {', '.join(EVENT_FAULTS)}, not {self.fault!r}")
        try:
            re.compile(self.name_pattern)
        except re.error as error:
            raise ValueError(f"event fault: name_pattern {self.name_pattern!r} is not a regular expression: "
                             f"{error}") from None
        if not _is_number(self.delay_seconds) or self.delay_seconds < 0:
            raise ValueError(f"event fault: delay_seconds must be a number >= 0, not {self.delay_seconds!r}")

    def matches(self, job_name: str, status: str) -> bool:
        return (self.status is None or self.status == status) and re.fullmatch(self.name_pattern, job_name) is not None


@dataclass(frozen=True)
class LocalSettings:
    """How the local SageMaker behaves; every field optional.

    timeline: timeline seconds per secondary status (missing phases keep the default).
    time_scale: 10 makes every duration ten times shorter.
    failures: rules that make matching jobs fail; the first matching rule wins.
    requests_per_second: per operation name (`CreateTrainingJob`, `DescribeLogStreams`, ...); over it the server answers
        HTTP 400 ThrottlingException "Rate exceeded". A burst of max(1, rate) requests is allowed.
    instances: per instance type, how many instances jobs may hold at once (InProgress and Stopping jobs count);
        a create over it gets ResourceLimitExceeded.
    stop_seconds: timeline seconds a job stays in Stopping after StopTrainingJob; with `execution: run`, the grace
        period between SIGTERM and SIGKILL of a stopped job's processes.
    execution: `run` (the default) runs each host as processes on this machine; `simulate` plays the timeline
        (thousands of jobs at no cost, for benchmarks and fault tests).
    buckets: S3 buckets that exist from the start (and again after a reset), in us-east-1.
    event_faults: what happens to the EventBridge events of some jobs (dropped, sent twice, late); the first
        matching rule wins.
    """

    timeline: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_TIMELINE))
    time_scale: float = 1.0
    failures: tuple[FailureRule, ...] = ()
    requests_per_second: Mapping[str, float] = field(default_factory=dict)
    instances: Mapping[str, int] = field(default_factory=dict)
    stop_seconds: float = 1.0
    execution: str = "run"
    buckets: tuple[str, ...] = DEFAULT_BUCKETS
    event_faults: tuple[EventFault, ...] = ()

    def __post_init__(self) -> None:
        unknown = sorted(set(self.timeline) - set(LOCAL_PHASES))
        if unknown:
            raise ValueError(f"timeline: unknown secondary status {', '.join(unknown)}; known: "
                             f"{', '.join(LOCAL_PHASES)}")
        for phase, seconds in self.timeline.items():
            if not _is_number(seconds) or seconds < 0:
                raise ValueError(f"timeline.{phase}: must be a number of seconds >= 0, not {seconds!r}")
        if not _is_number(self.time_scale) or self.time_scale <= 0:
            raise ValueError(f"time_scale: must be a number > 0, not {self.time_scale!r}")
        for operation, rate in self.requests_per_second.items():
            if not _is_number(rate) or rate <= 0:
                raise ValueError(f"requests_per_second.{operation}: must be a number > 0, not {rate!r}")
        for instance_type, count in self.instances.items():
            if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                raise ValueError(f"instances.{instance_type}: must be a whole number >= 0, not {count!r}")
        if not _is_number(self.stop_seconds) or self.stop_seconds < 0:
            raise ValueError(f"stop_seconds: must be a number of seconds >= 0, not {self.stop_seconds!r}")
        if self.execution not in EXECUTIONS:
            raise ValueError(f"execution: must be one of {', '.join(EXECUTIONS)}, not {self.execution!r}")
        # A tuple given as a list would make the dataclass unhashable and mutable; accept it, store a tuple.
        object.__setattr__(self, "failures", tuple(self.failures))
        object.__setattr__(self, "buckets", tuple(self.buckets))
        object.__setattr__(self, "event_faults", tuple(self.event_faults))

    def seconds(self, phase: str) -> float:
        """Wall-clock seconds a job spends in `phase`, after scaling."""
        return float(self.timeline.get(phase, DEFAULT_TIMELINE[phase])) / self.time_scale

    def scaled(self, timeline_seconds: float) -> float:
        """Wall-clock seconds for a duration given in timeline seconds."""
        return timeline_seconds / self.time_scale

    def failure_for(self, job_name: str) -> FailureRule | None:
        return next((rule for rule in self.failures if rule.matches(job_name)), None)

    def event_fault_for(self, job_name: str, status: str) -> EventFault | None:
        return next((rule for rule in self.event_faults if rule.matches(job_name, status)), None)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
