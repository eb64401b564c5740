"""Channels and their data, checked and read as the container does (channel_validation.py, data_utils.py).

Channels: `train` required, `validation` optional (and `code`, unused here); a channel without ContentType is
`text/libsvm`; which content types each input mode accepts: handlers/xgboost_content.py. The train channel's input
mode decides how both are read, as in the container.
File mode: CSV (label in the first column, no header, the delimiter sniffed from the first line; with `csv_weights=1`
the second column is the instance weight), LIBSVM (`<label>[:<weight>] <index>:<value> ...`) and RecordIO-protobuf
(recordio.py). Pipe mode: the FIFO `<channel>_0` beside the channel's folder, read as a byte stream to its end, as
the container's mlio readers read it: CSV always comma-separated, RecordIO-protobuf as in File mode; 3.2-0 refuses
every Pipe channel with its own message. Parquet (parquet.py) needs the optional pyarrow, as the container reads it.
Each host reads only its own files (the local SageMaker gives each host its shard, as SageMaker does), and reads them
before the hosts join up, so xgboost never splits them further.
"""

from __future__ import annotations

import csv
import io
import shutil
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import scipy.sparse
import xgboost as xgb

from handlers import xgboost_content as content
from handlers.xgboost_content import CSV, DEFAULT_CONTENT_TYPE, LIBSVM, PARQUET, RECORDIO_PROTOBUF
from local_sagemaker.xgboost import parquet, recordio
from local_sagemaker.xgboost.failures import ClientError
from local_sagemaker.xgboost.logs import LOG

__all__ = ["CSV", "LIBSVM", "PARQUET", "RECORDIO_PROTOBUF", "DataConfig", "check_channels", "content_kind", "load"]
_DISTRIBUTIONS = ("FullyReplicated", "ShardedByS3Key")
_MAX_DEPTH = 3
_NAMES = {CSV: "csv", LIBSVM: "libsvm", PARQUET: "parquet", RECORDIO_PROTOBUF: "recordio-protobuf"}


@dataclass(frozen=True)
class DataConfig:
    kind: str  # csv, libsvm, parquet or recordio-protobuf
    pipe: bool
    has_validation: bool
    reads_pipes: bool = True  # False: the version's container refuses Pipe channels (3.2-0)


def check_channels(channels: Mapping[str, Mapping[str, Any]], version: str = "1.7-1") -> DataConfig:
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
            types = {"File": content.FILE_CONTENT_TYPES, "Pipe": content.PIPE_CONTENT_TYPES}.get(str(mode), ())
            supported = content_type in types and distribution in _DISTRIBUTIONS
        if not supported:
            raise ClientError(f"Channel configuration for '{name}' channel is not supported: {value}")
    train = channels["train"]
    kind = content_kind(str(train.get("ContentType", DEFAULT_CONTENT_TYPE)))
    return DataConfig(kind=kind, pipe=train.get("TrainingInputMode") == "Pipe", has_validation="validation" in channels,
                      reads_pipes=content.reads_pipes(version))


def content_kind(content_type: str) -> str:
    media, _, parameters = content_type.lower().partition(";")
    media = media.strip()
    kind = content.KINDS.get(media)
    if kind == CSV:
        label_size = _parameter(parameters, "label_size")
        if label_size not in (None, "1"):
            raise ClientError(
                f"{content_type} is not an accepted csv ContentType. Optional parameter label_size must be equal to 1"
            )
        return CSV
    if kind == LIBSVM:
        return LIBSVM
    if kind == RECORDIO_PROTOBUF:
        return RECORDIO_PROTOBUF
    if kind == PARQUET:
        if not parquet.available():
            raise ClientError(f"{content_type}: {parquet.MISSING}")
        return PARQUET
    accepted = ", ".join(content.FILE_CONTENT_TYPES)
    raise ClientError(f"{content_type} is not an accepted ContentType: {accepted}.")


def _parameter(parameters: str, name: str) -> str | None:
    for part in parameters.split(";"):
        key, _, value = part.partition("=")
        if key.strip() == name:
            return value.strip()
    return None


def load(folder: Path | None, config: DataConfig, csv_weights: int) -> xgb.DMatrix | None:
    """The channel's data as one DMatrix, or None when the channel has no data on this host."""
    if folder is None:
        return None
    matrix = _load_pipe(folder, config, csv_weights) if config.pipe else _load_files(folder, config, csv_weights)
    if matrix is not None and matrix.get_label().size == 0:
        raise ClientError(
            "Got input data without labels. Please check the input data set. If training job is running on multiple "
            "instances, please switch to using single instance if number of records in the data set is less than "
            "number of workers (16 * number of instance) in the cluster."
        )
    return matrix


