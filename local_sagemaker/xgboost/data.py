"""Channels and their data, checked and read as the container does (channel_validation.py, data_utils.py).

Channels: `train` required, `validation` optional (and `code`, unused here); a channel without ContentType is
`text/libsvm`. CSV: label in the first column, no header, the delimiter sniffed from the first line; with
`csv_weights=1` the second column is the instance weight. LIBSVM: `<label>[:<weight>] <index>:<value> ...`.
Parquet and RecordIO-protobuf, which the container also reads, are refused here with a reason.
Each host reads only its own files (the local SageMaker gives each host its shard, as SageMaker does), and reads them
before the hosts join up, so xgboost never splits them further.
"""

from __future__ import annotations

import csv
import shutil
import tempfile
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import xgboost as xgb

from local_sagemaker.xgboost.failures import ClientError
from local_sagemaker.xgboost.logs import LOG

CSV = "csv"
LIBSVM = "libsvm"
PARQUET = "parquet"
RECORDIO_PROTOBUF = "recordio-protobuf"
_KINDS = {
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
_PIPED = {name for name, kind in _KINDS.items() if kind != LIBSVM}
DEFAULT_CONTENT_TYPE = "text/libsvm"
_DISTRIBUTIONS = ("FullyReplicated", "ShardedByS3Key")
_MAX_DEPTH = 3


@dataclass(frozen=True)
class DataConfig:
    kind: str  # csv or libsvm
    pipe: bool
    has_validation: bool


def check_channels(channels: Mapping[str, Mapping[str, Any]]) -> DataConfig:
    """The container's channel validation, then the content type of `train` (which all channels share)."""
    if "train" not in channels:
        raise ClientError("Missing required channel: train")
    for name, given in channels.items():
        if name not in ("train", "validation", "code"):
            raise ClientError(f"Extraneous channel found: {name}")
        value = {"ContentType": DEFAULT_CONTENT_TYPE, **given}
        content_type = value.get("ContentType")
        mode = value.get("TrainingInputMode")
        distribution = value.get("S3DistributionType", "FullyReplicated")
        if name == "code":
            supported = content_type == "text/python" and mode == "File" and distribution == "FullyReplicated"
        else:
            types = _KINDS if mode == "File" else _PIPED if mode == "Pipe" else set()
            supported = content_type in types and distribution in _DISTRIBUTIONS
        if not supported:
            raise ClientError(f"Channel configuration for '{name}' channel is not supported: {value}")
    train = channels["train"]
    kind = content_kind(str(train.get("ContentType", DEFAULT_CONTENT_TYPE)))
    return DataConfig(kind=kind, pipe=train.get("TrainingInputMode") == "Pipe", has_validation="validation" in channels)


def content_kind(content_type: str) -> str:
    media, _, parameters = content_type.lower().partition(";")
    media = media.strip()
    kind = _KINDS.get(media)
    if kind == CSV:
        label_size = _parameter(parameters, "label_size")
        if label_size not in (None, "1"):
            raise ClientError(
                f"{content_type} is not an accepted csv ContentType. Optional parameter label_size must be equal to 1"
            )
        return CSV
    if kind == LIBSVM:
        return LIBSVM
    if kind in (PARQUET, RECORDIO_PROTOBUF):
        raise ClientError(
            f"{content_type}: the local SageMaker reads text/csv and text/libsvm only; SageMaker's XGBoost also reads "
            "application/x-parquet and application/x-recordio-protobuf. Convert the data to CSV or LIBSVM."
        )
    accepted = ", ".join(_KINDS)
    raise ClientError(f"{content_type} is not an accepted ContentType: {accepted}.")


def _parameter(parameters: str, name: str) -> str | None:
    for part in parameters.split(";"):
        key, _, value = part.partition("=")
        if key.strip() == name:
            return value.strip()
    return None


def load(folder: Path | None, config: DataConfig, csv_weights: int) -> xgb.DMatrix | None:
    """The channel's data as one DMatrix, or None when the channel has no data on this host."""
    if folder is None or not folder.exists():
        return None
    files = _data_files(folder)
    if sum(path.stat().st_size for path in files) == 0:
        return None
    if config.kind == LIBSVM and config.pipe:
        raise ClientError("Pipe mode not supported for LibSVM.")
    delimiter = ","
    for path in files:
        if config.kind == CSV:
            delimiter = _csv_delimiter(path)
        else:
            _check_libsvm(path)
    LOG.info("files path: %s", folder)
    matrix = _read(files, config.kind, delimiter, csv_weights)
    if matrix.get_label().size == 0:
        raise ClientError(
            "Got input data without labels. Please check the input data set. If training job is running on multiple "
            "instances, please switch to using single instance if number of records in the data set is less than "
            "number of workers (16 * number of instance) in the cluster."
        )
    return matrix


def _data_files(folder: Path) -> list[Path]:
    found: list[Path] = []
    for path in sorted(folder.rglob("*")):
        if path.name.startswith("."):
            raise ClientError("Hidden file found in the data path! Remove that before training.")
        depth = len(path.relative_to(folder).parts)
        if path.is_file() and depth <= _MAX_DEPTH:
            found.append(path)
    return found


def _first_line(path: Path) -> str:
    with path.open("r", errors="ignore") as handle:
        return handle.readline()


def _csv_delimiter(path: Path) -> str:
    line = _first_line(path)
    try:
        delimiter = csv.Sniffer().sniff(line).delimiter
    except csv.Error as error:
        raise ClientError(f"Could not determine delimiter on line {line[:50]}:\n{error}") from None
    LOG.info("Determined delimiter of CSV input is '%s'", delimiter)
    return delimiter


def _check_libsvm(path: Path) -> None:
    """The container's light check: the first line with features must look like LIBSVM."""
    with path.open("r", errors="ignore") as handle:
        for line in handle:
            features = _libsvm_features(line.rstrip("\n"))
            if features > 1:
                return
            if features < 0:
                raise ClientError(
                    f"First line '{line[:50]}...' of file '{path.name}' is not 'LIBSVM' format. "
                    "Please ensure the file is in 'LIBSVM' format."
                )
    LOG.warning("File %s is not an invalid LIBSVM file but has no features. Accepting simple validation.", path.name)


def _libsvm_features(line: str) -> int:
    label, *features = line.split(" ")
    parts = label.split(":")
    if len(parts) > 2 or not all(_is_number(part) for part in parts):
        return -1
    if any(len(feature.split(":")) != 2 for feature in features):
        return -1
    return len(features)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _read(files: list[Path], kind: str, delimiter: str, csv_weights: int) -> xgb.DMatrix:
    """xgboost's own text reader over a folder of links to the files (as the container does), so names never clash
    with the reader's URI syntax.

    The folder sits alone in a private parent: the reader lists the parent of the path it is given and stats every
    entry there, so in a shared /tmp another process's temporary file vanishing between the two failed the load."""
    private = Path(tempfile.mkdtemp(prefix="local-xgboost-input-"))
    staging = private / "files"
    staging.mkdir()
    try:
        for index, path in enumerate(files):
            (staging / f"part-{index:05d}").symlink_to(path.resolve())
        if kind == CSV:
            query = f"format=csv&label_column=0&delimiter={delimiter}"
            if csv_weights == 1:
                query += "&weight_column=1"
        else:
            query = "format=libsvm"
        try:
            with warnings.catch_warnings():  # deprecated since xgboost 3.1, and what the container reads with
                warnings.filterwarnings("ignore", message=".*Text file input has been deprecated.*")
                return xgb.DMatrix(f"{staging}?{query}")
        except xgb.core.XGBoostError as error:
            name = "csv" if kind == CSV else "libsvm"
            raise ClientError(f"Failed to load {name} data with exception:\n{error}") from None
    finally:
        shutil.rmtree(private, ignore_errors=True)
