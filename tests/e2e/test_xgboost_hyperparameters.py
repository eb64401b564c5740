"""`sagemaker-plugin validate` refuses bad built-in XGBoost hyperparameters before any AWS call (exit 2), each at
`inputs.static_hyperparameters.<name>`, as the algorithm version's container would refuse them minutes into Training.

The cases run the command line in this process (main(), as the console script does); a few go through the installed
console script in a subprocess, and one `run` shows that nothing reaches SageMaker.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

import sample_tasks as F
from plugin.cli import main

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "tests" / "data" / "bad" / "configs" / "local.yaml"
SCRIPT = Path(sys.executable).with_name("sagemaker-plugin")
HP = "inputs.static_hyperparameters"
REG = {"objective": "reg:squarederror"}


def write(tmp: Path, version: str, hyperparameters: dict[str, Any], name: str = "task.yaml") -> Path:
    task = F.xgboost_task()
    task["training_job"]["algorithm_specification"]["algorithm_version"] = version
    task["inputs"]["static_hyperparameters"] = hyperparameters
    path = tmp / name
    path.write_text(yaml.safe_dump(task), encoding="utf-8")
    return path


def reported(err: str) -> set[str]:
    return {line.strip().split(": ", 1)[0] for line in err.splitlines()[1:]}


# (version, hyperparameters, the names at fault, a piece of one message)
BAD: list[tuple[str, dict[str, Any], list[str], str]] = [
    ("1.7-1", {**REG}, ["num_round"], "is required by SageMaker XGBoost 1.7-1"),
    ("1.7-1", {"num_rounds": 10, **REG}, ["num_rounds", "num_round"], "did you mean 'num_round'?"),
    ("1.7-1", {"num_round": 10, "colsample": 0.5, **REG}, ["colsample"], "is not a hyperparameter"),
    ("1.7-1", {"num_round": 10, "eta": 2, **REG}, ["eta"], "2 is not in [0, 1]"),
    ("1.7-1", {"num_round": 10, "eta": "fast", **REG}, ["eta"], "'fast' is not a number"),
    ("1.7-1", {"num_round": 2.5, **REG}, ["num_round"], "'2.5' is not an integer"),
    ("1.7-1", {"num_round": 0, **REG}, ["num_round"], "0 is not in [1, +inf)"),
    ("1.7-1", {"num_round": 10, "max_depth": -1, **REG}, ["max_depth"], "-1 is not in [0, +inf)"),
    ("1.7-1", {"num_round": 10, "subsample": 0, **REG}, ["subsample"], "0 is not in (0, 1]"),
    ("1.7-1", {"num_round": 10, "objective": "multi:softmax"}, ["num_class"], "is required with objective"),
    ("1.7-1", {"num_round": 10, "num_class": 3, **REG}, ["num_class"], "is only for objectives multi:softmax"),
    ("1.7-1", {"num_round": 10, "num_class": 1, "objective": "multi:softprob"}, ["num_class"], "1 is not in [2, +inf)"),
    ("1.7-1", {"num_round": 10, "eval_metric": "auc", **REG}, ["eval_metric"], "auc only fits classification"),
    ("1.7-1", {"num_round": 10, "eval_metric": "accuracyy", **REG}, ["eval_metric"], "'accuracyy' is not among"),
    ("1.7-1", {"num_round": 10, "eval_metric": "rmse, mae", **REG}, ["eval_metric"], "no spaces around the commas"),
    ("1.7-1", {"num_round": 10, "eval_metric": "rmse"}, ["eval_metric"], "needs objective to be given too"),
    ("1.7-1", {"num_round": 10, "objective": "reg:linearr"}, ["objective"], "'reg:linearr' is not one of"),
    ("1.7-1", {"num_round": 10, "booster": "gbforest", **REG}, ["booster"], "is not one of: gbtree, gblinear, dart"),
    ("1.7-1", {"num_round": 10, "tree_method": "gpu", **REG}, ["tree_method"], "'gpu' is not one of"),
    ("1.7-1", {"num_round": 10, "monotone_constraints": "(1,-1)", **REG}, ["monotone_constraints"],
     "needs tree_method exact or hist"),
    ("1.7-1", {"num_round": 10, "updater": "grow_colmaker,grow_histmaker", **REG}, ["updater"],
     "at most one tree grow plugin"),
    ("1.7-1", {"num_round": 10, "booster": "gblinear", "updater": "grow_colmaker", **REG}, ["updater"],
     "with booster gblinear"),
    ("1.7-1", {"num_round": 10, "tweedie_variance_power": 2, **REG}, ["tweedie_variance_power"], "2 is not in (1, 2)"),
    ("1.7-1", {"num_round": 10, "seed": 2147483647, **REG}, ["seed"], "is not in (-2147483648, 2147483647)"),
    ("1.7-1", {"num_round": 10, "csv_weights": 2, **REG}, ["csv_weights"], "2 is not in [0, 1]"),
    ("1.7-1", {"num_round": 10, "save_model_on_termination": "yes", **REG}, ["save_model_on_termination"],
     "is not one of: true, false"),
    ("1.7-1", {"num_rounds": 10, "eta": -1, "objective": "multi:softprob"}, ["num_rounds", "num_round", "eta",
                                                                             "num_class"], "-1 is not in [0, 1]"),
    ("1.7-1", {"num_round": 10, "single_precision_histogram": "true", **REG}, ["single_precision_histogram"],
     "is not a hyperparameter of SageMaker XGBoost 1.7-1"),
    ("1.7-1", {"num_round": 10, "updater": "grow_local_histmaker", **REG}, ["updater"],
     "'grow_local_histmaker' is not among"),
    ("1.5-1", {"num_round": 10, "objective": "reg:absoluteerror"}, ["objective"], "'reg:absoluteerror' is not one of"),
    ("1.5-1", {**REG}, ["num_round"], "is required by SageMaker XGBoost 1.5-1"),
    ("1.5-1", {"num_round": 10, "tree_method": "hist", "interaction_constraints": "[[0, 1]]", **REG},
     ["interaction_constraints"], "elements must be integers in [1, +inf)"),
    ("0.90-1", {"num_round": 10, "learning_rate": 0.1, **REG}, ["learning_rate"],
     "is not a hyperparameter of SageMaker XGBoost 0.90-1"),
    ("0.90-1", {"num_round": 10, "tree_method": "gpu_hist", **REG}, ["tree_method"], "'gpu_hist' is not one of"),
    ("3.2-0", {"num_round": "ten", **REG}, ["num_round"], "'ten' is not an integer"),
    ("", {"num_round": 10, "eta": 1.5, **REG}, ["eta"], "1.5 is not in [0, 1]"),  # no version: the newest
]

# Valid in the first version, refused in the second: the definitions differ as the container's sources do.
DIFFERING: list[tuple[dict[str, Any], str, str, str]] = [
    ({"num_round": 10, "objective": "reg:absoluteerror"}, "1.7-1", "1.5-1", "objective"),
    ({"num_round": 10, "single_precision_histogram": "true", **REG}, "1.5-1", "1.7-1", "single_precision_histogram"),
    ({"num_round": 10, "updater": "grow_local_histmaker", **REG}, "1.5-1", "1.7-1", "updater"),
    ({"num_round": 10, "learning_rate": 0.1, **REG}, "0.90-2", "0.90-1", "learning_rate"),
    ({"num_round": 10, "silent": 1, **REG}, "0.90-1", "1.7-1", "silent"),
    ({"num_round": 10, "tree_method": "gpu_hist", **REG}, "1.2-1", "1.0-1", "tree_method"),
]


def test_there_are_enough_cases_over_several_versions() -> None:
    assert len(BAD) >= 25
    assert len({version for version, *_ in BAD}) >= 4


@pytest.mark.parametrize(("version", "hyperparameters", "names", "text"), BAD,
                         ids=[f"{v or 'newest'}-{'-'.join(n)}-{i}" for i, (v, _, n, _) in enumerate(BAD)])
def test_validate_refuses_bad_hyperparameters(version: str, hyperparameters: dict[str, Any], names: list[str],
                                              text: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, version, hyperparameters)
    assert main(["validate", "--config", str(CONFIG), str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert "Traceback" not in err
    assert err.startswith(f"error: {len(names)} problem{'s' if len(names) > 1 else ''} found:\n")
    assert reported(err) == {f"{HP}.{name}" for name in names}
    assert text in err


@pytest.mark.parametrize(("hyperparameters", "good", "bad", "name"), DIFFERING,
                         ids=[f"{name}-{good}-vs-{bad}" for _, good, bad, name in DIFFERING])
def test_valid_in_one_version_and_refused_in_another(hyperparameters: dict[str, Any], good: str, bad: str, name: str,
                                                     tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--config", str(CONFIG), str(write(tmp_path, good, hyperparameters, "good.yaml"))]) == 0
    assert capsys.readouterr().err == ""
    assert main(["validate", "--config", str(CONFIG), str(write(tmp_path, bad, hyperparameters, "bad.yaml"))]) == 2
    assert reported(capsys.readouterr().err) == {f"{HP}.{name}"}


@pytest.mark.parametrize("version", ["1", "latest", "0.90-1", "0.90-2", "1.0-1", "1.2-1", "1.2-2", "1.3-1", "1.5-1",
                                     "1.7-1", "3.0-5", "3.2-0", ""])
def test_good_hyperparameters_pass_in_every_version(version: str, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    hyperparameters = {"num_round": 20, "objective": "binary:logistic", "eta": 0.3, "max_depth": 4,
                       "subsample": 0.8, "eval_metric": "auc", "scale_pos_weight": 2}
    assert main(["validate", "--config", str(CONFIG), str(write(tmp_path, version, hyperparameters))]) == 0
    out, err = capsys.readouterr()
    assert "valid sagemaker_training_job_task" in out and err == ""


def test_the_example_is_valid(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--config", str(CONFIG), str(ROOT / "examples" / "xgboost.yaml")]) == 0
    assert capsys.readouterr().err == ""


def _script(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAGEMAKER_PLUGIN_")}
    return subprocess.run([str(SCRIPT), *argv], capture_output=True, text=True, cwd=cwd, env=env, timeout=60)


def test_the_console_script_refuses_them_too(tmp_path: Path) -> None:
    path = write(tmp_path, "1.7-1", {"num_rounds": 20, "eta": 2, "objective": "multi:softmax",
                                     "eval_metric": "auc"})
    done = _script(["validate", "--config", str(CONFIG), str(path)], tmp_path)
    assert (done.returncode, done.stdout) == (2, "")
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines() == [
        "error: 5 problems found:",  # in the file's order (yaml.safe_dump sorts keys), then missing, then rules
        f"  {HP}.eta: 2 is not in [0, 1]",
        f"  {HP}.num_rounds: is not a hyperparameter of SageMaker XGBoost 1.7-1 (did you mean 'num_round'?); its "
        "container refuses unknown names",
        f"  {HP}.num_round: is required by SageMaker XGBoost 1.7-1: an integer in [1, +inf)",
        f"  {HP}.num_class: is required with objective multi:softmax or multi:softprob (the number of classes, 2 or "
        "more)",
        f"  {HP}.eval_metric: auc only fits classification and ranking objectives (binary:*, rank:*)",
    ]
    rendered = _script(["render", "--config", str(CONFIG), str(path)], tmp_path)
    assert (rendered.returncode, rendered.stdout) == (2, "")


def test_run_refuses_them_before_starting_anything(tmp_path: Path) -> None:
    path = write(tmp_path, "1.7-1", {"num_round": 10, "objective": "multi:softmax"})
    # No local.endpoint_url: `run` would start a local SageMaker; it must not get that far.
    done = _script(["run", "--config", str(CONFIG), str(path)], tmp_path)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.splitlines()[1:] == [f"  {HP}.num_class: is required with objective multi:softmax or "
                                            "multi:softprob (the number of classes, 2 or more)"]
