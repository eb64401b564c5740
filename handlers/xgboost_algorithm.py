"""The built-in XGBoost algorithm's hyperparameters and metrics, per image version, from data files.

SageMaker's XGBoost container checks its hyperparameters only once the job is Training, minutes after the create;
this module checks them the same way before any AWS call, and reports every problem at once where the container
stops at the first. The facts (names, types, ranges, categories, dependencies, metrics) live in
`data/xgboost/<version>.json`, generated from the container's source of each release (tools/xgboost_definitions.py);
`data/xgboost/versions.json` says which file checks which image version. No XGBoost fact is written in this code.
"""

from __future__ import annotations

import ast
import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from handlers.errors import Problem, merge_by_path, short_repr
from handlers.explain import did_you_mean

DATA_DIR = Path(__file__).parent / "data" / "xgboost"
INDEX = DATA_DIR / "versions.json"

Value = Any  # a parsed hyperparameter: int, float, str, a list of str, a tuple or a list of lists of numbers


@dataclass(frozen=True)
class Interval:
    """A range of numbers, each end open, closed or absent (unbounded)."""

    min: float | None = None
    min_closed: bool = True
    max: float | None = None
    max_closed: bool = True
    scale: str = ""

    def __contains__(self, value: object) -> bool:
        # As the container compares: NaN fails no comparison, so it is in every range.
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return False
        return not ((self.min is not None and (value < self.min or (value == self.min and not self.min_closed)))
                    or (self.max is not None and (value > self.max or (value == self.max and not self.max_closed))))

    def __str__(self) -> str:
        low = f"[{_number(self.min)}" if self.min is not None and self.min_closed else \
            f"({_number(self.min)}" if self.min is not None else "(-inf"
        high = f"{_number(self.max)}]" if self.max is not None and self.max_closed else \
            f"{_number(self.max)})" if self.max is not None else "+inf)"
        return f"{low}, {high}"

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> Interval:
        return cls(data.get("min"), bool(data.get("min_closed", True)), data.get("max"),
                   bool(data.get("max_closed", True)), str(data.get("scale", "")))


def _number(value: Any) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


@dataclass(frozen=True)
class Hyperparameter:
    """One hyperparameter the container accepts. `type` is integer, continuous, categorical, comma_separated_list,
    tuple or nested_list; a number-valued one has an `interval`, the others `values` (their elements' categories;
    a nested list's elements lie in `interval`)."""

    name: str
    type: str
    required: bool = False
    interval: Interval | None = None
    values: tuple[Any, ...] = ()
    tunable: bool = False
    tunable_recommended_range: Interval | None = None
    threshold_metrics: tuple[str, ...] = ()  # eval_metric: these take `<metric>@<number>`

    def describe(self) -> str:
        """What the hyperparameter takes, for messages."""
        kinds = {"integer": "an integer", "continuous": "a number"}
        if self.type in kinds:
            return f"{kinds[self.type]} in {self.interval}"
        if self.type == "categorical":
            return "one of " + ", ".join(map(str, self.values))
        if self.type == "comma_separated_list":
            return "a comma-separated list of " + ", ".join(map(str, self.values))
        if self.type == "tuple":
            return "a tuple of " + ", ".join(map(str, self.values)) + ", e.g. (1,-1,0)"
        return f"a list of lists of integers in {self.interval}, e.g. [[1,2],[3,4]]"


@dataclass(frozen=True)
class Condition:
    """A test of one hyperparameter's value; `test` is one of given, in, not_in, prefix, has_item, items_in,
    max_items, at_most_one_of (data/xgboost/*.json `rules`)."""

    name: str
    test: str
    operand: Any

    def holds(self, values: Mapping[str, Value]) -> bool:
        given = self.name in values
        value = values.get(self.name)
        if self.test == "given":
            return given is bool(self.operand)
        if self.test == "not_in":
            return not given or value not in self.operand
        if not given:
            return False
        if self.test == "in":
            return bool(value in self.operand)
        if self.test == "prefix":
            return any(str(value).startswith(prefix) for prefix in self.operand)
        items = list(value) if isinstance(value, (list, tuple)) else [value]
        if self.test == "has_item":
            return self.operand in items
        if self.test == "items_in":
            return all(item in self.operand for item in items)
        if self.test == "max_items":
            return len(items) <= int(self.operand)
        if self.test == "at_most_one_of":
            return sum(item in self.operand for item in items) <= 1
        raise ValueError(f"unknown condition test {self.test!r}")


@dataclass(frozen=True)
class Rule:
    """When every `when` condition holds, every `then` condition must, else hyperparameter `at` is at fault."""

    when: tuple[Condition, ...]
    then: tuple[Condition, ...]
    at: str
    message: str
    basis: str = "container"  # or "xgboost": what XGBoost itself fails on, where the container lets it through

    @property
    def names(self) -> frozenset[str]:
        return frozenset(c.name for c in (*self.when, *self.then))


