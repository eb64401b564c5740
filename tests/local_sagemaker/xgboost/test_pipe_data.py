"""local_sagemaker.xgboost reading Pipe channels (FIFOs) and RecordIO-protobuf as the container does: the same
matrices and the same model as File mode, and the container's messages for what it does not read."""

from __future__ import annotations

import io
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from handlers import xgboost_content
from local_sagemaker.xgboost import data, parquet, recordio
from local_sagemaker.xgboost.failures import ClientError
from xgboost_hosts import REGRESSION, Channel, PipeWriters, files_of, make_root, rounds, run

pytestmark = pytest.mark.timeout(240)
HPS = {"num_round": "15", "objective": "reg:squarederror", "max_depth": "4", "eta": "0.3", "nthread": "1"}


def _fields(number: int, wire: int, payload: bytes) -> bytes:
    return recordio._key(number, wire) + (recordio._encode_varint(len(payload)) if wire == 2 else b"") + payload


def _regression(folder: Path) -> np.ndarray:
    return np.loadtxt(files_of(folder)[0], delimiter=",", dtype=np.float32, ndmin=2)


def _converted(tmp_path: Path, kind: str) -> dict[str, Path]:
    """The example's regression data as `kind` (recordio-dense, recordio-sparse, parquet), train split over two files
    (read, and streamed, in key order)."""
    write = {"recordio-dense": lambda rows: recordio.write_dense(rows[:, 1:], rows[:, 0]),
             "recordio-sparse": lambda rows: recordio.write_sparse(rows[:, 1:], rows[:, 0]),
             "parquet": parquet.write}[kind]
    folders = {}
    for name, source in REGRESSION.items():
        rows = _regression(source)
        folder = tmp_path / f"{name}-{kind}"
        folder.mkdir()
        half = len(rows) // 2 if name == "train" else len(rows)
        for index, part in enumerate((rows[:half], rows[half:])):
            if len(part):
                (folder / f"part-{index}").write_bytes(write(part))
        folders[name] = folder
    return folders


def _channels(folders: dict[str, Path], content_type: str, mode: str) -> dict[str, Channel]:
    return {name: Channel(files_of(folder), content_type=content_type, mode=mode) for name, folder in folders.items()}


def _train(tmp_path: Path, name: str, channels: dict[str, Channel], version: str = "1.7-1") -> list[float]:
    """Runs the algorithm's program on one host (Pipe channels streamed by writer threads); the validation RMSE of
    each round."""
    root = make_root(tmp_path / name, HPS, channels)
    with PipeWriters(root, channels) as writers:
        done = run(root, version)
    assert not writers.errors
    assert done.returncode == 0, done.stdout + done.stderr
    return [values["validation-rmse"] for _, values in rounds(done.stdout)]


def _failure(tmp_path: Path, name: str, channels: dict[str, Channel], version: str = "1.7-1") -> str:
    root = make_root(tmp_path / name, HPS, channels)
    with PipeWriters(root, channels):
        done = run(root, version)
    assert done.returncode == 1, done.stdout + done.stderr
    return (root / "output" / "failure").read_text()


#: the File-mode run of each (kind, content type): the same data as `_converted` writes it, or the example's CSV
FileRuns = Callable[[str, str], tuple[dict[str, Path], list[float]]]


@pytest.fixture(scope="module")
def file_mode(tmp_path_factory: pytest.TempPathFactory) -> FileRuns:
    """A File-mode run per kind and content type, once for the module (its tests only read its rounds' validation
    RMSE): (its channels' folders, those RMSEs)."""
    done: dict[tuple[str, str], tuple[dict[str, Path], list[float]]] = {}

    def run_once(kind: str, content_type: str) -> tuple[dict[str, Path], list[float]]:
        if (kind, content_type) not in done:
            tmp = tmp_path_factory.mktemp(f"file-{kind}")
            folders = REGRESSION if kind == "csv" else _converted(tmp, kind)
            done[kind, content_type] = folders, _train(tmp, "file", _channels(folders, content_type, "File"))
        return done[kind, content_type]

    return run_once


@pytest.mark.slow
@pytest.mark.parametrize("content_type", ["text/csv", "csv", "application/x-recordio-protobuf", "recordio-protobuf",
                                          "application/x-parquet", "parquet"])
def test_pipe_mode_trains_the_same_model_as_file_mode(tmp_path: Path, content_type: str, file_mode: FileRuns) -> None:
    kind = xgboost_content.kind_of(content_type)
    folders, by_file = file_mode({data.CSV: "csv", data.PARQUET: "parquet"}.get(kind, "recordio-dense"), content_type)
    by_pipe = _train(tmp_path, "pipe", _channels(folders, content_type, "Pipe"))
    assert len(by_pipe) == int(HPS["num_round"])
    assert by_pipe == pytest.approx(by_file, abs=1e-4)
    assert by_pipe[-1] < by_pipe[0] / 3  # it learnt something: not two runs on no data


