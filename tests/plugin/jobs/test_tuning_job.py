"""The TuningJobPlugin against a local SageMaker that runs every trial for real (built-in XGBoost on the small
example data, a few rounds): phases, outputs, adoption, abort, and a restarted engine continuing from the meta."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from handlers.errors import InputError
from handlers.status import Phase
from local_sagemaker import LocalSageMaker, LocalSettings
from plugin import registry
from plugin.config import Config
from plugin.jobs.tuning_job import TuningJobPlugin
from plugin.task import TUNING_TASK
from plugin_setup import config_data, make_config
from xgboost_hosts import REGRESSION

pytestmark = pytest.mark.timeout(300)

LOCAL_SETTINGS = LocalSettings(execution="run", stop_seconds=1)


@pytest.fixture(scope="module")
def config(server: LocalSageMaker) -> Config:
    return make_config(server.url)


@pytest.fixture(scope="module")
def plugin(config: Config) -> TuningJobPlugin:
    found = registry.get(TUNING_TASK, config=config)
    assert isinstance(found, TuningJobPlugin)
    return found


def task(total: int = 3, parallel: int = 2, rounds: int = 3, **changes: Any) -> dict[str, Any]:
    """A small tuning of the XGBoost example: `total` trials of `rounds` rounds, a fresh execution identity."""
    out: dict[str, Any] = {
        "task_type": TUNING_TASK,
        "hyperparameter_tuning_job": {
            "training_job": {"algorithm_specification": {"algorithm_name": "XGBOOST", "algorithm_version": "1.7-1"},
                             "training_job_resource_config": {"instance_type": "ml.m5.large"}},
            "max_number_of_training_jobs": total, "max_parallel_training_jobs": parallel},
        "tuning_config": {
            "hyperparameter_ranges": {"parameter_range_map": {
                "eta": {"continuous_parameter_range": {"min_value": 0.1, "max_value": 0.5}},
                "max_depth": {"integer_parameter_range": {"min_value": 2, "max_value": 5}}}},
            "tuning_strategy": "RANDOM",
            "tuning_objective": {"objective_type": "MINIMIZE", "metric_name": "validation:rmse"}},
        "inputs": {"train": str(REGRESSION["train"]), "validation": str(REGRESSION["validation"]),
                   "static_hyperparameters": {"num_round": rounds, "objective": "reg:squarederror"}},
        "execution": {"project": "tune", "domain": "test", "name": uuid.uuid4().hex[:10], "node_id": "n0"},
    }
    out.update(changes)
    return out


def wait(plugin: TuningJobPlugin, meta: Any, timeout: float = 240) -> list[Any]:
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        resource = plugin.get(meta)
        seen.append(resource)
        if resource.phase.is_terminal:
            return seen
        time.sleep(0.5)
    raise AssertionError(f"not done in {timeout} s: {seen[-1]}")


def test_a_tuning_job_runs_its_trials_and_reports_the_best(plugin: TuningJobPlugin, server: LocalSageMaker) -> None:
    meta = plugin.create(task())
    assert meta.job_name.startswith("tune-test-") and len(meta.job_name) <= 32
    seen = wait(plugin, meta)
    final = seen[-1]
    assert final.phase == Phase.SUCCEEDED, final.message
    assert {r.phase for r in seen[:-1]} <= {Phase.QUEUED, Phase.INITIALIZING, Phase.RUNNING}
    assert final.message.startswith("trials: 3 completed, 0 running, 0 failed, 0 stopped; best "), final.message
    out = final.outputs
    trials = out["trials"]
    assert len(trials) == 3 and {t["status"] for t in trials} == {"Completed"}
    assert all(set(t["hyperparameters"]) == {"eta", "max_depth"} for t in trials)
    best = min(trials, key=lambda t: t["objective"])
    assert out["best_training_job_name"] == best["name"]
    assert out["best_hyperparameters"] == best["hyperparameters"]
    assert out["objective"] == {"metric_name": "validation:rmse", "value": best["objective"]}
    assert out["model"].endswith(f"/{best['name']}/output/model.tar.gz")
    assert 0.1 <= float(best["hyperparameters"]["eta"]) <= 0.5
    # the model is really there
    described = plugin.client(meta.region, meta.endpoint_url).describe_training_job(best["name"])
    assert described["ModelArtifacts"]["S3ModelArtifacts"] == out["model"]


@dataclass(frozen=True)
class OneTrial:
    """A one-trial tuning job: its meta, the answer to creating it again at once, what creating another tuning under
    its name said, and what `get` saw until it ended."""

    meta: Any
    again: Any
    other_refused: str
    seen: list[Any]


@pytest.fixture(scope="module")
def one_trial(plugin: TuningJobPlugin) -> OneTrial:
    """One small tuning job read by the tests of adoption and of `status` (each only reads what it answered)."""
    first = task(total=1, parallel=1, rounds=2)
    meta = plugin.create(first)
    again = plugin.create(first)
    other = dict(first, tuning_config={**first["tuning_config"], "tuning_strategy": "BAYESIAN"})
    with pytest.raises(InputError) as refused:
        plugin.create(other)
    return OneTrial(meta, again, str(refused.value), wait(plugin, meta))


def test_create_again_adopts_the_same_job_and_refuses_another(one_trial: OneTrial) -> None:
    meta, again = one_trial.meta, one_trial.again
    assert again.adopted and again.job_name == meta.job_name and again.fingerprint == meta.fingerprint
    assert re.search("a different tuning job named", one_trial.other_refused), one_trial.other_refused
    assert one_trial.seen[-1].phase == Phase.SUCCEEDED


def test_delete_stops_the_job_and_its_trials_and_reports_aborted(plugin: TuningJobPlugin) -> None:
    meta = plugin.create(task(total=4, parallel=2, rounds=2000))
    deadline = time.monotonic() + 120
    while plugin.get(meta).phase != Phase.RUNNING:
        assert time.monotonic() < deadline
        time.sleep(0.3)
    plugin.delete(meta)
    plugin.delete(meta)  # idempotent
    final = wait(plugin, meta)[-1]
    assert final.phase == Phase.ABORTED, final.message
    client = plugin.client(meta.region, meta.endpoint_url)
    listed = client.call("sagemaker", "ListTrainingJobsForHyperParameterTuningJob",
                         HyperParameterTuningJobName=meta.job_name)["TrainingJobSummaries"]
    assert listed and all(s["TrainingJobStatus"] in ("Stopped", "Completed") for s in listed)
    # another plugin (another process's view) also says ABORTED: the tag, not memory
    assert TuningJobPlugin(plugin.config).get(meta).phase == Phase.ABORTED
    plugin.delete(meta)  # a finished job: nothing to do


def test_the_training_plugin_refuses_a_tuning_task_and_back(plugin: TuningJobPlugin, config: Config) -> None:
    training = registry.get("sagemaker_training_job_task", config=config)
    with pytest.raises(InputError, match="task_type"):
        training.create(task())
    example = yaml.safe_load((Path(__file__).resolve().parents[3] / "examples" / "xgboost.yaml").read_text())
    with pytest.raises(InputError, match="task_type"):
        plugin.create({**example, "inputs": {**example["inputs"], "train": "s3://b/t/", "validation": "s3://b/v/"}})


ENGINE = """
import json, sys, time
from plugin import registry, load_config
config = load_config(sys.argv[1])
p = registry.get("sagemaker_hyperparameter_tuning_job_task", config=config)
meta = p.metadata_type.decode(sys.stdin.buffer.read())
for _ in range(600):
    r = p.get(meta)
    if r.phase.is_terminal:
        break
    time.sleep(0.5)