@dataclass(frozen=True)
class Metric:
    """A metric SageMaker reads from the algorithm's logs: `train:rmse`, `validation:auc`, ..."""

    name: str
    regex: str
    direction: str  # "Minimize" or "Maximize"


@dataclass(frozen=True)
class AlgorithmDefinitions:
    """Everything one definitions file says; `version` is the image version it was asked for."""

    version: str
    file: str
    basis: str
    source: Mapping[str, Any]
    hyperparameters: Mapping[str, Hyperparameter]
    aliases: Mapping[str, str]
    rules: tuple[Rule, ...]
    metrics: tuple[Metric, ...]
    default_metrics: Mapping[str, str]

    def metric(self, name: str) -> Metric | None:
        return next((m for m in self.metrics if m.name == name), None)


def versions() -> tuple[str, ...]:
    """The image versions with definitions (the image registry's versions and aliases)."""
    return tuple(_index())


def definitions(version: str) -> AlgorithmDefinitions:
    """The definitions that check `version`; KeyError naming the known versions for another."""
    index = _index()
    if version not in index:
        raise KeyError(f"no XGBoost hyperparameter definitions for version {version!r}; known: "
                       f"{', '.join(index)}")
    entry = index[version]
    return _load(version, str(entry["definitions"]), str(entry.get("basis", "")))


def check_hyperparameters(version: str, hyperparameters: Mapping[str, str]) -> list[Problem]:
    """Every problem the container would find in these hyperparameters (string values, as SageMaker passes them),
    each at the hyperparameter's name, plus what XGBoost itself would fail on; [] when they would train."""
    defs = definitions(version)
    label = f"SageMaker XGBoost {version}"
    problems: list[Problem] = []
    canonical: dict[str, str] = {}  # canonical name -> the name the user wrote
    parsed: dict[str, Value] = {}
    for name, raw in hyperparameters.items():
        real = defs.aliases.get(name, name)
        hp = defs.hyperparameters.get(real)
        if hp is None:
            problems.append(Problem(name, _unknown(name, defs, label)))
            continue
        canonical[real] = name
        try:
            value = _parse(hp, str(raw))
        except ValueError as error:
            problems.append(Problem(name, f"{short_repr(raw)} is not {error}; it takes {hp.describe()}"))
            continue
        problem = _out_of_range(hp, value)
        if problem:
            problems.append(Problem(name, problem))
            continue
        parsed[real] = value
    for hp in defs.hyperparameters.values():
        if hp.required and hp.name not in canonical:
            problems.append(Problem(hp.name, f"is required by {label}: {hp.describe()}"))
    failed = set(canonical) - set(parsed)  # a rule about a value already refused would only be noise
    for rule in defs.rules:
        if rule.names & failed or not all(c.holds(parsed) for c in rule.when):
            continue
        if not all(c.holds(parsed) for c in rule.then):
            problems.append(Problem(canonical.get(rule.at, rule.at), rule.message))
    return merge_by_path(problems)


def metric_definitions(version: str, hyperparameters: Mapping[str, str] | None = None) -> list[dict[str, str]]:
    """The MetricDefinitions SageMaker applies to a job of this version: all of them, or with `hyperparameters`
    those the job can print (its eval_metric, else its objective's default metric), for train and validation."""
    defs = definitions(version)
    if hyperparameters is None:
        return [{"Name": m.name, "Regex": m.regex} for m in defs.metrics]
    wanted = [item for item in str(hyperparameters.get("eval_metric", "")).split(",") if item]
    if not wanted:
        objective = str(hyperparameters.get("objective", ""))
        default = defs.default_metrics.get(objective)
        wanted = [default] if default else []
    names = [f"{channel}:{metric}" for channel in ("train", "validation") for metric in wanted]
    return [{"Name": m.name, "Regex": m.regex} for name in names if (m := defs.metric(name)) is not None]


# --- parsing and ranges, as the container's hyperparameter classes do them ---------------------------------------

def _parse(hp: Hyperparameter, raw: str) -> Value:
    """The value as the container parses it; ValueError saying what it is not."""
    if hp.type == "integer":
        try:
            return int(raw)
        except ValueError:
            raise ValueError("an integer") from None
    if hp.type == "continuous":
        try:
            return float(raw)
        except ValueError:
            raise ValueError("a number") from None
    if hp.type == "comma_separated_list":
        return raw.split(",")
    if hp.type in ("tuple", "nested_list"):
        try:
            value = ast.literal_eval(raw)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            value = None
        shape = "a tuple" if hp.type == "tuple" else "a list of lists"
        if not isinstance(value, (tuple, list)):
            raise ValueError(shape)
        if hp.type == "nested_list" and not all(isinstance(inner, (tuple, list)) for inner in value):
            raise ValueError(shape)
        return value
    return raw


