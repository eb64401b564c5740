"""Flyte: a flytekit connector for the two SageMaker task types, and the task types users declare in workflows.

    from plugin.flyte import SageMakerBuiltinAlgorithmTask, SageMakerCustomTrainingTask

Modules: connector (the connector and its meta), literals (template and literals <-> task file and outputs),
tasks (the task types), service (the shared plugin; the connector service's start), serve and observe (what the
served connector answers), trust (what it believes of a meta handed back).

The connector (`SageMakerTrainingConnector`, one instance per task type, all registered with flytekit's
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
every task's command on its machine: the service then listens on loopback only (plugin/flyte/serve.py). Whatever
the backend, a resource meta is followed only at the config's own endpoint and region (plugin/connectors/trust.py),
the service reads no file of its machine for an input, and malformed input gets FAILED or INVALID_ARGUMENT naming
the field.

Only this package imports flytekit: the core install never needs it (the `flyte` extra brings it).
"""

from __future__ import annotations

from plugin.flyte.connector import (
    CONNECTOR_NAME,
    UNREADABLE_META,
    UNTRUSTED_META,
    SageMakerJobMeta,
    SageMakerTrainingConnector,
    register,
)
from plugin.flyte.literals import outputs_literal_map, task_from_template, to_flyte_resource
from plugin.flyte.service import configure, service_problems, serving, start_service
from plugin.flyte.tasks import (
    SageMakerBuiltinAlgorithmTask,
    SageMakerCustomTrainingTask,
    SageMakerHyperparameterTuningTask,
)

__all__ = [
    "CONNECTOR_NAME",
    "UNREADABLE_META",
    "UNTRUSTED_META",
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

register()
if serving():
    start_service()
