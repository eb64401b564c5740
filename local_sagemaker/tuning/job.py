"""One hyperparameter tuning job: its trials (training jobs of the engine, really run or simulated), its lifecycle
and what DescribeHyperParameterTuningJob shows.

`tick()` is its whole life: called under the server's lock by the job's driver (service.py) whenever a trial may have
moved, it reads the trials, stops those early stopping or Hyperband gives up on, tells the strategy each finished
trial's objective, launches trials up to MaxParallelTrainingJobs, and ends the job once nothing is left to run.
"""

from __future__ import annotations

import copy
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from moto.sagemaker.exceptions import SagemakerClientError

from local_sagemaker.errors import ResourceLimitExceeded
from local_sagemaker.logs import to_datetime
from local_sagemaker.tuning import early_stopping
from local_sagemaker.tuning.plan import TuningPlan
from local_sagemaker.tuning.series import Series
from local_sagemaker.tuning.strategies import Strategy, Suggestion

ENDED = ("Completed", "Failed", "Stopped")


@dataclass
class Trial:
    index: int
    name: str
    suggestion: Suggestion
    job: Any  # the engine's LocalTrainingJob
    series: Series
    observed: bool = False
    objective: float | None = None

    @property
    def status(self) -> str:
        return str(self.job.training_job_status)

    @property
    def ended(self) -> bool:
        return self.status in ENDED


