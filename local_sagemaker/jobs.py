"""A training job with a lifecycle: moto's FakeTrainingJob, which is Completed at once, given a clock.

At creation the job plans its whole life as a list of timed steps (Starting, Downloading, Training, Uploading, then
one terminal step) and its log lines. `advance(now)` applies every step and writes every line whose time has come;
nothing runs in the background, so a job costs nothing between requests and thousands of them cost nothing either.
Events that change the plan (missing input data found at Downloading, StopTrainingJob) cut it: later steps and lines
are dropped and a new terminal step appended. All times are integer epoch milliseconds, the precision the API
carries, so filters such as LastModifiedTimeAfter compare exactly.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from moto.sagemaker.models import FakeTrainingJob

from handlers.local import LOCAL_PHASES, LocalSettings
from handlers.service_model import operation_model
from local_sagemaker import log_limits, storage
from local_sagemaker.defaults import with_unset
from local_sagemaker.logs import (
    JobShape,
    LogLine,
    MetricExtractor,
    built_in_metric_definitions,
    failure_lines,
    plan_lines,
    stream_name,
    to_datetime,
    unit,
)

#: Secondary statuses that end a job, and the TrainingJobStatus each gives.
TERMINAL: Mapping[str, str] = {
    "Completed": "Completed",
    "Failed": "Failed",
    "Stopped": "Stopped",
    "MaxRuntimeExceeded": "Stopped",
    "MaxWaitTimeExceeded": "Stopped",
}

#: StatusMessage of each SecondaryStatusTransition, as SageMaker words them.
MESSAGES: Mapping[str, str] = {
    "Starting": "Preparing the instances for training",
    "Downloading": "Downloading input data",
    "Training": "Training image download completed. Training in progress.",
    "Uploading": "Uploading generated training model",
    "Completed": "Training job completed",
    "Failed": "Training job failed",
    "Stopping": "Stopping the training job",
    "Stopped": "Training job stopped",
    "MaxRuntimeExceeded": "Training job exceeded MaxRuntimeInSeconds provided",
    "MaxWaitTimeExceeded": "Training job exceeded MaxWaitTimeInSeconds provided",
}


class JobRecords(Protocol):
    """Where a job reports what it changes, as it changes it (the data folder's records, local_sagemaker/store/);
    called under the server's lock."""

    def job_changed(self, job: LocalTrainingJob) -> None: ...

    def streams_opened(self, job: LocalTrainingJob, names: Sequence[str]) -> None: ...

    def stream_mark(self, job: LocalTrainingJob, stream: str) -> int: ...

    def lines_stored(self, job: LocalTrainingJob, stream: str, mark: int) -> None: ...

    def metric_published(self, job: LocalTrainingJob, name: str, host: int, value: float, timestamp_ms: int
                         ) -> None: ...


@dataclass(frozen=True)
class Step:
    """Enter secondary status `status` at `at_ms`; `reason` is the FailureReason of a Failed step."""

    at_ms: int
    status: str
    reason: str = ""


def _echoed() -> Mapping[str, Any]:
    """DescribeTrainingJob's members, read from the service model: the request fields SageMaker echoes back."""
    shape = operation_model("DescribeTrainingJob").output_shape
    return shape.members if shape is not None else {}


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


class LocalTrainingJob(FakeTrainingJob):
    """A FakeTrainingJob that lives in moto's backend (so tags, search and ARNs work) but follows a timeline."""

    # moto derives the service of a model from its module; a subclass must look like moto's own.
    __module__ = "moto.sagemaker.models"

    def __init__(
        self, account_id: str, region_name: str, request: Mapping[str, Any], settings: LocalSettings, now_ms: int
    ) -> None:
        super().__init__(
            account_id=account_id,
            region_name=region_name,
            training_job_name=request["TrainingJobName"],
            hyper_parameters=dict(request.get("HyperParameters") or {}),
            # moto overwrites MetricDefinitions in the dict it gets; it gets a copy, the caller's stay below.
            algorithm_specification=copy.deepcopy(dict(request["AlgorithmSpecification"])),
            role_arn=request["RoleArn"],
            input_data_config=list(request.get("InputDataConfig") or []),
            output_data_config=dict(request["OutputDataConfig"]),
            resource_config=dict(request["ResourceConfig"]),
            vpc_config=request.get("VpcConfig"),  # type: ignore[arg-type]
            stopping_condition=dict(request["StoppingCondition"]),
            tags=list(request.get("Tags") or []),
            enable_network_isolation=bool(request.get("EnableNetworkIsolation", False)),
            enable_inter_container_traffic_encryption=bool(request.get("EnableInterContainerTrafficEncryption", False)),
            enable_managed_spot_training=bool(request.get("EnableManagedSpotTraining", False)),
            checkpoint_config=request.get("CheckpointConfig"),  # type: ignore[arg-type]
            debug_hook_config=request.get("DebugHookConfig"),  # type: ignore[arg-type]
            debug_rule_configurations=request.get("DebugRuleConfigurations"),  # type: ignore[arg-type]
            tensor_board_output_config=request.get("TensorBoardOutputConfig"),  # type: ignore[arg-type]
            experiment_config=request.get("ExperimentConfig"),  # type: ignore[arg-type]
        )
        self.account_id = account_id
        self.region_name = region_name
        self.request = {k: copy.deepcopy(v) for k, v in request.items() if k != "Tags"}
        self.algorithm_specification = copy.deepcopy(dict(request["AlgorithmSpecification"]))
        self.shape = JobShape.from_request(request)
        self.time_scale = settings.time_scale
        self.spot = bool(request.get("EnableManagedSpotTraining", False))
        self.creation_ms = self.last_modified_ms = now_ms
        self.training_start_ms: int | None = None
        self.training_end_ms: int | None = None
        self.failure_reason: str | None = None
        self.model_uri: str | None = None
        self.transitions: list[dict[str, Any]] = []
        self.streams: dict[int, str] = {}
        self.wake_ms: int | None = None  # when the engine has this job in its heap; owned by the engine
        self.tuning_job_arn: str | None = None  # set by the tuning job that launched this one
        self.records: JobRecords | None = None  # set by the engine once the job's name is claimed
        #: told of each status change (the engine's EventBridge events, api/events.py); set by the engine
        self.on_change: Callable[[LocalTrainingJob], None] | None = None
        self._publisher = storage.metric_publisher(account_id, region_name, request["TrainingJobName"])
        self._metrics = MetricExtractor(
            [*(self.algorithm_specification.get("MetricDefinitions") or []), *built_in_metric_definitions(self.shape)],
            publish=self._publish,
        )
        self.training_job_status = "InProgress"
        self.secondary_status = "Starting"
        self.creation_time = self.last_modified_time = to_datetime(now_ms)
        self.training_start_time = self.training_end_time = None  # type: ignore[assignment]
        self.final_metric_data_list = []
        self.secondary_status_transitions = []
        self._cursor = 0
        self._line_cursor = 0
        self._steps: list[Step] = []
        self._lines: list[LogLine] = []
        self._phase_ms: dict[str, tuple[int, int]] = {}
        self._plan(request, settings, now_ms)

    def note_at_training_start(self, text: str) -> None:
        """A line of the local SageMaker's own, first of the log at the start of Training (e.g. why it is simulated)."""
        self._lines.insert(0, LogLine(1, self._phase_ms["Training"][0], text))

    # ----- the plan -------------------------------------------------------------------------------------------

    def _plan(self, request: Mapping[str, Any], settings: LocalSettings, now_ms: int) -> None:
        steps: list[Step] = []
        phase_ms: dict[str, tuple[int, int]] = {}
        at = now_ms
        for phase in LOCAL_PHASES:
            duration = _ms(settings.seconds(phase))
            steps.append(Step(at, phase))
            phase_ms[phase] = (at, duration)
            at += duration
        end_ms = at
        steps.append(Step(end_ms, "Completed"))
        training_start, training_span = phase_ms["Training"]
        lines = plan_lines(self.shape, training_start, training_start + training_span)
        self._steps, self._lines, self._phase_ms = steps, lines, phase_ms

        # The earliest of: an injected failure, the max runtime, the max wait; each only if before the end.
        endings: list[Step] = []
        rule = settings.failure_for(self.training_job_name)
        if rule is not None:
            start, duration = phase_ms[rule.at]
            endings.append(Step(start + duration // 2, "Failed", rule.reason))
        stopping = request.get("StoppingCondition") or {}
        max_runtime = stopping.get("MaxRuntimeInSeconds")
        if isinstance(max_runtime, int):
            # Spot jobs wait for capacity while Starting; that wait counts against MaxWait, not MaxRuntime.
            runtime_from = phase_ms["Downloading"][0] if self.spot else now_ms
            endings.append(Step(runtime_from + _ms(settings.scaled(max_runtime)), "MaxRuntimeExceeded"))
        max_wait = stopping.get("MaxWaitTimeInSeconds")
        if self.spot and isinstance(max_wait, int):
            endings.append(Step(now_ms + _ms(settings.scaled(max_wait)), "MaxWaitTimeExceeded"))
        early = [step for step in endings if step.at_ms < end_ms]
        if early:
            first = min(early, key=lambda step: step.at_ms)
            self._cut(first.at_ms, first)

    def _cut(self, drop_from_ms: int, terminal: Step) -> None:
        """Ends the plan with `terminal`: unapplied steps and unwritten lines from `drop_from_ms` on are dropped."""
        kept = [s for s in self._steps[self._cursor :] if s.at_ms < drop_from_ms and s.status not in TERMINAL]
        self._steps = [*self._steps[: self._cursor], *kept, terminal]
        pending = [line for line in self._lines[self._line_cursor :] if line.timestamp_ms < drop_from_ms]
        self._lines = [*self._lines[: self._line_cursor], *pending]
        reaches_training = self.secondary_status == "Training" or any(s.status == "Training" for s in kept)
        if terminal.status == "Failed" and reaches_training and self._phase_ms["Training"][0] < terminal.at_ms:
            self._lines.extend(failure_lines(self.shape, terminal.reason, terminal.at_ms))

    def terminal_ms(self) -> int:
        return self._steps[-1].at_ms

    # ----- the clock ------------------------------------------------------------------------------------------

    @property
    def finished(self) -> bool:
        return self.training_job_status in ("Completed", "Failed", "Stopped")

    def advance(self, now_ms: int) -> None:
        """Applies every step and writes every line due by `now_ms`, in time order."""
        while self._cursor < len(self._steps) and self._steps[self._cursor].at_ms <= now_ms:
            step = self._steps[self._cursor]
            # Lines stamped at a phase's start come after entering it; lines at the very end come before it.
            self._flush(step.at_ms if step.status in TERMINAL else step.at_ms - 1)
            self._cursor += 1
            self._apply(step)
        self._flush(now_ms)

    def next_wake_ms(self) -> int | None:
        """When `advance` next has something to do; None once the job has ended and written everything."""
        candidates = []
        if self._cursor < len(self._steps):
            candidates.append(self._steps[self._cursor].at_ms)
        if self._line_cursor < len(self._lines):
            # Lines are written in about ten batches per Training window, not one wake-up per line.
            start, span = self._phase_ms["Training"]
            grain = max(1, span // 10)
            due = self._lines[self._line_cursor].timestamp_ms
            candidates.append(start + -(-(due - start) // grain) * grain if due > start else due)
        return min(candidates) if candidates else None

    def stop(self, now_ms: int, stop_ms: int) -> None:
        """StopTrainingJob on an InProgress job (the caller checks): Stopping now, Stopped after `stop_ms`."""
        self._enter("Stopping", now_ms)
        self._cut(now_ms + 1, Step(now_ms + stop_ms, "Stopped"))

    def _flush(self, until_ms: int) -> None:
        end = self._line_cursor
        while end < len(self._lines) and self._lines[end].timestamp_ms <= until_ms:
            end += 1
        if end == self._line_cursor:
            return
        batch = self._lines[self._line_cursor : end]
        self._line_cursor = end
        by_host: dict[int, list[LogLine]] = {}
        for line in batch:
            by_host.setdefault(line.host, []).append(line)
            self._metrics.feed(line)
        for host, lines in by_host.items():
            self._put_lines(self.streams.get(host) or self._stream(host), lines)
        self.changed()  # the final metric values moved with the lines

    def _put_lines(self, stream: str, lines: Sequence[LogLine]) -> None:
        """Lines to a stream of CloudWatch Logs, and the events they were stored as to the records."""
        if self.records is None:
            storage.put_lines(self.account_id, self.region_name, stream, log_limits.split_lines(lines))
            return
        mark = self.records.stream_mark(self, stream)
        storage.put_lines(self.account_id, self.region_name, stream, log_limits.split_lines(lines))
        self.records.lines_stored(self, stream, mark)

    def _open_streams(self, names: Sequence[str]) -> None:
        storage.create_streams(self.account_id, self.region_name, names)
        if self.records is not None:
            self.records.streams_opened(self, names)

    def _publish(self, name: str, host: int, value: float, timestamp_ms: int) -> None:
        self._publisher(name, host, value, timestamp_ms)
        if self.records is not None:
            self.records.metric_published(self, name, host, value, timestamp_ms)

    def changed(self) -> None:
        """Something Describe shows has changed: the records keep it."""
        if self.records is not None:
            self.records.job_changed(self)

    def _stream(self, host: int) -> str:
        epoch = self._phase_ms["Training"][0] // 1000
        self.streams[host] = stream_name(self.training_job_name, host, epoch)
        return self.streams[host]

    def _apply(self, step: Step) -> None:
        if step.status in TERMINAL:
            self._finish(step)
            return
        if step.status == "Downloading":  # before entering it: its event carries TrainingStartTime
            self.training_start_ms = step.at_ms
            self.training_start_time = to_datetime(step.at_ms)
        self._enter(step.status, step.at_ms)
        if step.status == "Downloading":
            missing = self._missing_input()
            if missing is not None:
                start, duration = self._phase_ms["Downloading"]
                fail_at = start + duration // 2
                if fail_at < self.terminal_ms():
                    self._cut(fail_at, Step(fail_at, "Failed", self._no_objects_reason(missing)))
        elif step.status == "Training":
            self._open_streams([self._stream(host) for host in range(1, self.shape.instance_count + 1)])

    def _enter(self, status: str, at_ms: int, terminal: bool = False) -> None:
        if self.transitions and "EndTime" not in self.transitions[-1]:
            self.transitions[-1]["EndTime"] = at_ms
        transition: dict[str, Any] = {"Status": status, "StartTime": at_ms, "StatusMessage": MESSAGES[status]}
        if terminal:
            transition["EndTime"] = at_ms
        self.transitions.append(transition)
        self.secondary_status = status
        self.training_job_status = TERMINAL.get(status, "Stopping" if status == "Stopping" else "InProgress")
        self.last_modified_ms = at_ms
        self.last_modified_time = to_datetime(at_ms)
        self.changed()
        if self.on_change is not None:
            self.on_change(self)

    def _finish(self, step: Step) -> None:
        status, at_ms = step.status, step.at_ms
        reason = step.reason or None
        reached_training = self.streams != {}
        if status == "Completed" or (TERMINAL[status] == "Stopped" and reached_training):
            try:
                self._write_model()
            except Exception as error:  # a missing bucket, or one moto refuses: SageMaker fails the job
                if status == "Completed":
                    status = "Failed"
                    reason = storage.upload_failure_reason(error)
        self.failure_reason = reason if status == "Failed" else None
        self.training_end_ms = at_ms
        self.training_end_time = to_datetime(at_ms)
        self._enter(status, at_ms, terminal=True)

    def _write_model(self) -> None:
        output = str(self.output_data_config.get("S3OutputPath", "")).rstrip("/")
        uri = f"{output}/{self.training_job_name}/output/model.tar.gz"
        metrics = {entry["MetricName"]: entry["Value"] for entry in self._metrics.final()}
        archive = storage.model_archive(self.training_job_name, self.shape.is_xgboost, metrics)
        storage.put_object(self.account_id, self.region_name, uri, archive)
        self.model_uri = uri
        self.model_artifacts = {"S3ModelArtifacts": uri}

    def _missing_input(self) -> str | None:
        """The first S3Prefix channel URI with no object under it, if any."""
        for channel in self.input_data_config:
            source = (channel.get("DataSource") or {}).get("S3DataSource") or {}
            uri = source.get("S3Uri")
            if source.get("S3DataType", "S3Prefix") != "S3Prefix" or not isinstance(uri, str):
                continue
            if not storage.prefix_has_objects(self.account_id, self.region_name, uri):
                return uri
        return None

    def _no_objects_reason(self, uri: str) -> str:
        parsed = storage.parse_s3_uri(uri)
        bucket = parsed[0] if parsed else uri
        return (
            f'ClientError: No S3 objects found under S3 URL "{uri}" given in input data source. Please ensure that the '
            f"bucket exists in the selected region ({self.region_name}), that objects exist under that S3 prefix, and "
            f'that the role "{self.role_arn}" has "s3:ListBucket" permissions on bucket "{bucket}".'
        )

    # ----- what the records keep (local_sagemaker/store/) ------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """Everything Describe shows that the request does not: small, JSON-ready, restored by `restore_state`."""
        return {
            "status": self.training_job_status, "secondary": self.secondary_status, "created": self.creation_ms,
            "modified": self.last_modified_ms, "started": self.training_start_ms, "ended": self.training_end_ms,
            "failure": self.failure_reason, "model": self.model_uri, "transitions": [dict(t) for t in self.transitions],
            "streams": {str(host): name for host, name in self.streams.items()}, "tuning": self.tuning_job_arn,
            "metrics": {name: list(point) for name, point in self._metrics.latest().items()},
            "time_scale": self.time_scale,
        }

    def restore_state(self, state: Mapping[str, Any]) -> None:
        """The job as `state()` kept it (a job that no longer moves: see store/records.py)."""
        self.training_job_status, self.secondary_status = str(state["status"]), str(state["secondary"])
        self.creation_ms, self.last_modified_ms = int(state["created"]), int(state["modified"])
        self.training_start_ms, self.training_end_ms = state.get("started"), state.get("ended")
        self.failure_reason, self.model_uri = state.get("failure"), state.get("model")
        self.transitions = [dict(t) for t in state.get("transitions") or []]
        self.streams = {int(host): str(name) for host, name in (state.get("streams") or {}).items()}
        self.tuning_job_arn = state.get("tuning")
        self._metrics.restore({name: (point[0], point[1]) for name, point in (state.get("metrics") or {}).items()})
        self.time_scale = float(state.get("time_scale") or 1.0)
        self.creation_time = to_datetime(self.creation_ms)
        self.last_modified_time = to_datetime(self.last_modified_ms)
        if self.model_uri:
            self.model_artifacts = {"S3ModelArtifacts": self.model_uri}

    # ----- what the API shows ---------------------------------------------------------------------------------

    def _seconds(self) -> tuple[int, int] | None:
        """(TrainingTimeInSeconds, BillableTimeInSeconds) once ended, in timeline seconds (time_scale undone)."""
        if self.training_end_ms is None:
            return None
        start = self.training_start_ms if self.training_start_ms is not None else self.training_end_ms
        training = round((self.training_end_ms - start) * self.time_scale / 1000)
        if start < self.training_end_ms:
            training = max(1, training)
        if not self.spot:
            return training, training
        # Managed spot saves 30-70%, always the same share for the same job name.
        billable = round(training * (0.3 + 0.4 * unit(self.training_job_name, "spot")))
        return training, max(1, billable) if training else 0

    def describe(self) -> dict[str, Any]:
        """DescribeTrainingJob's answer: the request's fields as SageMaker echoes them, plus the job's state."""
        # Where each member comes from, and what AWS shows for what the request left out: local_sagemaker/defaults.py.
        request = with_unset({**self.request, "AlgorithmSpecification": self.algorithm_specification})
        out: dict[str, Any] = {key: value for key, value in request.items() if key in _echoed()}
        built_in = built_in_metric_definitions(self.shape)
        if built_in:  # a built-in algorithm shows its own metric definitions, as SageMaker lists them
            out["AlgorithmSpecification"]["MetricDefinitions"] = built_in
        profiler = request.get("ProfilerConfig") or {}
        out.update(
            TrainingJobName=self.training_job_name,
            TrainingJobArn=self.arn,
            TrainingJobStatus=self.training_job_status,
            SecondaryStatus=self.secondary_status,
            CreationTime=to_datetime(self.creation_ms),
            LastModifiedTime=to_datetime(self.last_modified_ms),
            SecondaryStatusTransitions=[
                {key: to_datetime(value) if key.endswith("Time") else value for key, value in transition.items()}
                for transition in self.transitions
            ],
            ProfilingStatus="Enabled" if profiler and not profiler.get("DisableProfiler") else "Disabled",
        )
        if self.tuning_job_arn:
            out["TuningJobArn"] = self.tuning_job_arn
        if self.failure_reason:
            out["FailureReason"] = self.failure_reason
        if self.model_uri:
            out["ModelArtifacts"] = {"S3ModelArtifacts": self.model_uri}
        if self.training_start_ms is not None:
            out["TrainingStartTime"] = to_datetime(self.training_start_ms)
        if self.training_end_ms is not None:
            out["TrainingEndTime"] = to_datetime(self.training_end_ms)
        seconds = self._seconds()
        if seconds is not None:
            out["TrainingTimeInSeconds"], out["BillableTimeInSeconds"] = seconds
        metrics = self._metrics.final()
        if metrics:
            out["FinalMetricDataList"] = metrics
        return out

    def summary(self) -> dict[str, Any]:
        """One TrainingJobSummary of ListTrainingJobs."""
        out: dict[str, Any] = {
            "TrainingJobName": self.training_job_name,
            "TrainingJobArn": self.arn,
            "CreationTime": to_datetime(self.creation_ms),
            "LastModifiedTime": to_datetime(self.last_modified_ms),
            "TrainingJobStatus": self.training_job_status,
            "SecondaryStatus": self.secondary_status,
        }
        if self.training_end_ms is not None:
            out["TrainingEndTime"] = to_datetime(self.training_end_ms)
        return out

    @property
    def response_object(self) -> dict[str, Any]:
        return self.describe()

    def gen_response_object(self) -> dict[str, Any]:
        # moto's Search reads every attribute through this; show only what Describe shows.
        return self.describe()
