"""Flyte 2's SageMaker task classes: declared as their flytekit twins (plugin/flyte/tasks.py) are, run by the connector.

In a cluster Flyte sends them to the connector service; a local run (`flyte.run`, mode local) calls the connector in
this process (`execute`), on this process's own local SageMaker when config's local backend names none, follows the
job as `sagemaker-plugin run` does (every second on a local SageMaker), printing each new phase, message and link on
a line of its own (plugin/jobs/progress_lines.py, as flytekit's local runs do), and stops the job when the run is
interrupted (Ctrl-C), saying so.
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import inspect
import json
from collections.abc import Mapping, Sequence
from typing import Any

import flyte  # type: ignore[import-untyped, import-not-found, unused-ignore]
import flyte.io  # type: ignore[import-untyped, import-not-found, unused-ignore]
from flyte.connectors import AsyncConnectorExecutorMixin  # type: ignore[import-untyped, import-not-found, unused-ignore]
from flyte.extend import TaskTemplate  # type: ignore[import-untyped, import-not-found, unused-ignore]
from flyte.models import NativeInterface, SerializationContext  # type: ignore[import-untyped, import-not-found, unused-ignore]

from handlers.errors import AwsError, InputError
from handlers.status import Phase
from plugin import embedded
from plugin.config import Config
from plugin.connectors import declare
from plugin.connectors.core import TUNING_CONFIG_INPUT
from plugin.connectors.meta import JobMeta
from plugin.flyte2.connector import COMMAND_KEY, METRICS_OUTPUT, MODEL_OUTPUT, SageMakerConnector, resource_outputs
from plugin.jobs.progress_lines import ProgressLines, job_label
from plugin.message import AlgorithmName, TrainingJob
from plugin.task import BUILTIN_TASK, CUSTOM_TASK, HYPERPARAMETERS_INPUT, TUNING_TASK
from plugin.tuning_message import HyperparameterTuningJob

OUTPUTS: dict[str, Any] = {MODEL_OUTPUT: flyte.io.File, METRICS_OUTPUT: dict[str, float]}
DEFAULT_INPUTS: dict[str, Any] = {"train": flyte.io.Dir, "validation": flyte.io.Dir, HYPERPARAMETERS_INPUT: dict}
#: seconds between two looks at a job of a local run on the aws backend (as `sagemaker-plugin run`; a local SageMaker's
#: jobs are looked at every second, sooner when its clock runs faster)
POLL_SECONDS = 5.0
#: how long an interrupted run waits for its job to stop
STOP_WAIT_SECONDS = 60.0


def _is_data_type(kind: Any) -> bool:
    return isinstance(kind, type) and issubclass(kind, (flyte.io.File, flyte.io.Dir))


def _interface(inputs: Mapping[str, Any]) -> Any:
    """Flyte 2's interface: an Optional input defaults to None (no channel), the others are required."""
    return NativeInterface({name: (kind, None if declare.is_optional(kind) else inspect.Parameter.empty)
                            for name, kind in inputs.items()}, dict(OUTPUTS))


class _SageMakerTask(AsyncConnectorExecutorMixin, TaskTemplate):  # type: ignore[misc, type-arg]
    """A connector task whose TaskTemplate custom is its message in proto3 JSON; a local run is `execute`."""

    _TASK_TYPE = BUILTIN_TASK

    def __init__(self, name: str, inputs: Mapping[str, Any], image: Any = None, **kwargs: Any) -> None:
        super().__init__(name=name, interface=_interface(inputs), task_type=self._TASK_TYPE, image=image, **kwargs)

    def message_json(self) -> dict[str, Any]:
        raise NotImplementedError

    def custom_config(self, sctx: SerializationContext) -> dict[str, Any]:
        return self.message_json()

    async def execute(self, **kwargs: Any) -> Any:
        """A local run: the connector in this process, on this process's own local SageMaker when config's local
        backend names none (started once, stopped at exit)."""
        connector = flyte.connectors.ConnectorRegistry.get_connector(self.task_type, self.task_type_version)
        if not isinstance(connector, SageMakerConnector):
            return await super().execute(**kwargs)
        config = connector.core.plugin.config
        if config.backend == "local" and not config.endpoint_url():
            await asyncio.to_thread(embedded.process_endpoint, config)
        meta = await connector.create(task_template=_local_template(self), output_prefix="", inputs=kwargs)
        lines = ProgressLines(job_label(connector.core.plugin.kind.noun, meta.job.job_name) if meta.job is not None
                              else f"task {self.name}")
        # flyte.run runs this coroutine on a loop of its own thread: a Ctrl-C raises KeyboardInterrupt in the main
        # thread, which ends the process without cancelling it. The job is stopped on the way out (atexit runs
        # before the local SageMaker this process started is stopped: it registered first).
        stop_at_exit = functools.partial(_stop, connector, meta, lines)
        atexit.register(stop_at_exit)
        try:
            return await _follow(self.name, connector, meta, lines)
        except (asyncio.CancelledError, KeyboardInterrupt):
            if meta.job is not None:  # interrupted: the job must not train on for nobody
                await asyncio.shield(asyncio.to_thread(_stop, connector, meta, lines))
            raise
        finally:
            atexit.unregister(stop_at_exit)


