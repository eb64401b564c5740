"""local_sagemaker.xgboost's parts in this process: versions, hyperparameters, channels, metrics, checkpoints."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb

from local_sagemaker.xgboost import checkpoints, data, metrics, params, versions
from local_sagemaker.xgboost.failures import ClientError, from_training_exception
from local_sagemaker.xgboost.host import read_host
from local_sagemaker.xgboost.logs import round_line
from local_sagemaker.xgboost.training import MODEL_NAME, save_model
from xgboost_hosts import csv_channels, make_root


@pytest.mark.parametrize(
    ("version", "pickles", "protocol", "binary_default"),
    [
        ("1", True, None, "error"),
        ("0.90-2", True, None, "error"),
        ("1.2-2", True, 4, "error"),
        ("1.3-1", False, None, "logloss"),
        ("1.7-1", False, None, "logloss"),
        ("3.0-5", False, None, "logloss"),
    ],
)
def test_versions_differ_where_their_containers_do(
    version: str, pickles: bool, protocol: int | None, binary_default: str
) -> None:
    behaviour = versions.behaviour(version)
    assert behaviour.pickles_model is pickles
    assert behaviour.pickle_protocol == protocol
    assert behaviour.default_metrics.get("binary:logistic") == binary_default
    assert ("rmse" in behaviour.custom_metrics) is (not pickles)


def test_an_unknown_version_is_a_client_error() -> None:
    with pytest.raises(ClientError, match="Unknown algorithm version 'latest-ish'"):
        versions.behaviour("latest-ish")
    with pytest.raises(ClientError, match=r"no XGBoost hyperparameter definitions for version '9\.9-9'"):
        versions.behaviour("9.9-9")


def test_hyperparameters_split_between_the_container_and_xgboost() -> None:
    hps = {
        "num_round": "30",
        "eta": "0.2",
        "eval_metric": "accuracy,auc",
        "early_stopping_rounds": "5",
        "csv_weights": "1",
        "objective": "binary:logistic",
    }
    settings = params.settings(hps, versions.behaviour("1.7-1"), hosts_here=2)
    assert settings.num_round == 30 and settings.csv_weights == 1
    assert settings.custom_metrics == ("accuracy",)
    assert settings.params["eval_metric"] == ["auc"]
    assert settings.early_stopping_rounds == 5 and settings.early_stopping_metric == "auc"
    assert "num_round" not in settings.params and "csv_weights" not in settings.params
    assert settings.params["eta"] == "0.2"
    assert settings.params["nthread"] == str(params.threads_per_host(2))


def test_tuning_metric_is_merged_and_sorted_as_the_container_does() -> None:
    hps = {"num_round": "3", "eval_metric": "rmse", "_tuning_objective_metric": "validation:mae"}
    settings = params.settings(hps, versions.behaviour("1.2-2"), hosts_here=1)
    assert settings.params["eval_metric"] == ["mae", "rmse"]  # both are xgboost's own metrics in 1.2-2


def test_an_older_version_keeps_its_librarys_default_metric() -> None:
    hps = {"num_round": "3", "objective": "multi:softmax", "num_class": "3"}
    assert params.settings(hps, versions.behaviour("1.0-1"), 1).params["eval_metric"] == ["merror"]
    assert params.settings(hps, versions.behaviour("1.7-1"), 1).params["eval_metric"] == ["mlogloss"]


@pytest.mark.parametrize(
    ("hps", "message"),
    [
        ({}, "Missing required hyperparameter: num_round"),
        ({"num_round": "ten"}, "num_round: could not parse value 'ten'"),
        ({"num_round": "3", "_kfold": "5"}, "_kfold"),
    ],
)
def test_hyperparameters_the_container_needs(hps: dict[str, str], message: str) -> None:
    with pytest.raises(ClientError, match=message):
        params.settings(hps, versions.behaviour("1.7-1"), 1)


def test_threads_share_the_machine_among_hosts() -> None:
    one = params.threads_per_host(1)
    assert one >= 1 and params.threads_per_host(one * 4) == 1


@pytest.mark.parametrize(
    ("channels", "message"),
    [
        ({"validation": {"ContentType": "text/csv", "TrainingInputMode": "File"}}, "Missing required channel: train"),
        ({"train": {"ContentType": "text/csv", "TrainingInputMode": "File"}, "extra": {}}, "Extraneous channel"),
        ({"train": {"ContentType": "text/libsvm", "TrainingInputMode": "Pipe"}}, "'train' channel is not supported"),
        ({"train": {"ContentType": "image/png", "TrainingInputMode": "File"}}, "'train' channel is not supported"),
        ({"train": {"ContentType": "text/csv; label_size=1", "TrainingInputMode": "Pipe"}}, "'train' channel is not"),
    ],
)
def test_channels_are_checked_as_the_container_checks_them(channels: dict[str, dict[str, str]], message: str) -> None:
    with pytest.raises(ClientError, match=message):
        data.check_channels(channels)


def test_content_types_and_their_parameters() -> None:
    assert data.content_kind("text/csv") == data.CSV
    assert data.content_kind("text/csv; label_size=1") == data.CSV
    assert data.content_kind("text/x-libsvm") == data.LIBSVM
    with pytest.raises(ClientError, match="label_size must be equal to 1"):
        data.content_kind("text/csv;label_size=2")
    with pytest.raises(ClientError, match="is not an accepted ContentType"):
        data.content_kind("text/plain")
    config = data.check_channels({"train": {"TrainingInputMode": "File"}})  # no ContentType: libsvm, as the container
    assert config.kind == data.LIBSVM and not config.has_validation


def test_csv_files_load_with_labels_weights_and_a_sniffed_delimiter(tmp_path: Path) -> None:
    folder = tmp_path / "train"
    (folder / "nested").mkdir(parents=True)
    (folder / "a.csv").write_text("1;2;3;4\n0;1;5;6\n")
    (folder / "nested" / "b name?.csv").write_text("1;3;7;8\n")
    config = data.DataConfig(kind=data.CSV, pipe=False, has_validation=False)
    matrix = data.load(folder, config, csv_weights=1)
    assert matrix is not None and matrix.num_row() == 3 and matrix.num_col() == 2
    assert list(matrix.get_label()) == [1, 0, 1] and list(matrix.get_weight()) == [2, 1, 3]
    assert data.load(tmp_path / "absent", config, 0) is None


def test_the_reader_lists_a_private_folder_not_the_shared_temporary_one(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """xgboost's reader lists the parent of the folder it reads and stats every entry there: in a shared /tmp, an
    entry of another process vanishing between the two failed trials under load (the tuning tests saw it). So the
    parent it lists must hold nothing but the files' own folder."""
    shared = tmp_path / "tmp"
    shared.mkdir()
    (shared / "another-process-file").touch()
    monkeypatch.setattr(tempfile, "tempdir", str(shared))
    listed: list[list[str]] = []
    real = data.xgb.DMatrix

    def watched(uri: str, *args: object, **kwargs: object) -> xgb.DMatrix:
        folder = Path(uri.split("?", 1)[0])
        listed.append(sorted(path.name for path in folder.parent.iterdir()))
        return real(uri, *args, **kwargs)

    monkeypatch.setattr(data.xgb, "DMatrix", watched)
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "train.csv").write_text("".join(f"{i % 3},{i},{i * 2}\n" for i in range(50)))
    matrix = data.load(tmp_path / "train", data.DataConfig(kind=data.CSV, pipe=False, has_validation=False), 0)
    assert matrix is not None and matrix.num_row() == 50
    assert len(listed) == 1 and len(listed[0]) == 1, listed
    assert [path.name for path in shared.iterdir()] == ["another-process-file"]  # nothing of its own left behind


