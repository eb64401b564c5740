"""Parquet data as the container reads it: File mode reads the channel's files as one table, Pipe mode splits the
stream into whole Parquet files as mlio's ParquetRecordReader does; the label is the first column.

Reading Parquet needs pyarrow, an optional extra (`sagemaker-plugin[parquet]`): without it a Parquet channel fails
with a reason that says how to install it.
"""

from __future__ import annotations

import importlib.util
import struct
from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt

MAGIC = b"PAR1"
# The first byte of a Parquet file's metadata: the Thrift compact header of one of its fields (mlio's heuristic).
_METADATA_STARTS = frozenset((0x15, 0x29, 0x36, 0x49, 0x59, 0x68, 0x79))
_MINIMUM_METADATA = 9
MISSING = ("the local SageMaker reads Parquet with pyarrow, which is not installed: pip install "
           "'sagemaker-plugin[parquet]' (or convert the data to CSV, LIBSVM or RecordIO-protobuf)")


def available() -> bool:
    return importlib.util.find_spec("pyarrow") is not None


def split(stream: bytes) -> Iterator[bytes]:
    """The whole Parquet files a pipe streamed one after the other. A file's end is the magic number after its
    footer: its metadata length, a metadata that fits and starts as Parquet metadata does, a zero stop byte."""
    start = 0
    while start < len(stream):
        if stream[start:start + len(MAGIC)] != MAGIC:
            raise ValueError("The record does not start with the Parquet magic number.")
        found = stream.find(MAGIC, start + len(MAGIC) + 4)
        while found != -1 and not _is_footer(stream, start, found):
            found = stream.find(MAGIC, found + 1)
        if found == -1:
            raise ValueError("The record does not have a valid Parquet footer.")
        yield stream[start:found + len(MAGIC)]
        start = found + len(MAGIC)


def _is_footer(stream: bytes, start: int, magic_at: int) -> bool:
    metadata_end = magic_at - 4
    (size,) = struct.unpack_from("<I", stream, metadata_end)
    if size < _MINIMUM_METADATA or len(MAGIC) + size > metadata_end - start:
        return False
    return stream[metadata_end - 1] == 0 and stream[metadata_end - size] in _METADATA_STARTS


def rows(blob: bytes) -> npt.NDArray[Any]:
    """One Parquet file's table as a matrix, columns in the file's order."""
    import pyarrow as pa  # optional: imported only when Parquet is read
    import pyarrow.parquet as pq

    table = pq.read_table(pa.BufferReader(blob))
    columns = [table.column(index).to_numpy() for index in range(table.num_columns)]
    return np.column_stack(columns) if columns else np.zeros((table.num_rows, 0))


def write(matrix: npt.ArrayLike) -> bytes:
    """A Parquet file of a matrix's columns (`c0` the label, ...): test and example data."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    data = np.atleast_2d(np.asarray(matrix, dtype=np.float32))
    table = pa.table({f"c{index}": data[:, index] for index in range(data.shape[1])})
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return bytes(sink.getvalue().to_pybytes())