def _out_of_range(hp: Hyperparameter, value: Value) -> str:
    """What is wrong with a parsed value, or ""."""
    if hp.type in ("integer", "continuous"):
        assert hp.interval is not None
        return "" if value in hp.interval else f"{_number(value)} is not in {hp.interval}"
    if hp.type == "categorical":
        return "" if value in hp.values else f"{short_repr(value)} is not one of: {', '.join(map(str, hp.values))}"
    if hp.type == "comma_separated_list":
        bad = [item for item in value if not _list_item_ok(hp, item)]
        if not bad:
            return ""
        hint = " (no spaces around the commas)" if any(item.strip() != item for item in bad) else ""
        thresholds = (f"; {', '.join(hp.threshold_metrics)} also take a threshold, as in "
                      f"{hp.threshold_metrics[0]}@0.5") if hp.threshold_metrics else ""
        return (f"{', '.join(repr(item) for item in bad[:5])} {'is' if len(bad) == 1 else 'are'} not among: "
                f"{', '.join(map(str, hp.values))}{thresholds}{hint}")
    if hp.type == "tuple":
        bad = [item for item in value if item not in hp.values]
        return f"elements must be {', '.join(map(str, hp.values))}, not {short_repr(bad[:5])}" if bad else ""
    assert hp.interval is not None
    bad = [item for inner in value for item in inner if item not in hp.interval]
    return f"elements must be integers in {hp.interval}, not {short_repr(bad[:5])}" if bad else ""


def _list_item_ok(hp: Hyperparameter, item: str) -> bool:
    if item in hp.values:
        return True
    name, at, threshold = item.partition("@")
    if not at or name.strip() not in hp.threshold_metrics:
        return False
    try:
        float(threshold)
    except ValueError:
        return False
    return True


def _unknown(name: str, defs: AlgorithmDefinitions, label: str) -> str:
    known = [*defs.hyperparameters, *defs.aliases]
    hint = did_you_mean(name, known, cutoff=0.6) or did_you_mean(name.replace("-", "_"), known, cutoff=0.6)
    return f"is not a hyperparameter of {label}{hint}; its container refuses unknown names"




# --- the data files --------------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def _index() -> Mapping[str, Mapping[str, Any]]:
    data: Mapping[str, Mapping[str, Any]] = json.loads(INDEX.read_text(encoding="utf-8"))["versions"]
    return data


@functools.cache
def _load(version: str, file: str, basis: str) -> AlgorithmDefinitions:
    """One definitions file, parsed once per process; a broken file fails loudly here."""
    path = DATA_DIR / f"{file}.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        hyperparameters = {
            hp["name"]: Hyperparameter(
                name=hp["name"], type=hp["type"], required=bool(hp.get("required", False)),
                interval=Interval.parse(hp["interval"]) if "interval" in hp else None,
                values=tuple(hp.get("values", ())), tunable=bool(hp.get("tunable", False)),
                tunable_recommended_range=Interval.parse(hp["tunable_recommended_range"])
                if "tunable_recommended_range" in hp else None,
                threshold_metrics=tuple(hp.get("threshold_metrics", ())))
            for hp in doc["hyperparameters"]}
        rules = tuple(Rule(when=_conditions(rule["if"]), then=_conditions(rule["then"]), at=rule["at"],
                           message=rule["message"], basis=rule.get("basis", "container")) for rule in doc["rules"])
        metrics = tuple(Metric(m["name"], m["regex"], m["direction"]) for m in doc["metrics"])
        return AlgorithmDefinitions(version, file, basis, dict(doc["source"]), hyperparameters,
                                    dict(doc.get("aliases", {})), rules, metrics, dict(doc.get("default_metrics", {})))
    except (OSError, KeyError, TypeError, ValueError) as error:
        raise ValueError(f"{path}: malformed XGBoost definitions ({type(error).__name__}: {error})") from error


_TESTS = ("given", "in", "not_in", "prefix", "has_item", "items_in", "max_items", "at_most_one_of")


def _conditions(items: Sequence[Mapping[str, Any]]) -> tuple[Condition, ...]:
    out = []
    for item in items:
        tests = [key for key in item if key != "name"]
        unknown = [key for key in tests if key not in _TESTS]
        if unknown:
            raise ValueError(f"unknown condition test {unknown[0]!r}")
        out += [Condition(str(item["name"]), key, item[key]) for key in tests]
    return tuple(out)
