"""The task types users declare in workflows; a local run calls the connector in this process."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Mapping, Sequence
from types import FrameType
from typing import Any

from flyteidl.core.execution_pb2 import TaskExecution  # type: ignore[import-untyped, import-not-found, unused-ignore]
from flytekit.core.base_task import PythonTask  # type: ignore[import-untyped, import-not-found, unused-ignore]
from flytekit.core.interface import Interface  # type: ignore[import-untyped, import-not-found, unused-ignore]
from flytekit.extend.backend.base_connector import (  # type: ignore[import-untyped, import-not-found, unused-ignore]
    AsyncConnectorExecutorMixin,
    ConnectorRegistry,
)
from flytekit.extend.backend.utils import (  # type: ignore[import-untyped, import-not-found, unused-ignore]
    is_terminal_phase,
    mirror_async_methods,
)
from flytekit.models import task as task_models  # type: ignore[import-untyped, import-not-found, unused-ignore]
from flytekit.types.directory import FlyteDirectory  # type: ignore[import-untyped, import-not-found, unused-ignore]
from flytekit.types.file import FlyteFile  # type: ignore[import-untyped, import-not-found, unused-ignore]

from handlers.errors import AwsError, InputError
from plugin import embedded
from plugin.connectors import declare
from plugin.flyte.connector import SageMakerJobMeta, SageMakerTrainingConnector
from plugin.flyte.literals import METRICS_OUTPUT, MODEL_OUTPUT, TUNING_CONFIG_INPUT
from plugin.jobs.progress_lines import ProgressLines, job_label
from plugin.message import AlgorithmName, TrainingJob
from plugin.task import BUILTIN_TASK, CUSTOM_TASK, HYPERPARAMETERS_INPUT, TUNING_TASK
from plugin.tuning_message import HyperparameterTuningJob

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0  # a local run's look at its job, as flytekit's
STOP_WAIT_SECONDS = 300.0  # how long a Ctrl-C waits for the job to stop (a second Ctrl-C waits no longer)

OUTPUTS: dict[str, Any] = {MODEL_OUTPUT: FlyteFile, METRICS_OUTPUT: dict[str, float]}


DEFAULT_INPUTS: dict[str, Any] = {"train": FlyteDirectory, "validation": FlyteDirectory, HYPERPARAMETERS_INPUT: dict}


TUNING_OUTPUTS: dict[str, Any] = {MODEL_OUTPUT: FlyteFile, "objective": dict[str, float],
                                  "best_hyperparameters": dict[str, str]}


def _is_data_type(kind: Any) -> bool:
    return isinstance(kind, type) and issubclass(kind, (FlyteFile, FlyteDirectory))


def _check_inputs(inputs: Mapping[str, Any], task_class: str, *, builtin: bool = False) -> dict[str, Any]:
    return declare.check_inputs(inputs, task_class, _is_data_type, "FlyteFile, FlyteDirectory", builtin=builtin)


class _LocalRun(AsyncConnectorExecutorMixin):  # type: ignore[misc]
    """A local run of a SageMaker task: the connector in this process, its progress as lines that stay
    (plugin/jobs/progress_lines.py) instead of flytekit's live line, and a Ctrl-C that says the job was stopped."""

    def execute(self, **kwargs: Any) -> Any:
        """On this process's own local SageMaker when config's local backend names none (started once, stopped at
        exit)."""
        connector = ConnectorRegistry.get_connector(self.task_type)
        config = connector.plugin.config if isinstance(connector, SageMakerTrainingConnector) else None
        if config is not None and config.backend == "local" and not config.endpoint_url():
            embedded.process_endpoint(config)
        return super().execute(**kwargs)

    async def _get(self, resource_meta: SageMakerJobMeta) -> Any:
        """Follow the job to its end, printing a line per change of phase, message or link."""
        lines = ProgressLines(self._label(resource_meta))
        while True:
            resource = await mirror_async_methods(self._connector.get, resource_meta=resource_meta)
            lines.show(TaskExecution.Phase.Name(resource.phase), resource.message,
                       [(link.name, link.uri) for link in resource.log_links or ()])
            if is_terminal_phase(resource.phase):
                return resource
            await asyncio.sleep(POLL_SECONDS)

    def connector_signal_handler(self, resource_meta: SageMakerJobMeta, signum: int, frame: FrameType | None) -> None:
        """Ctrl-C (flytekit's SIGINT handler calls this, then exits 1): stop the job if it still runs and wait,
        bounded, until it has stopped, saying so; a second Ctrl-C stops the waiting."""
        connector = self._connector
        if resource_meta.job is None or not isinstance(connector, SageMakerTrainingConnector):
            return
        lines = ProgressLines(self._label(resource_meta))
        previous = signal.signal(signal.SIGINT, _give_up_waiting(lines))
        try:
            if not connector.running(resource_meta):  # e.g. an earlier task's job: flytekit keeps every handler
                return
            lines.stopping()
            resource = connector.stop_and_wait(resource_meta, STOP_WAIT_SECONDS)
            lines.show(resource.phase.name, resource.message)
            lines.stopped(confirmed=resource.phase.is_terminal)
        except (InputError, AwsError) as error:
            lines.failed_to_stop(str(error))
        finally:
            signal.signal(signal.SIGINT, previous)

    def _label(self, resource_meta: SageMakerJobMeta) -> str:
        connector = self._connector
        if resource_meta.job is None or not isinstance(connector, SageMakerTrainingConnector):
            return f"task {self.name}"
        return job_label(connector.plugin.kind.noun, resource_meta.job.job_name)


