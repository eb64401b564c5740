"""Write handlers/data/xgboost/*.json from a git checkout of aws/sagemaker-xgboost-container (run by hand).

    python tools/xgboost_definitions.py /path/to/sagemaker-xgboost-container [--out handlers/data/xgboost]

For each release ref below, the ref's own `sagemaker_algorithm_toolkit` and
`algorithm_mode/hyperparameter_validation.py` and `metrics.py` are loaded in a child process (with stub parent
packages, so none of the container's runtime dependencies are needed) and their objects are read back as facts:
every hyperparameter's name, type, range or categories, required, tunable and recommended tuning range, the aliases,
and the metrics with their directions. The dependency checks are Python functions in the container; their lists
(updaters, tree methods, objectives) are read from the function bodies with `ast`, and the rules below say in the
project's rule vocabulary what each function checks. The output is data only: the checker
(handlers/xgboost_algorithm.py) never runs the container's code.
"""

from __future__ import annotations

import argparse
import ast
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

HPV = "src/sagemaker_xgboost_container/algorithm_mode/hyperparameter_validation.py"
FILES = (HPV, "src/sagemaker_xgboost_container/algorithm_mode/metrics.py",
         "src/sagemaker_xgboost_container/constants/xgb_constants.py",
         "src/sagemaker_algorithm_toolkit/hyperparameter_validation.py", "src/sagemaker_algorithm_toolkit/metrics.py")
# definitions file -> the container ref the SageMaker image of that version is built from
RELEASES = {"0.90-1": "0.90-1", "0.90-2": "0.90-2", "1.0-1": "1.0-1", "1.2-1": "1.2-1", "1.2-2": "1.2-2",
            "1.3-1": "1.3-1", "1.5-1": "1.5-1", "1.7-1": "1.7-1", "3.0-5": "v3.0-5"}
# SageMaker applies this regex for each metric of a built-in XGBoost job, train and validation channels alike (as
# DescribeTrainingJob shows); the container's own metrics.py registers `(\S+)` for validation metrics only.
SAGEMAKER_REGEX = r".*\[[0-9]+\].*#011{channel}-{metric}:([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?).*"
MULTI = ["multi:softmax", "multi:softprob"]
# XGBoost's own default eval_metric per objective (its objectives' DefaultEvalMetric); XGBoost 1.3 changed
# binary:logistic/logitraw to logloss and multi:* to mlogloss. "" is no objective: reg:squarederror's.
DEFAULT_METRICS = {"": "rmse", "reg:squarederror": "rmse", "reg:linear": "rmse", "reg:logistic": "rmse",
                   "reg:squaredlogerror": "rmsle", "reg:pseudohubererror": "mphe", "reg:absoluteerror": "mae",
                   "reg:gamma": "gamma-nloglik", "count:poisson": "poisson-nloglik", "survival:cox": "cox-nloglik",
                   "survival:aft": "aft-nloglik", "binary:hinge": "error", "rank:pairwise": "map", "rank:ndcg": "ndcg",
                   "rank:map": "map", "binary:logistic": "logloss", "binary:logitraw": "logloss",
                   "multi:softmax": "mlogloss", "multi:softprob": "mlogloss"}
BEFORE_1_3 = {"binary:logistic": "error", "binary:logitraw": "auc", "multi:softmax": "merror",
              "multi:softprob": "merror"}

INTROSPECT = r'''
import importlib.util, json, sys, types
src = sys.argv[1]
def load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
for package in ("sagemaker_algorithm_toolkit", "sagemaker_xgboost_container",
                "sagemaker_xgboost_container.constants", "sagemaker_xgboost_container.algorithm_mode"):
    sys.modules[package] = types.ModuleType(package)
    sys.modules[package].__path__ = []
toolkit = sys.modules["sagemaker_algorithm_toolkit"]
toolkit.exceptions = load("sagemaker_algorithm_toolkit.exceptions", f"{src}/sagemaker_algorithm_toolkit/exceptions.py")
hpv = toolkit.hyperparameter_validation = load("sagemaker_algorithm_toolkit.hyperparameter_validation",
                                               f"{src}/sagemaker_algorithm_toolkit/hyperparameter_validation.py")
toolkit.metrics = load("sagemaker_algorithm_toolkit.metrics", f"{src}/sagemaker_algorithm_toolkit/metrics.py")
consts = load("sagemaker_xgboost_container.constants.xgb_constants",
              f"{src}/sagemaker_xgboost_container/constants/xgb_constants.py")
metrics = load("sagemaker_xgboost_container.algorithm_mode.metrics",
               f"{src}/sagemaker_xgboost_container/algorithm_mode/metrics.py").initialize()
hps = load("sagemaker_xgboost_container.algorithm_mode.hyperparameter_validation",
           f"{src}/sagemaker_xgboost_container/algorithm_mode/hyperparameter_validation.py").initialize(metrics)
def interval(r):
    out = {}
    if r.min_open is not None or r.min_closed is not None:
        out.update(min=r.min_open if r.min_open is not None else r.min_closed, min_closed=r.min_open is None)
    if r.max_open is not None or r.max_closed is not None:
        out.update(max=r.max_open if r.max_open is not None else r.max_closed, max_closed=r.max_open is None)
    if getattr(r, "scale", None):
        out["scale"] = r.scale
    return out
types_ = {"IntegerHyperparameter": "integer", "ContinuousHyperparameter": "continuous",
          "CategoricalHyperparameter": "categorical", "CommaSeparatedListHyperparameter": "comma_separated_list",
          "TupleHyperparameter": "tuple", "NestedListHyperparameter": "nested_list"}
out = []
for name, hp in hps.hyperparameters.items():
    entry = {"name": name, "type": types_[type(hp).__name__], "required": bool(hp.required)}
    if isinstance(hp.range, hpv.Interval):
        entry["interval"] = interval(hp.range)
    else:
        entry["values"] = list(dict.fromkeys(hp.range if isinstance(hp.range, (list, tuple)) else hp.range.format()))
    entry["tunable"] = bool(hp.tunable)
    if hp.tunable_recommended_range is not None:
        entry["tunable_recommended_range"] = interval(hp.tunable_recommended_range)
    out.append(entry)
print(json.dumps({"hyperparameters": out, "aliases": dict(getattr(hps, "aliases", {})),
                  "metrics": [{"name": m.name, "regex": m.regex, "direction": m.direction}
                              for m in metrics.metrics.values()]}))
'''


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", f"--git-dir={repo}", *args], check=True, capture_output=True, text=True).stdout


