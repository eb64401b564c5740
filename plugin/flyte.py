"""Flyte: a flytekit connector for the two SageMaker task types, and the task types users declare in workflows.

    from plugin.flyte import SageMakerBuiltinAlgorithmTask, SageMakerCustomTrainingTask

The connector (`SageMakerTrainingConnector`, one instance per task type, both registered with flytekit's
`ConnectorRegistry` when this module is imported) turns a `TaskTemplate`, its input literals and the task execution
metadata into a task in task-file form and hands it to the TrainingJobPlugin; `get` answers with flytekit's
`Resource` (phase, message, log links as `TaskLog`s, outputs as a `LiteralMap`); `delete` stops the job. flytekit loads
this module through the `flytekit.plugins` entry point, so `pyflyte serve connector` serves it, and the task types
run through the same connector in a local `python workflow.py` or `pyflyte run` (flytekit's
AsyncConnectorExecutorMixin). A local run with the local backend and no endpoint named starts this process's own
local SageMaker (plugin/embedded.py); the served connector never starts one by itself.

When the process is flytekit's connector service (`serving()`), the config is checked as soon as flytekit imports this
module, before the service listens: a missing, broken or incomplete config stops it with exit code 2, and a config
that does not say `backend: local` never runs jobs on a local SageMaker inside the service's pod. One that does runs
every task's command on its machine: the service then listens on loopback only (plugin/flyte_serve.py). Whatever the
backend, a resource meta is followed only at the config's own endpoint and region (plugin/trust.py), the service
reads no file of its machine for an input, and malformed input gets FAILED or INVALID_ARGUMENT naming the field.

Only this module imports flytekit: the core install never needs it (the `flyte` extra brings it).
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flyteidl.core.execution_pb2 import TaskExecution, TaskLog  # type: ignore[import-untyped, import-not-found, unused-ignore]
from flytekit.core.base_task import PythonTask  # type: ignore[import-untyped, import-not-found, unused-ignore]
from flytekit.core.interface import Interface  # type: ignore[import-untyped, import-not-found, unused-ignore]
from flytekit.models import literals as _literals  # type: ignore[import-untyped, import-not-found, unused-ignore]
from flytekit.models import task as _task_model  # type: ignore[import-untyped, import-not-found, unused-ignore]
from flytekit.models.core.types import BlobType  # type: ignore[import-untyped, import-not-found, unused-ignore]
from flytekit.types.directory import FlyteDirectory  # type: ignore[import-untyped, import-not-found, unused-ignore]
from flytekit.types.file import FlyteFile  # type: ignore[import-untyped, import-not-found, unused-ignore]
from google.protobuf import json_format  # type: ignore[import-untyped, import-not-found, unused-ignore]

try:
    from flytekit.exceptions.system import (  # type: ignore[import-untyped, import-not-found, unused-ignore]
        FlyteConnectorNotFound,
    )
    from flytekit.extend.backend.base_connector import (  # type: ignore[import-untyped, import-not-found, unused-ignore]
        AsyncConnectorBase,
        AsyncConnectorExecutorMixin,
        ConnectorRegistry,
        Resource,
    )
    from flytekit.extend.backend.base_connector import (  # type: ignore[import-untyped, import-not-found, unused-ignore]
        ResourceMeta as FlyteResourceMeta,
    )
except ImportError as _error:  # flytekit before the connector names (AgentRegistry, AsyncAgentBase, ...)
    raise ImportError(f"plugin.flyte needs flytekit >= 1.16 (its connector API): pip install "
                      f"'sagemaker-plugin[flyte]' ({_error})") from _error

from handlers.errors import AwsError, InputError, Problem, join_path, short_repr
from handlers.status import Phase
from plugin import embedded, flyte_observe, flyte_serve, trust
from plugin.config import CONFIG_ENV, Config, load_config
from plugin.message import AlgorithmName, TrainingJob
from plugin.meta import ResourceMeta
from plugin.render import NO_TRAIN_CHANNEL, TRAIN_CHANNEL
from plugin.resource import LogLink
from plugin.resource import Resource as PluginResource
from plugin.task import BUILTIN_TASK, CUSTOM_TASK, HYPERPARAMETERS_INPUT, TASK_TYPES, TUNING_TASK, is_uri
from plugin.training_job import TrainingJobPlugin
from plugin.tuning_job import TuningJobPlugin
from plugin.tuning_message import HyperparameterTuningJob

log = logging.getLogger(__name__)

CONNECTOR_NAME = "SageMaker Training Job Connector"
UNREADABLE_META = "the SageMaker connector cannot read this task's resource meta"
UNTRUSTED_META = "the SageMaker connector will not follow this task's resource meta"
#: the largest meta read: propeller keeps it in the task's custom resource, which etcd caps at 1.5 MiB
MAX_META_BYTES = 1024 * 1024
MODEL_OUTPUT = "model"
METRICS_OUTPUT = "metrics"
OUTPUTS: dict[str, Any] = {MODEL_OUTPUT: FlyteFile, METRICS_OUTPUT: dict[str, float]}
DEFAULT_INPUTS: dict[str, Any] = {"train": FlyteDirectory, "validation": FlyteDirectory, HYPERPARAMETERS_INPUT: dict}
# A tuning task: its HyperparameterTuningJobConfig is an input (as in Flyte's SageMaker plugin); its outputs the best
# trial's model, the best objective value by metric name, and the best trial's tuned hyperparameters.
TUNING_CONFIG_INPUT = "hyperparameter_tuning_job_config"
TUNING_OUTPUTS: dict[str, Any] = {MODEL_OUTPUT: FlyteFile, "objective": dict[str, float],
                                  "best_hyperparameters": dict[str, str]}
SERVED_TASK_TYPES = (*TASK_TYPES, TUNING_TASK)

__all__ = [
    "CONNECTOR_NAME",
    "SageMakerBuiltinAlgorithmTask",
    "SageMakerCustomTrainingTask",
    "SageMakerHyperparameterTuningTask",
    "SageMakerJobMeta",
    "SageMakerTrainingConnector",
    "configure",
    "outputs_literal_map",
    "register",
    "service_problems",
    "serving",
    "task_from_template",
    "to_flyte_resource",
]


# --- the shared plugin ------------------------------------------------------------------------------------------------

_plugin_lock = threading.Lock()
_shared_plugin: TrainingJobPlugin | None = None
_shared_configured = False  # set by configure(): the caller chose the config, so the service checks do not apply


def configure(config: Config | None = None, *, plugin: TrainingJobPlugin | None = None) -> TrainingJobPlugin | None:
    """Set the TrainingJobPlugin the registered connectors use (from `config`, or `plugin` itself).

    With neither, forget it: the next call builds one from load_config() (`$SAGEMAKER_PLUGIN_CONFIG`, else
    ./config.yaml, else the defaults). Returns the plugin now in use (None until first use when reset).
    """
    global _shared_plugin, _shared_configured
    with _plugin_lock:
        _shared_plugin = plugin if plugin is not None else (_new_plugin(config) if config is not None else None)
        _shared_configured = _shared_plugin is not None
        return _shared_plugin


def _new_plugin(config: Config | None = None) -> TrainingJobPlugin:
    # Flyte shows the message of each phase: every secondary status with its StatusMessage, as `run` prints it.
    # A served connector starts no local SageMaker of its own (a local run starts the process's one first).
    return TrainingJobPlugin(config, status_messages=True, embedded=False)


def _default_plugin() -> TrainingJobPlugin:
    global _shared_plugin
    with _plugin_lock:
        if _shared_plugin is None:
            _shared_plugin = _new_plugin()
        return _shared_plugin


# --- the connector service ------------------------------------------------------------------------------------------

SERVICE_COMMANDS = ("connector", "agent")  # `pyflyte serve connector`, and its name before the rename


def serving(argv: Sequence[str] | None = None) -> bool:
    """Whether this process is flytekit's connector service (`pyflyte serve connector`), not a local run.

    flytekit imports this module through its `flytekit.plugins` entry point while `pyflyte` starts, before it parses
    its command line: that command line is the one sign of the service there is then. Local runs (`python wf.py`,
    `pyflyte run`) call the connector in-process through flytekit's AsyncConnectorExecutorMixin instead, and
    propeller's CreateTask, unlike that mixin, always carries the task execution metadata (see `create`).
    """
    args = list(sys.argv if argv is None else argv)
    if not args or not Path(args[0]).name.startswith(("pyflyte", "flyte")):
        return False
    words = args[1:]
    if "--help" in words or "-h" in words:
        return False
    return any(words[i] == "serve" and words[i + 1] in SERVICE_COMMANDS for i in range(len(words) - 1))


def service_problems(config: Config) -> list[Problem]:
    """What keeps `config` from serving Flyte's CreateTasks: checked at the service's start, not at its first task.

    The built-in default backend is `local`: a service whose operator forgot the config must not train jobs inside
    its own pod, so the local backend serves only when the config says so.
    """
    if config.backend == "local" and "backend" not in config.explicit_keys:
        where = (f"no config was found (${CONFIG_ENV} is not set and there is no ./config.yaml)"
                 if config.source == Config().source else f"{config.source} does not set it")
        return [Problem("backend", f"must be set for the connector service: {where}; write `backend: aws` with "
                        f"region and role_arn (or `backend: local` to serve a local SageMaker on purpose), and point "
                        f"${CONFIG_ENV} at the file")]
    if config.backend == "aws" and not config.role_arn:
        return [Problem("role_arn", f"is required with the aws backend in {config.source}: the IAM role SageMaker "
                        "assumes for every job (Flyte's tasks do not name one)")]
    return []


def _start_service() -> None:
    """The connector service's start: load and check the config, say what is served, or exit with code 2."""
    try:
        config = load_config()
        problems = service_problems(config)
        if problems:
            raise InputError(problems)
        plugin = _new_plugin(config)
        endpoint = config.endpoint_url() or "none set (local.endpoint_url)"
        if config.backend == "aws":
            endpoint = str(plugin.client().sagemaker.meta.endpoint_url)
        if config.backend == "local":  # it runs any command a CreateTask names: only this machine may call it
            flyte_serve.listen_on_loopback()
    except (InputError, AwsError) as error:
        print(f"sagemaker-plugin connector: cannot start: {error}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
    configure(plugin=plugin)
    flyte_observe.serve_requests()
    flyte_serve.guard_creates(SERVED_TASK_TYPES)
    print(f"sagemaker-plugin connector: backend {config.backend}, region {config.region}, SageMaker endpoint "
          f"{endpoint}, config {config.source}", file=sys.stderr, flush=True)
    if config.backend == "local":
        print(f"sagemaker-plugin connector: listening on {flyte_serve.LOOPBACK} only (its gRPC and metrics ports): "
              "with the local backend it runs the training command of every task it is given on this machine",
              file=sys.stderr, flush=True)


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
        try:
            value = json.loads(data)
        except (ValueError, UnicodeDecodeError) as error:
            raise InputError(f"it is not JSON ({error})") from None
        except RecursionError:
            raise InputError("it is nested too deeply to be a meta of this connector") from None
        if not isinstance(value, dict) or set(value) != {"job", "error"}:
            raise InputError("it is not a JSON object with keys job and error (written by another connector?)")
        job, failure = value["job"], value["error"]
        if not isinstance(failure, str) or (job is None) == (not failure):
            raise InputError("it needs either a job or an error")
        try:
            return cls(job=ResourceMeta.decode(json.dumps(job)) if job is not None else None, error=failure)
        except InputError as error:  # e.g. written by another version of the plugin
            name = job.get("job_name") if isinstance(job, dict) else None
            raise InputError(f"its job{f' ({name})' if isinstance(name, str) else ''}: {error}") from None


# --- template -> task ------------------------------------------------------------------------------------------------


def task_from_template(template: Any, inputs: Any = None, output_prefix: str | None = None,
                       task_execution_metadata: Any = None, *, config: Config | None = None) -> dict[str, Any]:
    """The task, in task-file form, for a flytekit TaskTemplate, its input LiteralMap and execution metadata.

    custom is the TrainingJob in proto3 JSON; each input literal but static_hyperparameters becomes a channel (a
    blob's URI: FlyteFile or FlyteDirectory; or a string URI); static_hyperparameters is a struct (flytekit's generic
    struct or msgpack binary for `dict`, or a literal map). For custom training the container (image, command, args,
    env) comes from the template's container. `output_prefix` (Flyte's) is used for the model only with the aws
    backend when config names no output_prefix and it is an S3 URI.
    """
    task_type = str(template.type)
    task: dict[str, Any] = {
        "task_type": task_type,
        "training_job": dict(template.custom or {}),
        "inputs": inputs_from_literals(inputs),
    }
    if task_type == TUNING_TASK:  # custom is the HyperparameterTuningJob; the config an input
        task["hyperparameter_tuning_job"] = task.pop("training_job")
        task["tuning_config"] = task["inputs"].pop(TUNING_CONFIG_INPUT, None)
    container = getattr(template, "container", None)
    custom_trials = False
    if task_type == TUNING_TASK:
        tuning_job, _ = HyperparameterTuningJob.read(task["hyperparameter_tuning_job"], ignore_unknown=True)
        custom_trials = tuning_job.training_job.algorithm_specification.algorithm_name == AlgorithmName.CUSTOM
    if (task_type == CUSTOM_TASK or custom_trials) and container is not None:
        task["container"] = _container_of(container)
    execution = execution_of(task_execution_metadata)
    if execution is not None:
        task["execution"] = execution
    if (config is not None and config.backend == "aws" and not config.output_prefix and output_prefix
            and output_prefix.startswith("s3://")):
        task["output_prefix"] = output_prefix
    return task


def _container_of(container: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"image": container.image or ""}
    if container.command:
        out["command"] = [str(word) for word in container.command]
    if container.args:
        out["args"] = [str(word) for word in container.args]
    if container.env:
        out["env"] = {str(k): str(v) for k, v in container.env.items()}
    return out


def execution_of(metadata: Any) -> dict[str, Any] | None:
    """project, domain, name, node_id and retry_attempt of flytekit's TaskExecutionMetadata; None when absent."""
    task_execution_id = getattr(metadata, "task_execution_id", None)
    node = getattr(task_execution_id, "node_execution_id", None)
    workflow = getattr(node, "execution_id", None)
    project, domain, name = (getattr(workflow, key, "") or "" for key in ("project", "domain", "name"))
    if not (project and domain and name):
        return None
    return {"project": project, "domain": domain, "name": name, "node_id": getattr(node, "node_id", "") or "n0",
            "retry_attempt": int(getattr(task_execution_id, "retry_attempt", 0) or 0)}


def inputs_from_literals(inputs: Any) -> dict[str, Any]:
    """Task-file inputs from a LiteralMap: channels' URIs, and static_hyperparameters as a dict."""
    literals: Mapping[str, Any] = getattr(inputs, "literals", None) or {}
    out: dict[str, Any] = {}
    problems: list[Problem] = []
    # A LiteralMap is a protobuf map: its order is the sender's whim (Go's is random). Channels go in name order, so
    # that the same inputs always render the same request (and fingerprint: a retried create adopts its own job).
    for name in sorted(literals):
        path = join_path("inputs", name)
        literal = _unwrap(literals[name])
        if literal is None:
            continue  # an Optional input left out
        try:
            out[name] = _hyperparameters(literal, path) if name in (HYPERPARAMETERS_INPUT, TUNING_CONFIG_INPUT) \
                else _uri(literal, path)
        except InputError as error:
            problems.extend(error.problems)
    if problems:
        raise InputError(problems)
    return out


def _refuse_local_paths(inputs: Mapping[str, Any]) -> None:
    """InputError for each channel that names a path of this machine: a served connector uploads none of its files."""
    problems = [Problem(join_path("inputs", name), f"{short_repr(value)} is a path on the connector's machine: "
                        "the connector service reads no local file; give an S3 URI")
                for name, value in inputs.items() if isinstance(value, str) and not is_uri(value)]
    if problems:
        raise InputError(problems)


def _unwrap(literal: Any) -> Any:
    """The literal itself, the value of a union (Optional[...]) literal, or None for a none literal."""
    while literal is not None and literal.scalar is not None and literal.scalar.union is not None:
        literal = literal.scalar.union.value
    if literal is None or (literal.scalar is not None and literal.scalar.none_type is not None):
        return None
    return literal


def _uri(literal: Any, path: str) -> str:
    scalar = literal.scalar
    if scalar is not None and scalar.blob is not None and scalar.blob.uri:
        uri = str(scalar.blob.uri)
    elif scalar is not None and scalar.primitive is not None and isinstance(scalar.primitive.value, str):
        uri = scalar.primitive.value
    else:
        raise InputError(Problem(path, f"must be a FlyteFile, a FlyteDirectory or a URI string, not {_kind(literal)}"))
    return uri[len("file://"):] if uri.startswith("file://") else uri


def _hyperparameters(literal: Any, path: str) -> dict[str, Any]:
    scalar = literal.scalar
    if scalar is not None and scalar.generic is not None:
        # A protobuf Struct keeps every number as a double: 20 arrives as 20.0, which an algorithm parsing an
        # integer hyperparameter refuses. Whole numbers go back to integers.
        return {k: _whole(v) for k, v in json_format.MessageToDict(scalar.generic).items()}
    if scalar is not None and scalar.binary is not None and scalar.binary.tag == "msgpack":
        import msgpack  # type: ignore[import-untyped, import-not-found, unused-ignore]

        try:
            value = msgpack.unpackb(scalar.binary.value, strict_map_key=False)
        except (ValueError, TypeError, msgpack.UnpackException) as error:  # malformed, truncated, too deep, extra data
            why = f"{type(error).__name__}: {short_repr(str(error))}" if str(error) else type(error).__name__
            raise InputError(Problem(path, f"is a msgpack binary that does not decode ({why})")) from None
        if isinstance(value, dict):
            return {str(k): v for k, v in value.items()}
        raise InputError(Problem(path, f"must be a map of hyperparameters, not {type(value).__name__}"))
    if literal.map is not None:
        out: dict[str, Any] = {}
        for key, item in literal.map.literals.items():
            primitive = item.scalar.primitive if item.scalar is not None else None
            if primitive is None:
                raise InputError(Problem(join_path(path, key), f"must be a string, number or boolean, not "
                                         f"{_kind(item)}"))
            out[key] = primitive.value
        return out
    raise InputError(Problem(path, f"must be a dict of hyperparameters, not {_kind(literal)}"))


def _whole(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


def _kind(literal: Any) -> str:
    if literal.scalar is not None:
        for kind in ("primitive", "blob", "binary", "schema", "structured_dataset", "generic", "error"):
            if getattr(literal.scalar, kind, None) is not None:
                return kind
    for kind in ("collection", "map"):
        if getattr(literal, kind, None) is not None:
            return f"a {kind} literal"
    return "this literal"


# --- plugin resource -> flytekit resource ---------------------------------------------------------------------------


def to_flyte_resource(resource: PluginResource, job_name: str = "", region: str = "") -> Any:
    """flytekit's Resource for the plugin's: same phase and message, TaskLogs, and on SUCCEEDED a LiteralMap."""
    phase = resource.phase
    message = resource.message
    outputs = None
    if phase == Phase.SUCCEEDED and "best_training_job_name" in resource.outputs:  # a tuning job
        outputs = tuning_outputs_literal_map(resource.outputs)
    elif phase == Phase.SUCCEEDED:  # always with a model (handlers/status.py)
        outputs = outputs_literal_map(str(resource.outputs[MODEL_OUTPUT]), resource.outputs.get(METRICS_OUTPUT) or {})
    info: dict[str, Any] = {"training_job_name": job_name or resource.outputs.get("training_job_name", ""),
                            "region": region}
    for key in ("training_job_arn", "training_seconds", "billable_seconds"):
        if resource.outputs.get(key) is not None:
            info[key] = resource.outputs[key]
    return Resource(phase=TaskExecution.Phase.Value(phase.name), message=message,
                    log_links=[task_log(link) for link in resource.log_links], outputs=outputs, custom_info=info)


def task_log(link: LogLink) -> Any:
    return TaskLog(name=link.name, uri=link.uri)


def outputs_literal_map(model_uri: str, metrics: Mapping[str, float]) -> Any:
    """`model` as a FlyteFile blob, `metrics` as a Dict[str, float] literal map."""
    blob = _literals.Blob(metadata=_literals.BlobMetadata(type=BlobType(
        format="", dimensionality=BlobType.BlobDimensionality.SINGLE)), uri=model_uri)
    metric_literals = {str(name): _literals.Literal(scalar=_literals.Scalar(primitive=_literals.Primitive(
        float_value=float(value)))) for name, value in metrics.items()}
    return _literals.LiteralMap(literals={
        MODEL_OUTPUT: _literals.Literal(scalar=_literals.Scalar(blob=blob)),
        METRICS_OUTPUT: _literals.Literal(map=_literals.LiteralMap(literals=metric_literals)),
    })


def tuning_outputs_literal_map(outputs: Mapping[str, Any]) -> Any:
    """A tuning job's outputs: the best trial's `model`, `objective` {metric name: value}, `best_hyperparameters`."""
    objective = outputs.get("objective") or {}
    value = objective.get("value")
    base = outputs_literal_map(str(outputs.get(MODEL_OUTPUT) or ""),
                               {str(objective.get("metric_name")): float(value)} if value is not None else {})
    hyperparameters = {str(k): _literals.Literal(scalar=_literals.Scalar(primitive=_literals.Primitive(
        string_value=str(v)))) for k, v in (outputs.get("best_hyperparameters") or {}).items()}
    return _literals.LiteralMap(literals={
        MODEL_OUTPUT: base.literals[MODEL_OUTPUT],
        "objective": base.literals[METRICS_OUTPUT],
        "best_hyperparameters": _literals.Literal(map=_literals.LiteralMap(literals=hyperparameters)),
    })


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
        self._tuning: TuningJobPlugin | None = None

    @property
    def plugin(self) -> TrainingJobPlugin:
        if self._plugin is not None:
            return self._plugin
        shared = _default_plugin()
        if self.task_category.name != TUNING_TASK:
            return shared
        with _plugin_lock:  # a tuning plugin on the shared plugin's config, rebuilt when configure() changes it
            if self._tuning is None or self._tuning.config is not shared.config:
                self._tuning = TuningJobPlugin(shared.config, status_messages=True, embedded=False)
            return self._tuning

    def create(self, task_template: Any, output_prefix: str = "", inputs: Any = None,
               task_execution_metadata: Any = None, **kwargs: Any) -> SageMakerJobMeta:
        plugin = self.plugin
        if task_execution_metadata is not None and self._plugin is None and not _shared_configured:
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
                _refuse_local_paths(task["inputs"])
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
        return flyte_observe.log_responses(self.plugin.client(job.region, job.endpoint_url), job.job_name,
                                           token, lines)

    def get_metrics(self, resource_meta: SageMakerJobMeta, queries: Sequence[str] = (), start_time: Any = None,
                    end_time: Any = None, step: float = 0.0, **kwargs: Any) -> Any:
        """The job's metric series per host (`queries` names some; none = all), over [start_time, end_time)."""
        job = self._job_of(resource_meta)
        return flyte_observe.metrics_response(self.plugin.client(job.region, job.endpoint_url), job.job_name,
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


# --- task types -------------------------------------------------------------------------------------------------------


def _training_job(value: TrainingJob | Mapping[str, Any], expected: AlgorithmName, task_class: str) -> TrainingJob:
    job = value if isinstance(value, TrainingJob) else TrainingJob.parse(value, "training_job")
    algorithm = job.algorithm_specification.algorithm_name
    if algorithm != expected:
        other = "SageMakerCustomTrainingTask" if expected == AlgorithmName.XGBOOST else "SageMakerBuiltinAlgorithmTask"
        raise InputError(Problem("training_job.algorithm_specification.algorithm_name",
                                 f"{task_class} runs algorithm_name {expected.name}, not {algorithm.name} "
                                 f"(use {other})"))
    return job


def _check_inputs(inputs: Mapping[str, Any], task_class: str) -> dict[str, Any]:
    problems = []
    for name, kind in inputs.items():
        path = join_path("inputs", name)
        if name == HYPERPARAMETERS_INPUT:
            if not (kind is dict or typing.get_origin(kind) is dict):
                problems.append(Problem(path, f"must be declared as dict, not {kind!r}"))
        elif not _is_data_type(kind):
            problems.append(Problem(path, f"{task_class} channels are FlyteFile, FlyteDirectory or str (a URI), "
                                    f"optionally Optional[...], not {kind!r}"))
    if problems:
        raise InputError(problems)
    return dict(inputs)


def _is_data_type(kind: Any) -> bool:
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        return len(args) == 1 and _is_data_type(args[0])
    return kind is str or (isinstance(kind, type) and issubclass(kind, (FlyteFile, FlyteDirectory)))


class _SageMakerTrainingTask(AsyncConnectorExecutorMixin, PythonTask):  # type: ignore[misc]
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

    def execute(self, **kwargs: Any) -> Any:
        """A local run: the connector in this process, on this process's own local SageMaker when config's local
        backend names none (started once, stopped at exit)."""
        connector = ConnectorRegistry.get_connector(self.task_type)
        config = connector.plugin.config if isinstance(connector, SageMakerTrainingConnector) else None
        if config is not None and config.backend == "local" and not config.endpoint_url():
            embedded.process_endpoint(config)
        return super().execute(**kwargs)


class SageMakerBuiltinAlgorithmTask(_SageMakerTrainingTask):
    """A built-in algorithm (XGBoost) training job: task type `sagemaker_training_job_task`.

    Inputs `train` and `validation` (FlyteDirectory by default; pass `inputs=` for FlyteFile, other channels or no
    validation) and `static_hyperparameters: dict`; outputs `model: FlyteFile` (model.tar.gz) and
    `metrics: Dict[str, float]` (the final value of each metric definition).
    """

    _TASK_TYPE = BUILTIN_TASK

    def __init__(self, name: str, training_job: TrainingJob | Mapping[str, Any], *,
                 inputs: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        job = _training_job(training_job, AlgorithmName.XGBOOST, type(self).__name__)
        declared = _check_inputs(DEFAULT_INPUTS if inputs is None else inputs, type(self).__name__)
        if TRAIN_CHANNEL not in declared:
            raise InputError(NO_TRAIN_CHANNEL)
        super().__init__(name, job, declared, **kwargs)


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
        job = _training_job(training_job, AlgorithmName.CUSTOM, type(self).__name__)
        if not isinstance(image, str) or not image:
            raise InputError(Problem("container.image", "is required: the image SageMaker runs"))
        declared = _check_inputs(DEFAULT_INPUTS if inputs is None else inputs, type(self).__name__)
        self._image = image
        self._command = [str(word) for word in command or ()]
        self._args = [str(word) for word in args or ()]
        self._env = {str(k): str(v) for k, v in (env or {}).items()}
        super().__init__(name, job, declared, **kwargs)

    def get_container(self, settings: Any) -> Any:
        return _task_model.Container(image=self._image, command=list(self._command), args=list(self._args),
                                     resources=_task_model.Resources(requests=[], limits=[]),
                                     env={**self.environment, **self._env}, config={})


class SageMakerHyperparameterTuningTask(AsyncConnectorExecutorMixin, PythonTask):  # type: ignore[misc]
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
        if not isinstance(training_task, _SageMakerTrainingTask):
            raise InputError(Problem("training_task", "must be a SageMakerBuiltinAlgorithmTask or a "
                                     f"SageMakerCustomTrainingTask, not {type(training_task).__name__}"))
        self._tuning_job = HyperparameterTuningJob(
            training_job=training_task.training_job, max_number_of_training_jobs=int(max_number_of_training_jobs),
            max_parallel_training_jobs=int(max_parallel_training_jobs))
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

    def execute(self, **kwargs: Any) -> Any:
        """A local run, as a training task's (the connector in this process)."""
        connector = ConnectorRegistry.get_connector(self.task_type)
        config = connector.plugin.config if isinstance(connector, SageMakerTrainingConnector) else None
        if config is not None and config.backend == "local" and not config.endpoint_url():
            embedded.process_endpoint(config)
        return super().execute(**kwargs)


register()
if serving():
    _start_service()