@pytest.mark.slow
def test_recordio_protobuf_and_parquet_in_file_mode_train_as_csv_does(file_mode: FileRuns) -> None:
    """The same rows as CSV, dense and sparse RecordIO-protobuf, and Parquet: the same model."""
    by_csv = file_mode("csv", "text/csv")[1]
    for kind, content_type in (("recordio-dense", "application/x-recordio-protobuf"),
                               ("recordio-sparse", "application/x-recordio-protobuf"),
                               ("parquet", "application/x-parquet")):
        by_other = file_mode(kind, content_type)[1]
        assert by_other == pytest.approx(by_csv, abs=1e-4), kind


@pytest.mark.slow
@pytest.mark.parametrize(("content_type", "version", "message"), [
    ("text/libsvm", "1.7-1", "ClientError: Channel configuration for 'train' channel is not supported: "
                             "{'ContentType': 'text/libsvm', 'TrainingInputMode': 'Pipe'"),
    ("text/csv", "3.2-0", "ClientError: Pipe mode for CSV is no longer supported. Please use Fast File mode (default) "
                          "instead. Set input_mode='File' in your SageMaker Estimator or TrainingInput."),
    ("application/x-recordio-protobuf", "3.2-0", "ClientError: Pipe mode for RecordIO-Protobuf is no longer "
                                                 "supported."),
    ("application/x-parquet", "3.2-0", "ClientError: Pipe mode for Parquet is no longer supported."),
])
def test_pipe_channels_the_container_does_not_read_fail_with_its_message(tmp_path: Path, content_type: str,
                                                                          version: str, message: str) -> None:
    channels = {"train": Channel(files_of(REGRESSION["train"]), content_type=content_type, mode="Pipe")}
    assert _failure(tmp_path, "refused", channels, version).startswith(message)


def test_csv_through_a_fifo_is_the_matrix_file_mode_reads(tmp_path: Path) -> None:
    source = files_of(REGRESSION["train"])[0]
    rows = _regression(REGRESSION["train"])
    weighted = np.column_stack([rows[:, 0], np.arange(len(rows)) % 3 + 1, rows[:, 1:]])
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "w.csv").write_text("\n".join(",".join(f"{v:.5f}" for v in row) for row in weighted) + "\n")
    for folder, weights in ((source.parent, 0), (tmp_path / "w", 1)):
        channels = {"train": Channel(files_of(folder), mode="Pipe")}
        root = make_root(tmp_path / f"pipe{weights}", {}, channels)
        with PipeWriters(root, channels, chunk=7):  # records split across writes
            piped = data.load(root / "input" / "data" / "train", data.DataConfig(data.CSV, True, False), weights)
        filed = data.load(folder, data.DataConfig(data.CSV, False, False), weights)
        assert piped is not None and filed is not None
        assert (piped.num_row(), piped.num_col()) == (filed.num_row(), filed.num_col()) == (400, 3)
        # xgboost's own CSV parser rounds a few values 1 ulp off the nearest float32, which numpy (and mlio) read
        np.testing.assert_allclose(piped.get_label(), filed.get_label(), rtol=1e-6)
        np.testing.assert_array_equal(piped.get_weight(), filed.get_weight())
        np.testing.assert_allclose(piped.get_data().toarray(), filed.get_data().toarray(), rtol=1e-6)


def test_an_absent_or_empty_pipe_is_no_data(tmp_path: Path) -> None:
    config = data.DataConfig(data.CSV, True, False)
    assert data.load(tmp_path / "train", config, 0) is None  # no FIFO: this host has nothing
    (tmp_path / "empty.csv").write_text("")
    channels = {"train": Channel([tmp_path / "empty.csv"], mode="Pipe")}
    root = make_root(tmp_path / "host", {}, channels)
    with PipeWriters(root, channels):
        assert data.load(root / "input" / "data" / "train", config, 0) is None


