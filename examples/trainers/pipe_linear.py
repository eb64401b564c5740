"""Linear regression on the example CSV (label first), read in Pipe mode: the rows stream in, epoch after epoch.

In Pipe mode SageMaker gives a channel no folder: `/opt/ml/input/data/train_0` is a FIFO that streams the channel's
objects once, then EOF; once it is closed, `train_1` appears and streams them again, and so on. This script reads
one FIFO per epoch, a line at a time, and takes a gradient step every `batch_size` rows, so it never holds the data
set in memory. It writes model.json to the model folder. Hyperparameters: epochs, learning_rate, batch_size.

It needs nothing but Python and numpy, and imports nothing beside it: in a Pipe task the code channel is a FIFO too
(the task runs `python /opt/ml/input/data/code_0`, this file streamed).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

OPT_ML = Path("/opt/ml")


def hyperparameters() -> dict[str, str]:
    """hyperparameters.json: what SageMaker gives every container (values are strings)."""
    config = Path(os.environ.get("SM_INPUT_CONFIG_DIR", OPT_ML / "input" / "config"))
    return dict(json.loads((config / "hyperparameters.json").read_text()))


def epoch_fifo(channel: str, epoch: int, timeout: float = 60.0) -> Path:
    """`<channel>_<epoch>`, waited for: SageMaker makes it once the previous epoch's FIFO was closed."""
    folder = Path(os.environ.get(f"SM_CHANNEL_{channel.upper()}", OPT_ML / "input" / "data" / channel)).parent
    path = folder / f"{channel}_{epoch}"
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} never appeared")
        time.sleep(0.01)
    return path


def batches(path: Path, size: int) -> Iterator[np.ndarray]:
    """The FIFO's CSV rows, `size` at a time, as they arrive."""
    rows: list[list[float]] = []
    with path.open("r", encoding="utf-8") as fifo:
        for line in fifo:
            if line.strip():
                rows.append([float(value) for value in line.split(",")])
            if len(rows) == size:
                yield np.array(rows)
                rows = []
    if rows:
        yield np.array(rows)


def main() -> None:
    hp = hyperparameters()
    epochs, rate = int(hp.get("epochs", "20")), float(hp.get("learning_rate", "0.1"))
    batch_size = int(hp.get("batch_size", "20"))
    w = np.zeros(0)
    loss = float("nan")
    for epoch in range(epochs):
        squared, seen = 0.0, 0
        for batch in batches(epoch_fifo("train", epoch), batch_size):
            x = np.hstack([batch[:, 1:], np.ones((len(batch), 1))])
            if not w.size:
                w = np.zeros(x.shape[1])
            error = x @ w - batch[:, 0]
            squared, seen = squared + float(error @ error), seen + len(batch)
            w -= rate * 2 * x.T @ error / len(batch)
        loss = squared / max(seen, 1)
        print(f"epoch {epoch + 1}/{epochs}: {seen} rows streamed from train_{epoch}, loss={loss:.6f}", flush=True)
    print(f"final loss={loss:.6f}", flush=True)
    out = Path(os.environ.get("SM_MODEL_DIR", OPT_ML / "model"))
    out.mkdir(parents=True, exist_ok=True)
    (out / "model.json").write_text(json.dumps({"weights": w[:-1].tolist(), "bias": float(w[-1]), "loss": loss}))


if __name__ == "__main__":
    main()
