"""The tuning-job operations of one LocalSageMaker, answered as SageMaker answers them, and the drivers that move
each job: one thread per running tuning job, which ticks it under the server's lock whenever a trial ends (the
engine's `settle` wakes it) and a few times a second to follow the trials' metrics.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from handlers.service_model import validate_request
from local_sagemaker import errors
from local_sagemaker.tuning import listing, strategies
from local_sagemaker.tuning.job import TuningJob
from local_sagemaker.tuning.plan import build

#: How often a driver looks at its trials' metrics when nothing wakes it earlier.
POLL_SECONDS = 0.1

Key = tuple[str, str, str]  # account, region, tuning job name


def not_stoppable(status: str) -> errors.ValidationException:
    return errors.ValidationException(
        f"The request was rejected because the hyperparameter tuning job is in status {status}.")


class TuningService:
    """Tuning jobs by account, region and name (a registry) and their drivers."""

    def __init__(self, engine: Any) -> None:
        self._engine = engine
        self._jobs: dict[Key, TuningJob] = {}
        self._backends: dict[Key, Any] = {}
        self._threads: list[threading.Thread] = []
        self._wake = threading.Condition(threading.Lock())
        self._closed = threading.Event()
        self._generation = 0

    # ----- operations (called under the server's lock) -------------------------------------------------------

    def create(self, backend: Any, params: Mapping[str, Any]) -> dict[str, Any]:
        self._engine.run_due()
        plan = build(params)
        # What CreateTrainingJob would refuse in every trial (e.g. repeated channel names) is refused now.
        sample = {r.name: r.values[0] if r.values else r.value(0.0) for r in plan.ranges}
        self._engine.check_create(plan.trial_request(f"{plan.name}-001-00000000", sample))
        key = (backend.account_id, backend.region_name, plan.name)
        arn = tuning_arn(backend, plan.name)
        if self._jobs.get(key) is not None:
            raise name_in_use(arn)
        strategy = strategies.make(plan.strategy, plan.ranges, plan.seed, plan.minimize, plan.max_jobs)
        now = self._engine.now_ms()
        job = TuningJob(plan, arn, backend.account_id, backend.region_name, strategy, now, last_modified_ms=now)
        job.tags = [{"Key": str(t["Key"]), "Value": str(t["Value"])} for t in params.get("Tags") or ()]
        records = self._engine.records
        if records is not None and not records.claim_tuning(job):  # a name is taken for good, by any server
            raise name_in_use(arn)
        self._register(key, job, backend)
        self._engine.events.tuning_changed(job)
        self._start_driver(key)
        return {"HyperParameterTuningJobArn": arn}

    def find(self, account: str, region: str, name: str) -> TuningJob | None:
        return self._jobs.get((account, region, name))

    def restore(self, backend: Any, request: Mapping[str, Any], state: Mapping[str, Any],
                current: TuningJob | None) -> TuningJob:
        """A tuning job as the data folder's records keep it (ended, or run by another local SageMaker): shown
        here, never driven; `current` is the one shown so far, brought up to date."""
        job = current
        if job is None:
            plan = build(request)
            job = TuningJob(plan, tuning_arn(backend, plan.name), backend.account_id, backend.region_name,
                            strategies.Kept(), int(state["created"]))
            self._register((backend.account_id, backend.region_name, plan.name), job, backend)
        job.restore_state(state, backend.training_jobs)
        job.tags = [dict(tag) for tag in request.get("Tags") or ()]
        return job

    def _register(self, key: Key, job: TuningJob, backend: Any) -> None:
        self._jobs[key], self._backends[key] = job, backend
        # moto's ListTags/AddTags/DeleteTags find a resource by the name in its ARN, in this dict of its backend
        backend.hyper_parameter_tuning_jobs[job.arn.rsplit("/", 1)[1]] = job

    def describe(self, backend: Any, params: Mapping[str, Any]) -> dict[str, Any]:
        return self._find(backend, "DescribeHyperParameterTuningJob", params).describe(self._engine.now_ms())

    def stop(self, backend: Any, params: Mapping[str, Any]) -> dict[str, Any]:
        job = self._find(backend, "StopHyperParameterTuningJob", params)
        if job.status != "InProgress":
            raise not_stoppable(job.status)
        records = self._engine.records
        if records is not None and records.runs_elsewhere(job):
            records.request_stop(job)  # another server on the data folder runs it: that one stops it
            return {}
        job.stop(self._engine, backend)
        self._recorded(job)
        self.wake()
        return {}

    def list_jobs(self, backend: Any, params: Mapping[str, Any]) -> dict[str, Any]:
        self._engine.run_due()
        _raise_if_invalid("ListHyperParameterTuningJobs", params)
        jobs = [job for (account, region, _), job in self._jobs.items()
                if (account, region) == (backend.account_id, backend.region_name)]
        return listing.list_tuning_jobs(jobs, params)

    def list_trials(self, backend: Any, params: Mapping[str, Any]) -> dict[str, Any]:
        job = self._find(backend, "ListTrainingJobsForHyperParameterTuningJob", params)
        return listing.list_trials(job, params)

    # ----- drivers --------------------------------------------------------------------------------------------

    def wake(self) -> None:
        """A trial may have moved (ended, stopped): the drivers look now instead of at their next poll."""
        with self._wake:
            self._wake.notify_all()

    def clear(self) -> None:
        """moto's state was reset: every tuning job is forgotten and its driver ends (the trials die with the
        engine's runs)."""
        self._generation += 1
        self._jobs.clear()
        self._backends.clear()
        self.wake()

    def shutdown(self, timeout: float = 5.0) -> None:
        """The server stops (called without its lock held): the drivers end."""
        self._closed.set()
        self.wake()
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()

    def _start_driver(self, key: Key) -> None:
        self._threads = [thread for thread in self._threads if thread.is_alive()]
        thread = threading.Thread(target=self._drive, args=(key, self._generation),
                                  name=f"tuning-{key[2]}", daemon=True)
        self._threads.append(thread)
        thread.start()

    def _drive(self, key: Key, generation: int) -> None:
        lock: threading.Lock = self._engine.lock
        while not self._closed.is_set():
            with lock:
                job = self._jobs.get(key)
                if job is None or generation != self._generation:
                    return
                try:
                    self._engine.run_due()
                    job.tick(self._engine, self._backends[key])
                except Exception as error:  # a driver must not die silently and leave the job InProgress
                    reason = f"InternalServerError: the local tuner failed: {error!r}"
                    try:
                        job.fail(self._engine, self._backends[key], reason)
                    except Exception:
                        job.status, job.failure_reason = "Failed", reason
                self._recorded(job)
                if job.ended:
                    return
            with self._wake:
                self._wake.wait(POLL_SECONDS)

    def _recorded(self, job: TuningJob) -> None:
        self._engine.events.tuning_changed(job)
        records = self._engine.records
        if records is not None:
            records.tuning_changed(job)

    def _find(self, backend: Any, operation: str, params: Mapping[str, Any]) -> TuningJob:
        self._engine.run_due()
        _raise_if_invalid(operation, params)
        key = (backend.account_id, backend.region_name, str(params.get("HyperParameterTuningJobName")))
        job = self._jobs.get(key)
        if job is None and self._engine.records is not None:  # made a moment ago by another server on the folder
            self._engine.records.sync(force=True)
            job = self._jobs.get(key)
        if job is None:
            raise errors.not_found()
        return job


def tuning_arn(backend: Any, name: str) -> str:
    return f"arn:aws:sagemaker:{backend.region_name}:{backend.account_id}:hyper-parameter-tuning-job/{name.lower()}"


def name_in_use(arn: str) -> errors.ResourceInUse:
    return errors.ResourceInUse(
        "Hyperparameter tuning job names must be unique within an AWS account and region, and a hyperparameter "
        f"tuning job with this name already exists ({arn})")


def _raise_if_invalid(operation: str, params: Mapping[str, Any]) -> None:
    problems = validate_request(operation, params)
    if problems:
        raise errors.invalid(problems, params)


