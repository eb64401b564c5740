"""handlers/xgboost_algorithm.py and its data files: the container's definitions per version, and the checker.

The facts asserted in `TRACED` were read by hand in aws/sagemaker-xgboost-container, in
src/sagemaker_xgboost_container/algorithm_mode/hyperparameter_validation.py (and metrics.py, constants/xgb_constants.py)
at the commit named for each version; they are written here independently of the data files, so a regenerated file
that drifts from the source fails.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from handlers import xgboost_algorithm as xa
from handlers.xgboost_algorithm import DATA_DIR, Interval, check_hyperparameters, metric_definitions
from image_registry import ImageRegistry
from metric_checks import metric_direction

OK = {"num_round": "10", "objective": "reg:squarederror"}
INF = None


def problems(version: str, **hyperparameters: str) -> dict[str, str]:
    return {p.path: p.message for p in check_hyperparameters(version, hyperparameters)}


# --- the data files against the container's source ---------------------------------------------------------------

# version -> (commit, number of hyperparameters, number of eval metrics in xgb_constants.py)
COMMITS: dict[str, tuple[str, int, int]] = {
    "0.90-1": ("132188b309ef27b17ee9a769a0bdbbe8ddb802ee", 42, 18),  # branch 0.90-1
    "0.90-2": ("a034e4b46392a65034316106b039422c93c5d909", 43, 18),  # branch 0.90-2
    "1.0-1": ("0c7a3b8942f8cd75ea1c9e3c32bb83ea4b69b0a5", 46, 19),  # branch 1.0-1
    "1.2-1": ("0d8f55de0bec7e7afe29923b217714a592ff5d77", 50, 23),  # branch 1.2-1
    "1.2-2": ("dd637a025b8e644ab356a182fab4cd628b123b97", 51, 25),  # branch 1.2-2
    "1.3-1": ("07ece4c7b4984690560406ec66a68176820ee921", 53, 33),  # branch 1.3-1
    "1.5-1": ("4eef773aab5c9e38a9ba945c8ad31c24d764d44a", 54, 33),  # branch 1.5-1
    "1.7-1": ("f7a93a21e50e44b4077f0889a7f676cad8c226f3", 53, 33),  # branch 1.7-1 (not tag v1.7-1)
    "3.0-5": ("c988a0e56fa392ed34fa401812d29830e7049cce", 53, 33),  # tag v3.0-5
}

# (version, hyperparameter, what the source says), traced by hand at the commits above
TRACED: list[tuple[str, str, dict[str, Any]]] = [
    ("1.7-1", "num_round", {"type": "integer", "required": True, "interval": Interval(1, True),
                            "tunable": True, "tunable_recommended_range": Interval(1, True, 4000, True, "Linear")}),
    ("1.7-1", "eta", {"type": "continuous", "interval": Interval(0, True, 1, True), "tunable": True,
                      "tunable_recommended_range": Interval(0.1, True, 0.5, True, "Linear")}),
    ("1.7-1", "subsample", {"type": "continuous", "interval": Interval(0, False, 1, True)}),
    ("1.7-1", "sketch_eps", {"type": "continuous", "interval": Interval(0, False, 1, False)}),
    ("1.7-1", "tweedie_variance_power", {"type": "continuous", "interval": Interval(1, False, 2, False)}),
    ("1.7-1", "seed", {"type": "integer", "interval": Interval(-(2**31), False, 2**31 - 1, False)}),
    ("1.7-1", "num_class", {"type": "integer", "interval": Interval(2, True), "tunable": False}),
    ("1.7-1", "max_depth", {"type": "integer", "interval": Interval(0, True),
                            "tunable_recommended_range": Interval(0, True, 10, True, "Linear")}),
    ("1.7-1", "booster", {"type": "categorical", "values": ("gbtree", "gblinear", "dart")}),
    ("1.7-1", "tree_method", {"type": "categorical", "values": ("auto", "exact", "approx", "hist", "gpu_hist")}),
    ("1.7-1", "monotone_constraints", {"type": "tuple", "values": (-1, 0, 1)}),
    ("1.7-1", "interaction_constraints", {"type": "nested_list", "interval": Interval(1, True)}),
    ("1.7-1", "prob_buffer_row", {"type": "integer", "interval": Interval(1.0, False)}),
    ("1.7-1", "eval_metric", {"type": "comma_separated_list", "threshold_metrics": ("error", "ndcg", "map")}),
    ("1.5-1", "updater", {"type": "comma_separated_list", "values": (
        "grow_colmaker", "distcol", "grow_histmaker", "grow_local_histmaker", "grow_skmaker", "sync", "refresh",
        "prune", "shotgun", "coord_descent")}),
    ("1.0-1", "tree_method", {"values": ("auto", "exact", "approx", "hist")}),
    ("1.0-1", "predictor", {"values": ("cpu_predictor",)}),
    ("0.90-1", "silent", {"type": "integer", "interval": Interval(0, True, 1, True)}),
    ("1.2-1", "_nfold", {"type": "integer", "interval": Interval(2, True), "tunable": False}),
    ("1.3-1", "sampling_method", {"type": "categorical", "values": ("uniform", "gradient_based")}),
]


@pytest.mark.parametrize("version", list(COMMITS))
def test_each_data_file_names_its_source_commit_and_counts(version: str) -> None:
    commit, count, metric_count = COMMITS[version]
    defs = xa.definitions(version)
    assert defs.source["repository"] == "aws/sagemaker-xgboost-container"
    assert defs.source["commit"] == commit
    assert len(defs.hyperparameters) == count
    assert len(defs.metrics) == 2 * metric_count  # train:<m> and validation:<m>
    tuning = defs.hyperparameters["_tuning_objective_metric"].values  # metrics.names: validation:<m>, one per metric
    assert sorted(tuning) == sorted(m.name for m in defs.metrics if m.name.startswith("validation:"))


@pytest.mark.parametrize(("version", "name", "facts"), TRACED, ids=lambda x: x if isinstance(x, str) else "")
def test_traced_definitions(version: str, name: str, facts: dict[str, Any]) -> None:
    hp = xa.definitions(version).hyperparameters[name]
    for key, value in facts.items():
        got = getattr(hp, key)
        if isinstance(value, Interval) and not value.scale:
            got = Interval(got.min, got.min_closed, got.max, got.max_closed)
        assert got == value, (version, name, key)


def test_what_each_version_adds_and_removes() -> None:
    def names(version: str) -> set[str]:
        return set(xa.definitions(version).hyperparameters)

    assert names("0.90-2") - names("0.90-1") == {"num_parallel_tree"}
    assert names("1.0-1") - names("0.90-2") == {"monotone_constraints", "interaction_constraints",
                                               "save_model_on_termination"}
    assert names("1.2-1") ^ names("1.0-1") == {"silent", "_nfold", "aft_loss_distribution",
                                               "aft_loss_distribution_scale", "deterministic_histogram",
                                               "single_precision_histogram"}
    assert names("1.2-2") ^ names("1.2-1") == {"_nfold", "_kfold", "_num_cv_round"}
    assert names("1.5-1") - names("1.3-1") == {"use_dask_gpu_training"}
    assert names("1.5-1") - names("1.7-1") == {"single_precision_histogram"}
    assert names("3.0-5") == names("1.7-1")
    objectives = {v: set(xa.definitions(v).hyperparameters["objective"].values) for v in ("1.5-1", "1.7-1")}
    assert objectives["1.7-1"] - objectives["1.5-1"] == {"reg:absoluteerror"}
    assert xa.definitions("0.90-1").aliases == {}
    assert xa.definitions("0.90-2").aliases == {"learning_rate": "eta", "min_split_loss": "gamma",
                                                "reg_lambda": "lambda", "reg_alpha": "alpha"}


def test_metrics_and_directions_follow_the_containers_lists() -> None:
    defs = xa.definitions("1.7-1")
    maximize = {"accuracy", "auc", "aucpr", "balanced_accuracy", "f1", "f1_binary", "f1_macro", "map", "ndcg",
                "precision", "r2", "recall", "precision_macro", "precision_micro", "recall_macro", "recall_micro"}
    for metric in defs.metrics:
        expected = "Maximize" if metric.name.split(":", 1)[1] in maximize else "Minimize"
        assert metric.direction == expected, metric.name
    assert metric_direction("1.7-1", "validation:auc") == "Maximize"
    assert metric_direction("1.7-1", "train:rmse") == "Minimize"
    assert metric_direction("0.90-1", "validation:aucpr") == "Maximize"
    with pytest.raises(KeyError, match="validation:f1_binary"):
        metric_direction("0.90-1", "validation:f1_binary")  # added in 1.2-2


def test_every_image_version_of_the_registry_has_definitions() -> None:
    registry = ImageRegistry.default()
    assert set(registry.versions("xgboost")) == set(xa.versions())
    for version in xa.versions():
        assert xa.definitions(version).hyperparameters["num_round"].required
    assert xa.definitions("3.2-0").file == xa.definitions("3.0-5").file == "3.0-5"
    assert xa.definitions("1").file == xa.definitions("latest").file == "0.90-1"
    assert "0.72" in xa.definitions("1").basis
    with pytest.raises(KeyError, match="known: 1, latest"):
        xa.definitions("9.9-9")


def test_every_data_file_is_used_and_well_formed() -> None:
    files = {p.stem for p in DATA_DIR.glob("*.json")} - {"versions"}
    assert files == {xa.definitions(v).file for v in xa.versions()}
    for version in xa.versions():
        defs = xa.definitions(version)
        for rule in defs.rules:
            assert rule.names <= set(defs.hyperparameters), (version, rule)
            assert rule.basis in ("container", "xgboost")
        for hp in defs.hyperparameters.values():
            assert (hp.interval is not None) == (hp.type in ("integer", "continuous", "nested_list")), hp


# --- the checker -------------------------------------------------------------------------------------------------

def test_good_hyperparameters_pass_in_every_version() -> None:
    for version in xa.versions():
        assert check_hyperparameters(version, OK) == [], version
        assert check_hyperparameters(version, {**OK, "eta": "0.3", "max_depth": "6", "subsample": "0.8",
                                               "eval_metric": "rmse", "seed": "42"}) == [], version
    assert check_hyperparameters("1.7-1", {"num_round": "5", "objective": "multi:softprob", "num_class": "3",
                                           "eval_metric": "mlogloss,merror", "learning_rate": "0.1"}) == []
    assert check_hyperparameters("1.7-1", {"num_round": "5", "objective": "binary:logistic",
                                           "eval_metric": "auc,error@0.7", "tree_method": "hist",
                                           "monotone_constraints": "(1,-1,0)"}) == []
    assert check_hyperparameters("1.7-1", {"num_round": "5", "booster": "gblinear", "updater": "shotgun"}) == []


def test_every_problem_at_once_each_at_its_name() -> None:
    found = problems("1.7-1", num_rounds="10", eta="2", objective="multi:softmax", max_depth="deep",
                     tree_method="gpu", eval_metric="auc")
    assert set(found) == {"num_rounds", "num_round", "eta", "num_class", "max_depth", "tree_method", "eval_metric"}
    assert found["num_rounds"] == ("is not a hyperparameter of SageMaker XGBoost 1.7-1 (did you mean 'num_round'?);"
                                   " its container refuses unknown names")
    assert found["num_round"] == "is required by SageMaker XGBoost 1.7-1: an integer in [1, +inf)"
    assert found["eta"] == "2 is not in [0, 1]"
    assert found["max_depth"] == "'deep' is not an integer; it takes an integer in [0, +inf)"
    assert found["tree_method"] == "'gpu' is not one of: auto, exact, approx, hist, gpu_hist"
    assert found["num_class"].startswith("is required with objective multi:softmax or multi:softprob")
    assert found["eval_metric"].startswith("auc only fits classification and ranking objectives")


@pytest.mark.parametrize(("hyperparameters", "path", "text"), [
    ({"num_round": "0"}, "num_round", "0 is not in [1, +inf)"),
    ({"num_round": "2.5"}, "num_round", "'2.5' is not an integer"),
    ({"num_round": "20.0"}, "num_round", "is not an integer"),  # the container parses int("20.0"): refused
    ({"subsample": "0"}, "subsample", "0 is not in (0, 1]"),
    ({"tweedie_variance_power": "2"}, "tweedie_variance_power", "2 is not in (1, 2)"),
    ({"seed": "2147483647"}, "seed", "is not in (-2147483648, 2147483647)"),
    ({"eta": "fast"}, "eta", "'fast' is not a number"),
    ({"objective": "multi:softmax"}, "num_class", "is required with objective"),
    ({"num_class": "3"}, "num_class", "is only for objectives multi:softmax, multi:softprob"),
    ({"objective": "binary:logistic", "num_class": "3"}, "num_class", "is only for objectives"),
    ({"objective": "multi:softmax", "num_class": "1"}, "num_class", "1 is not in [2, +inf)"),
    ({"objective": "reg:squarederror", "eval_metric": "auc"}, "eval_metric", "auc only fits"),
    ({"eval_metric": "rmse"}, "eval_metric", "needs objective to be given too"),
    ({"objective": "reg:squarederror", "eval_metric": "aft-nloglik"}, "eval_metric", "only fits objective survival"),
    ({"objective": "reg:squarederror", "eval_metric": "rmse, mae"}, "eval_metric", "no spaces around the commas"),
    ({"objective": "reg:squarederror", "eval_metric": "rmse@0.5"}, "eval_metric", "also take a threshold"),
    ({"objective": "binary:logistic", "eval_metric": "error@high"}, "eval_metric", "'error@high' is not among"),
    ({"monotone_constraints": "(1,0)"}, "monotone_constraints", "needs tree_method exact or hist"),
    ({"tree_method": "hist", "monotone_constraints": "(2,0)"}, "monotone_constraints", "elements must be -1, 0, 1"),
    ({"tree_method": "hist", "monotone_constraints": "1,0"}, "monotone_constraints", ""),  # a tuple all the same
    ({"tree_method": "approx", "interaction_constraints": "[[0, 1]]"}, "interaction_constraints",
     "elements must be integers in [1, +inf), not [0]"),
    ({"tree_method": "hist", "interaction_constraints": "[1, 2]"}, "interaction_constraints", "not a list of lists"),
    ({"booster": "gblinear", "updater": "shotgun,coord_descent"}, "updater", "with booster gblinear"),
    ({"process_type": "update", "updater": "grow_colmaker"}, "updater", "takes only refresh and prune"),
    ({"updater": "grow_colmaker,grow_histmaker"}, "updater", "at most one tree grow plugin"),
    ({"updater": "grow_local_histmaker"}, "updater", "'grow_local_histmaker' is not among"),
    ({"save_model_on_termination": "yes"}, "save_model_on_termination", "is not one of: true, false"),
    ({"learning-rate": "0.1"}, "learning-rate", "did you mean 'learning_rate'?"),
])
def test_each_kind_of_problem(hyperparameters: dict[str, str], path: str, text: str) -> None:
    found = problems("1.7-1", **{"num_round": "10", **hyperparameters})
    if text == "":
        assert path not in found, found
        return
    assert path in found, found
    assert text in found[path]


def test_versions_differ_as_their_sources_do() -> None:
    absolute = {**OK, "objective": "reg:absoluteerror"}
    assert problems("1.7-1", **absolute) == {}
    assert "reg:absoluteerror' is not one of" in problems("1.5-1", **absolute)["objective"]
    assert problems("1.5-1", **OK, single_precision_histogram="true") == {}
    assert "single_precision_histogram" in problems("1.7-1", **OK, single_precision_histogram="true")
    assert problems("0.90-1", **OK, silent="1") == {}
    assert "did you mean 'silent'" not in problems("1.7-1", **OK, silent="1")["silent"]
    assert problems("0.90-2", **OK, learning_rate="0.1") == {}
    assert "learning_rate" in problems("0.90-1", **OK, learning_rate="0.1")
    assert "gpu_hist" in problems("1.0-1", **OK, tree_method="gpu_hist")["tree_method"]
    assert problems("1.2-1", **OK, tree_method="gpu_hist") == {}
    # eval_metric without objective: 1.2-1 and later look objective up and fail; 1.0-1 only does so for auc
    assert problems("1.0-1", num_round="5", eval_metric="rmse") == {}
    assert "eval_metric" in problems("1.2-1", num_round="5", eval_metric="rmse")


def test_aliases_are_checked_under_the_name_written() -> None:
    assert problems("1.7-1", **OK, learning_rate="3") == {"learning_rate": "3 is not in [0, 1]"}
    assert problems("1.7-1", **OK, reg_alpha="-1") == {"reg_alpha": "-1 is not in [0, +inf)"}


def test_a_rule_about_a_value_already_refused_says_nothing_more() -> None:
    assert set(problems("1.7-1", num_round="5", objective="multi:nonsense")) == {"objective"}
    assert set(problems("1.7-1", num_round="5", objective="reg:squarederror", eval_metric="aucc")) == {"eval_metric"}


def test_interval_contains_and_prints_like_the_container() -> None:
    closed_open = Interval(0, True, 1, False)
    assert 0 in closed_open and 0.5 in closed_open and 1 not in closed_open and -0.1 not in closed_open
    assert str(closed_open) == "[0, 1)"
    assert str(Interval(None, True, 3, True)) == "(-inf, 3]"
    assert float("nan") in Interval(0, True, 1, True)  # the container's comparisons let NaN through


# --- metric definitions ------------------------------------------------------------------------------------------

LINE = "[7]#011train-rmse:0.51234#011train-mae:0.4#011validation-rmse:0.61#011validation-mae:4.5e-01"


def test_metric_definitions_all_of_them_capture_their_own_value() -> None:
    definitions = metric_definitions("1.7-1")
    assert len(definitions) == 66
    by_name = {d["Name"]: re.compile(d["Regex"]) for d in definitions}
    captured = {name: m.group(1) for name, pattern in by_name.items() if (m := pattern.match(LINE))}
    assert captured == {"train:rmse": "0.51234", "train:mae": "0.4", "validation:rmse": "0.61",
                        "validation:mae": "4.5e-01"}
    assert all(len(d["Regex"]) <= 500 and len(d["Name"]) <= 255 for d in definitions)  # SageMaker's limits


def test_metric_definitions_for_a_job_follow_eval_metric_else_the_objectives_default() -> None:
    def names(version: str, **hps: str) -> list[str]:
        return [d["Name"] for d in metric_definitions(version, hps)]

    assert names("1.7-1", objective="reg:squarederror") == ["train:rmse", "validation:rmse"]
    assert names("1.7-1") == ["train:rmse", "validation:rmse"]
    assert names("1.7-1", objective="binary:logistic") == ["train:logloss", "validation:logloss"]
    assert names("1.0-1", objective="binary:logistic") == ["train:error", "validation:error"]  # before XGBoost 1.3
    assert names("1.7-1", objective="multi:softmax") == ["train:mlogloss", "validation:mlogloss"]
    assert names("1.7-1", objective="binary:logistic", eval_metric="auc,logloss") == [
        "train:auc", "train:logloss", "validation:auc", "validation:logloss"]
    assert names("1.7-1", objective="binary:logistic", eval_metric="error@0.7") == []  # no SageMaker metric


def test_the_data_files_are_json_with_sources() -> None:
    index = json.loads((DATA_DIR / "versions.json").read_text(encoding="utf-8"))["versions"]
    assert all(entry["basis"] for entry in index.values())