def _load_files(folder: Path, config: DataConfig, csv_weights: int) -> xgb.DMatrix | None:
    if not folder.exists():
        return None
    files = _data_files(folder)
    if sum(path.stat().st_size for path in files) == 0:
        return None
    if config.kind in (RECORDIO_PROTOBUF, PARQUET):
        LOG.info("files path: %s", folder)
        return _recordio(files) if config.kind == RECORDIO_PROTOBUF else _parquet(files, piped=False)
    delimiter = ","
    for path in files:
        if config.kind == CSV:
            delimiter = _csv_delimiter(path)
        else:
            _check_libsvm(path)
    LOG.info("files path: %s", folder)
    return _read(files, config.kind, delimiter, csv_weights)


def pipe_path(folder: Path) -> Path:
    """The FIFO of a Pipe channel's first (and, for the algorithm, only) pass: `/opt/ml/input/data/<channel>_0`."""
    return folder.with_name(f"{folder.name}_0")


def _load_pipe(folder: Path, config: DataConfig, csv_weights: int) -> xgb.DMatrix | None:
    fifo = pipe_path(folder)
    if not fifo.exists():
        LOG.info("Pipe path %s does not exist!", folder)
        return None
    if config.kind == LIBSVM:
        raise ClientError("Pipe mode not supported for LibSVM.")
    if not config.reads_pipes:
        raise ClientError(content.no_longer_piped(config.kind))
    LOG.info("files path: %s", [str(folder)])
    if config.kind == CSV:
        return _csv_stream([fifo], csv_weights)
    return _recordio([fifo]) if config.kind == RECORDIO_PROTOBUF else _parquet([fifo], piped=True)


@contextmanager
def _opened(paths: list[Path]) -> Iterator[list[BinaryIO]]:
    with ExitStack() as stack:
        yield [stack.enter_context(path.open("rb")) for path in paths]


def _failed(kind: str, error: Exception) -> ClientError:
    return ClientError(f"Failed to load {_NAMES[kind]} data with exception:\n{error}")


def _csv_stream(paths: list[Path], csv_weights: int) -> xgb.DMatrix | None:
    """CSV read from a stream as the container's mlio CsvReader reads a pipe: comma-separated, no header, numbers."""
    blocks = []
    try:
        with _opened(paths) as streams, warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*input contained no data.*")
            for stream in streams:
                text = io.TextIOWrapper(stream, encoding="utf-8", newline="")
                block = np.loadtxt(text, delimiter=",", dtype=np.float32, ndmin=2)
                if block.size:
                    blocks.append(block)
        if not blocks:
            return None
        data = np.vstack(blocks)
        if csv_weights == 1:
            return xgb.DMatrix(data[:, 2:], label=data[:, 0], weight=data[:, 1])
        return xgb.DMatrix(data[:, 1:], label=data[:, 0])
    except (ValueError, UnicodeDecodeError, xgb.core.XGBoostError) as error:
        raise _failed(CSV, error) from None


def _parquet(paths: list[Path], piped: bool) -> xgb.DMatrix | None:
    """Parquet files (File mode: each file a table) or pipes (a stream of whole files, split as mlio splits it)."""
    try:
        tables = []
        with _opened(paths) as streams:
            for stream in streams:
                body = stream.read()
                tables += [parquet.rows(blob) for blob in (parquet.split(body) if piped else [body] if body else [])]
        tables = [table for table in tables if table.size]
        if not tables:
            return None
        data = np.vstack(tables).astype(np.float32)
        return xgb.DMatrix(data[:, 1:], label=data[:, 0])
    except (ValueError, OSError, xgb.core.XGBoostError) as error:
        raise _failed(PARQUET, error) from None


def _recordio(paths: list[Path]) -> xgb.DMatrix | None:
    """RecordIO-protobuf files or pipes, read in order into one matrix (sparse when any record is)."""
    try:
        with _opened(paths) as streams:
            rows = recordio.read_rows(streams)
        if not rows.order:
            return None
        labels = rows.label_values() if rows.labels else None
        if labels is not None and labels.size != len(rows.order):
            raise ValueError(f"{labels.size} labels for {len(rows.order)} records: every record needs one label")
        if any(rows.order):
            csr = scipy.sparse.csr_matrix(rows.csr_parts(), shape=(len(rows.order), rows.width))
            return xgb.DMatrix(csr, label=labels)
        return xgb.DMatrix(rows.dense_matrix(), label=labels)
    except (recordio.RecordIOError, ValueError, xgb.core.XGBoostError) as error:
        raise _failed(RECORDIO_PROTOBUF, error) from None


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