def test_a_csv_pipe_is_comma_separated_as_the_containers_reader(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("1;2;3\n0;4;5\n")
    channels = {"train": Channel([tmp_path / "a.csv"], mode="Pipe")}
    root = make_root(tmp_path / "host", {}, channels)
    with PipeWriters(root, channels), pytest.raises(ClientError, match=r"^Failed to load csv data with exception:\n"):
        data.load(root / "input" / "data" / "train", data.DataConfig(data.CSV, True, False), 0)


def test_recordio_reads_every_tensor_type_and_multipart_records() -> None:
    """float64 and int32 (negative, varint-packed) tensors, an unpacked float label, and a record that holds the magic
    number in its payload, written in two parts as dmlc's framing does (the magic between them left out)."""
    float64 = _fields(3, 2, _fields(1, 2, struct.pack("<3d", 1.5, -2.25, 3.0)))
    int32 = _fields(7, 2, _fields(1, 2, recordio._encode_varint(5) + recordio._encode_varint((-4) & (2**64 - 1))))
    magic = struct.pack("<I", recordio.MAGIC)
    holding_magic = _fields(2, 2, _fields(1, 2, magic + struct.pack("<f", 7.0)))
    unpacked = _fields(2, 2, _fields(1, 5, struct.pack("<f", 0.5)))  # a Value holding a float32 tensor
    label = _fields(2, 2, _fields(1, 2, b"values") + _fields(2, 2, unpacked))

    def record(value: bytes) -> bytes:
        return _fields(1, 2, _fields(1, 2, b"values") + _fields(2, 2, value)) + label

    whole = record(holding_magic)
    first, second = whole.split(magic)
    part = struct.Struct("<II")
    stream = recordio.frame(record(float64)) + recordio.frame(record(int32))
    stream += part.pack(recordio.MAGIC, len(first) | 1 << 29) + first + b"\0" * (-len(first) % 4)
    last = part.pack(recordio.MAGIC, len(second) | 3 << 29) + second + b"\0" * (-len(second) % 4)
    rows = recordio.read_rows([io.BytesIO(stream + last)])
    assert [np.frombuffer(raw, dtype).tolist() for dtype, raw in rows.dense] == [
        [1.5, -2.25, 3.0], [5.0, -4.0], [struct.unpack("<f", magic)[0], 7.0]]
    assert rows.label_values().tolist() == [0.5, 0.5, 0.5]
    with pytest.raises(recordio.RecordIOError, match="the stream ended inside a multi-part record"):
        recordio.read_rows([io.BytesIO(stream)])


@pytest.mark.parametrize(("body", "message"), [
    (b"not recordio at all", "no RecordIO magic number at byte 0"),
    (recordio.frame(recordio.encode_record([1.0, 2.0], 1.0))[:-3], "the stream ended inside a record"),
    (recordio.write_dense([[1, 2], [3, 4]], [1, 0]) + recordio.frame(recordio.encode_record([1.0], 1.0)),
     "dense records of different lengths"),
    (recordio.write_dense([[1, 2], [3, 4]], None) + recordio.frame(recordio.encode_record([1.0, 2.0], 1.0)),
     "1 labels for 3 records"),
    (recordio.frame(recordio.encode_record([1.0], 1.0, keys=[0])), "The sparse feature 'values' of the record #0 has "
                                                                 "no shape specified."),
    (recordio.frame(_fields(1, 2, _fields(1, 2, b"values") + _fields(2, 2, _fields(9, 2, _fields(1, 2, b"jpeg"))))),
     "The RecordIO-protobuf binary data format is not supported."),
])
def test_bad_recordio_is_the_containers_client_error(tmp_path: Path, body: bytes, message: str) -> None:
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "part").write_bytes(body)
    config = data.DataConfig(data.RECORDIO_PROTOBUF, False, False)
    with pytest.raises(ClientError, match=f"^Failed to load recordio-protobuf data with exception:\n.*{message}"):
        data.load(tmp_path / "train", config, 0)


def test_recordio_without_labels_is_the_containers_no_label_error(tmp_path: Path) -> None:
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "part").write_bytes(recordio.write_dense([[1, 2], [3, 4]], None))
    with pytest.raises(ClientError, match=r"^Got input data without labels"):
        data.load(tmp_path / "train", data.DataConfig(data.RECORDIO_PROTOBUF, False, False), 0)


def test_sparse_recordio_keeps_absent_values_missing(tmp_path: Path) -> None:
    rows = np.array([[0, 2, 0, 4], [5, 0, 0, 0]], dtype=np.float32)
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "part").write_bytes(recordio.write_sparse(rows, [1, 0]))
    matrix = data.load(tmp_path / "train", data.DataConfig(data.RECORDIO_PROTOBUF, False, False), 0)
    assert matrix is not None and (matrix.num_row(), matrix.num_col(), matrix.num_nonmissing()) == (2, 4, 3)
    np.testing.assert_array_equal(matrix.get_data().toarray(), rows)
    assert list(matrix.get_label()) == [1, 0]


def test_channel_checks_follow_the_containers_tables(monkeypatch: pytest.MonkeyPatch) -> None:
    for content_type in xgboost_content.PIPE_CONTENT_TYPES:
        config = data.check_channels({"train": {"ContentType": content_type, "TrainingInputMode": "Pipe"}})
        assert config.pipe and config.reads_pipes
    assert not data.check_channels({"train": {"ContentType": "text/csv", "TrainingInputMode": "Pipe"}},
                                   "3.2-0").reads_pipes
    monkeypatch.setattr(parquet, "available", lambda: False)
    with pytest.raises(ClientError, match=r"pip install 'sagemaker-plugin\[parquet\]'"):
        data.check_channels({"train": {"ContentType": "application/x-parquet", "TrainingInputMode": "File"}})


def test_a_parquet_stream_splits_into_its_files_as_mlio_splits_it() -> None:
    """Two files back to back, the first holding "PAR1" in its data (a false end the footer checks reject)."""
    first = parquet.write([[1.0, float(np.frombuffer(b"PAR1", "<f4")[0])], [0.0, 2.0]])
    assert first.count(parquet.MAGIC) > 2
    second = parquet.write([[1.0, 3.0]])
    assert list(parquet.split(first + second)) == [first, second]
    with pytest.raises(ValueError, match="does not start with the Parquet magic number"):
        list(parquet.split(b"junk" + first))
    with pytest.raises(ValueError, match="does not have a valid Parquet footer"):
        list(parquet.split(first[:-1]))
