"""Hyperparameter tuning jobs on a local SageMaker that runs its trials for real, driven with plain boto3: the
built-in XGBoost tuned on small data, and a quick script whose objective is a known function of its hyperparameters.
"""

from __future__ import annotations

import math
import re
import time
from pathlib import Path

import pytest

from local_sagemaker import LocalSettings
from local_sagemaker.testing import XGBOOST_IMAGE, LocalClients, unique_name
from tuning_jobs import config, definition, describe, processes_running, trials, wait, write_script
from xgboost_hosts import REGRESSION

pytestmark = pytest.mark.timeout(240)

LOCAL_SETTINGS = LocalSettings(execution="run", stop_seconds=1)
TRIAL_NAME = re.compile(r"^(?P<tuning>[a-z0-9-]+)-(?P<index>\d{3})-[0-9a-f]{8}$")


@pytest.fixture(scope="module")
def code(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_script(tmp_path_factory.mktemp("tuning-code"))


def test_xgboost_tuning_finds_the_best_trial_within_the_limits(aws: LocalClients) -> None:
    channels = {channel: aws.put_data(f"tuning/{channel}", next(folder.iterdir()).read_bytes())
                for channel, folder in REGRESSION.items()}
    request = aws.training_request("definition", image=XGBOOST_IMAGE, channels=channels)
    job_definition = {key: request[key] for key in ("RoleArn", "AlgorithmSpecification", "InputDataConfig",
                                                    "OutputDataConfig", "ResourceConfig", "StoppingCondition")}
    job_definition["StaticHyperParameters"] = {"num_round": "8", "objective": "reg:squarederror"}
    ranges = {"ContinuousParameterRanges": [{"Name": "eta", "MinValue": "0.05", "MaxValue": "0.5",
                                             "ScalingType": "Logarithmic"}],
              "IntegerParameterRanges": [{"Name": "max_depth", "MinValue": "2", "MaxValue": "6"}]}
    name = unique_name("xgbtune")
    aws.sagemaker.create_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name, TrainingJobDefinition=job_definition,
        HyperParameterTuningJobConfig=config("Bayesian", 4, 2, "validation:rmse", **ranges))
    seen_running: list[int] = []
    done = wait(aws, name, timeout=180,
                watch=lambda job: seen_running.append(job["TrainingJobStatusCounters"]["InProgress"]))
    assert done["HyperParameterTuningJobStatus"] == "Completed", done.get("FailureReason")
    assert max(seen_running) <= 2 and len(seen_running) > 1
    reasons = [s.get("FailureReason") for s in trials(aws, name) if s["TrainingJobStatus"] != "Completed"]
    assert reasons == []
    assert done["TrainingJobStatusCounters"] == {"Completed": 4, "InProgress": 0, "RetryableError": 0,
                                                 "NonRetryableError": 0, "Stopped": 0}
    assert done["ObjectiveStatusCounters"] == {"Succeeded": 4, "Pending": 0, "Failed": 0}
    assert done["HyperParameterTuningEndTime"] >= done["CreationTime"]

    summaries = trials(aws, name)
    assert len(summaries) == 4
    values = {s["TrainingJobName"]: s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] for s in summaries}
    best = done["BestTrainingJob"]
    assert best["TrainingJobName"] == min(values, key=lambda trial: values[trial])
    assert best["FinalHyperParameterTuningJobObjectiveMetric"]["MetricName"] == "validation:rmse"
    assert sorted(int(TRIAL_NAME.match(trial).group("index")) for trial in values) == [1, 2, 3, 4]  # type: ignore[union-attr]
    for summary in summaries:
        tuned = summary["TunedHyperParameters"]
        assert 0.05 <= float(tuned["eta"]) <= 0.5 and tuned["max_depth"] in {"2", "3", "4", "5", "6"}
        assert TRIAL_NAME.match(summary["TrainingJobName"]).group("tuning") == name  # type: ignore[union-attr]
        trial = aws.sagemaker.describe_training_job(TrainingJobName=summary["TrainingJobName"])
        assert trial["TuningJobArn"] == done["HyperParameterTuningJobArn"]
        assert trial["HyperParameters"]["_tuning_objective_metric"] == "validation:rmse"
        assert trial["HyperParameters"]["eta"] == tuned["eta"] and trial["HyperParameters"]["num_round"] == "8"
        final = {m["MetricName"]: m["Value"] for m in trial["FinalMetricDataList"]}
        assert math.isclose(final["validation:rmse"], values[summary["TrainingJobName"]])
        assert trial["ModelArtifacts"]["S3ModelArtifacts"].endswith(f"{summary['TrainingJobName']}/output/model.tar.gz")


