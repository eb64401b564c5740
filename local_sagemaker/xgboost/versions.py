"""What differs between the algorithm's versions, from each version's branch of aws/sagemaker-xgboost-container.

Each image pins an xgboost release (0.90, 1.0, 1.2, 1.3.3, 1.5.2, 1.7.4, 3.0.5, ...); the container's behaviour
follows from that release and the container code of the time:
- the model file: up to 1.2-2 the Booster is pickled (1.2-x with protocol 4); from 1.3-1 it is `Booster.save_model`;
- the metrics the container computes itself (its `custom_metrics.CUSTOM_METRICS`) grew over the versions;
- xgboost's default evaluation metric of some objectives changed (in xgboost 1.3), so an older image logs another
  metric than today's library would when `eval_metric` is not given: each version's defaults come with its
  hyperparameter definitions (handlers.xgboost_algorithm), which also name the metrics SageMaker reads.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from handlers.xgboost_algorithm import definitions
from local_sagemaker.xgboost.failures import ClientError

_LEGACY = ("1", "latest")  # the first built-in image (repository `xgboost`): an xgboost of the 0.7x era
_VERSION = re.compile(r"^(\d+)\.(\d+)-\d+$")

_CUSTOM_METRICS_0_90 = ("accuracy", "f1", "mse")
_CUSTOM_METRICS_1_3 = (
    "accuracy",
    "balanced_accuracy",
    "f1",
    "f1_binary",
    "f1_macro",
    "mse",
    "rmse",
    "mae",
    "precision",
    "precision_macro",
    "precision_micro",
    "r2",
    "recall",
    "recall_macro",
    "recall_micro",
)

@dataclass(frozen=True)
class Behaviour:
    """One algorithm version's behaviour where versions differ."""

    version: str
    library: tuple[int, int]  # the xgboost release the image trains with (major, minor)
    custom_metrics: tuple[str, ...]
    default_metrics: Mapping[str, str]  # objective -> the metric the image's library evaluates when none is named

    @property
    def pickles_model(self) -> bool:
        return self.library < (1, 3)

    @property
    def pickle_protocol(self) -> int | None:
        return 4 if self.library == (1, 2) else None

    @property
    def early_stopping_keeps_best_only(self) -> bool:
        """From 1.3-1 the container stops early with save_best=True: the model ends at the best round."""
        return self.library >= (1, 3)


def behaviour(version: str) -> Behaviour:
    """The behaviour of an algorithm version such as `1.7-1`; a version of no known shape is a ClientError."""
    library = _library(version)
    custom: tuple[str, ...]
    if library < (1, 2):
        custom = _CUSTOM_METRICS_0_90
    elif version == "1.2-1":
        custom = (*_CUSTOM_METRICS_0_90, "r2")
    elif library < (1, 3):
        custom = (*_CUSTOM_METRICS_0_90, "f1_binary", "f1_macro", "r2")
    else:
        custom = _CUSTOM_METRICS_1_3
    try:
        defaults = definitions(version).default_metrics
    except KeyError as error:
        raise ClientError(str(error.args[0])) from None
    return Behaviour(version=version, library=library, custom_metrics=custom, default_metrics=defaults)


def _library(version: str) -> tuple[int, int]:
    if version in _LEGACY:
        return (0, 72)
    match = _VERSION.match(version)
    if not match:
        raise ClientError(f"Unknown algorithm version {version!r}: expected a version such as 1.7-1")
    major, minor = int(match.group(1)), int(match.group(2))
    # 0.90-x trains with xgboost 0.90; later versions name their library's major.minor
    return (major, minor)
