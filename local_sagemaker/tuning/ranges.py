"""A tuning job's ParameterRanges as values: checked as SageMaker checks them, sampled on their scale, enumerated.

A point of the search space is kept as a unit coordinate per numeric range (0..1 on the range's own scale) and an
index per categorical one; `value()` turns a coordinate into the string hyperparameter SageMaker passes a trial.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

KINDS = (("IntegerParameterRanges", "Integer"), ("ContinuousParameterRanges", "Continuous"),
         ("CategoricalParameterRanges", "Categorical"))


class RangeError(ValueError):
    """A range SageMaker would refuse; the message is the ValidationException's text."""


@dataclass(frozen=True)
class Range:
    """One tuned hyperparameter. `scaling` is resolved: Auto becomes Linear or Logarithmic as the range suggests."""

    name: str
    kind: str  # Integer, Continuous or Categorical
    low: float = 0.0
    high: float = 0.0
    scaling: str = "Linear"
    values: tuple[str, ...] = ()

    def value(self, unit: float) -> str:
        """The hyperparameter at a unit coordinate of the range's scale (clamped to the range)."""
        unit = min(1.0, max(0.0, unit))
        if self.scaling == "Logarithmic":
            number = math.exp(math.log(self.low) + unit * (math.log(self.high) - math.log(self.low)))
        elif self.scaling == "ReverseLogarithmic":
            # Dense near 1: uniform in log(1 - x).
            top, bottom = math.log(1 - self.low), math.log(1 - self.high)
            number = 1 - math.exp(top + unit * (bottom - top))
        else:
            number = self.low + unit * (self.high - self.low)
        number = min(self.high, max(self.low, number))
        if self.kind == "Integer":
            return str(int(min(self.high, max(self.low, round(number)))))
        return repr(float(number)) if not float(number).is_integer() else str(float(number))

    def sample(self, rng: random.Random) -> str:
        if self.kind == "Categorical":
            return self.values[rng.randrange(len(self.values))]
        return self.value(rng.random())


def parse(ranges: Mapping[str, Any]) -> list[Range]:
    """The ranges of a ParameterRanges member (already checked against the service model), in request order."""
    out: list[Range] = []
    for member, kind in KINDS:
        for item in ranges.get(member) or []:
            name = str(item["Name"])
            if kind == "Categorical":
                values = tuple(str(v) for v in item["Values"])
                if len(set(values)) != len(values):
                    raise RangeError(f"The values of the categorical hyperparameter {name} must be unique.")
                out.append(Range(name, kind, values=values))
                continue
            low, high = _number(name, item["MinValue"], kind), _number(name, item["MaxValue"], kind)
            if low > high:
                raise RangeError(f"The MinValue {item['MinValue']} of hyperparameter {name} must be less than or "
                                 f"equal to its MaxValue {item['MaxValue']}.")
            out.append(Range(name, kind, low, high, _scaling(name, kind, low, high, item.get("ScalingType"))))
    names = [r.name for r in out]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise RangeError(f"Hyperparameter names must be unique across all parameter ranges; repeated: "
                         f"{', '.join(repeated)}.")
    return out


def grid(ranges: Sequence[Range]) -> Iterator[dict[str, str]]:
    """Every combination of categorical values, the last range varying fastest."""
    for combination in itertools.product(*(r.values for r in ranges)):
        yield {r.name: value for r, value in zip(ranges, combination, strict=True)}


def _number(name: str, raw: Any, kind: str) -> float:
    try:
        number = float(str(raw))
    except ValueError:
        number = math.nan
    if math.isnan(number) or math.isinf(number) or (kind == "Integer" and not number.is_integer()):
        noun = "an integer" if kind == "Integer" else "a number"
        raise RangeError(f"The value {raw} of hyperparameter {name} is not {noun}.")
    return number


def _scaling(name: str, kind: str, low: float, high: float, asked: Any) -> str:
    scaling = str(asked or "Auto")
    if scaling == "Logarithmic" and low <= 0:
        raise RangeError(f"The hyperparameter {name} uses Logarithmic scaling, which works only for ranges that have "
                         "only values greater than 0.")
    if scaling == "ReverseLogarithmic":
        if kind == "Integer":
            raise RangeError(f"The hyperparameter {name} is an integer: ReverseLogarithmic scaling works only for "
                             "continuous ranges.")
        if not (low >= 0 and high < 1):
            raise RangeError(f"The hyperparameter {name} uses ReverseLogarithmic scaling, which works only for ranges "
                             "that are entirely within the range 0<=x<1.0.")
    if scaling == "Auto":  # SageMaker picks log for positive ranges spanning orders of magnitude
        return "Logarithmic" if low > 0 and high / low >= 100 else "Linear"
    if low == high:
        return "Linear"
    return scaling