@pytest.mark.parametrize("strategy", ["Random", "Bayesian"])
def test_random_and_bayesian_search_within_the_ranges_and_their_scales(aws: LocalClients, code: Path,
                                                                       strategy: str) -> None:
    name = unique_name(strategy.lower())
    ranges = {"ContinuousParameterRanges": [{"Name": "lr", "MinValue": "0.001", "MaxValue": "1",
                                             "ScalingType": "Logarithmic"}],
              "IntegerParameterRanges": [{"Name": "depth", "MinValue": "1", "MaxValue": "8", "ScalingType": "Linear"}],
              "CategoricalParameterRanges": [{"Name": "kind", "Values": ["good", "fair"]}]}
    aws.sagemaker.create_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name, TrainingJobDefinition=definition(aws, code),
        HyperParameterTuningJobConfig={**config(strategy, 6, 3, **ranges), "RandomSeed": 7})
    done = wait(aws, name)
    assert done["HyperParameterTuningJobStatus"] == "Completed", done.get("FailureReason")
    assert done["TrainingJobStatusCounters"]["Completed"] == 6
    summaries = trials(aws, name)
    for summary in summaries:
        tuned = summary["TunedHyperParameters"]
        assert 0.001 <= float(tuned["lr"]) <= 1 and 1 <= int(tuned["depth"]) <= 8 and tuned["kind"] in {"good", "fair"}
        expected = (float(tuned["lr"]) - 0.3) ** 2 + {"good": 0.0, "fair": 0.5}[tuned["kind"]] \
            + 0.01 * abs(int(tuned["depth"]) - 4) + 1 / 4
        assert math.isclose(summary["FinalHyperParameterTuningJobObjectiveMetric"]["Value"], expected, abs_tol=1e-5)
    best = min(summaries, key=lambda s: s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"])
    assert done["BestTrainingJob"]["TrainingJobName"] == best["TrainingJobName"]
    trial = aws.sagemaker.describe_training_job(TrainingJobName=best["TrainingJobName"])
    assert trial["HyperParameters"]["_tuning_objective_metric"] == "loss"  # custom images' trials get it too


def test_grid_runs_every_categorical_combination_once_and_lists_them_in_pages(aws: LocalClients, code: Path) -> None:
    name = unique_name("grid")
    ranges = {"CategoricalParameterRanges": [{"Name": "kind", "Values": ["good", "fair", "bad"]},
                                             {"Name": "depth", "Values": ["2", "4"]}]}
    aws.sagemaker.create_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name, TrainingJobDefinition=definition(aws, code),
        HyperParameterTuningJobConfig=config("Grid", None, 3, **ranges))
    done = wait(aws, name)
    assert done["HyperParameterTuningJobStatus"] == "Completed"
    assert done["TrainingJobStatusCounters"]["Completed"] == 6
    assert done["BestTrainingJob"]["TunedHyperParameters"] == {"kind": "good", "depth": "4"}

    paged = trials(aws, name, MaxResults=4)
    assert sorted((s["TunedHyperParameters"]["kind"], s["TunedHyperParameters"]["depth"]) for s in paged) == \
        sorted((k, d) for k in ("good", "fair", "bad") for d in ("2", "4"))
    assert [s["TrainingJobName"] for s in paged] == sorted(s["TrainingJobName"] for s in paged)  # Name, Ascending
    by_value = trials(aws, name, SortBy="FinalObjectiveMetricValue", SortOrder="Descending", MaxResults=5)
    values = [s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] for s in by_value]
    assert values == sorted(values, reverse=True) and len(values) == 6
    assert [s["TunedHyperParameters"]["kind"] for s in by_value[:2]] == ["bad", "bad"]
    assert trials(aws, name, StatusEquals="Failed") == []
    listed = aws.sagemaker.list_hyper_parameter_tuning_jobs(NameContains=name)["HyperParameterTuningJobSummaries"]
    assert [(j["HyperParameterTuningJobName"], j["Strategy"], j["HyperParameterTuningJobStatus"]) for j in listed] == \
        [(name, "Grid", "Completed")]


def test_early_stopping_stops_a_trial_that_lags_the_median(aws: LocalClients, code: Path) -> None:
    name = unique_name("early")
    # Grid keeps the order: two good trials first, then one whose loss is far above theirs at every round.
    ranges = {"CategoricalParameterRanges": [{"Name": "kind", "Values": ["good", "fair", "bad"]}]}
    tuning = {**config("Grid", None, 1, **ranges), "TrainingJobEarlyStoppingType": "Auto"}
    aws.sagemaker.create_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name, HyperParameterTuningJobConfig=tuning,
        TrainingJobDefinition=definition(aws, code, {"rounds": "30", "pause": "0.1"}))
    done = wait(aws, name, timeout=120)
    assert done["HyperParameterTuningJobStatus"] == "Completed"
    statuses = {s["TunedHyperParameters"]["kind"]: s["TrainingJobStatus"] for s in trials(aws, name)}
    assert statuses == {"good": "Completed", "fair": "Completed", "bad": "Stopped"}
    assert done["TrainingJobStatusCounters"]["Stopped"] == 1
    assert done["BestTrainingJob"]["TunedHyperParameters"] == {"kind": "good"}
    stopped = next(s for s in trials(aws, name) if s["TrainingJobStatus"] == "Stopped")
    lines = [line for stream in aws.log_messages(stopped["TrainingJobName"]).values() for line in stream]
    assert sum(1 for line in lines if line.startswith("round=")) < 30


