"""Where SageMaker puts things for a training script, read the way it works in any SageMaker container.

The training toolkit exports `SM_*` variables; a container started with its own entrypoint has only the files under
/opt/ml. Both are read here, so the trainers work unchanged on SageMaker (any image), in the local SageMaker, or
under the toolkit.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

OPT_ML = Path("/opt/ml")


def hyperparameters() -> dict[str, Any]:
    """The job's hyperparameters, values decoded as the toolkit decodes them ("3" is 3)."""
    if "SM_HPS" in os.environ:
        return dict(json.loads(os.environ["SM_HPS"]))
    config = Path(os.environ.get("SM_INPUT_CONFIG_DIR", OPT_ML / "input" / "config"))
    raw = json.loads((config / "hyperparameters.json").read_text())
    out: dict[str, Any] = {}
    for key, value in raw.items():
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out


def channel(name: str) -> Path:
    return Path(os.environ.get(f"SM_CHANNEL_{name.upper()}", OPT_ML / "input" / "data" / name))


def model_dir() -> Path:
    return Path(os.environ.get("SM_MODEL_DIR", OPT_ML / "model"))


def hosts() -> tuple[list[str], str]:
    """(every host, this host), from the toolkit's variables or resourceconfig.json."""
    if "SM_HOSTS" in os.environ:
        return list(json.loads(os.environ["SM_HOSTS"])), os.environ["SM_CURRENT_HOST"]
    config = Path(os.environ.get("SM_INPUT_CONFIG_DIR", OPT_ML / "input" / "config"))
    resources = json.loads((config / "resourceconfig.json").read_text())
    return list(resources["hosts"]), str(resources["current_host"])
