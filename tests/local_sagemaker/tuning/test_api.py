"""The tuning-job operations as AWS answers them (errors, listing), on a local SageMaker that simulates its trials
(`execution: simulate`: trials play the timeline and its XGBoost metrics, so these tests take seconds)."""

from __future__ import annotations

from typing import Any

import pytest

from local_sagemaker import LocalSettings
from local_sagemaker.errors import BUILT_IN_METRICS
from local_sagemaker.testing import CUSTOM_IMAGE, XGBOOST_IMAGE, LocalClients, unique_name
from tuning_jobs import config, trials, wait

pytestmark = pytest.mark.timeout(120)

LOCAL_SETTINGS = LocalSettings(execution="simulate", time_scale=20)
XGB_RANGES = {"ContinuousParameterRanges": [{"Name": "eta", "MinValue": "0.1", "MaxValue": "0.5"}]}


def xgboost_definition(aws: LocalClients, **algorithm: Any) -> dict[str, Any]:
    channels = {"train": aws.put_data("api/train"), "validation": aws.put_data("api/validation")}
    request = aws.training_request("definition", image=XGBOOST_IMAGE, channels=channels)
    out = {key: request[key] for key in ("RoleArn", "AlgorithmSpecification", "InputDataConfig",
                                         "OutputDataConfig", "ResourceConfig", "StoppingCondition")}
    out["AlgorithmSpecification"].update(algorithm)
    out["StaticHyperParameters"] = {"num_round": "10", "objective": "reg:squarederror"}
    return out


def create(aws: LocalClients, name: str | None = None, definition: dict[str, Any] | None = None,
           **tuning: Any) -> str:
    name = name or unique_name("api")
    aws.sagemaker.create_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name, TrainingJobDefinition=definition or xgboost_definition(aws),
        HyperParameterTuningJobConfig=tuning or config("Random", 4, 2, "validation:rmse", **XGB_RANGES))
    return name


def refused(call: Any, **params: Any) -> tuple[str, str]:
    with pytest.raises(Exception) as raised:
        call(**params)
    error = getattr(raised.value, "response", {}).get("Error", {})
    return error.get("Code", repr(raised.value)), error.get("Message", "")


def test_a_simulated_tuning_job_completes_with_the_best_of_its_trials(aws: LocalClients) -> None:
    name = create(aws)
    first = aws.sagemaker.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
    assert first["HyperParameterTuningJobStatus"] == "InProgress"
    assert first["HyperParameterTuningJobArn"].endswith(f":hyper-parameter-tuning-job/{name}")
    done = wait(aws, name)
    assert done["HyperParameterTuningJobStatus"] == "Completed"
    assert done["TrainingJobStatusCounters"]["Completed"] == 4
    values = {s["TrainingJobName"]: s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"]
              for s in trials(aws, name)}
    assert done["BestTrainingJob"]["TrainingJobName"] == min(values, key=lambda trial: values[trial])
    # SageMaker adds the objective to the static hyperparameters, and so to every trial's
    assert done["TrainingJobDefinition"]["StaticHyperParameters"] == {
        "num_round": "10", "objective": "reg:squarederror", "_tuning_objective_metric": "validation:rmse"}
    # What AWS fills in (the SageMaker Python SDK's HyperparameterTuner.attach reads each unconditionally).
    tuning_config = done["HyperParameterTuningJobConfig"]
    assert tuning_config["TrainingJobEarlyStoppingType"] == "Off"
    assert tuning_config["ParameterRanges"]["CategoricalParameterRanges"] == []
    assert done["TrainingJobDefinition"]["OutputDataConfig"]["KmsKeyId"] == ""
    assert "validation:rmse" in [m["Name"] for m in done["TrainingJobDefinition"]["AlgorithmSpecification"][
        "MetricDefinitions"]]
    assert "EnableSageMakerMetricsTimeSeries" not in done["TrainingJobDefinition"]["AlgorithmSpecification"]


def test_missing_jobs_are_not_found(aws: LocalClients) -> None:
    sagemaker = aws.sagemaker
    for call in (sagemaker.describe_hyper_parameter_tuning_job, sagemaker.stop_hyper_parameter_tuning_job,
                 sagemaker.list_training_jobs_for_hyper_parameter_tuning_job):
        assert refused(call, HyperParameterTuningJobName="nothing-here") == \
            ("ValidationException", "Requested resource not found.")


def test_a_name_outside_the_service_models_pattern_is_refused_with_its_constraint(aws: LocalClients) -> None:
    code, message = refused(create, aws=aws, name="under_score")
    assert code == "ValidationException"
    assert "Value 'under_score' at 'hyperParameterTuningJobName' failed to satisfy constraint: Member must satisfy " \
        "regular expression pattern" in message


