"""Linear regression on the example CSV (label first), data parallel with MPI: every rank computes the gradient of
its share of the rows, and the ranks average their gradients at every step (mpi4py's allreduce), so they all hold
the same weights. Rank 0 prints the loss and writes model.json to its host's model folder (SageMaker packs it into
model.tar.gz). Started by the training toolkit's mpirun on SageMaker (the sagemaker_program hyperparameter names
this file); it reads its arguments (--epochs, --learning_rate) as the toolkit passes them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from mpi4py import MPI

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sagemaker_env


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--learning_rate", type=float, default=0.1)
    args, _ = parser.parse_known_args()
    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    _, host = sagemaker_env.hosts()
    files = sorted(p for p in sagemaker_env.channel("train").rglob("*.csv") if p.is_file())
    rows = np.vstack([np.loadtxt(f, delimiter=",", ndmin=2) for f in files])[rank::size]
    print(f"rank {rank} of {size} on {host}: {len(rows)} rows", flush=True)
    x = np.hstack([rows[:, 1:], np.ones((len(rows), 1))])
    y = rows[:, 0]
    w = np.zeros(x.shape[1])
    total = comm.allreduce(len(y))
    for epoch in range(1, args.epochs + 1):
        error = x @ w - y
        gradient = comm.allreduce(2 * x.T @ error) / total
        loss = comm.allreduce(float(error @ error)) / total
        w -= args.learning_rate * gradient
        if rank == 0 and (epoch % max(1, args.epochs // 10) == 0 or epoch == args.epochs):
            print(f"epoch {epoch}/{args.epochs} loss={loss:.6f}", flush=True)
    if rank == 0:
        out = sagemaker_env.model_dir()
        out.mkdir(parents=True, exist_ok=True)
        (out / "model.json").write_text(json.dumps({"weights": w[:-1].tolist(), "bias": float(w[-1]),
                                                    "loss": loss, "ranks": size}))


if __name__ == "__main__":
    main()
