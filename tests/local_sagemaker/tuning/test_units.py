"""The tuning modules alone: ranges and their scales, the strategies, the median rule and Hyperband's rungs, and the
trials' requests a plan makes."""

from __future__ import annotations

import math
import random
import statistics
from types import SimpleNamespace

import pytest

from local_sagemaker.errors import ValidationException
from local_sagemaker.testing import XGBOOST_IMAGE
from local_sagemaker.tuning import early_stopping, strategies
from local_sagemaker.tuning.job import TuningJob
from local_sagemaker.tuning.plan import build
from local_sagemaker.tuning.ranges import RangeError, grid, parse


def one(kind: str, low: str, high: str, scaling: str | None = None) -> dict[str, list[dict[str, str]]]:
    item = {"Name": "p", "MinValue": low, "MaxValue": high}
    if scaling:
        item["ScalingType"] = scaling
    return {f"{kind}ParameterRanges": [item]}


def samples(kind: str, low: str, high: str, scaling: str | None, count: int = 2000) -> list[float]:
    (parsed,) = parse(one(kind, low, high, scaling))
    rng = random.Random(1)
    return [float(parsed.sample(rng)) for _ in range(count)]


def test_linear_logarithmic_and_reverse_logarithmic_scales_spread_samples_as_named() -> None:
    linear = samples("Continuous", "0.001", "1", "Linear")
    log = samples("Continuous", "0.001", "1", "Logarithmic")
    reverse = samples("Continuous", "0", "0.999", "ReverseLogarithmic")
    assert all(0.001 <= v <= 1 for v in linear + log) and all(0 <= v <= 0.999 for v in reverse)
    assert 0.4 < statistics.median(linear) < 0.6
    assert 0.02 < statistics.median(log) < 0.05  # the geometric middle of [0.001, 1] is ~0.032
    assert statistics.median(reverse) > 0.9  # dense near 1
    assert samples("Continuous", "0.001", "1", None) != linear  # Auto takes log for a range over 3 decades
    assert samples("Continuous", "1", "2", None) == samples("Continuous", "1", "2", "Linear")


def test_integer_ranges_give_integers_within_bounds_and_reach_both_ends() -> None:
    values = samples("Integer", "2", "6", "Linear", 500)
    assert set(values) == {2.0, 3.0, 4.0, 5.0, 6.0}
    assert set(samples("Integer", "1", "1000", "Logarithmic", 500)) <= set(map(float, range(1, 1001)))


@pytest.mark.parametrize(("ranges", "words"), [
    (one("Continuous", "0", "1", "Logarithmic"), "greater than 0"),
    (one("Continuous", "0.5", "1", "ReverseLogarithmic"), "0<=x<1.0"),
    (one("Integer", "1", "5", "ReverseLogarithmic"), "continuous"),
    (one("Integer", "1.5", "5"), "not an integer"),
    (one("Continuous", "abc", "5"), "not a number"),
    (one("Continuous", "3", "2"), "less than or equal"),
    ({"CategoricalParameterRanges": [{"Name": "p", "Values": ["a", "a"]}]}, "unique"),
    ({**one("Continuous", "1", "2"), "CategoricalParameterRanges": [{"Name": "p", "Values": ["a"]}]}, "repeated: p"),
])
def test_ranges_sagemaker_refuses(ranges: dict[str, object], words: str) -> None:
    with pytest.raises(RangeError, match=words.replace(".", r"\.").replace("(", r"\(")):
        parse(ranges)


def test_grid_is_every_combination_last_fastest() -> None:
    ranges = parse({"CategoricalParameterRanges": [{"Name": "a", "Values": ["1", "2"]},
                                                   {"Name": "b", "Values": ["x", "y", "z"]}]})
    assert [tuple(c.values()) for c in grid(ranges)] == [(a, b) for a in "12" for b in "xyz"]
    search = strategies.make("Grid", ranges, 0, True, 6)
    seen = []
    while (suggestion := search.suggest()) is not None:
        seen.append(suggestion.hyperparameters)
    assert seen == list(grid(ranges))