def _give_up_waiting(lines: ProgressLines) -> Callable[[int, FrameType | None], None]:
    def handler(signum: int, frame: FrameType | None) -> None:
        lines.stopped(confirmed=False)
        raise SystemExit(1)

    return handler


class _SageMakerTrainingTask(_LocalRun, PythonTask):  # type: ignore[misc]
    """A task whose TaskTemplate custom is the TrainingJob in proto3 JSON; outputs model and metrics."""

    _TASK_TYPE = BUILTIN_TASK

    def __init__(self, name: str, training_job: TrainingJob, inputs: Mapping[str, Any], **kwargs: Any) -> None:
        super().__init__(task_type=self._TASK_TYPE, name=name, task_config=training_job,
                         interface=Interface(inputs=dict(inputs), outputs=dict(OUTPUTS)), **kwargs)
        self._training_job = training_job

    @property
    def training_job(self) -> TrainingJob:
        return self._training_job

    def get_custom(self, settings: Any) -> dict[str, Any]:
        return self._training_job.to_proto3_json()


class SageMakerBuiltinAlgorithmTask(_SageMakerTrainingTask):
    """A built-in algorithm (XGBoost) training job: task type `sagemaker_training_job_task`.

    Inputs `train` and `validation` (FlyteDirectory by default; pass `inputs=` for FlyteFile, other channels or no
    validation) and `static_hyperparameters: dict`; outputs `model: FlyteFile` (model.tar.gz) and
    `metrics: Dict[str, float]` (the final value of each metric definition).
    """

    _TASK_TYPE = BUILTIN_TASK

    def __init__(self, name: str, training_job: TrainingJob | Mapping[str, Any], *,
                 inputs: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(name, *declare.training_task(training_job, AlgorithmName.XGBOOST, type(self).__name__, inputs,
                                                      DEFAULT_INPUTS, _check_inputs), **kwargs)


class SageMakerCustomTrainingTask(_SageMakerTrainingTask):
    """A training job that runs your own image: task type `sagemaker_custom_training_job_task`.

    The image, command (ContainerEntrypoint), args (ContainerArguments) and env (Environment) go in the TaskTemplate's
    container. Inputs as for the built-in task unless `inputs=` says otherwise; the same outputs.
    """

    _TASK_TYPE = CUSTOM_TASK

    def __init__(self, name: str, training_job: TrainingJob | Mapping[str, Any], image: str, *,
                 command: Sequence[str] | None = None, args: Sequence[str] | None = None,
                 env: Mapping[str, str] | None = None, inputs: Mapping[str, Any] | None = None,
                 **kwargs: Any) -> None:
        job, declared = declare.training_task(training_job, AlgorithmName.CUSTOM, type(self).__name__, inputs,
                                              DEFAULT_INPUTS, _check_inputs)
        self._container = declare.container(image, command, args, env)
        super().__init__(name, job, declared, **kwargs)

    def get_container(self, settings: Any) -> Any:
        spec = self._container
        return task_models.Container(image=spec.image, command=list(spec.command), args=list(spec.args),
                                     resources=task_models.Resources(requests=[], limits=[]),
                                     env={**self.environment, **spec.env}, config={})


class SageMakerHyperparameterTuningTask(_LocalRun, PythonTask):  # type: ignore[misc]
    """A hyperparameter tuning job over a training task: task type `sagemaker_hyperparameter_tuning_job_task`.

    Its trials are `training_task` (a SageMakerBuiltinAlgorithmTask or SageMakerCustomTrainingTask: its TrainingJob,
    inputs and, for a custom image, container); the TaskTemplate's custom is the HyperparameterTuningJob in proto3
    JSON. Inputs: the training task's, plus `hyperparameter_tuning_job_config: dict` (the HyperparameterTuningJobConfig
    in task-file or proto3 JSON form). Outputs: `model: FlyteFile` (the best trial's), `objective: Dict[str, float]`
    ({metric name: the best value}) and `best_hyperparameters: Dict[str, str]`.
    """

    _TASK_TYPE = TUNING_TASK

    def __init__(self, name: str, training_task: _SageMakerTrainingTask, *, max_number_of_training_jobs: int,
                 max_parallel_training_jobs: int, **kwargs: Any) -> None:
        self._tuning_job = declare.tuning_job(training_task, _SageMakerTrainingTask, max_number_of_training_jobs,
                                              max_parallel_training_jobs)
        self._training_task = training_task
        inputs = {**training_task.python_interface.inputs, TUNING_CONFIG_INPUT: dict}
        super().__init__(task_type=self._TASK_TYPE, name=name, task_config=self._tuning_job,
                         interface=Interface(inputs=inputs, outputs=dict(TUNING_OUTPUTS)), **kwargs)

    @property
    def tuning_job(self) -> HyperparameterTuningJob:
        return self._tuning_job

    def get_custom(self, settings: Any) -> dict[str, Any]:
        return self._tuning_job.to_proto3_json()

    def get_container(self, settings: Any) -> Any:
        if isinstance(self._training_task, SageMakerCustomTrainingTask):
            return self._training_task.get_container(settings)
        return super().get_container(settings)
