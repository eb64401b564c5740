"""RecordIO-protobuf, the data format of SageMaker's built-in algorithms, read and written without a protobuf library.

Framing (SageMaker's RecordIO, dmlc's): per record a little-endian uint32 magic 0xced7230a, a uint32 whose low 29
bits are the payload length and high 3 bits a continuation flag (0 whole, 1 first, 2 middle, 3 last part: the
parts of a record that held the magic are joined with it), the payload, zero padding to 4 bytes.
Payload: the aialgs.data `Record` message (its .proto is in the SageMaker developer guide, "Common data formats for
training"): features = 1 and label = 2 are map<string, Value>; Value is a oneof float32_tensor = 2, float64_tensor = 3,
int32_tensor = 7, bytes = 9; a tensor has packed values = 1, keys = 2 (sparse when present), shape = 3.
The container reads feature `values` as the row (dense, or sparse with its keys) and label `values` as its label.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

import numpy as np
import numpy.typing as npt

MAGIC = 0xCED7230A
_HEADER = struct.Struct("<II")
_LENGTH_MASK = (1 << 29) - 1
_VARINT, _FIXED64, _LEN, _FIXED32 = 0, 1, 2, 5
_FLOAT32, _FLOAT64, _INT32, _BYTES = 2, 3, 7, 9
_DTYPES = {_FLOAT32: ("<f4", _FIXED32), _FLOAT64: ("<f8", _FIXED64), _INT32: (None, _VARINT)}


class RecordIOError(ValueError):
    """Data that is not RecordIO-protobuf; the message says where."""


Raw = tuple[str, bytes]  # little-endian numbers as they came: ("<f4" or "<f8", their bytes); int32 given as "<f8"


@dataclass(frozen=True)
class Tensor:
    values: Raw
    keys: list[int] | None  # None: dense
    shape: tuple[int, ...]

    @property
    def size(self) -> int:
        return len(self.values[1]) // int(self.values[0][2])


@dataclass
class Rows:
    """The rows read so far, kept as the bytes they came in (numpy once, at the end: a row costs no array).
    As mlio: a sparse row needs a shape (its width); dense rows all have the first one's length."""

    dense: list[Raw] = field(default_factory=list)
    sparse: list[tuple[list[int], Raw]] = field(default_factory=list)
    order: list[bool] = field(default_factory=list)  # True: the row is sparse
    labels: list[Raw] = field(default_factory=list)
    width: int = 0

    def label_values(self) -> npt.NDArray[np.float32]:
        return _array(self.labels)

    def dense_matrix(self) -> npt.NDArray[np.float32]:
        """The dense rows as one matrix; ValueError when their lengths differ (as the container's readers)."""
        sizes = {len(raw) // int(dtype[2]) for dtype, raw in self.dense}
        if len(sizes) > 1:
            raise ValueError(f"dense records of different lengths: {sorted(sizes)}")
        return _array(self.dense).reshape(len(self.dense), -1)

    def csr_parts(self) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """(values, column indices, row pointers) of every row, a dense row's columns being 0..n-1."""
        dense, sparse = iter(self.dense), iter(self.sparse)
        keys: list[int] = []
        values: list[Raw] = []
        pointers = [0]
        for is_sparse in self.order:
            if is_sparse:
                row_keys, raw = next(sparse)
            else:
                raw = next(dense)
                row_keys = list(range(len(raw[1]) // int(raw[0][2])))
            if len(row_keys) != len(raw[1]) // int(raw[0][2]):
                raise ValueError(f"a sparse record has {len(row_keys)} keys for {len(raw[1]) // int(raw[0][2])} "
                                 "values")
            keys.extend(row_keys)
            values.append(raw)
            pointers.append(len(keys))
        if keys and max(keys) >= self.width:
            raise ValueError(f"a sparse record has a key beyond its shape ({self.width} columns)")
        return _array(values), np.array(keys, dtype=np.int64), np.array(pointers, dtype=np.int64)


def _array(parts: list[Raw]) -> npt.NDArray[np.float32]:
    if not parts:
        return np.zeros(0, dtype=np.float32)
    kinds = {dtype for dtype, _ in parts}
    if len(kinds) == 1:
        return np.frombuffer(b"".join(raw for _, raw in parts), dtype=kinds.pop()).astype(np.float32)
    return np.concatenate([np.frombuffer(raw, dtype=dtype) for dtype, raw in parts]).astype(np.float32)


def payloads(stream: BinaryIO) -> Iterator[bytes]:
    """Each record's payload, read as the stream gives it (a FIFO: without seeking, until EOF)."""
    parts: list[bytes] = []
    offset = 0
    while True:
        header = _read_exactly(stream, _HEADER.size, offset, allow_eof=True)
        if not header:
            if parts:
                raise RecordIOError(f"the stream ended inside a multi-part record at byte {offset}")
            return
        magic, word = _HEADER.unpack(header)
        if magic != MAGIC:
            raise RecordIOError(f"no RecordIO magic number at byte {offset} (found {magic:#010x})")
        length, flag = word & _LENGTH_MASK, word >> 29
        body = _read_exactly(stream, length + (-length % 4), offset + _HEADER.size)[:length]
        offset += _HEADER.size + length + (-length % 4)
        if flag == 0:
            yield body
        elif flag in (1, 2) or (flag == 3 and parts):
            parts.append(body)
            if flag == 3:
                yield struct.pack("<I", MAGIC).join(parts)
                parts = []
        else:
            raise RecordIOError(f"continuation flag {flag} out of place at byte {offset}")


def _read_exactly(stream: BinaryIO, size: int, offset: int, allow_eof: bool = False) -> bytes:
    chunks: list[bytes] = []
    wanted = size
    while wanted:
        chunk = stream.read(wanted)
        if not chunk:
            if allow_eof and wanted == size:
                return b""
            raise RecordIOError(f"the stream ended inside a record at byte {offset + size - wanted}")
        chunks.append(chunk)
        wanted -= len(chunk)
    return b"".join(chunks)


def read_rows(streams: Iterable[BinaryIO]) -> Rows:
    """Every record of the streams, in order, as rows and labels."""
    rows = Rows()
    for stream in streams:
        for payload in payloads(stream):
            features, label = _record(payload)
            row = features.get("values")
            if row is None:
                continue  # as the container: a record without the `values` feature is no row
            if row.keys is None and row.shape and not row.size:  # no keys, no values, a shape: sparse, as mlio
                row = Tensor(row.values, [], row.shape)
            if row.keys is not None and not row.shape:
                raise RecordIOError(f"The sparse feature 'values' of the record #{len(rows.order)} has no shape "
                                    "specified.")
            if row.keys is None:
                rows.dense.append(row.values)
                rows.order.append(False)
                rows.width = max(rows.width, row.size)
            else:
                rows.sparse.append((row.keys, row.values))
                rows.order.append(True)
                rows.width = max(rows.width, row.shape[0])
            target = label.get("values")
            if target is not None:
                rows.labels.append(target.values)
    return rows


def _record(payload: bytes) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    features: dict[str, Tensor] = {}
    label: dict[str, Tensor] = {}
    for number, _, value in _fields(payload):
        if number in (1, 2) and isinstance(value, bytes):
            name, tensor = _map_entry(value)
            if tensor is not None:
                (features if number == 1 else label)[name] = tensor
    return features, label


def _map_entry(entry: bytes) -> tuple[str, Tensor | None]:
    name, tensor = "", None
    for number, _, value in _fields(entry):
        if number == 1 and isinstance(value, bytes):
            name = value.decode("utf-8", errors="replace")
        elif number == 2 and isinstance(value, bytes):
            tensor = _value(value)
    return name, tensor


def _value(message: bytes) -> Tensor | None:
    """The tensor a Value holds (None: no value set)."""
    for number, _, value in _fields(message):
        if number in _DTYPES and isinstance(value, bytes):
            return _tensor(value, number)
        if number == _BYTES:
            raise RecordIOError("The RecordIO-protobuf binary data format is not supported.")
    return None


def _tensor(message: bytes, kind: int) -> Tensor:
    dtype, wire = _DTYPES[kind]
    values: list[bytes] = []
    keys: list[int] = []
    shape: list[int] = []
    for number, wire_type, value in _fields(message):
        if number == 1:
            values.append(_numbers(value, wire_type, dtype, wire))
        elif number in (2, 3):
            target = keys if number == 2 else shape
            target.extend(_varints(value) if isinstance(value, bytes) else [int(value)])
    return Tensor((dtype or "<f8", b"".join(values)), keys if keys else None, tuple(shape))


def _numbers(value: bytes | int, wire_type: int, dtype: str | None, wire: int) -> bytes:
    """A values field's numbers as little-endian bytes of the tensor's type (int32 ones as float64)."""
    if wire_type == _LEN and isinstance(value, bytes):  # packed
        if dtype is None:
            ints = [_int32(v) for v in _varints(value)]
            return struct.pack(f"<{len(ints)}d", *ints)
        if len(value) % int(dtype[2]):
            raise RecordIOError(f"packed values of {len(value)} bytes are not whole {dtype} numbers")
        return value
    if wire_type != wire or isinstance(value, bytes):
        raise RecordIOError(f"a tensor value has wire type {wire_type}")
    if dtype is None:
        return struct.pack("<d", _int32(value))
    return value.to_bytes(8 if wire == _FIXED64 else 4, "little")


def _int32(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


def _fields(message: bytes) -> Iterator[tuple[int, int, bytes | int]]:
    """(field number, wire type, value) of each field: bytes for length-delimited ones, an int for the others.
    One-byte varints (every tag and length of a usual record) are read inline: this loop runs per row."""
    position, end = 0, len(message)
    while position < end:
        tag = message[position]
        if tag < 0x80:
            position += 1
        else:
            tag, position = _varint(message, position)
        number, wire_type = tag >> 3, tag & 7
        if wire_type == _LEN:
            size = message[position] if position < end else 0x80
            if size < 0x80:
                position += 1
            else:
                size, position = _varint(message, position)
            if position + size > end:
                raise RecordIOError("a protobuf field runs past the end of its record")
            yield number, wire_type, message[position:position + size]
            position += size
        elif wire_type == _VARINT:
            value, position = _varint(message, position)
            yield number, wire_type, value
        elif wire_type in (_FIXED64, _FIXED32):
            size = 8 if wire_type == _FIXED64 else 4
            if position + size > end:
                raise RecordIOError("a protobuf field runs past the end of its record")
            yield number, wire_type, int.from_bytes(message[position:position + size], "little")
            position += size
        else:
            raise RecordIOError(f"protobuf wire type {wire_type} is not part of the Record message")


def _varint(data: bytes, position: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if position >= len(data) or shift > 63:
            raise RecordIOError("a protobuf varint runs past the end of its record")
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, position
        shift += 7


def _varints(data: bytes) -> list[int]:
    found, position = [], 0
    while position < len(data):
        value, position = _varint(data, position)
        found.append(value)
    return found


# Writing, as the SageMaker Python SDK's write_numpy_to_dense_tensor and write_spmatrix_to_sparse_tensor do.

def _key(number: int, wire_type: int) -> bytes:
    return _encode_varint(number << 3 | wire_type)


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _len_field(number: int, payload: bytes) -> bytes:
    return _key(number, _LEN) + _encode_varint(len(payload)) + payload


def _float32_value(values: Sequence[float], keys: Sequence[int] | None = None, shape: Sequence[int] = ()) -> bytes:
    tensor = _len_field(1, np.asarray(values, dtype="<f4").tobytes())
    if keys is not None:
        tensor += _len_field(2, b"".join(_encode_varint(int(k)) for k in keys))
    if shape:
        tensor += _len_field(3, b"".join(_encode_varint(int(s)) for s in shape))
    return _len_field(_FLOAT32, tensor)


def _entry(name: str, value: bytes) -> bytes:
    return _len_field(1, name.encode()) + _len_field(2, value)


def frame(payload: bytes) -> bytes:
    """One whole record in SageMaker's RecordIO framing."""
    return _HEADER.pack(MAGIC, len(payload)) + payload + b"\0" * (-len(payload) % 4)


def encode_record(values: Sequence[float], label: float | None, keys: Sequence[int] | None = None,
                  width: int | None = None) -> bytes:
    """One Record: feature `values` (sparse when `keys` are given, with shape [width]) and label `values`."""
    shape = (width,) if keys is not None and width is not None else ()
    payload = _len_field(1, _entry("values", _float32_value(values, keys, shape)))
    if label is not None:
        payload += _len_field(2, _entry("values", _float32_value([label])))
    return payload


def write_dense(rows: npt.ArrayLike, labels: npt.ArrayLike | None) -> bytes:
    """RecordIO-protobuf of a matrix, one dense record per row."""
    matrix = np.atleast_2d(np.asarray(rows, dtype=np.float32))
    targets = None if labels is None else np.asarray(labels, dtype=np.float32).ravel()
    return b"".join(frame(encode_record(row.tolist(), None if targets is None else float(targets[index])))
                    for index, row in enumerate(matrix))


def write_sparse(rows: npt.ArrayLike, labels: npt.ArrayLike | None) -> bytes:
    """RecordIO-protobuf of a matrix, one sparse record per row holding its non-zero values (shape: the width)."""
    matrix = np.atleast_2d(np.asarray(rows, dtype=np.float32))
    targets = None if labels is None else np.asarray(labels, dtype=np.float32).ravel()
    out = []
    for index, row in enumerate(matrix):
        keys = np.flatnonzero(row)
        label = None if targets is None else float(targets[index])
        out.append(frame(encode_record(row[keys].tolist(), label, keys.tolist(), matrix.shape[1])))
    return b"".join(out)