def test_bayesian_search_concentrates_near_the_optimum_after_its_random_start() -> None:
    ranges = parse(one("Continuous", "0", "1"))
    bayes = strategies.make("Bayesian", ranges, 5, True, 40)
    rand = strategies.make("Random", ranges, 5, True, 40)

    def run(search: strategies.Strategy) -> list[float]:
        found = []
        for _ in range(40):
            suggestion = search.suggest()
            assert suggestion is not None
            value = float(suggestion.hyperparameters["p"])
            found.append(abs(value - 0.73))
            search.observe(suggestion, abs(value - 0.73))
        return found

    bayes_errors, random_errors = run(bayes), run(rand)
    assert statistics.median(bayes_errors[20:]) < 0.7 * statistics.median(random_errors[20:])


def test_the_median_rule_stops_only_a_trial_behind_the_earlier_trials_median() -> None:
    earlier = [[5.0, 4.0, 3.0, 2.0], [6.0, 5.0, 4.0, 3.0], [9.0, 9.0]]
    assert early_stopping.median_rule([9.0, 8.0, 7.0], earlier, minimize=True)  # 7 > median(3, 4)
    assert not early_stopping.median_rule([9.0, 8.0, 2.5], earlier, minimize=True)  # its best beats the median
    assert not early_stopping.median_rule([9.0, 9.0], earlier, minimize=True)  # still warming up
    assert not early_stopping.median_rule([9.0, 8.0, 7.0], earlier[:1], minimize=True)  # too few peers
    assert early_stopping.median_rule([0.1, 0.1, 0.1], [[0.5, 0.6, 0.7]] * 2, minimize=False)


def test_hyperband_rungs_and_successive_halving() -> None:
    assert early_stopping.rungs(1, 27) == [1, 3, 9]
    assert early_stopping.rungs(2, 9) == [2, 6]
    checked: set[tuple[str, int]] = set()
    series = {"a": [1.0, 0.5, 0.4], "b": [2.0, 1.5, 1.4], "c": [3.0, 2.5, 2.4]}
    stops = {name: early_stopping.hyperband_stop(name, series, checked, 1, 9, True) for name in series}
    assert stops == {"a": False, "b": True, "c": True}  # only the best third goes on at rung 1 and 3
    assert early_stopping.hyperband_stop("a", {"a": [1.0] * 9}, set(), 1, 9, True)  # MaxResource reached


def test_a_plan_makes_each_trials_request_from_the_definition() -> None:
    definition = {
        "AlgorithmSpecification": {"TrainingImage": XGBOOST_IMAGE, "TrainingInputMode": "File"},
        "RoleArn": "arn:aws:iam::123456789012:role/r", "StaticHyperParameters": {"num_round": "5"},
        "OutputDataConfig": {"S3OutputPath": "s3://b/o"}, "StoppingCondition": {"MaxRuntimeInSeconds": 60},
        "ResourceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 5},
    }
    tuning = {"Strategy": "Random", "ResourceLimits": {"MaxNumberOfTrainingJobs": 2, "MaxParallelTrainingJobs": 1},
              "HyperParameterTuningJobObjective": {"Type": "Minimize", "MetricName": "validation:rmse"},
              "ParameterRanges": {"ContinuousParameterRanges": [{"Name": "eta", "MinValue": "0.1", "MaxValue": "0.2"}]}}
    plan = build({"HyperParameterTuningJobName": "t", "HyperParameterTuningJobConfig": tuning,
                  "TrainingJobDefinition": definition})
    request = plan.trial_request("t-001-0000abcd", {"eta": "0.15"})
    assert request["HyperParameters"] == {"num_round": "5", "eta": "0.15",
                                          "_tuning_objective_metric": "validation:rmse"}
    assert request["ResourceConfig"] == definition["ResourceConfig"] and request["TrainingJobName"] == "t-001-0000abcd"
    assert plan.max_jobs == 2 and plan.minimize and not math.isnan(plan.seed)
    with pytest.raises(ValidationException, match="cannot be both static and tunable"):
        build({"HyperParameterTuningJobName": "t", "HyperParameterTuningJobConfig": tuning, "TrainingJobDefinition": {
            **definition, "StaticHyperParameters": {"num_round": "5", "eta": "0.1"}}})