@dataclass
class TuningJob:
    plan: TuningPlan
    arn: str
    account_id: str
    region_name: str
    strategy: Strategy
    creation_ms: int
    status: str = "InProgress"
    last_modified_ms: int = 0
    end_ms: int | None = None
    failure_reason: str | None = None
    tags: list[dict[str, str]] = field(default_factory=list)  # read and written by moto's ListTags/AddTags
    trials: list[Trial] = field(default_factory=list)
    _rungs_checked: set[tuple[str, int]] = field(default_factory=set)
    #: No more trials: the strategy has nothing more to try, TargetObjectiveMetricValue is met, or
    #: MaxRuntimeInSeconds has passed (the running trials finish, or are stopped for the last).
    _exhausted: bool = False

    @property
    def name(self) -> str:
        return self.plan.name

    @property
    def ended(self) -> bool:
        return self.status in ENDED

    # ----- life --------------------------------------------------------------------------------------------------

    def tick(self, engine: Any, backend: Any) -> None:
        if self.ended:
            return
        for trial in self.trials:
            trial.series.read(trial.job)
        if self.status == "InProgress":
            self._check_limits(engine, backend)
            self._stop_laggards(engine, backend)
        for trial in self.trials:
            if trial.ended and not trial.observed:
                trial.observed = True
                trial.objective = self._objective(trial)
                self.strategy.observe(trial.suggestion, trial.objective)
        if self.status == "InProgress":
            best = self.best()
            if best is not None and best.objective is not None and self.plan.reached(best.objective):
                self._exhausted = True
            self._launch(engine, backend)
        if any(not trial.ended for trial in self.trials):
            return
        if self.status == "Stopping":
            self._end("Stopped", engine.now_ms())
        elif self.status == "InProgress" and self._done_launching():
            if any(trial.objective is not None for trial in self.trials):
                self._end("Completed", engine.now_ms())
            else:
                self._end("Failed", engine.now_ms(), "No training job of this tuning job reported the objective "
                          f"metric {self.plan.metric_name}: see the training jobs' FailureReason and logs.")

    def _check_limits(self, engine: Any, backend: Any) -> None:
        """MaxRuntimeInSeconds: no more trials, and the running ones are stopped."""
        limit = self.plan.max_runtime_ms
        if limit is not None and not self._exhausted and engine.now_ms() - self.creation_ms >= limit:
            self._exhausted = True
            for trial in self.trials:
                self._stop_trial(engine, backend, trial)

    def stop(self, engine: Any, backend: Any) -> None:
        """StopHyperParameterTuningJob: Stopping, and every running trial is stopped."""
        self.status = "Stopping"
        self.last_modified_ms = engine.now_ms()
        for trial in self.trials:
            self._stop_trial(engine, backend, trial)

    def fail(self, engine: Any, backend: Any, reason: str) -> None:
        """Failed, and no trial of it left running."""
        for trial in self.trials:
            self._stop_trial(engine, backend, trial)
        self._end("Failed", engine.now_ms(), reason)

    def _end(self, status: str, now_ms: int, reason: str | None = None) -> None:
        self.status, self.end_ms, self.last_modified_ms = status, now_ms, now_ms
        self.failure_reason = reason

    def _done_launching(self) -> bool:
        return self._exhausted or len(self.trials) >= self.plan.max_jobs

    def _launch(self, engine: Any, backend: Any) -> None:
        while not self._done_launching() and self._running() < self.plan.max_parallel:
            suggestion = self.strategy.suggest()
            if suggestion is None:
                self._exhausted = True
                return
            index = len(self.trials) + 1
            name = f"{self.name}-{index:03d}-{secrets.token_hex(4)}"
            request = self.plan.trial_request(name, suggestion.hyperparameters)
            try:
                engine.create_training_job(backend, request)
            except ResourceLimitExceeded:
                self.strategy.observe(suggestion, None)
                return  # no instance free now; the next tick tries again
            except SagemakerClientError as error:
                self.strategy.observe(suggestion, None)
                self.fail(engine, backend, f"A training job could not be created: {error.message}")
                return
            job = backend.training_jobs[name]
            job.tuning_job_arn = self.arn
            job.changed()
            self.trials.append(Trial(index, name, suggestion, job, Series(self.plan.metric_regex)))
            self.last_modified_ms = engine.now_ms()

    def _running(self) -> int:
        return sum(1 for trial in self.trials if not trial.ended)

    def _stop_laggards(self, engine: Any, backend: Any) -> None:
        plan = self.plan
        if not plan.hyperband and plan.early_stopping != "Auto":
            return
        all_series = {trial.name: trial.series.values for trial in self.trials}
        for position, trial in enumerate(self.trials):
            if trial.status != "InProgress":
                continue
            if plan.hyperband:
                stop = early_stopping.hyperband_stop(trial.name, all_series, self._rungs_checked,
                                                     plan.min_resource, plan.max_resource, plan.minimize)
            else:
                earlier = [other.series.values for other in self.trials[:position]]
                stop = early_stopping.median_rule(trial.series.values, earlier, plan.minimize)
            if stop:
                self._stop_trial(engine, backend, trial)

    @staticmethod
    def _stop_trial(engine: Any, backend: Any, trial: Trial) -> None:
        if trial.status == "InProgress":
            engine.stop_training_job(backend, {"TrainingJobName": trial.name})

    def _objective(self, trial: Trial) -> float | None:
        """The objective from the trial's FinalMetricDataList (its last value), as SageMaker reads it."""
        for metric in trial.job.describe().get("FinalMetricDataList") or []:
            if metric.get("MetricName") == self.plan.metric_name:
                return float(metric["Value"])
        return trial.series.values[-1] if trial.series.values else None

    # ----- what the records keep (local_sagemaker/store/) --------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """What Describe shows that the request does not; the trials' own states are their training jobs'."""
        return {"status": self.status, "created": self.creation_ms, "modified": self.last_modified_ms,
                "ended": self.end_ms, "failure": self.failure_reason, "exhausted": self._exhausted,
                "trials": [[trial.index, trial.name, trial.suggestion.hyperparameters, trial.observed,
                            trial.objective] for trial in self.trials]}

    def restore_state(self, state: Mapping[str, Any], jobs: Mapping[str, Any]) -> None:
        """The job as `state()` kept it, its trials' training jobs found in `jobs` (a trial not there is left out)."""
        self.status, self.creation_ms = str(state["status"]), int(state["created"])
        self.last_modified_ms, self.end_ms = int(state.get("modified") or 0), state.get("ended")
        self.failure_reason, self._exhausted = state.get("failure"), bool(state.get("exhausted"))
        self.trials = [Trial(int(index), str(name), Suggestion(dict(tuned)), jobs[name],
                             Series(self.plan.metric_regex), bool(observed), objective)
                       for index, name, tuned, observed, objective in state.get("trials") or []
                       if name in jobs]

    # ----- answers -----------------------------------------------------------------------------------------------

    def counters(self) -> tuple[dict[str, int], dict[str, int]]:
        statuses = [trial.status for trial in self.trials]
        training = {
            "Completed": statuses.count("Completed"),
            "InProgress": sum(1 for s in statuses if s in ("InProgress", "Stopping")),
            "RetryableError": 0,
            "NonRetryableError": statuses.count("Failed"),
            "Stopped": statuses.count("Stopped"),
        }
        objective = {"Succeeded": 0, "Pending": 0, "Failed": 0}
        for trial in self.trials:
            if not trial.observed:
                objective["Pending"] += 1
            else:
                objective["Succeeded" if trial.objective is not None else "Failed"] += 1
        return training, objective

    def best(self) -> Trial | None:
        scored = [trial for trial in self.trials if trial.observed and trial.objective is not None]
        if not scored:
            return None
        sign = 1 if self.plan.minimize else -1
        return min(scored, key=lambda trial: (sign * float(trial.objective or 0.0), trial.index))

    def trial_summary(self, trial: Trial) -> dict[str, Any]:
        job = trial.job
        out: dict[str, Any] = {
            "TrainingJobName": trial.name,
            "TrainingJobArn": job.arn,
            "TuningJobName": self.name,
            "CreationTime": to_datetime(job.creation_ms),
            "TrainingJobStatus": trial.status,
            "TunedHyperParameters": dict(trial.suggestion.hyperparameters),
        }
        if job.training_start_ms is not None:
            out["TrainingStartTime"] = to_datetime(job.training_start_ms)
        if job.training_end_ms is not None:
            out["TrainingEndTime"] = to_datetime(job.training_end_ms)
        if job.failure_reason:
            out["FailureReason"] = job.failure_reason
        if trial.objective is not None:
            out["FinalHyperParameterTuningJobObjectiveMetric"] = {
                "Type": self.plan.objective_type, "MetricName": self.plan.metric_name, "Value": trial.objective}
        out["ObjectiveStatus"] = "Pending" if not trial.observed else (
            "Succeeded" if trial.objective is not None else "Failed")
        return out

    def describe(self, now_ms: int) -> dict[str, Any]:
        training, objective = self.counters()
        request: Mapping[str, Any] = self.plan.request
        out: dict[str, Any] = {
            "HyperParameterTuningJobName": self.name,
            "HyperParameterTuningJobArn": self.arn,
            "HyperParameterTuningJobConfig": self.plan.described_config(),
            "HyperParameterTuningJobStatus": self.status,
            "CreationTime": to_datetime(self.creation_ms),
            "LastModifiedTime": to_datetime(self.last_modified_ms or self.creation_ms),
            "TrainingJobStatusCounters": training,
            "ObjectiveStatusCounters": objective,
        }
        for member in ("TrainingJobDefinition", "WarmStartConfig", "Autotune"):
            if request.get(member) is not None:
                out[member] = copy.deepcopy(request[member])
        out["TrainingJobDefinition"] = self.plan.described_definition()
        if self.end_ms is not None:
            out["HyperParameterTuningEndTime"] = to_datetime(self.end_ms)
        best = self.best()
        if best is not None:
            out["BestTrainingJob"] = self.trial_summary(best)
        until = self.end_ms if self.end_ms is not None else now_ms
        out["ConsumedResources"] = {"RuntimeInSeconds": max(0, (until - self.creation_ms) // 1000)}
        if self.failure_reason:
            out["FailureReason"] = self.failure_reason
        return out

    def summary(self) -> dict[str, Any]:
        training, objective = self.counters()
        out: dict[str, Any] = {
            "HyperParameterTuningJobName": self.name,
            "HyperParameterTuningJobArn": self.arn,
            "HyperParameterTuningJobStatus": self.status,
            "Strategy": self.plan.strategy,
            "CreationTime": to_datetime(self.creation_ms),
            "LastModifiedTime": to_datetime(self.last_modified_ms or self.creation_ms),
            "TrainingJobStatusCounters": training,
            "ObjectiveStatusCounters": objective,
            "ResourceLimits": self.plan.described_config()["ResourceLimits"],
        }
        if self.end_ms is not None:
            out["HyperParameterTuningEndTime"] = to_datetime(self.end_ms)
        return out