def validator_lists(source: str) -> dict[str, dict[str, Any]]:
    """Per validator function: its named list literals, every constant list/tuple, and whether it mentions a string."""
    found: dict[str, dict[str, Any]] = {}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef) and node.name != "initialize":
            named: dict[str, list[Any]] = {}
            literals: list[list[Any]] = []
            strings: set[str] = set()
            for sub in ast.walk(node):
                if isinstance(sub, ast.Assign) and isinstance(sub.value, ast.List):
                    named[sub.targets[0].id] = [ast.literal_eval(e) for e in sub.value.elts]  # type: ignore[attr-defined]
                elif isinstance(sub, (ast.List, ast.Tuple)) and sub.elts and all(
                        isinstance(e, ast.Constant) for e in sub.elts):
                    literals.append([e.value for e in sub.elts])  # type: ignore[attr-defined]
                elif isinstance(sub, ast.Constant) and isinstance(sub.value, str):
                    strings.add(sub.value)
            found[node.name] = {"named": named, "literals": literals, "strings": strings}
    return found


def cond(name: str, **test: Any) -> dict[str, Any]:
    return {"name": name, **test}


def rules_of(source: str) -> list[dict[str, Any]]:
    """The container's dependency functions, as rules: `if` all hold, then every `then` must hold (else `at` fails)."""
    found = validator_lists(source)
    rules: list[dict[str, Any]] = []
    objective = found["objective_validator"]
    multi = next(lst for lst in objective["literals"] if all(str(v).startswith("multi:") for v in lst))
    rules.append({"if": [cond("objective", **{"in": multi})], "then": [cond("num_class", given=True)],
                  "at": "num_class", "basis": "container",
                  "message": f"is required with objective {' or '.join(multi)} (the number of classes, 2 or more)"})
    rules.append({"if": [cond("num_class", given=True)], "then": [cond("objective", **{"in": multi})],
                  "at": "num_class", "basis": "xgboost",
                  "note": "The container means to refuse this too ('Do not need to setup parameter num_class'), "
                          "but that check never runs; XGBoost then fails at training time.",
                  "message": f"is only for objectives {', '.join(multi)}: with another objective XGBoost fails at "
                             "training time (its predictions stop matching the labels)"})
    eval_dep = found["eval_metric_dep_validator"]
    prefixes = next(lst for lst in eval_dep["literals"] if all(str(v).endswith(":") for v in lst))
    if "objective = dependencies[\"objective\"]" in source or "objective = dependencies['objective']" in source:
        rules.append({"if": [cond("eval_metric", given=True)], "then": [cond("objective", given=True)],
                      "at": "eval_metric", "basis": "container",
                      "message": "needs objective to be given too: the container checks that the metric fits the "
                                 "objective, and fails without one"})
    rules.append({"if": [cond("eval_metric", has_item="auc")], "then": [cond("objective", prefix=prefixes)],
                  "at": "eval_metric", "basis": "container",
                  "message": "auc only fits classification and ranking objectives "
                             f"({', '.join(p + '*' for p in prefixes)})"})
    if "aft-nloglik" in eval_dep["strings"]:
        rules.append({"if": [cond("eval_metric", has_item="aft-nloglik")],
                      "then": [cond("objective", **{"in": ["survival:aft"]})], "at": "eval_metric",
                      "basis": "container", "message": "aft-nloglik only fits objective survival:aft"})
    for function, name in (("monotone_constraints_validator", "monotone_constraints"),
                           ("interaction_constraints_validator", "interaction_constraints")):
        if function in found:
            methods = next(lst for lst in found[function]["literals"] if lst != ["tree_method"])
            rules.append({"if": [cond(name, given=True)], "then": [cond("tree_method", **{"in": methods})],
                          "at": name, "basis": "container",
                          "message": f"needs tree_method {' or '.join(methods)}"})
    lists = found["updater_validator"]["named"]
    linear, update = lists["valid_linear_plugins"], lists["valid_process_update_plugins"]
    tree, build = lists["valid_tree_plugins"], list(dict.fromkeys(lists["valid_tree_build_plugins"]))
    rules += [
        {"if": [cond("updater", given=True), cond("booster", **{"in": ["gblinear"]})],
         "then": [cond("updater", items_in=linear, max_items=1)], "at": "updater", "basis": "container",
         "message": f"with booster gblinear, updater is one of {', '.join(linear)} (just one)"},
        {"if": [cond("updater", given=True), cond("booster", not_in=["gblinear"]),
                cond("process_type", **{"in": ["update"]})],
         "then": [cond("updater", items_in=update)], "at": "updater", "basis": "container",
         "message": f"with process_type update, updater takes only {' and '.join(update)}"},
        {"if": [cond("updater", given=True), cond("booster", not_in=["gblinear"]),
                cond("process_type", not_in=["update"])],
         "then": [cond("updater", items_in=tree, at_most_one_of=build)], "at": "updater", "basis": "container",
         "message": f"tree updaters are {', '.join(tree)}, with at most one tree grow plugin among "
                    f"{', '.join(build)}"},
    ]
    return rules