class FakeTrial:
    """What a tuning job reads of a training job: its status, times and final metrics."""

    def __init__(self, name: str, now_ms: int) -> None:
        self.training_job_status, self.arn, self.streams = "InProgress", f"arn:training-job/{name}", {}
        self.account_id, self.region_name, self.creation_ms = "123456789012", "us-east-1", now_ms
        self.training_start_ms = self.training_end_ms = self.failure_reason = None

    def describe(self) -> dict[str, object]:
        return {"FinalMetricDataList": [{"MetricName": "loss", "Value": 1.5}]}

    def changed(self) -> None:
        """Tells the records (the data folder's) that Describe changed: this engine keeps none."""


class FakeEngine:
    """The engine calls a tuning job makes, on a clock the test moves."""

    def __init__(self) -> None:
        self.now = 0

    def now_ms(self) -> int:
        return self.now

    def create_training_job(self, backend: SimpleNamespace, params: dict[str, object]) -> dict[str, object]:
        backend.training_jobs[params["TrainingJobName"]] = FakeTrial(str(params["TrainingJobName"]), self.now)
        backend.training_jobs[params["TrainingJobName"]].request = params
        return {}

    def stop_training_job(self, backend: SimpleNamespace, params: dict[str, object]) -> dict[str, object]:
        backend.training_jobs[params["TrainingJobName"]].training_job_status = "Stopped"
        return {}


def test_max_runtime_stops_the_running_trials_and_launches_no_more() -> None:
    definition = {"AlgorithmSpecification": {"TrainingImage": "img", "TrainingInputMode": "File",
                                             "MetricDefinitions": [{"Name": "loss", "Regex": "loss=(.*)"}]},
                  "RoleArn": "arn:aws:iam::123456789012:role/r", "OutputDataConfig": {"S3OutputPath": "s3://b/o"},
                  "StoppingCondition": {"MaxRuntimeInSeconds": 60},
                  "HyperParameterTuningResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1}}
    tuning = {"Strategy": "Random", "ParameterRanges": one("Continuous", "0", "1"),
              "ResourceLimits": {"MaxNumberOfTrainingJobs": 6, "MaxParallelTrainingJobs": 2,
                                 "MaxRuntimeInSeconds": 120},
              "HyperParameterTuningJobObjective": {"Type": "Minimize", "MetricName": "loss"}}
    plan = build({"HyperParameterTuningJobName": "t", "HyperParameterTuningJobConfig": tuning,
                  "TrainingJobDefinition": definition})
    engine, backend = FakeEngine(), SimpleNamespace(training_jobs={})
    job = TuningJob(plan, "arn:t", "123456789012", "us-east-1", strategies.make("Random", plan.ranges, 1, True, 6), 0)
    job.tick(engine, backend)
    assert [t.status for t in job.trials] == ["InProgress", "InProgress"]
    assert backend.training_jobs[job.trials[0].name].request["ResourceConfig"] == {  # from the tuning resources
        "InstanceType": "ml.m5.large", "InstanceCount": 1}
    engine.now = 119_999
    job.tick(engine, backend)
    assert len(job.trials) == 2 and job.status == "InProgress"
    engine.now = 120_000
    job.tick(engine, backend)
    assert [t.status for t in job.trials] == ["Stopped", "Stopped"]
    job.tick(engine, backend)
    assert job.status == "Completed" and len(job.trials) == 2
    assert job.describe(engine.now)["ConsumedResources"] == {"RuntimeInSeconds": 120}
