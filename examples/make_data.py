"""Writes the small regression data set of examples/xgboost.yaml: CSV, label first, no header (XGBoost's format).

y = 3*x1 - 2*x2 + 0.5*x3 + noise, from a fixed seed, so the files are the same on every machine.
"""

from __future__ import annotations

import random
from pathlib import Path


def rows(count: int, rng: random.Random) -> list[str]:
    out = []
    for _ in range(count):
        x = [rng.uniform(-1, 1) for _ in range(3)]
        y = 3 * x[0] - 2 * x[1] + 0.5 * x[2] + rng.gauss(0, 0.1)
        out.append(",".join(f"{v:.5f}" for v in [y, *x]))
    return out


def main() -> None:
    rng = random.Random(20261126)
    data = Path(__file__).parent / "data"
    for name, count in (("train", 400), ("validation", 100)):
        folder = data / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{name}.csv").write_text("\n".join(rows(count, rng)) + "\n")


if __name__ == "__main__":
    main()
