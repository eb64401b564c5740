"""Expectations the tests compute about metrics, kept out of production code that never needs them.

Importable by name (`from metric_checks import calls_needed`): tests/conftest.py puts tests/support on sys.path.
"""

from __future__ import annotations

import math

from handlers.metric_series import MAX_QUERIES
from handlers.xgboost_algorithm import definitions


def calls_needed(metrics: int, hosts: int) -> int:
    """GetMetricData calls per page of answers for `metrics` × `hosts` series (MAX_QUERIES queries a call)."""
    return math.ceil(metrics * hosts / MAX_QUERIES)


def metric_direction(version: str, metric_name: str) -> str:
    """"Minimize" or "Maximize" for one of SageMaker XGBoost's metrics (`validation:auc`); KeyError for another."""
    metric = definitions(version).metric(metric_name)
    if metric is None:
        raise KeyError(f"{metric_name!r} is not a metric of SageMaker XGBoost {version}")
    return metric.direction