def test_a_met_target_objective_ends_the_job_before_its_last_trial(aws: LocalClients, code: Path) -> None:
    name = unique_name("target")
    ranges = {"CategoricalParameterRanges": [{"Name": "kind", "Values": ["fair", "good", "bad", "bad2"]}]}
    # Grid order: fair (0.5 + 0.25 + 0.01), then good (0.26) meets the target; nothing after it is launched.
    tuning = {**config("Grid", None, 1, **ranges), "TuningJobCompletionCriteria": {"TargetObjectiveMetricValue": 0.3}}
    aws.sagemaker.create_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name, HyperParameterTuningJobConfig=tuning,
        TrainingJobDefinition=definition(aws, code))
    done = wait(aws, name)
    assert done["HyperParameterTuningJobStatus"] == "Completed"
    assert [s["TunedHyperParameters"]["kind"] for s in trials(aws, name, SortBy="CreationTime")] == ["fair", "good"]
    assert done["BestTrainingJob"]["TunedHyperParameters"] == {"kind": "good"}
    assert done["ConsumedResources"]["RuntimeInSeconds"] >= 0


def test_hyperband_stops_trials_at_rungs_and_at_max_resource(aws: LocalClients, code: Path) -> None:
    name = unique_name("hyperband")
    ranges = {"CategoricalParameterRanges": [{"Name": "kind", "Values": ["good", "bad", "fair"]}],
              "ContinuousParameterRanges": [{"Name": "lr", "MinValue": "0.2", "MaxValue": "0.4"}]}
    tuning = {**config("Hyperband", 6, 2, **ranges), "RandomSeed": 3,
              "StrategyConfig": {"HyperbandStrategyConfig": {"MinResource": 2, "MaxResource": 9}}}
    aws.sagemaker.create_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name, HyperParameterTuningJobConfig=tuning,
        # 0.2 s a round: a trial stopped at MaxResource (9) is 6 s short of its 40 rounds, on a loaded machine too
        TrainingJobDefinition=definition(aws, code, {"rounds": "40", "pause": "0.2"}))
    done = wait(aws, name, timeout=180)
    assert done["HyperParameterTuningJobStatus"] == "Completed"
    summaries = trials(aws, name)
    assert len(summaries) == 6 and all(s["TrainingJobStatus"] == "Stopped" for s in summaries)  # none runs 40
    rounds = {s["TrainingJobName"]: sum(1 for lines in aws.log_messages(s["TrainingJobName"]).values()
                                        for line in lines if line.startswith("round=")) for s in summaries}
    assert max(rounds.values()) < 40
    assert any(count < 9 for count in rounds.values())  # some trial was cut at a rung before MaxResource


def test_stop_stops_every_running_trial_and_leaves_no_process(aws: LocalClients, code: Path) -> None:
    name = unique_name("stopme")
    ranges = {"ContinuousParameterRanges": [{"Name": "lr", "MinValue": "0.1", "MaxValue": "0.5"}]}
    aws.sagemaker.create_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name, HyperParameterTuningJobConfig=config("Random", 5, 2, **ranges),
        TrainingJobDefinition=definition(aws, code, {"rounds": "600", "pause": "0.1", "marker": name}))
    deadline = time.monotonic() + 60
    while describe(aws, name)["TrainingJobStatusCounters"]["InProgress"] < 2 or len(processes_running(name)) < 2:
        assert time.monotonic() < deadline, "two trials never ran"
        time.sleep(0.1)
    aws.sagemaker.stop_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
    assert describe(aws, name)["HyperParameterTuningJobStatus"] in ("Stopping", "Stopped")
    done = wait(aws, name, timeout=60)
    assert done["HyperParameterTuningJobStatus"] == "Stopped"
    assert done["TrainingJobStatusCounters"]["Stopped"] == 2 and done["TrainingJobStatusCounters"]["InProgress"] == 0
    assert len(trials(aws, name)) == 2  # nothing launched after the stop
    assert processes_running(name) == []
    with pytest.raises(aws.sagemaker.exceptions.ClientError) as error:
        aws.sagemaker.stop_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
    assert error.value.response["Error"]["Code"] == "ValidationException"
