"""create / get / delete of a connector for one task type, whichever Flyte generation asks.

An adapter turns its SDK's task template and inputs into a task in task-file form (`read_task`) and the plugin's
Resource into its SDK's; the rest is here: the service's config checks at its first CreateTask, a served connector
taking data from URIs only, the task's problems as a FAILED meta, a meta handed back followed only at the config's own
endpoint and region (plugin/connectors/trust.py), and a delete that stops what it may.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from handlers.client import SageMakerClient
from handlers.errors import InputError, Problem, join_path, short_repr
from handlers.polling import poll_until
from plugin.config import Config
from plugin.connectors import trust
from plugin.connectors.meta import UNREADABLE_META, UNTRUSTED_META, JobMeta
from plugin.connectors.shared import SERVED_TASK_TYPES, SHARED, service_problems
from plugin.jobs.resource import Resource
from plugin.jobs.training_job import TrainingJobPlugin
from plugin.message import AlgorithmName
from plugin.meta import ResourceMeta
from plugin.task import CUSTOM_TASK, TUNING_TASK, is_uri
from plugin.tuning_message import HyperparameterTuningJob

log = logging.getLogger(__name__)

#: the input of a tuning task that carries its HyperparameterTuningJobConfig (both generations' task classes)
TUNING_CONFIG_INPUT = "hyperparameter_tuning_job_config"

TaskReader = Callable[[Config], dict[str, Any]]


class ConnectorCore:
    """One task type's connector behaviour, delegating to a TrainingJobPlugin (the shared one unless given)."""

    def __init__(self, task_type: str, plugin: TrainingJobPlugin | None = None, *, served: bool,
                 service_command: str) -> None:
        """`served`: whether it answers a connector service's requests (it then takes data from URIs only, never a
        file of its own machine); `service_command`: how that service is started, for the messages."""
        if task_type not in SERVED_TASK_TYPES:
            raise ValueError(f"task type must be one of {', '.join(SERVED_TASK_TYPES)}, not {task_type!r}")
        self.task_type = task_type
        self._plugin = plugin
        self.served = served
        self.service_command = service_command

    @property
    def plugin(self) -> TrainingJobPlugin:
        return self._plugin if self._plugin is not None else SHARED.for_task(self.task_type)

    def create(self, read_task: TaskReader, *, from_service: bool, what: str = "") -> JobMeta:
        """The meta of the job made for the task `read_task` gives; `from_service`: the request came from Flyte's
        propeller (it carries the task execution metadata), so the service's checks apply if its start skipped them."""
        plugin = self.plugin
        if from_service and self._plugin is None and not SHARED.configured:
            problems = service_problems(plugin.config)
            if not problems and plugin.config.backend == "local" and not self.served:
                problems = [Problem("backend", "local runs the command of every task on this machine, so a connector "
                                    "service serves it on loopback only, which it can do when started as "
                                    f"`{self.service_command}`: start it so, or use backend: aws")]
            if problems:
                log.error("the connector service's config cannot serve tasks: %s", InputError(problems))
                return JobMeta(error=f"the SageMaker connector service is not configured:\n{InputError(problems)}")
        try:
            task = read_task(plugin.config)
            if self.served:
                refuse_local_paths(task["inputs"])
            # Rendered once, by the plugin (its image registry): task templates may come from newer producers, so
            # TrainingJob fields unknown here are ignored (the task classes parse strictly).
            meta = plugin.create(task, ignore_unknown=True)
        except InputError as error:
            log.warning("%s: invalid task, failing it: %s", what or self.task_type, error)
            return JobMeta(error=f"invalid SageMaker training task:\n{error}")
        log.info("created SageMaker training job %s in %s", meta.job_name, meta.region)
        return JobMeta(job=meta)

    def get(self, meta: JobMeta, *, fresh: bool = False) -> tuple[Resource, ResourceMeta] | str:
        """The job's Resource and its (trusted) meta, or why the task failed. From the process's status tracker (one
        sweep for all jobs: what a service following many jobs needs), or asked of SageMaker when `fresh` (a local
        run following its own job closely, as `sagemaker-plugin run` does)."""
        if meta.job is None:
            return meta.error
        try:
            job = self.job_of(meta)
        except InputError as error:
            return str(error)
        return self.plugin.get_with_description(job, fresh=fresh, following=True)[0], job

    def job_of(self, meta: JobMeta) -> ResourceMeta:
        """The meta's job, to be followed at this connector's own endpoint and region; InputError (the field named)
        when the meta has no job, or names another endpoint or region, or a request this config would not make."""
        if meta.job is None:
            raise InputError(f"this task has no training job: {meta.error}", "resource_meta")
        plugin = self.plugin
        endpoint_url = plugin.client().endpoint_url  # the config's (a local run's: its own local SageMaker's)
        try:
            return trust.trusted_meta(meta.job, plugin.config, endpoint_url, plugin.kind)
        except InputError as error:
            raise InputError([Problem("", f"{UNTRUSTED_META}:"), *error.prefixed("resource_meta").problems]) from None

    def client_of(self, meta: JobMeta) -> tuple[SageMakerClient, str]:
        """The client and job name to read the job's logs and metrics with; InputError as `job_of`."""
        job = self.job_of(meta)
        return self.plugin.client(job.region, job.endpoint_url), job.job_name

    def running(self, meta: JobMeta) -> bool:
        """Whether the meta's job is there to stop: it has a job that SageMaker (asked now) does not see ended."""
        if meta.job is None:
            return False
        job = self.job_of(meta)  # InputError when this connector would not follow it
        return not self.plugin.get_with_description(job, fresh=True)[0].phase.is_terminal

    def stop_and_wait(self, meta: JobMeta, timeout: float) -> Resource:
        """A local run's Ctrl-C: delete, then the job as SageMaker describes it every half second until it has ended
        or `timeout` seconds have passed (the last answer)."""
        self.delete(meta)
        job = self.job_of(meta)
        return poll_until(lambda: self.plugin.get_with_description(job, fresh=True)[0],
                          lambda resource: resource.phase.is_terminal, 0.5, timeout)

    def delete(self, meta: JobMeta) -> None:
        """Stop the job, when the meta names one this connector may follow (idempotent)."""
        if meta.job is None:
            if meta.error.startswith(UNREADABLE_META):
                log.warning("DeleteTask: nothing can be stopped: %s", meta.error)
            return
        try:
            job = self.job_of(meta)
        except InputError as error:
            log.warning("DeleteTask: nothing is stopped: %s", error)
            return
        self.plugin.delete(job)


