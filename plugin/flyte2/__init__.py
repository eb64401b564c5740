"""Flyte 2 (the `flyte` SDK): SageMaker training and tuning task classes, and a connector for Flyte 2's server.

    from plugin.flyte2 import SageMakerBuiltinAlgorithmTask, SageMakerCustomTrainingTask

Modules: tasks (the task classes; a local run calls the connector in this process), connector (the connector, its
meta, and Flyte 2's values <-> the plugin). Both are thin adapters of plugin/connectors/, which flytekit's connector
(plugin/flyte/) shares: the same meta, checks before any AWS call, phases, messages, log links and trust rules.

Only this package imports flyte: the core install never needs it (the `flyte2` extra brings it).
"""

from __future__ import annotations

from plugin.connectors.meta import UNREADABLE_META, UNTRUSTED_META
from plugin.flyte2.connector import CONNECTOR_NAME, SageMakerConnector, SageMakerJobMeta, register, serving
from plugin.flyte2.tasks import (
    SageMakerBuiltinAlgorithmTask,
    SageMakerCustomTrainingTask,
    SageMakerHyperparameterTuningTask,
)

__all__ = [
    "CONNECTOR_NAME",
    "UNREADABLE_META",
    "UNTRUSTED_META",
    "SageMakerBuiltinAlgorithmTask",
    "SageMakerConnector",
    "SageMakerCustomTrainingTask",
    "SageMakerHyperparameterTuningTask",
    "SageMakerJobMeta",
    "register",
    "serving",
]