def test_a_taken_name_is_resource_in_use(aws: LocalClients) -> None:
    name = create(aws)
    code, message = refused(create, aws=aws, name=name)
    assert code == "ResourceInUse" and name in message


@pytest.mark.parametrize(("change", "words"), [
    (lambda c: c["ResourceLimits"].update(MaxParallelTrainingJobs=5), "MaxParallelTrainingJobs (5) must be less"),
    (lambda c: c.update(Strategy="Annealing"),
     "at 'hyperParameterTuningJobConfig.strategy' failed to satisfy constraint: Member must satisfy enum value set"),
    (lambda c: c["ResourceLimits"].pop("MaxNumberOfTrainingJobs"), "MaxNumberOfTrainingJobs is required"),
    (lambda c: c["ParameterRanges"]["ContinuousParameterRanges"][0].update(MinValue="0.6"), "must be less than or "
     "equal to its MaxValue"),
    (lambda c: c["ParameterRanges"]["ContinuousParameterRanges"][0].update(MinValue="0", ScalingType="Logarithmic"),
     "only for ranges that have only values greater than 0"),
    (lambda c: c["ParameterRanges"]["ContinuousParameterRanges"][0].update(MaxValue="2"), "eta"),
    (lambda c: c["HyperParameterTuningJobObjective"].update(MetricName="validation:nonsense"),
     "is not a metric of SageMaker XGBoost"),
    (lambda c: c.update(Strategy="Grid"), "Grid strategy searches categorical parameter ranges only"),
    (lambda c: c.update(Strategy="Hyperband", TrainingJobEarlyStoppingType="Auto"), "must be OFF"),
    (lambda c: c.update(Strategy="Hyperband", StrategyConfig={"HyperbandStrategyConfig": {"MinResource": 20}}),
     "MinResource (20) <= MaxResource (10)"),
])
def test_requests_sagemaker_refuses_are_refused_with_its_reason(aws: LocalClients, change: Any, words: str) -> None:
    tuning = config("Random", 4, 2, "validation:rmse", ContinuousParameterRanges=[
        {"Name": "eta", "MinValue": "0.1", "MaxValue": "0.5"}])
    change(tuning)
    code, message = refused(create, aws=aws, **tuning)
    assert code == "ValidationException" and words in message, message


def test_objectives_come_from_the_algorithm_or_the_metric_definitions(aws: LocalClients) -> None:
    code, message = refused(create, aws=aws, definition=xgboost_definition(
        aws, MetricDefinitions=[{"Name": "x", "Regex": "x=(.*)"}]), **config("Random", 2, 1, "validation:rmse",
                                                                           **XGB_RANGES))
    assert (code, message) == ("ValidationException", BUILT_IN_METRICS)
    custom = xgboost_definition(aws, TrainingImage=CUSTOM_IMAGE,
                                MetricDefinitions=[{"Name": "loss", "Regex": "l=(.*)"}])
    code, message = refused(create, aws=aws, definition=custom, **config("Random", 2, 1, "accuracy", **XGB_RANGES))
    assert code == "ValidationException" and "must be one of the MetricDefinitions" in message and "loss" in message


def test_what_every_trial_would_be_refused_for_is_refused_at_create(aws: LocalClients) -> None:
    definition = xgboost_definition(aws)
    definition["InputDataConfig"].append(definition["InputDataConfig"][0])
    code, message = refused(create, aws=aws, definition=definition)
    assert (code, message) == ("ValidationException", "Channel names must be unique; duplicated: train")


def test_listing_tuning_jobs_filters_sorts_and_pages(aws: LocalClients) -> None:
    prefix = unique_name("lst")
    names = [create(aws, f"{prefix}-{index}") for index in range(3)]
    listed: list[str] = []
    token = None
    while True:
        page = aws.sagemaker.list_hyper_parameter_tuning_jobs(
            NameContains=prefix, MaxResults=2, SortBy="Name", SortOrder="Descending", **({"NextToken": token} if token
                                                                                         else {}))
        listed += [job["HyperParameterTuningJobName"] for job in page["HyperParameterTuningJobSummaries"]]
        token = page.get("NextToken")
        if not token:
            break
    assert listed == sorted(names, reverse=True)
    summary = aws.sagemaker.list_hyper_parameter_tuning_jobs(NameContains=names[0])["HyperParameterTuningJobSummaries"]
    assert summary[0]["Strategy"] == "Random" and summary[0]["ResourceLimits"]["MaxParallelTrainingJobs"] == 2
    assert refused(aws.sagemaker.list_hyper_parameter_tuning_jobs, NextToken="garbage")[0] == "ValidationException"
    for name in names:
        wait(aws, name)
    assert {job["HyperParameterTuningJobName"] for job in aws.sagemaker.list_hyper_parameter_tuning_jobs(
        NameContains=prefix, StatusEquals="Completed")["HyperParameterTuningJobSummaries"]} == set(names)
