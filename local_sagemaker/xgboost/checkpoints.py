"""Checkpoints: one file per round in the checkpoint folder, and a restarted job resumes from the latest.

As the container's checkpointing module does (managed spot training): after each round the master writes
`xgboost-checkpoint.<round>` (written under a temporary name, then renamed, so a sync never sees half a file), keeps
the 5 latest (a file SageMaker is still uploading, marked `<file>.sagemaker-uploading` without
`<file>.sagemaker-uploaded`, is left for later), and at start the latest loadable checkpoint is the model to go on
from: training resumes at the round after it and runs up to num_round in all.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import xgboost as xgb

from local_sagemaker.xgboost.logs import LOG

NAME = "xgboost-checkpoint"
KEEP = 5
_PATTERN = re.compile(rf"^{re.escape(NAME)}\.([0-9]+)$")


@dataclass(frozen=True)
class Resume:
    model: bytes | None  # the checkpoint's model (xgboost's UBJSON), None to start afresh
    first_round: int  # rounds already trained


START = Resume(model=None, first_round=0)


def latest(folder: Path | None) -> Resume:
    """The latest checkpoint that xgboost can load; START when there is none."""
    if folder is None or not folder.is_dir():
        return START
    rounds = sorted((int(m.group(1)) for f in os.listdir(folder) if (m := _PATTERN.match(f))), reverse=True)
    for round_index in rounds:
        path = folder / f"{NAME}.{round_index}"
        raw = path.read_bytes()
        try:
            xgb.Booster(model_file=bytearray(raw))
        except xgb.core.XGBoostError:
            LOG.warning("Checkpoint %s cannot be loaded; trying an older one", path)
            continue
        LOG.info("Checkpoint loaded from %s", path)
        LOG.info("Resuming from iteration %s", round_index + 1)
        return Resume(model=raw, first_round=round_index + 1)
    return START


def save(folder: Path, model: Any, round_index: int) -> None:
    """The master's checkpoint of a round; the KEEP latest stay."""
    write_atomically(folder / f"{NAME}.{round_index}", bytes(model.save_raw("ubj")))
    _prune(folder, round_index - KEEP)


def _prune(folder: Path, newest_to_delete: int) -> None:
    for name in os.listdir(folder):
        match = _PATTERN.match(name)
        if not match or int(match.group(1)) > newest_to_delete:
            continue
        path = folder / name
        uploading = Path(f"{path}.sagemaker-uploading").exists()
        uploaded = Path(f"{path}.sagemaker-uploaded").exists()
        if uploading and not uploaded:
            continue
        path.unlink(missing_ok=True)


def write_atomically(path: Path, data: bytes) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".sagemaker-ignore")
    with os.fdopen(handle, "wb") as out:
        out.write(data)
    os.chmod(temporary, 0o644)  # as an ordinary file: mkstemp's are private
    os.replace(temporary, path)