async def _follow(name: str, connector: SageMakerConnector, meta: JobMeta, lines: ProgressLines) -> tuple[Any, ...]:
    """Look at the job (asking SageMaker itself, as `sagemaker-plugin run` does) until it ends, printing a line per
    change of phase, message or link; its outputs."""
    while True:
        followed = await asyncio.to_thread(functools.partial(connector.core.get, meta, fresh=True))
        if isinstance(followed, str):
            raise RuntimeError(f"SageMaker task {name} failed: {followed}")
        resource, job = followed
        lines.show(resource.phase.name, resource.message, [(link.name, link.uri) for link in resource.log_links])
        if resource.phase.is_terminal:
            break
        await asyncio.sleep(_poll_seconds(connector.core.plugin.config))
    if resource.phase != Phase.SUCCEEDED:
        raise RuntimeError(f"SageMaker task {name} ({job.job_name}) {resource.phase.name}: {resource.message}")
    model, metrics = resource_outputs(resource)
    return flyte.io.File(path=model), metrics


def _poll_seconds(config: Config) -> float:
    return max(0.1, min(1.0, 1.0 / config.local.time_scale)) if config.backend == "local" else POLL_SECONDS


def _stop(connector: SageMakerConnector, meta: JobMeta, lines: ProgressLines) -> None:
    """An interrupted run (Ctrl-C): stop the job if it still runs and wait, bounded, until it has, saying so."""
    if meta.job is None:
        return
    try:
        if not connector.core.running(meta):
            return
        lines.stopping()
        resource = connector.core.stop_and_wait(meta, STOP_WAIT_SECONDS)
        lines.show(resource.phase.name, resource.message)
        lines.stopped(confirmed=resource.phase.is_terminal)
    except (InputError, AwsError) as error:
        lines.failed_to_stop(str(error))


def _local_template(task: _SageMakerTask) -> Any:
    """The TaskTemplate Flyte 2 serializes for `task` in this run's context, as a cluster's connector gets it."""
    from flyte._context import internal_ctx  # type: ignore[import-untyped, import-not-found, unused-ignore]
    from flyte._initialize import get_init_config  # type: ignore[import-untyped, import-not-found, unused-ignore]
    from flyte._internal.runtime.task_serde import (  # type: ignore[import-untyped, import-not-found, unused-ignore]
        get_proto_task,
    )

    tctx = internal_ctx().data.task_context
    if tctx is None:
        raise RuntimeError(f"{task.name} runs inside flyte.run (no task context is set)")
    sctx = SerializationContext(project=tctx.action.project, domain=tctx.action.domain, org=tctx.action.org,
                                code_bundle=tctx.code_bundle, version=tctx.version,
                                image_cache=tctx.compiled_image_cache, root_dir=get_init_config().root_dir)
    return get_proto_task(task, sctx, tctx)


class _SageMakerTrainingTask(_SageMakerTask):
    def __init__(self, name: str, training_job: TrainingJob, inputs: Mapping[str, Any], **kwargs: Any) -> None:
        super().__init__(name, inputs, **kwargs)
        self._training_job = training_job
        self.declared_inputs = dict(inputs)

    @property
    def training_job(self) -> TrainingJob:
        return self._training_job

    def message_json(self) -> dict[str, Any]:
        return self._training_job.to_proto3_json()