def test_the_algorithms_process_lets_idle_openmp_threads_sleep() -> None:
    """Spinning OpenMP threads of parallel trials on shared cores made each round 20 times slower."""
    code = ("import os, runpy, sys\nsys.argv = ['local_sagemaker.xgboost', '--help']\n"
            "try:\n    runpy.run_module('local_sagemaker.xgboost', run_name='__main__')\nexcept SystemExit:\n    pass\n"
            "print(os.environ.get('OMP_WAIT_POLICY'))")
    env = {key: value for key, value in os.environ.items() if key != "OMP_WAIT_POLICY"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True, timeout=60)
    assert done.stdout.strip().splitlines()[-1] == "PASSIVE"
    kept = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60,
                          env={**env, "OMP_WAIT_POLICY": "ACTIVE"})  # a job's own Environment still wins
    assert kept.stdout.strip().splitlines()[-1] == "ACTIVE"


def test_bad_files_are_client_errors(tmp_path: Path) -> None:
    (tmp_path / "svm").mkdir()
    (tmp_path / "svm" / "a.txt").write_text("1 1:2 3\n")
    with pytest.raises(ClientError, match="is not 'LIBSVM' format"):
        data.load(tmp_path / "svm", data.DataConfig(data.LIBSVM, False, False), 0)
    (tmp_path / "hidden").mkdir()
    (tmp_path / "hidden" / ".a.csv").write_text("1,2\n")
    with pytest.raises(ClientError, match="Hidden file found"):
        data.load(tmp_path / "hidden", data.DataConfig(data.CSV, False, False), 0)


def test_container_metrics_against_hand_counts() -> None:
    truth = xgb.DMatrix(np.zeros((6, 1)), label=np.array([1, 1, 1, 0, 0, 0]))
    probabilities = np.array([0.9, 0.8, 0.2, 0.6, 0.1, 0.3])  # classes 1 1 0 1 0 0
    names = ["accuracy", "precision", "recall", "f1_binary", "balanced_accuracy", "mse"]
    scores = dict(metrics.custom_metric(names, "binary:logistic")(probabilities, truth))
    assert scores["accuracy"] == pytest.approx(4 / 6)
    assert scores["precision"] == pytest.approx(2 / 3) and scores["recall"] == pytest.approx(2 / 3)
    assert scores["f1_binary"] == pytest.approx(2 / 3) and scores["balanced_accuracy"] == pytest.approx(2 / 3)
    assert scores["mse"] == pytest.approx(np.mean((probabilities - [1, 1, 1, 0, 0, 0]) ** 2))
    three = xgb.DMatrix(np.zeros((3, 1)), label=np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="Target is multiclass but average='binary'"):
        metrics.custom_metric(["f1_binary"], "multi:softmax")(np.array([0, 1, 1]), three)
    assert metrics.custom_metric(["f1"], "multi:softmax")(np.array([0, 1, 1]), three) == [("f1", pytest.approx(5 / 9))]


