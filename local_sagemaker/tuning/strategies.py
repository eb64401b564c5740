"""How a tuning job picks each trial's hyperparameters: Random, Bayesian (optuna's TPE), Grid; Hyperband samples as
Random does and gets its edge from stopping trials at rungs (early_stopping.py).

Each strategy answers `suggest()` with the next trial's tuned hyperparameters (None once it has nothing more to try)
and learns each trial's objective through `observe()`; the job calls them under the server's lock, one at a time.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from local_sagemaker.tuning.ranges import Range, grid


@dataclass(frozen=True)
class Suggestion:
    hyperparameters: dict[str, str]
    token: Any = None  # what the strategy needs back in observe()


class Strategy(Protocol):
    def suggest(self) -> Suggestion | None: ...

    def observe(self, suggestion: Suggestion, objective: float | None) -> None: ...


@dataclass
class RandomSearch:
    """Each value drawn independently, uniformly on its range's scale."""

    ranges: Sequence[Range]
    seed: int

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def suggest(self) -> Suggestion | None:
        return Suggestion({r.name: r.sample(self._rng) for r in self.ranges})

    def observe(self, suggestion: Suggestion, objective: float | None) -> None:
        return None


@dataclass
class GridSearch:
    """Every combination of the categorical values once, in order."""

    ranges: Sequence[Range]
    _left: list[dict[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._left = list(grid(self.ranges))[::-1]

    def suggest(self) -> Suggestion | None:
        return Suggestion(self._left.pop()) if self._left else None

    def observe(self, suggestion: Suggestion, objective: float | None) -> None:
        return None


class BayesianSearch:
    """optuna's Tree-structured Parzen Estimator over the ranges' unit coordinates (so each range's scaling holds),
    asked and told one trial at a time; running trials count as their liars' values (constant_liar)."""

    def __init__(self, ranges: Sequence[Range], seed: int, minimize: bool, max_trials: int) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.ranges = list(ranges)
        startup = max(3, min(10, max_trials // 4))
        sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup, constant_liar=True,
                                             multivariate=True)
        self._optuna = optuna
        self._study = optuna.create_study(direction="minimize" if minimize else "maximize", sampler=sampler)
        self._distributions: dict[str, optuna.distributions.BaseDistribution] = {
            r.name: optuna.distributions.CategoricalDistribution(r.values) if r.kind == "Categorical"
            else optuna.distributions.FloatDistribution(0.0, 1.0)
            for r in self.ranges
        }

    def suggest(self) -> Suggestion | None:
        trial = self._study.ask(self._distributions)
        values = {
            r.name: str(trial.params[r.name]) if r.kind == "Categorical" else r.value(float(trial.params[r.name]))
            for r in self.ranges
        }
        return Suggestion(values, trial)

    def observe(self, suggestion: Suggestion, objective: float | None) -> None:
        if objective is None:
            self._study.tell(suggestion.token, state=self._optuna.trial.TrialState.FAIL)
        else:
            self._study.tell(suggestion.token, objective)


class Kept:
    """The strategy of a tuning job restored from the data folder's records: it has ended or another local
    SageMaker runs it, so nothing is suggested here."""

    def suggest(self) -> Suggestion | None:
        return None

    def observe(self, suggestion: Suggestion, objective: float | None) -> None:
        return None


def make(name: str, ranges: Sequence[Range], seed: int, minimize: bool, max_trials: int) -> Strategy:
    """The strategy a HyperParameterTuningJobConfig.Strategy names."""
    if name == "Grid":
        return GridSearch(ranges)
    if name == "Bayesian":
        return BayesianSearch(ranges, seed, minimize, max_trials)
    return RandomSearch(ranges, seed)  # Random, and Hyperband's sampling