class SageMakerBuiltinAlgorithmTask(_SageMakerTrainingTask):
    """A built-in algorithm (XGBoost) training job: task type `sagemaker_training_job_task`.

    Inputs `train` and `validation` (flyte.io.Dir by default; pass `inputs=` for flyte.io.File, str URIs, other
    channels or no validation) and `static_hyperparameters: dict`; outputs `model: flyte.io.File` (model.tar.gz)
    and `metrics: dict[str, float]` (the final value of each metric definition).
    """

    _TASK_TYPE = BUILTIN_TASK

    def __init__(self, name: str, training_job: TrainingJob | Mapping[str, Any], *,
                 inputs: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(name, *declare.training_task(training_job, AlgorithmName.XGBOOST, type(self).__name__, inputs,
                                                      DEFAULT_INPUTS, _check_inputs), **kwargs)


class SageMakerCustomTrainingTask(_SageMakerTrainingTask):
    """A training job that runs your own image: task type `sagemaker_custom_training_job_task`.

    The image, args (ContainerArguments) and env (Environment) go in the TaskTemplate's container, the command
    (ContainerEntrypoint) in its container config (Flyte 2 serializes a container's command empty). Inputs as for the
    built-in task unless `inputs=` says otherwise; the same outputs.
    """

    _TASK_TYPE = CUSTOM_TASK

    def __init__(self, name: str, training_job: TrainingJob | Mapping[str, Any], image: str, *,
                 command: Sequence[str] | None = None, args: Sequence[str] | None = None,
                 env: Mapping[str, str] | None = None, inputs: Mapping[str, Any] | None = None,
                 **kwargs: Any) -> None:
        job, declared = declare.training_task(training_job, AlgorithmName.CUSTOM, type(self).__name__, inputs,
                                              DEFAULT_INPUTS, _check_inputs)
        spec = declare.container(image, command, args, env)
        self.command, self.args = spec.command, spec.args
        env_vars = {**(kwargs.pop("env_vars", None) or {}), **spec.env}
        super().__init__(name, job, declared, image=flyte.Image.from_base(spec.image), env_vars=env_vars or None,
                         **kwargs)
        self.image_uri = spec.image

    def container_args(self, serialize_context: SerializationContext) -> list[str]:
        return list(self.args)

    def config(self, sctx: SerializationContext) -> dict[str, str]:
        return {COMMAND_KEY: json.dumps(self.command)} if self.command else {}


class SageMakerHyperparameterTuningTask(_SageMakerTask):
    """A hyperparameter tuning job over a training task: task type `sagemaker_hyperparameter_tuning_job_task`.

    Its trials are `training_task` (a SageMakerBuiltinAlgorithmTask or SageMakerCustomTrainingTask: its TrainingJob,
    inputs and, for a custom image, container); the TaskTemplate's custom is the HyperparameterTuningJob in proto3
    JSON. Inputs: the training task's, plus `hyperparameter_tuning_job_config: dict` (the
    HyperparameterTuningJobConfig in task-file or proto3 JSON form). Outputs: `model: flyte.io.File` (the best
    trial's) and `metrics: dict[str, float]` ({objective metric: the best trial's value}).
    """

    _TASK_TYPE = TUNING_TASK

    def __init__(self, name: str, training_task: _SageMakerTrainingTask, *, max_number_of_training_jobs: int,
                 max_parallel_training_jobs: int, **kwargs: Any) -> None:
        self._tuning_job = declare.tuning_job(training_task, _SageMakerTrainingTask, max_number_of_training_jobs,
                                              max_parallel_training_jobs)
        self._training_task = training_task
        custom = isinstance(training_task, SageMakerCustomTrainingTask)
        super().__init__(name, {**training_task.declared_inputs, TUNING_CONFIG_INPUT: dict},
                         image=training_task.image if custom else None, env_vars=training_task.env_vars, **kwargs)

    @property
    def tuning_job(self) -> HyperparameterTuningJob:
        return self._tuning_job

    def message_json(self) -> dict[str, Any]:
        return self._tuning_job.to_proto3_json()

    def container_args(self, serialize_context: SerializationContext) -> list[str]:
        return self._training_task.container_args(serialize_context)

    def config(self, sctx: SerializationContext) -> dict[str, str]:
        return self._training_task.config(sctx)


def _check_inputs(inputs: Mapping[str, Any], task_class: str, *, builtin: bool = False) -> dict[str, Any]:
    return declare.check_inputs(inputs, task_class, _is_data_type, "flyte.io.File, flyte.io.Dir", builtin=builtin)