def definitions(repo: Path, ref: str, version: str) -> dict[str, Any]:
    commit = git(repo, "rev-parse", f"{ref}^{{commit}}").strip()
    with tempfile.TemporaryDirectory() as folder:
        archive = Path(folder) / "src.tar"
        archive.write_bytes(subprocess.run(["git", f"--git-dir={repo}", "archive", commit, "src"], check=True,
                                           capture_output=True).stdout)
        with tarfile.open(archive) as tar:
            tar.extractall(folder, filter="data")
        facts = json.loads(subprocess.run([sys.executable, "-c", INTROSPECT, f"{folder}/src"], check=True,
                                          capture_output=True, text=True).stdout)
        source = (Path(folder) / HPV).read_text(encoding="utf-8")
    hyperparameters = facts["hyperparameters"]
    for hp in hyperparameters:
        if hp["name"] == "eval_metric":
            threshold = next(lst for lst in validator_lists(source)["eval_metric_range_validator"]["literals"])
            hp["threshold_metrics"] = threshold  # `<metric>@<number>` is accepted for these
    metrics = []
    for metric in facts["metrics"]:
        name = metric["name"].split(":", 1)[1]
        for channel in ("train", "validation"):
            metrics.append({"name": f"{channel}:{name}", "direction": metric["direction"],
                            "regex": SAGEMAKER_REGEX.format(channel=channel, metric=name)})
    return {
        "source": {"repository": "aws/sagemaker-xgboost-container", "ref": ref, "commit": commit,
                   "files": list(FILES)},
        "hyperparameters": hyperparameters,
        "aliases": facts["aliases"],
        "rules": rules_of(source),
        "metrics": sorted(metrics, key=lambda m: (m["name"].split(":")[0] != "train", m["name"])),
        "default_metrics": _default_metrics(version, hyperparameters),
        "container_metric_regex": facts["metrics"][0]["regex"].replace(facts["metrics"][0]["name"].split(":")[1],
                                                                       "{metric}"),
    }


def _default_metrics(version: str, hyperparameters: list[dict[str, Any]]) -> dict[str, str]:
    objectives = next(hp["values"] for hp in hyperparameters if hp["name"] == "objective")
    old = tuple(int(n) for n in version.split("-")[0].split(".")) < (1, 3)
    chosen = {**DEFAULT_METRICS, **(BEFORE_1_3 if old else {})}
    return {objective: metric for objective, metric in chosen.items() if objective in ("", *objectives)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("repository", type=Path, help="a clone (or bare git directory) of the container's repository")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "handlers/data/xgboost")
    args = parser.parse_args()
    repo = args.repository if (args.repository / "HEAD").is_file() else args.repository / ".git"
    args.out.mkdir(parents=True, exist_ok=True)
    for version, ref in RELEASES.items():
        doc = {"about": f"SageMaker built-in XGBoost {version}: the hyperparameters its container accepts and the "
                        "metrics SageMaker reads from its logs. Generated by tools/xgboost_definitions.py from the "
                        "container's source at the commit below; edit by regenerating.",
               **definitions(repo, ref, version)}
        (args.out / f"{version}.json").write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
        print(f"{version}: {ref} {doc['source']['commit'][:10]}, {len(doc['hyperparameters'])} hyperparameters, "
              f"{len(doc['rules'])} rules, {len(doc['metrics'])} metrics")
    return 0


if __name__ == "__main__":
    sys.exit(main())
