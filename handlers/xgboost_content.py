"""Which content types built-in XGBoost reads in each input mode, per version, as its container's source says
(aws/sagemaker-xgboost-container: `data_utils.py`'s VALID_CONTENT_TYPES and VALID_PIPED_CONTENT_TYPES, which
`algorithm_mode/channel_validation.py` accepts per mode by exact string; docs/xgboost.md has the findings).

Both sides use it: `validate` warns before any AWS call, and the local XGBoost fails the job as the container does.
Every version accepts the same content types per mode at channel validation; 0.90-1 to 3.0-5 read Pipe channels
(mlio), 3.2-0 (built from the repository's master, mlio removed) refuses every Pipe channel when it loads the data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

CSV = "csv"
LIBSVM = "libsvm"
PARQUET = "parquet"
RECORDIO_PROTOBUF = "recordio-protobuf"

# media type (lower case, parameters dropped) -> kind, as data_utils.get_content_type reads it
KINDS = {
    "csv": CSV,
    "text/csv": CSV,
    "libsvm": LIBSVM,
    "text/libsvm": LIBSVM,
    "text/x-libsvm": LIBSVM,
    "parquet": PARQUET,
    "application/x-parquet": PARQUET,
    "recordio-protobuf": RECORDIO_PROTOBUF,
    "application/x-recordio-protobuf": RECORDIO_PROTOBUF,
}
FILE_CONTENT_TYPES = tuple(KINDS)  # channel validation compares the ContentType string exactly
PIPE_CONTENT_TYPES = tuple(name for name, kind in KINDS.items() if kind != LIBSVM)
DEFAULT_CONTENT_TYPE = "text/libsvm"  # a channel without ContentType
DATA_CHANNELS = ("train", "validation")

_NAMES = {CSV: "CSV", PARQUET: "Parquet", RECORDIO_PROTOBUF: "RecordIO-Protobuf"}
_NO_PIPES_FROM = (3, 2)
_VERSION = re.compile(r"^(\d+)\.(\d+)-\d+$")


@dataclass(frozen=True)
class PipeProblem:
    """A Pipe channel the container of `version` would fail: `reason` in plain words, `container_message` its own."""

    reason: str
    container_message: str | None


def kind_of(content_type: str) -> str | None:
    """The data kind of a ContentType (`text/csv; label_size=1` -> csv), None when the container knows none."""
    return KINDS.get(content_type.lower().partition(";")[0].strip())


def reads_pipes(version: str) -> bool:
    """Whether the version's container reads Pipe channels at all (the legacy `1` counts as 0.90-1, its successor)."""
    match = _VERSION.match(version)
    return match is None or (int(match.group(1)), int(match.group(2))) < _NO_PIPES_FROM


def no_longer_piped(kind: str) -> str:
    """3.2-0's message for a Pipe channel of a kind channel validation lets through (data_utils.py on master)."""
    return (f"Pipe mode for {_NAMES[kind]} is no longer supported. Please use Fast File mode (default) instead. "
            "Set input_mode='File' in your SageMaker Estimator or TrainingInput.")


def pipe_problem(version: str, content_type: str | None) -> PipeProblem | None:
    """Why the version's container would not read a Pipe channel of this ContentType, or None when it does."""
    given = DEFAULT_CONTENT_TYPE if content_type is None else content_type
    if given not in PIPE_CONTENT_TYPES:
        readable = ", ".join(PIPE_CONTENT_TYPES)
        return PipeProblem(f"ContentType {given} is not read in Pipe mode by SageMaker XGBoost {version} (its "
                           f"container accepts {readable} there; LibSVM is File mode only)", None)
    if not reads_pipes(version):
        message = no_longer_piped(KINDS[given])
        return PipeProblem(f'SageMaker XGBoost {version} reads no channel in Pipe mode (its container fails the job: '
                           f'"{message}")', message)
    return None
