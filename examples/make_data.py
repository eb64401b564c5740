"""Writes the small data sets of the examples: CSV, label first, no header (XGBoost's format), from fixed seeds, so the
files are the same on every machine.

- data/train, data/validation (examples/xgboost.yaml): regression, y = 3*x1 - 2*x2 + 0.5*x3 + noise.
- data/classification/train, .../validation (examples/xgboost-classification.yaml): two classes, the label 1 with
  probability sigmoid(2*x1 - 3*x2 + x3 - x4).
"""

from __future__ import annotations

import math
import random
from pathlib import Path


def rows(count: int, rng: random.Random) -> list[str]:
    out = []
    for _ in range(count):
        x = [rng.uniform(-1, 1) for _ in range(3)]
        y = 3 * x[0] - 2 * x[1] + 0.5 * x[2] + rng.gauss(0, 0.1)
        out.append(",".join(f"{v:.5f}" for v in [y, *x]))
    return out


def classification_rows(count: int, rng: random.Random) -> list[str]:
    out = []
    for _ in range(count):
        x = [rng.uniform(-1, 1) for _ in range(4)]
        chance = 1 / (1 + math.exp(-(2 * x[0] - 3 * x[1] + x[2] - x[3])))
        label = 1 if rng.random() < chance else 0
        out.append(",".join([str(label), *(f"{v:.5f}" for v in x)]))
    return out


def write(folder: Path, name: str, lines: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.csv").write_text("\n".join(lines) + "\n")


def main() -> None:
    data = Path(__file__).parent / "data"
    rng = random.Random(20261126)
    for name, count in (("train", 400), ("validation", 100)):
        write(data / name, name, rows(count, rng))
    rng = random.Random(20261128)
    for name, count in (("train", 600), ("validation", 200)):
        write(data / "classification" / name, name, classification_rows(count, rng))


if __name__ == "__main__":
    main()
