"""Linear regression on the example CSV (label first), trained on every host of a native multi-host job.

Each host fits its share of the rows (every n-th row) with gradient descent, then the hosts average their weights:
the first host listens at MASTER_ADDR:MASTER_PORT (the local SageMaker sets both; on SageMaker the first host's
name and port 29500 are used), the others send theirs. The first host writes model.json to the model folder, which
SageMaker packs into model.tar.gz. Hyperparameters: epochs, learning_rate.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sagemaker_env


def load(folder: Path) -> np.ndarray:
    files = sorted(p for p in folder.rglob("*.csv") if p.is_file())
    return np.vstack([np.loadtxt(f, delimiter=",", ndmin=2) for f in files])


def fit(rows: np.ndarray, epochs: int, rate: float, host: str) -> np.ndarray:
    x = np.hstack([rows[:, 1:], np.ones((len(rows), 1))])
    y = rows[:, 0]
    w = np.zeros(x.shape[1])
    for epoch in range(1, epochs + 1):
        error = x @ w - y
        w -= rate * 2 * x.T @ error / len(y)
        if epoch % max(1, epochs // 10) == 0 or epoch == epochs:
            print(f"{host} epoch {epoch}/{epochs} loss={float(np.mean(error ** 2)):.6f}", flush=True)
    return w


def _send(sock: socket.socket, w: np.ndarray) -> None:
    payload = w.astype("<f8").tobytes()
    sock.sendall(struct.pack("<I", len(payload)) + payload)


def _receive(sock: socket.socket) -> np.ndarray:
    def exactly(n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("peer closed")
            data += chunk
        return data

    (size,) = struct.unpack("<I", exactly(4))
    return np.frombuffer(exactly(size), dtype="<f8")


def average(w: np.ndarray, hosts: list[str], me: str) -> np.ndarray:
    """The mean of every host's weights, gathered by the first host over TCP; other hosts get None back."""
    if len(hosts) == 1:
        return w
    address = os.environ.get("MASTER_ADDR", hosts[0])
    port = int(os.environ.get("MASTER_PORT", "29500"))
    if me == hosts[0]:
        with socket.create_server(("" if address != "127.0.0.1" else address, port)) as server:
            server.settimeout(120)
            weights = [w]
            for _ in hosts[1:]:
                connection, _ = server.accept()
                with connection:
                    weights.append(_receive(connection))
        print(f"{me} averaged the weights of {len(weights)} hosts", flush=True)
        return np.mean(weights, axis=0)
    deadline = time.monotonic() + 120
    while True:
        try:
            with socket.create_connection((address, port), timeout=5) as connection:
                _send(connection, w)
            print(f"{me} sent its weights to {hosts[0]}", flush=True)
            return w
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def main() -> None:
    hp = sagemaker_env.hyperparameters()
    epochs, rate = int(hp.get("epochs", 100)), float(hp.get("learning_rate", 0.1))
    hosts, me = sagemaker_env.hosts()
    rows = load(sagemaker_env.channel("train"))
    mine = rows[hosts.index(me)::len(hosts)]
    print(f"{me} of {len(hosts)} hosts: training on {len(mine)} of {len(rows)} rows", flush=True)
    w = average(fit(mine, epochs, rate, me), hosts, me)
    if me == hosts[0]:
        x = np.hstack([rows[:, 1:], np.ones((len(rows), 1))])
        loss = float(np.mean((x @ w - rows[:, 0]) ** 2))
        print(f"{me} final loss={loss:.6f}", flush=True)
        model = {"weights": w[:-1].tolist(), "bias": float(w[-1]), "loss": loss}
        out = sagemaker_env.model_dir()
        out.mkdir(parents=True, exist_ok=True)
        (out / "model.json").write_text(json.dumps(model))


if __name__ == "__main__":
    main()