def test_xgboost_errors_are_classified_as_the_container_does() -> None:
    client = from_training_exception(RuntimeError("Check failed: label must be in [0,1] for logistic regression"))
    assert client.reason().startswith("ClientError: ")
    other = from_training_exception(RuntimeError("out of memory"))
    assert other.reason() == "AlgorithmError: XGB train call failed with exception:\n out of memory"


def _booster(rounds: int) -> xgb.Booster:
    x = np.arange(40, dtype=float).reshape(20, 2)
    return xgb.train({"nthread": 1}, xgb.DMatrix(x, label=x[:, 0]), rounds)


def test_checkpoints_keep_the_latest_five_and_resume_after_the_newest(tmp_path: Path) -> None:
    booster = _booster(2)
    (tmp_path / "xgboost-checkpoint.4.sagemaker-uploading").touch()
    for round_index in range(3, 11):
        checkpoints.save(tmp_path, booster, round_index)
    names = sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith("uploading"))
    assert names == [f"xgboost-checkpoint.{i}" for i in (10, 4, 6, 7, 8, 9)]  # 4 is still being uploaded
    (tmp_path / "xgboost-checkpoint.11").write_bytes(b"not a model")
    resume = checkpoints.latest(tmp_path)
    assert resume.first_round == 11 and resume.model == bytes(booster.save_raw("ubj"))
    assert checkpoints.latest(tmp_path / "none") == checkpoints.START


def test_model_file_per_version(tmp_path: Path) -> None:
    booster = _booster(3)
    save_model(booster, tmp_path / "old", versions.behaviour("1.2-2"))
    loaded = pickle.loads((tmp_path / "old" / MODEL_NAME).read_bytes())
    assert isinstance(loaded, xgb.Booster) and loaded.num_boosted_rounds() == 3
    save_model(booster, tmp_path / "new", versions.behaviour("1.7-1"))
    assert xgb.Booster(model_file=str(tmp_path / "new" / MODEL_NAME)).num_boosted_rounds() == 3
    assert oct((tmp_path / "new" / MODEL_NAME).stat().st_mode & 0o777) == "0o644"


def test_round_lines_are_in_the_container_format() -> None:
    log = {"train": {"rmse": [2.0, 1.234564]}, "validation": {"rmse": [3.0, 2.5], "mae": [1.0, 0.5]}}
    assert round_line(7, log) == "[7]\ttrain-rmse:1.23456\tvalidation-rmse:2.50000\tvalidation-mae:0.50000"


def test_host_folder_is_read_as_the_container_reads_opt_ml(tmp_path: Path) -> None:
    root = make_root(tmp_path, {"num_round": "2"}, csv_channels(), host="algo-2", hosts=("algo-2", "algo-1"))
    host = read_host(root, {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "4242"})
    assert host.hosts == ("algo-1", "algo-2") and not host.is_master
    assert (host.master_addr, host.master_port) == ("127.0.0.1", 4242)
    assert host.channel_dir("validation") == root / "input" / "data" / "validation"
    assert host.channel_dir("test") is None and host.checkpoint_dir == root / "checkpoints"
    (root / "input" / "config" / "hyperparameters.json").write_text('{"num_round": 3}')
    with pytest.raises(ClientError, match="string value"):
        read_host(root, {})


def test_checkpoint_sync_skips_files_being_written_and_files_let_go(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The local SageMaker's checkpoint sync runs while the algorithm writes (under `.sagemaker-ignore` names, then
    renamed) and prunes checkpoints: neither may reach S3 half-written or break the sync."""
    import threading

    from local_sagemaker import storage
    from local_sagemaker.runner import channels

    for name in ("xgboost-checkpoint.3", "xgboost-checkpoint.4", "tmpab12.sagemaker-ignore"):
        (tmp_path / name).write_bytes(b"model")
    put: list[str] = []
    monkeypatch.setattr(storage, "put_object", lambda account, region, uri, body: put.append(uri))
    real_read = Path.read_bytes

    def read_bytes(path: Path) -> bytes:
        if path.name == "xgboost-checkpoint.3":
            path.unlink()  # pruned between the listing and the read
        return real_read(path)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    where = channels.Where("123456789012", "us-east-1", threading.Lock())
    assert channels.upload_folder(where, tmp_path, "s3://bucket/ckpt/", {}) == 1
    assert put == ["s3://bucket/ckpt/xgboost-checkpoint.4"]
