"""SageMaker's training job statuses -> the engine's phases: the one table (docs/phases.md).

The phases are flytekit's TaskExecution.Phase names and numbers, so that a Flyte engine shows them as its own.
Two sources of phases, both here: `phase_of` for a job SageMaker describes, and `PLUGIN_STATES` for the states only
the plugin knows (a create queued on quota, a job not yet visible); every command and engine reads these two.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class Phase(enum.IntEnum):
    UNDEFINED = 0
    QUEUED = 1
    RUNNING = 2
    SUCCEEDED = 3
    ABORTED = 4
    FAILED = 5
    INITIALIZING = 6
    WAITING_FOR_RESOURCES = 7
    RETRYABLE_FAILED = 8

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_PHASES


TERMINAL_PHASES = frozenset({Phase.SUCCEEDED, Phase.ABORTED, Phase.FAILED, Phase.RETRYABLE_FAILED})
TERMINAL_STATUSES = frozenset({"Completed", "Failed", "Stopped"})

# InProgress: the secondary status says whether the job is still getting ready or doing the work.
_IN_PROGRESS: Mapping[str, Phase] = {
    **dict.fromkeys(("Starting", "Pending", "LaunchingMLInstances", "PreparingTrainingStack", "Downloading",
                     "DownloadingTrainingImage"), Phase.INITIALIZING),
    **dict.fromkeys(("Training", "Uploading", "Interrupted", "Restarting", "Updating"), Phase.RUNNING),
}
# Stopped: why it stopped.
_STOPPED_LIMITS: Mapping[str, str] = {
    "MaxRuntimeExceeded": "the job ran longer than its MaxRuntimeInSeconds ({MaxRuntimeInSeconds} s) and was stopped",
    "MaxWaitTimeExceeded": "the spot job waited and ran longer than its MaxWaitTimeInSeconds ({MaxWaitTimeInSeconds} s)"
                           " and was stopped",
}
# Failed: reasons worth retrying (capacity, SageMaker's own internal errors); anything else is the job's fault.
_RETRYABLE_REASON = re.compile(
    r"CapacityError|InsufficientInstanceCapacity|Insufficient capacity|InternalServerError|InternalFailure|"
    r"internal (server )?error", re.IGNORECASE)
# SageMaker prefixes failures of the job's own code or data; those never become retryable, whatever they quote.
_JOBS_OWN_FAULT = re.compile(r"\s*(AlgorithmError|ClientError)\b")


@dataclass(frozen=True)
class Status:
    phase: Phase
    message: str


def phase_of(description: Mapping[str, Any], stopped_by_plugin: bool = False) -> Status:
    """The phase of a DescribeTrainingJob (or ListTrainingJobs summary) answer."""
    status = description.get("TrainingJobStatus", "")
    secondary = description.get("SecondaryStatus", "")
    if status == "InProgress":
        return Status(_IN_PROGRESS.get(secondary, Phase.RUNNING), _secondary_message(description))
    if status == "Stopping":
        return Status(Phase.RUNNING, "Stopping")
    if status == "Completed":
        if not (description.get("ModelArtifacts") or {}).get("S3ModelArtifacts"):
            return Status(Phase.FAILED, "the training job completed without model artifacts (S3ModelArtifacts)")
        return Status(Phase.SUCCEEDED, "Completed")
    if status == "Failed":
        reason = description.get("FailureReason") or "the training job failed (no reason given)"
        retryable = not _JOBS_OWN_FAULT.match(reason) and bool(_RETRYABLE_REASON.search(reason))
        return Status(Phase.RETRYABLE_FAILED if retryable else Phase.FAILED, reason)
    if status == "Stopped":
        limit = _STOPPED_LIMITS.get(secondary)
        if limit:
            return Status(Phase.FAILED, limit.format_map(_Missing(description.get("StoppingCondition") or {})))
        if stopped_by_plugin:
            return Status(Phase.ABORTED, "stopped by the plugin (the execution was aborted)")
        return Status(Phase.FAILED, "stopped outside this plugin (StopTrainingJob by someone else)")
    if status == "Deleting":
        return Status(Phase.FAILED, "the training job is being deleted")
    return Status(Phase.UNDEFINED, f"unknown training job status {status!r}")


def tuning_phase_of(description: Mapping[str, Any], stopped_by_plugin: bool = False) -> Status:
    """The phase of a DescribeHyperParameterTuningJob answer; the message counts the trials and names the best."""
    status = description.get("HyperParameterTuningJobStatus", "")
    counts = description.get("TrainingJobStatusCounters") or {}
    started = sum(int(counts.get(k) or 0) for k in TRIAL_COUNTERS.values())
    message = tuning_message(description)
    if status == "InProgress":
        return Status(Phase.RUNNING if started else Phase.INITIALIZING, message)
    if status == "Stopping":
        return Status(Phase.RUNNING, f"Stopping; {message}")
    if status == "Completed":
        if not description.get("BestTrainingJob"):
            return Status(Phase.FAILED, f"the tuning job completed without a best training job; {message}")
        return Status(Phase.SUCCEEDED, message)
    if status == "Failed":
        reason = description.get("FailureReason") or "the tuning job failed (no reason given)"
        retryable = not _JOBS_OWN_FAULT.match(reason) and bool(_RETRYABLE_REASON.search(reason))
        return Status(Phase.RETRYABLE_FAILED if retryable else Phase.FAILED, f"{reason}; {message}")
    if status == "Stopped":
        if stopped_by_plugin:
            return Status(Phase.ABORTED, f"stopped by the plugin (the execution was aborted); {message}")
        return Status(Phase.FAILED, f"stopped outside this plugin (StopHyperParameterTuningJob by someone else); "
                                    f"{message}")
    if status == "Deleting":
        return Status(Phase.FAILED, "the tuning job is being deleted")
    return Status(Phase.UNDEFINED, f"unknown tuning job status {status!r}")


# TrainingJobStatusCounters members, by the word the message uses.
TRIAL_COUNTERS: Mapping[str, str] = {"completed": "Completed", "running": "InProgress",
                                     "failed": "NonRetryableError", "retryable": "RetryableError",
                                     "stopped": "Stopped"}


def tuning_message(description: Mapping[str, Any]) -> str:
    """`trials: 3 completed, 2 running, 0 failed, 0 stopped; best so far <job> (<metric> <value>)` ("best" once
    the tuning job ended)."""
    counts = description.get("TrainingJobStatusCounters") or {}
    failed = int(counts.get("NonRetryableError") or 0) + int(counts.get("RetryableError") or 0)
    parts = [f"{int(counts.get('Completed') or 0)} completed", f"{int(counts.get('InProgress') or 0)} running",
             f"{failed} failed", f"{int(counts.get('Stopped') or 0)} stopped"]
    text = "trials: " + ", ".join(parts)
    best = description.get("BestTrainingJob") or {}
    if best.get("TrainingJobName"):
        metric = best.get("FinalHyperParameterTuningJobObjectiveMetric") or {}
        value = f" ({metric.get('MetricName')} {metric.get('Value')})" if metric else ""
        ended = description.get("HyperParameterTuningJobStatus") in TERMINAL_STATUSES
        text += f"; best {'' if ended else 'so far '}{best['TrainingJobName']}{value}"
    return text


# The states of a job SageMaker cannot show: the plugin's own, with their phase and message ({details} filled in).
PLUGIN_STATES: Mapping[str, tuple[Phase, str]] = {
    "not-yet-visible": (Phase.QUEUED, "created {waited:.0f} s ago; not yet visible to {describe}"),
    "not-found": (Phase.FAILED, "{noun} {job_name} not found {waited:.0f} s after it was created (grace "
                                "{grace:.0f} s): it was deleted, or created in another account or region"),
    "waiting-for-resources": (Phase.WAITING_FOR_RESOURCES, "{reason}"),
    "resource-wait-exceeded": (Phase.FAILED, "waited {waited:.0f} s for resources (limits.resource_wait_seconds): "
                                             "{reason}"),
    "never-created": (Phase.ABORTED, "deleted while waiting for resources; the {noun} was never created"),
    "created-from-queue": (Phase.QUEUED, "created after waiting for resources"),
    "created-from-queue-deleted": (Phase.QUEUED, "created after waiting for resources; deleted meanwhile, to be "
                                                 "stopped once visible"),
    "created-from-queue-stopped": (Phase.QUEUED, "created after waiting for resources, then stopped: it was "
                                                 "deleted meanwhile"),
}


def plugin_status(state: str, **details: Any) -> Status:
    """The phase and message of one of the plugin's own states (PLUGIN_STATES)."""
    phase, message = PLUGIN_STATES[state]
    return Status(phase, message.format(**details))


def _secondary_message(description: Mapping[str, Any]) -> str:
    secondary = description.get("SecondaryStatus") or "InProgress"
    transitions = description.get("SecondaryStatusTransitions") or []
    detail = transitions[-1].get("StatusMessage", "") if transitions else ""
    return f"{secondary}: {detail}" if detail else secondary


class _Missing(dict):  # type: ignore[type-arg]
    def __missing__(self, key: str) -> str:
        return "?"