def refuse_local_paths(inputs: Mapping[str, Any]) -> None:
    """InputError for each channel that names a path of this machine: a served connector uploads none of its files."""
    problems = [Problem(join_path("inputs", name), f"{short_repr(value)} is a path on the connector's machine: "
                        "the connector service reads no local file; give an S3 URI")
                for name, value in inputs.items() if isinstance(value, str) and not is_uri(value)]
    if problems:
        raise InputError(problems)


def execution_of(metadata: Any) -> dict[str, Any] | None:
    """project, domain, name, node_id and retry_attempt of a TaskExecutionMetadata (flyteidl's or flyteidl2's: the
    same shape); None when absent."""
    task_execution_id = getattr(metadata, "task_execution_id", None)
    node = getattr(task_execution_id, "node_execution_id", None)
    workflow = getattr(node, "execution_id", None)
    project, domain, name = (getattr(workflow, key, "") or "" for key in ("project", "domain", "name"))
    if not (project and domain and name):
        return None
    return {"project": project, "domain": domain, "name": name, "node_id": getattr(node, "node_id", "") or "n0",
            "retry_attempt": int(getattr(task_execution_id, "retry_attempt", 0) or 0)}


def task_file(task_type: str, custom: Mapping[str, Any], inputs: dict[str, Any], container: dict[str, Any] | None,
              execution: dict[str, Any] | None, output_prefix: str | None, config: Config | None) -> dict[str, Any]:
    """The task, in task-file form, from a TaskTemplate's parts (either generation's, already read).

    custom is the TrainingJob (tuning: the HyperparameterTuningJob) in proto3 JSON; `inputs` the channels' URIs and
    static_hyperparameters (tuning: and its config); the container (image, command, args, env) counts for custom
    training. `output_prefix` (Flyte's) is used for the model only with the aws backend when config names no
    output_prefix and it is an S3 URI.
    """
    task: dict[str, Any] = {"task_type": task_type, "training_job": dict(custom), "inputs": inputs}
    custom_trials = False
    if task_type == TUNING_TASK:  # custom is the HyperparameterTuningJob; the config an input
        task["hyperparameter_tuning_job"] = task.pop("training_job")
        task["tuning_config"] = task["inputs"].pop(TUNING_CONFIG_INPUT, None)
        tuning_job, _ = HyperparameterTuningJob.read(task["hyperparameter_tuning_job"], ignore_unknown=True)
        custom_trials = tuning_job.training_job.algorithm_specification.algorithm_name == AlgorithmName.CUSTOM
    if (task_type == CUSTOM_TASK or custom_trials) and container is not None:
        task["container"] = container
    if execution is not None:
        task["execution"] = execution
    if (config is not None and config.backend == "aws" and not config.output_prefix and output_prefix
            and output_prefix.startswith("s3://")):
        task["output_prefix"] = output_prefix
    return task


def whole(value: Any) -> Any:
    """A whole float as an int: a protobuf Struct keeps every number as a double (20 arrives as 20.0), which an
    algorithm parsing an integer hyperparameter refuses."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value
