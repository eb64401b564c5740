"""flytekit's async connector for the SageMaker task types, and its resource meta."""

from __future__ import annotations

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

from plugin.connectors.core import ConnectorCore
from plugin.connectors.meta import MAX_META_BYTES, UNREADABLE_META, UNTRUSTED_META, JobMeta
from plugin.flyte import observe
from plugin.flyte.literals import task_from_template, to_flyte_resource
from plugin.flyte.service import SERVED_TASK_TYPES, serving
from plugin.jobs.resource import Resource as PluginResource
from plugin.jobs.training_job import TrainingJobPlugin
from plugin.task import BUILTIN_TASK

log = logging.getLogger(__name__)

CONNECTOR_NAME = "SageMaker Training Job Connector"
__all__ = ["CONNECTOR_NAME", "MAX_META_BYTES", "UNREADABLE_META", "UNTRUSTED_META", "SageMakerJobMeta",
           "SageMakerTrainingConnector", "register"]


# --- the connector ----------------------------------------------------------------------------------------------------


@dataclass
class SageMakerJobMeta(JobMeta, FlyteResourceMeta):  # type: ignore[misc]
    """flytekit's ResourceMeta for one training job: plugin/connectors/meta.py's JSON (a job, or why it failed)."""


class SageMakerTrainingConnector(AsyncConnectorBase):  # type: ignore[misc]
    """flytekit's async connector for one task type: a thin adapter of plugin/connectors/core.py's ConnectorCore."""

    name = CONNECTOR_NAME

    def __init__(self, task_type: str = BUILTIN_TASK, plugin: TrainingJobPlugin | None = None, *,
                 served: bool | None = None) -> None:
        """`served`: whether the connector answers the connector service's requests (default: `serving()`); it then
        takes data from URIs only, never a file of its own machine."""
        self.core = ConnectorCore(task_type, plugin, served=serving() if served is None else served,
                                  service_command="pyflyte serve connector")
        super().__init__(task_type_name=task_type, metadata_type=SageMakerJobMeta)

    @property
    def served(self) -> bool:
        return self.core.served

    @property
    def plugin(self) -> TrainingJobPlugin:
        return self.core.plugin

    def create(self, task_template: Any, output_prefix: str = "", inputs: Any = None,
               task_execution_metadata: Any = None, **kwargs: Any) -> SageMakerJobMeta:
        meta = self.core.create(
            lambda config: task_from_template(task_template, inputs, output_prefix, task_execution_metadata,
                                              config=config),
            from_service=task_execution_metadata is not None, what=str(getattr(task_template, "id", "")))
        return SageMakerJobMeta(job=meta.job, error=meta.error)

    def get(self, resource_meta: SageMakerJobMeta, **kwargs: Any) -> Any:
        followed = self.core.get(resource_meta)
        if isinstance(followed, str):
            return Resource(phase=TaskExecution.FAILED, message=followed)
        resource, job = followed
        return to_flyte_resource(resource, job.job_name, job.region)

    def get_logs(self, resource_meta: SageMakerJobMeta, token: str = "", lines: int = 0, **kwargs: Any) -> Any:
        """The next page of the hosts' CloudWatch lines after `token`: the body (the header with the next token is
        the first message of `log_stream`, which the connector service streams)."""
        return self.log_stream(resource_meta, token=token, lines=lines)[-1]

    def log_stream(self, resource_meta: SageMakerJobMeta, token: str = "", lines: int = 0,
                   **kwargs: Any) -> list[Any]:
        """GetTaskLogs' stream: a header with the next page's token, then the lines."""
        client, job_name = self.core.client_of(resource_meta)
        return observe.log_responses(client, job_name, token, lines)

    def get_metrics(self, resource_meta: SageMakerJobMeta, queries: Sequence[str] = (), start_time: Any = None,
                    end_time: Any = None, step: float = 0.0, **kwargs: Any) -> Any:
        """The job's metric series per host (`queries` names some; none = all), over [start_time, end_time)."""
        client, job_name = self.core.client_of(resource_meta)
        return observe.metrics_response(client, job_name, queries, start_time, end_time, step)

    def running(self, resource_meta: SageMakerJobMeta) -> bool:
        """Whether the meta's job is there to stop (plugin/connectors/core.py)."""
        return self.core.running(resource_meta)

    def stop_and_wait(self, resource_meta: SageMakerJobMeta, timeout: float) -> PluginResource:
        """A local run's Ctrl-C: delete, then wait for the job to end (plugin/connectors/core.py)."""
        return self.core.stop_and_wait(resource_meta, timeout)

    def delete(self, resource_meta: SageMakerJobMeta, **kwargs: Any) -> None:
        self.core.delete(resource_meta)


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