print(json.dumps(r.as_dict()))
"""


def test_a_restarted_engine_continues_from_the_persisted_meta(plugin: TuningJobPlugin, server: LocalSageMaker,
                                                               tmp_path: Path) -> None:
    meta = plugin.create(task(total=2, parallel=2, rounds=2))
    blob = meta.encode()
    config_file = tmp_path / "config.yaml"
    config_file.write_text(yaml.safe_dump(config_data(server.url)))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SAGEMAKER_PLUGIN_", "AWS_"))}
    env.update(server.credentials.env())  # the key pair this local SageMaker accepts, as `local serve` prints it
    done = subprocess.run([sys.executable, "-c", ENGINE, str(config_file)], input=blob, capture_output=True,
                          env=env, timeout=280, check=False)
    assert done.returncode == 0, done.stderr.decode()
    resource = json.loads(done.stdout)
    assert resource["phase"] == "SUCCEEDED", resource
    assert len(resource["outputs"]["trials"]) == 2
    assert resource["outputs"]["best_training_job_name"].startswith(meta.job_name)


COUNTERS = {"Completed": 2, "InProgress": 1, "RetryableError": 0, "NonRetryableError": 1, "Stopped": 0}
BEST = {"TrainingJobName": "t-002-abc", "FinalHyperParameterTuningJobObjectiveMetric":
        {"MetricName": "validation:rmse", "Value": 0.5}}


@pytest.mark.parametrize("description, phase, says", [
    ({"HyperParameterTuningJobStatus": "InProgress", "TrainingJobStatusCounters": {}}, Phase.INITIALIZING,
     "trials: 0 completed, 0 running, 0 failed, 0 stopped"),
    ({"HyperParameterTuningJobStatus": "InProgress", "TrainingJobStatusCounters": COUNTERS, "BestTrainingJob": BEST},
     Phase.RUNNING, "trials: 2 completed, 1 running, 1 failed, 0 stopped; best so far t-002-abc (validation:rmse 0.5)"),
    ({"HyperParameterTuningJobStatus": "Stopping"}, Phase.RUNNING, "Stopping"),
    ({"HyperParameterTuningJobStatus": "Completed", "BestTrainingJob": BEST}, Phase.SUCCEEDED, "; best t-002-abc"),
    ({"HyperParameterTuningJobStatus": "Completed"}, Phase.FAILED, "without a best training job"),
    ({"HyperParameterTuningJobStatus": "Failed", "FailureReason": "All training jobs failed"}, Phase.FAILED,
     "All training jobs failed"),
    ({"HyperParameterTuningJobStatus": "Failed", "FailureReason": "InternalServerError"}, Phase.RETRYABLE_FAILED,
     "InternalServerError"),
    ({"HyperParameterTuningJobStatus": "Stopped"}, Phase.FAILED, "by someone else"),
])
def test_tuning_phases(description: dict[str, Any], phase: Phase, says: str) -> None:
    from handlers.status import tuning_phase_of

    status = tuning_phase_of(description)
    assert status.phase == phase and says in status.message
    if description["HyperParameterTuningJobStatus"] == "Stopped":
        assert tuning_phase_of(description, stopped_by_plugin=True).phase == Phase.ABORTED


def test_status_of_a_tuning_job_name(one_trial: OneTrial, server: LocalSageMaker, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    from plugin.cli import main

    meta = one_trial.meta
    assert one_trial.seen[-1].phase == Phase.SUCCEEDED
    config_file = tmp_path / "config.yaml"
    config_file.write_text(yaml.safe_dump(config_data(server.url)))
    capsys.readouterr()
    assert main(["status", meta.job_name, "--config", str(config_file)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{meta.job_name}: SUCCEEDED (trials: 1 completed")
    assert "hyperparameter tuning job" in out and re.search(rf"^\*\s+{meta.job_name}-001-", out, re.MULTILINE)
    assert main(["status", meta.job_name, "--config", str(config_file), "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["phase"] == "SUCCEEDED" and len(body["trials"]) == 1 and body["status"] == "Completed"
