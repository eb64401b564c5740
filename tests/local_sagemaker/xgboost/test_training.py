"""`python -m local_sagemaker.xgboost` on one host folder, in a subprocess, as the local SageMaker runs it: it trains
for real, prints the container's round lines, writes the version's model file, checkpoints and resumes, and fails as
the container fails."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb

from children import reaped
from xgboost_hosts import CLASSIFICATION, Channel, csv_channels, files_of, make_root, rounds, run

pytestmark = pytest.mark.timeout(300)

REGRESSION_HPS = {"num_round": "12", "objective": "reg:squarederror", "max_depth": "4", "eta": "0.3"}


def read_csv(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    table = np.vstack([np.loadtxt(path, delimiter=",", ndmin=2) for path in files_of(folder)])
    return table[:, 1:], table[:, 0]


def load_model(root: Path) -> xgb.Booster:
    booster = xgb.Booster()
    booster.load_model(str(root / "model" / "xgboost-model"))
    return booster


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """The probability that a positive scores above a negative (ties count half)."""
    positives, negatives = scores[labels == 1], scores[labels == 0]
    above = (positives[:, None] > negatives[None, :]).sum() + 0.5 * (positives[:, None] == negatives[None, :]).sum()
    return float(above / (len(positives) * len(negatives)))


def test_regression_trains_and_the_model_gives_the_reported_rmse(tmp_path: Path) -> None:
    root = make_root(tmp_path, REGRESSION_HPS, csv_channels())
    done = run(root)
    assert done.returncode == 0, done.stderr
    lines = rounds(done.stdout)
    assert [index for index, _ in lines] == list(range(12))
    assert all(list(values) == ["train-rmse", "validation-rmse"] for _, values in lines)
    assert lines[-1][1]["validation-rmse"] < lines[0][1]["validation-rmse"] / 3
    assert "Single node training." in done.stderr and "Train matrix has 400 rows and 3 columns" in done.stderr
    features, labels = read_csv(root / "input" / "data" / "validation")
    predictions = load_model(root).predict(xgb.DMatrix(features))
    rmse = float(np.sqrt(np.mean((predictions - labels) ** 2)))
    assert abs(rmse - lines[-1][1]["validation-rmse"]) < 1e-4
    assert not (root / "output" / "failure").exists()


def test_classification_auc_is_the_models_auc(tmp_path: Path) -> None:
    hps = {"num_round": "10", "objective": "binary:logistic", "eval_metric": "auc", "max_depth": "3"}
    root = make_root(tmp_path, hps, csv_channels(CLASSIFICATION))
    done = run(root)
    assert done.returncode == 0, done.stderr
    last = rounds(done.stdout)[-1][1]
    assert list(last) == ["train-auc", "validation-auc"]
    features, labels = read_csv(root / "input" / "data" / "validation")
    scores = load_model(root).predict(xgb.DMatrix(features))
    assert abs(auc(labels, scores) - last["validation-auc"]) < 1e-4
    assert 0.7 < last["validation-auc"] <= 1.0


def test_libsvm_trains_and_an_old_version_pickles_its_model(tmp_path: Path) -> None:
    features, labels = read_csv(Path(csv_channels()["train"].files[0]).parent)
    svm = tmp_path / "data.libsvm"
    svm.write_text("".join(f"{y} " + " ".join(f"{i}:{v}" for i, v in enumerate(x)) + "\n" for x, y in
                           zip(features, labels, strict=True)))
    channels = {"train": Channel([svm], content_type="text/libsvm")}
    root = make_root(tmp_path, {"num_round": "5", "objective": "reg:squarederror", "eval_metric": "mae"}, channels)
    done = run(root, version="1.2-2")
    assert done.returncode == 0, done.stderr
    lines = rounds(done.stdout)
    assert len(lines) == 5 and list(lines[-1][1]) == ["train-mae"]
    booster = pickle.loads((root / "model" / "xgboost-model").read_bytes())
    predictions = booster.predict(xgb.DMatrix(features))
    assert abs(float(np.mean(np.abs(predictions - labels))) - lines[-1][1]["train-mae"]) < 1e-4


def test_csv_weights_are_the_second_column(tmp_path: Path) -> None:
    weighted = tmp_path / "weighted.csv"
    rows = [line.split(",") for line in files_of(csv_channels()["train"].files[0].parent)[0].read_text().split()]
    weighted.write_text("".join(",".join([r[0], "1" if i % 2 else "3", *r[1:]]) + "\n" for i, r in enumerate(rows)))
    root = make_root(tmp_path, {"num_round": "3", "csv_weights": "1"}, {"train": Channel([weighted])})
    done = run(root)
    assert done.returncode == 0, done.stderr
    assert "Train matrix has 400 rows and 3 columns" in done.stderr  # the weight column is not a feature


@pytest.mark.parametrize(
    ("channel", "reason"),
    [
        (Channel([], content_type="image/jpeg"), "ClientError: Channel configuration for 'train' channel is not"),
        (Channel([], content_type="text/libsvm", mode="Pipe"), "ClientError: Channel configuration for 'train' chan"),
    ],
)
def test_a_content_type_it_cannot_read_fails_with_a_reason(tmp_path: Path, channel: Channel, reason: str) -> None:
    root = make_root(tmp_path, {"num_round": "3"}, {"train": channel})
    done = run(root)
    assert done.returncode == 1
    assert (root / "output" / "failure").read_text().startswith(reason)
    assert reason in done.stderr and "Traceback" not in done.stderr


def test_a_bad_hyperparameter_fails_with_a_client_error(tmp_path: Path) -> None:
    root = make_root(tmp_path, {**REGRESSION_HPS, "eta": "7"}, csv_channels())
    done = run(root)
    assert done.returncode == 1, done.stdout
    failure = (root / "output" / "failure").read_text()
    assert failure == "ClientError: Hyperparameter eta: 7 is not in [0, 1]"
    assert rounds(done.stdout) == [] and not (root / "model" / "xgboost-model").exists()


def test_empty_training_data_fails_with_the_containers_reason(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    root = make_root(tmp_path, {"num_round": "3"}, {"train": Channel([empty])})
    done = run(root)
    assert done.returncode == 1
    assert (root / "output" / "failure").read_text().startswith("ClientError: No data in training channel path ")


def test_a_second_run_resumes_from_the_last_checkpoint(tmp_path: Path) -> None:
    """Run 1 stops after 5 of 12 rounds (as a spot interruption would); run 2, with the same checkpoints, trains
    rounds 5 to 11 and ends with the same model as one uninterrupted run."""
    root = make_root(tmp_path, {**REGRESSION_HPS, "num_round": "5"}, csv_channels())
    first = run(root)
    assert first.returncode == 0, first.stderr
    assert sorted(p.name for p in (root / "checkpoints").iterdir()) == [f"xgboost-checkpoint.{i}" for i in range(5)]
    (root / "input" / "config" / "hyperparameters.json").write_text(__import__("json").dumps(REGRESSION_HPS))
    second = run(root)
    assert second.returncode == 0, second.stderr
    assert "Resuming from iteration 5" in second.stderr
    assert [index for index, _ in rounds(second.stdout)] == list(range(5, 12))
    whole = make_root(tmp_path / "whole", REGRESSION_HPS, csv_channels())
    uninterrupted = run(whole)
    assert rounds(uninterrupted.stdout)[-1] == rounds(second.stdout)[-1]
    assert load_model(root).num_boosted_rounds() == 12


def test_early_stopping_keeps_the_best_round(tmp_path: Path) -> None:
    """From 1.3-1: with a validation channel and an eval_metric, training stops once validation-rmse has not improved
    for early_stopping_rounds rounds, and the model ends at the best round."""
    hps = {**REGRESSION_HPS, "num_round": "200", "eta": "0.9", "max_depth": "6", "eval_metric": "rmse",
           "early_stopping_rounds": "3"}
    root = make_root(tmp_path, hps, csv_channels())
    done = run(root)
    assert done.returncode == 0, done.stderr
    lines = rounds(done.stdout)
    assert 3 < len(lines) < 200
    scores = [values["validation-rmse"] for _, values in lines]
    best = scores.index(min(scores))
    assert len(lines) == best + 1 + 3  # three rounds without improvement after the best
    booster = load_model(root)
    assert booster.num_boosted_rounds() == best + 1
    features, labels = read_csv(root / "input" / "data" / "validation")
    rmse = float(np.sqrt(np.mean((booster.predict(xgb.DMatrix(features)) - labels) ** 2)))
    assert abs(rmse - min(scores)) < 1e-4


def test_save_model_on_termination_leaves_the_latest_model_when_stopped(tmp_path: Path) -> None:
    """SIGTERM (a stop) mid-training: with save_model_on_termination the process ends successfully and the model of
    a finished round is in model/, as the container leaves it."""
    import signal

    from xgboost_hosts import start

    hps = {**REGRESSION_HPS, "num_round": "100000", "save_model_on_termination": "true"}
    root = make_root(tmp_path, hps, csv_channels())
    process = start(root, "1.7-1", port=0)
    with reaped(process):
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith("[30]\t"):
                break
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    assert load_model(root).num_boosted_rounds() >= 30  # round 30 was printed; its model may not be saved yet
    assert [path.name for path in (root / "model").iterdir()] == ["xgboost-model"]  # no half-written file
    assert not (root / "output" / "failure").exists()
