"""flytekit's async connector for the SageMaker task types, and its resource meta."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from flyteidl.core.execution_pb2 import TaskExecution  # type: ignore[import-untyped, import-not-found, unused-ignore]

try:
    from flytekit.exceptions.system import (  # type: ignore[import-untyped, import-not-found, unused-ignore]
        FlyteConnectorNotFound,
    )
    from flytekit.extend.backend.base_connector import (  # type: ignore[import-untyped, import-not-found, unused-ignore]
        AsyncConnectorBase,
        ConnectorRegistry,
        Resource,
    )
    from flytekit.extend.backend.base_connector import (  # type: ignore[import-untyped, import-not-found, unused-ignore]
        ResourceMeta as FlyteResourceMeta,
    )
except ImportError as _error:  # flytekit before the connector names (AgentRegistry, AsyncAgentBase, ...)
    raise ImportError(f"plugin.flyte needs flytekit >= 1.16 (its connector API): pip install "
                      f"'sagemaker-plugin[flyte]' ({_error})") from _error

from handlers.errors import InputError, Problem
from plugin.flyte import observe, trust
from plugin.flyte.literals import refuse_local_paths, task_from_template, to_flyte_resource
from plugin.flyte.service import SERVED_TASK_TYPES, SHARED, service_problems, serving
from plugin.jobs.training_job import TrainingJobPlugin
from plugin.meta import JsonRefusal, ResourceMeta, json_object
from plugin.task import BUILTIN_TASK

log = logging.getLogger(__name__)

CONNECTOR_NAME = "SageMaker Training Job Connector"
UNREADABLE_META = "the SageMaker connector cannot read this task's resource meta"
UNTRUSTED_META = "the SageMaker connector will not follow this task's resource meta"
#: the largest meta read: propeller keeps it in the task's custom resource, which etcd caps at 1.5 MiB
MAX_META_BYTES = 1024 * 1024


# --- resource meta ----------------------------------------------------------------------------------------------------


@dataclass
class SageMakerJobMeta(FlyteResourceMeta):  # type: ignore[misc]
    """flytekit's ResourceMeta for one training job: the plugin's own ResourceMeta, as JSON.

    `error` is set instead when create found the task invalid: get then reports FAILED with every problem, so that
    Flyte fails the task for good (a user error) instead of retrying a create that cannot succeed. A meta that cannot
    be read (corrupt, empty, or from another version) decodes to such an error too: GetTask then answers FAILED
    saying why, rather than a gRPC INTERNAL error that propeller would retry as a system error.
    """

    job: ResourceMeta | None = None
    error: str = ""

    def encode(self) -> bytes:
        data = {"job": json.loads(self.job.encode()) if self.job is not None else None, "error": self.error}
        return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, data: bytes | str) -> SageMakerJobMeta:
        try:
            return cls.parse(data)
        except InputError as error:
            log.warning("unreadable resource meta (%d bytes): %s", len(data), error)
            return cls(error=f"{UNREADABLE_META}: {error}. The task "
                       "cannot be followed; if a training job was started for it, find it in the SageMaker console "
                       "(named <project>-<domain>-<execution>-<node>-<attempt>) and stop it there if it still runs")

    @classmethod
    def parse(cls, data: bytes | str) -> SageMakerJobMeta:
        """decode, strictly: InputError saying what is wrong when the meta cannot be read."""
        if not data:
            raise InputError("it is empty")
        if len(data) > MAX_META_BYTES:
            raise InputError(f"it is {len(data)} bytes long, more than the {MAX_META_BYTES} a meta of this connector "
                             "ever takes")
        value = json_object(data)
        not_a_meta = "it is not a JSON object with keys job and error (written by another connector?)"
        if isinstance(value, JsonRefusal):
            raise InputError(value.say(not_json="it is not JSON ({error})", not_object=not_a_meta,
                                       too_deep="it is nested too deeply to be a meta of this connector"))
        if set(value) != {"job", "error"}:
            raise InputError(not_a_meta)
        job, failure = value["job"], value["error"]
        if not isinstance(failure, str) or (job is None) == (not failure):
            raise InputError("it needs either a job or an error")
        try:
            return cls(job=ResourceMeta.decode(json.dumps(job)) if job is not None else None, error=failure)
        except InputError as error:  # e.g. written by another version of the plugin
            name = job.get("job_name") if isinstance(job, dict) else None
            raise InputError(f"its job{f' ({name})' if isinstance(name, str) else ''}: {error}") from None


# --- the connector ----------------------------------------------------------------------------------------------------


class SageMakerTrainingConnector(AsyncConnectorBase):  # type: ignore[misc]
    """flytekit's async connector for one task type, delegating to a TrainingJobPlugin (shared unless given)."""

    name = CONNECTOR_NAME

    def __init__(self, task_type: str = BUILTIN_TASK, plugin: TrainingJobPlugin | None = None, *,
                 served: bool | None = None) -> None:
        """`served`: whether the connector answers the connector service's requests (default: `serving()`); it then
        takes data from URIs only, never a file of its own machine."""
        if task_type not in SERVED_TASK_TYPES:
            raise ValueError(f"task type must be one of {', '.join(SERVED_TASK_TYPES)}, not {task_type!r}")
        super().__init__(task_type_name=task_type, metadata_type=SageMakerJobMeta)
        self._plugin = plugin
        self.served = serving() if served is None else served

    @property
    def plugin(self) -> TrainingJobPlugin:
        if self._plugin is not None:
            return self._plugin
        return SHARED.for_task(self.task_category.name)

    def create(self, task_template: Any, output_prefix: str = "", inputs: Any = None,
               task_execution_metadata: Any = None, **kwargs: Any) -> SageMakerJobMeta:
        plugin = self.plugin
        if task_execution_metadata is not None and self._plugin is None and not SHARED.configured:
            # propeller's CreateTask in a service `serving()` did not recognise: the same rules as at its start
            problems = service_problems(plugin.config)
            if not problems and plugin.config.backend == "local" and not self.served:
                problems = [Problem("backend", "local runs the command of every task on this machine, so a connector "
                                    "service serves it on loopback only, which it can do when started as `pyflyte "
                                    "serve connector`: start it so, or use backend: aws")]
            if problems:
                log.error("the connector service's config cannot serve tasks: %s", InputError(problems))
                return SageMakerJobMeta(error=f"the SageMaker connector service is not configured:\n"
                                        f"{InputError(problems)}")
        try:
            task = task_from_template(task_template, inputs, output_prefix, task_execution_metadata,
                                      config=plugin.config)
            if self.served:
                refuse_local_paths(task["inputs"])
            # Rendered once, by the plugin (its image registry): task templates may come from newer producers, so
            # TrainingJob fields unknown here are ignored (the task types of this module parse strictly).
            meta = plugin.create(task, ignore_unknown=True)
        except InputError as error:
            log.warning("%s: invalid task, failing it: %s", getattr(task_template, "id", task_template.type), error)
            return SageMakerJobMeta(error=f"invalid SageMaker training task:\n{error}")
        log.info("created SageMaker training job %s in %s", meta.job_name, meta.region)
        return SageMakerJobMeta(job=meta)

    def get(self, resource_meta: SageMakerJobMeta, **kwargs: Any) -> Any:
        if resource_meta.job is None:
            return Resource(phase=TaskExecution.FAILED, message=resource_meta.error)
        try:
            job = self._job_of(resource_meta)
        except InputError as error:
            return Resource(phase=TaskExecution.FAILED, message=str(error))
        return to_flyte_resource(self.plugin.get(job), job.job_name, job.region)

    def get_logs(self, resource_meta: SageMakerJobMeta, token: str = "", lines: int = 0, **kwargs: Any) -> Any:
        """The next page of the hosts' CloudWatch lines after `token`: the body (the header with the next token is
        the first message of `log_stream`, which the connector service streams)."""
        return self.log_stream(resource_meta, token=token, lines=lines)[-1]

    def log_stream(self, resource_meta: SageMakerJobMeta, token: str = "", lines: int = 0,
                   **kwargs: Any) -> list[Any]:
        """GetTaskLogs' stream: a header with the next page's token, then the lines."""
        job = self._job_of(resource_meta)
        return observe.log_responses(self.plugin.client(job.region, job.endpoint_url), job.job_name,
                                           token, lines)

    def get_metrics(self, resource_meta: SageMakerJobMeta, queries: Sequence[str] = (), start_time: Any = None,
                    end_time: Any = None, step: float = 0.0, **kwargs: Any) -> Any:
        """The job's metric series per host (`queries` names some; none = all), over [start_time, end_time)."""
        job = self._job_of(resource_meta)
        return observe.metrics_response(self.plugin.client(job.region, job.endpoint_url), job.job_name,
                                              queries, start_time, end_time, step)

    def _job_of(self, resource_meta: SageMakerJobMeta) -> ResourceMeta:
        """The meta's job, to be followed at this connector's own endpoint and region; InputError (the field named)
        when the meta has no job, or names another endpoint or region, or a request this config would not make."""
        if resource_meta.job is None:
            raise InputError(f"this task has no training job: {resource_meta.error}", "resource_meta")
        plugin = self.plugin
        endpoint_url = plugin.client().endpoint_url  # the config's (a local run's: its own local SageMaker's)
        try:
            return trust.trusted_meta(resource_meta.job, plugin.config, endpoint_url, plugin.kind)
        except InputError as error:
            raise InputError([Problem("", f"{UNTRUSTED_META}:"), *error.prefixed("resource_meta").problems]) from None

    def delete(self, resource_meta: SageMakerJobMeta, **kwargs: Any) -> None:
        if resource_meta.job is None:
            if resource_meta.error.startswith(UNREADABLE_META):
                log.warning("DeleteTask: nothing can be stopped: %s", resource_meta.error)
            return
        try:
            job = self._job_of(resource_meta)
        except InputError as error:
            log.warning("DeleteTask: nothing is stopped: %s", error)
            return
        self.plugin.delete(job)


def register() -> None:
    """Register a connector for each task type with flytekit's ConnectorRegistry (once; done at import)."""
    for task_type in SERVED_TASK_TYPES:
        try:
            known = ConnectorRegistry.get_connector(task_type)
        except FlyteConnectorNotFound:
            known = None
        if isinstance(known, SageMakerTrainingConnector):
            continue
        if known is not None:
            # flytekit imports this module while importing itself (the flytekit.plugins entry point): raising here
            # would break every `import flytekit`. The connector registered first keeps the task type.
            log.warning("task type %s is already served by %r; the SageMaker connector does not replace it",
                        task_type, known)
            continue
        ConnectorRegistry.register(SageMakerTrainingConnector(task_type))
