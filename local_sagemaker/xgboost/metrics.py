"""The evaluation metrics the container computes itself rather than xgboost (its `custom_metrics` module).

They are plain, unweighted scores over the predictions (as scikit-learn computes them for the container), in numpy.
Which names a version computes this way is in versions.py; every other `eval_metric` goes to xgboost.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import xgboost as xgb

Array = Any  # numpy arrays; xgboost hands float32 vectors or (rows, classes) matrices

# Scores where higher is better: early stopping maximises these (the container's XGB_MAXIMIZE_METRICS).
MAXIMIZED = frozenset(
    {
        "accuracy",
        "auc",
        "aucpr",
        "balanced_accuracy",
        "f1",
        "f1_binary",
        "f1_macro",
        "map",
        "ndcg",
        "precision",
        "r2",
        "recall",
        "precision_macro",
        "precision_micro",
        "recall_macro",
        "recall_micro",
    }
)
MULTICLASS_BINARY_ERROR = "Target is multiclass but average='binary'. Please choose another average setting."


def class_labels(predictions: Array, objective: str) -> Array:
    """Predicted classes from what xgboost passes a custom metric: probabilities, margins or classes."""
    values = np.asarray(predictions)
    if values.ndim == 2:
        return np.argmax(values, axis=1)
    if objective == "binary:logitraw":
        return (values > 0.0).astype(int)
    if objective.startswith("multi:"):
        return np.rint(values).astype(int)
    return (values > 0.5).astype(int)


def _per_class(truth: Array, guess: Array) -> tuple[Array, Array, Array, Array]:
    labels = np.union1d(truth, guess)
    true_positive = np.array([np.sum((guess == c) & (truth == c)) for c in labels], dtype=float)
    predicted = np.array([np.sum(guess == c) for c in labels], dtype=float)
    actual = np.array([np.sum(truth == c) for c in labels], dtype=float)
    return labels, true_positive, predicted, actual


def _ratio(top: Array, bottom: Array) -> Array:
    return np.divide(top, bottom, out=np.zeros_like(top), where=bottom > 0)


def _precision(truth: Array, guess: Array, average: str) -> float:
    labels, tp, predicted, _ = _per_class(truth, guess)
    return _average(labels, tp, predicted, average)


def _recall(truth: Array, guess: Array, average: str) -> float:
    labels, tp, _, actual = _per_class(truth, guess)
    return _average(labels, tp, actual, average)


def _average(labels: Array, top: Array, bottom: Array, average: str) -> float:
    if average == "micro":
        return float(_ratio(np.array([top.sum()]), np.array([bottom.sum()]))[0])
    if average == "binary":
        if len(labels) > 2:
            raise ValueError(MULTICLASS_BINARY_ERROR)
        positive = labels == 1
        return float(_ratio(top[positive], bottom[positive]).sum())
    return float(np.mean(_ratio(top, bottom)))


def _f1(truth: Array, guess: Array, average: str) -> float:
    labels, tp, predicted, actual = _per_class(truth, guess)
    if average == "binary":
        if len(labels) > 2:
            raise ValueError(MULTICLASS_BINARY_ERROR)
        keep = labels == 1
        tp, predicted, actual = tp[keep], predicted[keep], actual[keep]
        if not keep.any():
            return 0.0
    scores = _ratio(2 * tp, predicted + actual)
    return float(np.mean(scores))


def _balanced_accuracy(truth: Array, guess: Array) -> float:
    classes = np.unique(truth)
    return float(np.mean([np.mean(guess[truth == c] == c) for c in classes]))


_CLASS_METRICS: dict[str, Callable[[Array, Array], float]] = {
    "accuracy": lambda t, g: float(np.mean(t == g)),
    "balanced_accuracy": _balanced_accuracy,
    "f1": lambda t, g: _f1(t, g, "macro"),
    "f1_binary": lambda t, g: _f1(t, g, "binary"),
    "f1_macro": lambda t, g: _f1(t, g, "macro"),
    "precision": lambda t, g: _precision(t, g, "binary"),
    "precision_macro": lambda t, g: _precision(t, g, "macro"),
    "precision_micro": lambda t, g: _precision(t, g, "micro"),
    "recall": lambda t, g: _recall(t, g, "binary"),
    "recall_macro": lambda t, g: _recall(t, g, "macro"),
    "recall_micro": lambda t, g: _recall(t, g, "micro"),
}


def _r2(truth: Array, guess: Array) -> float:
    spread = float(np.sum((truth - np.mean(truth)) ** 2))
    residual = float(np.sum((truth - guess) ** 2))
    return 1.0 - residual / spread if spread > 0 else 0.0


_VALUE_METRICS: dict[str, Callable[[Array, Array], float]] = {
    "mse": lambda t, g: float(np.mean((t - g) ** 2)),
    "rmse": lambda t, g: float(np.sqrt(np.mean((t - g) ** 2))),
    "mae": lambda t, g: float(np.mean(np.abs(t - g))),
    "r2": _r2,
}


def custom_metric(names: Sequence[str], objective: str) -> Callable[[Array, xgb.DMatrix], list[tuple[str, float]]]:
    """One xgboost `custom_metric` computing the named metrics, in the given order."""

    def evaluate(predictions: Array, data: xgb.DMatrix) -> list[tuple[str, float]]:
        truth = data.get_label()
        values = np.asarray(predictions, dtype=float)
        results = []
        for name in names:
            if name in _VALUE_METRICS:
                results.append((name, _VALUE_METRICS[name](truth, values.reshape(truth.shape))))
            elif values.size == 0:
                results.append((name, 0.0))
            else:
                results.append((name, _CLASS_METRICS[name](truth.astype(int), class_labels(values, objective))))
        return results

    return evaluate
