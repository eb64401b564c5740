"""From the job's hyperparameters (strings, already checked against the version's definitions) to xgboost's inputs.

The container keeps some hyperparameters for itself (num_round, early_stopping_rounds, csv_weights, ...) and passes
the rest to `xgboost.train` as parameters. `eval_metric` is a comma-separated list; metrics the container computes
itself go to a custom metric, the others to xgboost. With `_tuning_objective_metric` (set by hyperparameter tuning) the
two lists are merged and sorted, as the container does.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from local_sagemaker.xgboost.failures import ClientError
from local_sagemaker.xgboost.versions import Behaviour

CONTAINER_ONLY = frozenset(
    {
        "num_round",
        "csv_weights",
        "early_stopping_rounds",
        "save_model_on_termination",
        "_tuning_objective_metric",
        "_kfold",
        "_num_cv_round",
        "use_dask_gpu_training",
    }
)
DEFAULT_OBJECTIVE = "reg:squarederror"


@dataclass(frozen=True)
class Settings:
    num_round: int
    params: dict[str, str | list[str]]
    custom_metrics: tuple[str, ...] = ()
    early_stopping_rounds: int | None = None
    early_stopping_metric: str | None = None
    csv_weights: int = 0
    save_model_on_termination: bool = False
    objective: str = DEFAULT_OBJECTIVE


def settings(hyperparameters: Mapping[str, str], behaviour: Behaviour, hosts_here: int) -> Settings:
    hps = dict(hyperparameters)
    if "_kfold" in hps:
        raise ClientError("_kfold (cross-validation) is not run by the local SageMaker; remove it to train locally")
    if hps.get("use_dask_gpu_training", "false") == "true":
        raise ClientError("use_dask_gpu_training needs GPUs; the local SageMaker trains on the CPU")
    num_round = _integer(hps, "num_round", required=True)
    objective = hps.get("objective", DEFAULT_OBJECTIVE)
    eval_metric = _metric_list(hps.get("eval_metric"))
    tuning = hps.get("_tuning_objective_metric")
    tuning_metric = _metric_list(tuning.split(":")[1] if tuning and ":" in tuning else None)
    metrics = _union(tuning_metric, eval_metric)
    custom = tuple(name for name in metrics or [] if name in behaviour.custom_metrics)
    builtin = [name for name in metrics or [] if name not in custom]
    passed = {name: value for name, value in hps.items() if name not in CONTAINER_ONLY and name != "eval_metric"}
    params: dict[str, str | list[str]] = dict(passed)
    if builtin:
        params["eval_metric"] = builtin
    elif objective in behaviour.default_metrics:  # the version's library's choice, not today's
        params["eval_metric"] = [behaviour.default_metrics[objective]]
    if "nthread" not in params:
        params["nthread"] = str(threads_per_host(hosts_here))
    stopping_rounds = _integer(hps, "early_stopping_rounds", required=False)
    stopping_metric = None
    if stopping_rounds:
        chosen = tuning_metric or eval_metric
        stopping_metric = chosen[-1] if chosen else None
    csv_weights = _integer(hps, "csv_weights", required=False) or 0
    return Settings(
        num_round=num_round or 0,
        params=params,
        custom_metrics=custom,
        early_stopping_rounds=stopping_rounds,
        early_stopping_metric=stopping_metric,
        csv_weights=csv_weights,
        save_model_on_termination=hps.get("save_model_on_termination", "false") == "true",
        objective=objective,
    )


def threads_per_host(hosts_here: int) -> int:
    """The machine's cores shared among the job's hosts, which all run here (the container takes every core)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, cores // max(1, hosts_here))


def _integer(hps: Mapping[str, str], name: str, required: bool) -> int | None:
    text = hps.get(name)
    if text is None:
        if required:
            raise ClientError(f"Missing required hyperparameter: {name}")
        return None
    try:
        return int(text)
    except ValueError:
        raise ClientError(f"Hyperparameter {name}: could not parse value {text!r} as an integer") from None


def _metric_list(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return [name.strip() for name in text.split(",") if name.strip()]


def _union(first: list[str] | None, second: list[str] | None) -> list[str] | None:
    if first is None:
        return second
    if second is None:
        return first
    return sorted(set(first) | set(second))
