"""The training-job operations of one LocalSageMaker: checks and AWS's answers, the jobs' clock, capacity.

One heap of wake-up times replaces a thread per job: `run_due(now)` advances just the jobs whose next step or log
batch is due, so a request costs O(due work + log n), never O(all jobs). The server calls it at the start of every
request, SageMaker or not, so whatever a client reads (a job, its logs, its model in S3) is current as of that request.
Callers serialize access (server.py holds `lock` per request); with `execution: run` each job's runner thread
(runner.py) takes the same lock whenever it changes its job or touches moto.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from handlers.errors import Problem
from handlers.local import LOCAL_ACCOUNT_ID, LocalSettings
from handlers.service_model import validate_request
from image_registry import ImageRegistry
from local_sagemaker import errors, storage
from local_sagemaker.api.events import Emitter
from local_sagemaker.jobs import LocalTrainingJob
from local_sagemaker.listing import list_training_jobs
from local_sagemaker.tuning.service import TuningService

if TYPE_CHECKING:
    from local_sagemaker.store import Records

#: Members that moto would crash without (HTTP 500) and that classic training jobs need.
_NEEDED = ("AlgorithmSpecification", "ResourceConfig", "StoppingCondition")

CapacityKey = tuple[str, str, str]  # account, region, instance type


class Engine:
    """State of the jobs created through one server: their wake-ups and the instances they hold."""

    def __init__(self, settings: LocalSettings, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self._clock = clock
        self._heap: list[tuple[int, int, LocalTrainingJob]] = []
        self._sequence = itertools.count()
        self._in_use: dict[CapacityKey, int] = {}
        self._holding: dict[int, list[tuple[CapacityKey, int]]] = {}
        #: Held while serving a request and while a job's runner changes its job or touches moto's backends.
        self.lock = threading.Lock()
        #: What a job's processes use to reach this server (AWS_ENDPOINT_URL, keys, region); LocalSageMaker.start()
        #: sets the endpoint once it is known. Never the caller's own credentials.
        self.client_env: dict[str, str] = {
            "AWS_ENDPOINT_URL": "",
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
        }
        self._runs: Any = None  # runner.Runs: the runners of the jobs that run for real
        if settings.execution == "run":
            self._runs = self._make_runs()  # now, not at the first create: its imports would delay that job
        self._seeded = False  # settings.buckets made since the last reset of moto's state
        #: Hyperparameter tuning jobs: their trials are this engine's training jobs.
        self.tuning = TuningService(self)
        #: The data folder's records (local_sagemaker/store/), when the server keeps its jobs there.
        self.records: Records | None = None
        #: EventBridge events of the jobs' changes (api/events.py)
        self.events = Emitter(settings, self.now_ms)

    def now_ms(self) -> int:
        return round(self._clock() * 1000)

    def clear(self) -> None:
        """Forget every job (after moto's state was reset); running jobs' processes are killed."""
        self.tuning.clear()
        if self._runs is not None:
            self._runs.abandon_all()
        self._heap.clear()
        self._in_use.clear()
        self._holding.clear()
        self._seeded = False
        self.events.clear()

    def run_due(self, now_ms: int | None = None) -> None:
        if self.records is not None:
            self.records.sync()  # what other local SageMakers on the data folder wrote
        if not self._seeded:  # the first request after a start or a reset finds the account's buckets there
            self._seeded = True
            storage.make_buckets(LOCAL_ACCOUNT_ID, self.settings.buckets)
        now = self.now_ms() if now_ms is None else now_ms
        while self._heap and self._heap[0][0] <= now:
            wake, _, job = heapq.heappop(self._heap)
            if job.wake_ms != wake:
                continue  # superseded by an earlier wake-up
            job.wake_ms = None
            self._advance(job, now)
        self.events.run_due(now)

    def in_use(self, account_id: str, region: str, instance_type: str) -> int:
        """Instances of a type held by InProgress and Stopping jobs."""
        return self._in_use.get((account_id, region, instance_type), 0)

    # ----- operations (each gets moto's backend for the caller's account and region, and the JSON request) --------

    def create_training_job(self, backend: Any, params: Mapping[str, Any]) -> dict[str, Any]:
        now = self.now_ms()
        self.run_due(now)
        self.check_create(params)
        name = params["TrainingJobName"]
        existing = backend.training_jobs.get(name)
        if existing is not None:
            raise errors.name_in_use(existing.arn)
        account, region = backend.account_id, backend.region_name
        demand = _instances(params.get("ResourceConfig") or {})
        for instance_type, count in demand:
            limit = self.settings.instances.get(instance_type)
            held = self.in_use(account, region, instance_type)
            if limit is not None and held + count > limit:
                raise errors.instance_limit(instance_type, limit, held, count)
        job = self._new_job(account, region, params, now)
        if self.records is not None and not self.records.claim_training(job):  # taken for good, by any server
            raise errors.name_in_use(job.arn)
        backend.training_jobs[name] = job
        holding = [((account, region, instance_type), count) for instance_type, count in demand]
        for key, count in holding:
            self._in_use[key] = self._in_use.get(key, 0) + count
        self._holding[id(job)] = holding
        job.on_change = self.events.training_changed
        self._advance(job, now)
        self.events.training_changed(job)  # a job that entered Starting as it was made (runner/runjob.py)
        if self._runs is not None and getattr(job, "stop_event", None) is not None:
            self._runs.start(job)
        return {"TrainingJobArn": job.arn}

    def describe_training_job(self, backend: Any, params: Mapping[str, Any]) -> dict[str, Any]:
        job = self._find(backend, "DescribeTrainingJob", params)
        if not isinstance(job, LocalTrainingJob):
            return dict(job.response_object)
        return job.describe()

    def stop_training_job(self, backend: Any, params: Mapping[str, Any]) -> dict[str, Any]:
        job = self._find(backend, "StopTrainingJob", params)
        status = job.training_job_status
        if not isinstance(job, LocalTrainingJob) or status != "InProgress":
            raise errors.not_stoppable(status)
        if self.records is not None and self.records.runs_elsewhere(job):
            self.records.request_stop(job)  # another server on the data folder runs it: that one stops it
            return {}
        now = self.now_ms()
        job.stop(now, round(self.settings.scaled(self.settings.stop_seconds) * 1000))
        self._advance(job, now)
        return {}

    def list_training_jobs(self, backend: Any, params: Mapping[str, Any]) -> dict[str, Any]:
        self.run_due()
        _raise_if_invalid("ListTrainingJobs", params)
        jobs = [job for job in backend.training_jobs.values() if isinstance(job, LocalTrainingJob)]
        return list_training_jobs(jobs, params)

    def shutdown(self) -> None:
        """The server stops: every running job's processes are killed (called without the lock held)."""
        self.tuning.shutdown()
        if self._runs is not None:
            self._runs.shutdown()

    def tags_changed(self, backend: Any, arn: str) -> None:
        """AddTags or DeleteTags went through moto: the records keep a job's tags."""
        if self.records is not None:
            self.records.tags_changed(backend, arn)

    def settle(self, job: LocalTrainingJob) -> None:
        """A job ended outside a request (its runner): frees the instances it held. Called under the lock."""
        self._advance(job, self.now_ms())
        self.tuning.wake()

    # ----- hyperparameter tuning (local_sagemaker/tuning) ---------------------------------------------------------

    def create_hyper_parameter_tuning_job(self, backend: Any, params: Mapping[str, Any]) -> dict[str, Any]:
        return self.tuning.create(backend, params)

    def describe_hyper_parameter_tuning_job(self, backend: Any, params: Mapping[str, Any]) -> dict[str, Any]:
        return self.tuning.describe(backend, params)

    def stop_hyper_parameter_tuning_job(self, backend: Any, params: Mapping[str, Any]) -> dict[str, Any]:
        return self.tuning.stop(backend, params)

    def list_hyper_parameter_tuning_jobs(self, backend: Any, params: Mapping[str, Any]) -> dict[str, Any]:
        return self.tuning.list_jobs(backend, params)

    def list_training_jobs_for_hyper_parameter_tuning_job(self, backend: Any, params: Mapping[str, Any]
                                                          ) -> dict[str, Any]:
        return self.tuning.list_trials(backend, params)

    # ----- internals ------------------------------------------------------------------------------------------

    def _new_job(self, account: str, region: str, params: Mapping[str, Any], now: int) -> LocalTrainingJob:
        """A job that runs for real (`execution: run`), or one that plays the timeline."""
        if self.settings.execution != "run":
            return LocalTrainingJob(account, region, params, self.settings, now)
        from local_sagemaker.runner import runner
        from local_sagemaker.runner.builtin import xgboost_version
        from local_sagemaker.runner.runjob import RunTrainingJob

        image = str(params["AlgorithmSpecification"].get("TrainingImage", ""))
        if xgboost_version(image) and not runner.xgboost_runnable():
            return runner.simulated_fallback(LocalTrainingJob(account, region, params, self.settings, now))
        if self._runs is None:
            self._runs = self._make_runs()
        return RunTrainingJob(account, region, params, self.settings, now)

    def _make_runs(self) -> Any:
        from local_sagemaker.runner import runner

        return runner.Runs(runner.RunContext(self.lock, self.settings, lambda: self.client_env, self.settle))

    def _find(self, backend: Any, operation: str, params: Mapping[str, Any]) -> Any:
        now = self.now_ms()
        self.run_due(now)
        _raise_if_invalid(operation, params)
        job = backend.training_jobs.get(params.get("TrainingJobName"))
        if job is None and self.records is not None:  # made a moment ago by another server on the data folder
            self.records.sync(force=True)
            job = backend.training_jobs.get(params.get("TrainingJobName"))
        if job is None:
            raise errors.not_found()
        if isinstance(job, LocalTrainingJob):
            self._advance(job, now)  # exact to the millisecond, even between the heap's log batches
        return job

    def _advance(self, job: LocalTrainingJob, now_ms: int) -> None:
        job.advance(now_ms)
        if job.finished:
            for key, count in self._holding.pop(id(job), []):
                self._in_use[key] -= count
        wake = job.next_wake_ms()
        if wake is not None and (job.wake_ms is None or wake < job.wake_ms):
            job.wake_ms = wake
            heapq.heappush(self._heap, (wake, next(self._sequence), job))

    def check_create(self, params: Mapping[str, Any]) -> None:
        problems = [Problem(member, "Member must not be null") for member in _NEEDED if params.get(member) is None]
        problems += validate_request("CreateTrainingJob", params)
        if problems:
            raise errors.invalid(problems, params)
        algorithm = params["AlgorithmSpecification"]
        if algorithm.get("MetricDefinitions") and ImageRegistry.default().identify(algorithm.get("TrainingImage", "")):
            raise errors.ValidationException(errors.BUILT_IN_METRICS)
        stopping = params["StoppingCondition"]
        max_wait, max_runtime = stopping.get("MaxWaitTimeInSeconds"), stopping.get("MaxRuntimeInSeconds", 86400)
        if params.get("EnableManagedSpotTraining"):
            if max_wait is None or max_wait < max_runtime:
                raise errors.ValidationException(
                    "Invalid MaxWaitTimeInSeconds. It must be present and be greater than or equal to "
                    "MaxRuntimeInSeconds"
                )
        elif max_wait is not None:
            raise errors.ValidationException(
                "MaxWaitTimeInSeconds is only supported with managed spot training (EnableManagedSpotTraining)."
            )
        channels = [channel.get("ChannelName") for channel in params.get("InputDataConfig") or []]
        duplicates = sorted({name for name in channels if channels.count(name) > 1})
        if duplicates:
            raise errors.ValidationException(f"Channel names must be unique; duplicated: {', '.join(duplicates)}")


def _raise_if_invalid(operation: str, params: Mapping[str, Any]) -> None:
    problems = validate_request(operation, params)
    if problems:
        raise errors.invalid(problems, params)


def _instances(resources: Mapping[str, Any]) -> list[tuple[str, int]]:
    """(instance type, count) pairs a job holds: one pair, or one per heterogeneous-cluster instance group."""
    if resources.get("InstanceType"):
        return [(str(resources["InstanceType"]), int(resources.get("InstanceCount") or 1))]
    return [
        (str(group["InstanceType"]), int(group.get("InstanceCount") or 1))
        for group in resources.get("InstanceGroups") or []
        if group.get("InstanceType")
    ]
