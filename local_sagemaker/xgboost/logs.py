"""The algorithm's output: log records as the container's framework writes them, and one line per boosting round.

Records: `[2026-11-28:08:38:45:INFO] Single node training.` on standard error.
Rounds: `[<round>]<TAB>train-rmse:0.12345<TAB>validation-rmse:0.23456` on standard output, from the master only,
values with 5 decimals, datasets in the order train, validation and each dataset's metrics in evaluation order
(xgboost's EvaluationMonitor). CloudWatch shows the tab as `#011`, which the algorithm's metric regexes expect.
Rounds count from the first round ever trained, so a run resumed from a checkpoint goes on where the last stopped.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

LOG = logging.getLogger("local_sagemaker.xgboost")


def configure() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("[%(asctime)s:%(levelname)s] %(message)s", datefmt="%Y-%m-%d:%H:%M:%S"))
    LOG.handlers[:] = [handler]
    LOG.setLevel(logging.INFO)
    LOG.propagate = False


def round_line(round_index: int, evals_log: Any) -> str:
    """`[i]\\tdata-metric:value...` for the latest values in xgboost's evaluation log."""
    parts = [f"[{round_index}]"]
    for data, metrics in evals_log.items():
        for metric, history in metrics.items():
            latest = history[-1]
            score = latest[0] if isinstance(latest, tuple) else latest
            parts.append(f"{data}-{metric}:{score:.5f}")
    return "\t".join(parts)


def print_round(round_index: int, evals_log: Any) -> None:
    """The master's line for a round (none without evaluation data)."""
    if evals_log:
        print(round_line(round_index, evals_log), flush=True)
