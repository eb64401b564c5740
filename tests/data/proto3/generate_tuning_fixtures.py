"""Writes the tuning fixtures with protobuf's own json_format (run once, offline).

flyteidl 1.10.0 still ships flyteidl.plugins.sagemaker (1.10.7, like the installed flyteidl, does not). Made with:
    pip download --no-deps "flyteidl==1.10.0" -d /tmp/f && unzip /tmp/f/*.whl 'flyteidl/*' -d /tmp/f/ext
    PYTHONPATH=/tmp/f/ext python tests/data/proto3/generate_tuning_fixtures.py tests/data/proto3
"""
import sys

from flyteidl.plugins.sagemaker import hyperparameter_tuning_job_pb2 as ht
from flyteidl.plugins.sagemaker import parameter_ranges_pb2 as pr
from flyteidl.plugins.sagemaker import training_job_pb2 as tj
from google.protobuf import json_format

out = sys.argv[1]
try:  # protobuf >= 5 renamed the option
    json_format.MessageToJson(ht.HyperparameterTuningJob(), always_print_fields_with_no_presence=True)
    DEFAULTS = {"always_print_fields_with_no_presence": True}
except TypeError:
    DEFAULTS = {"including_default_value_fields": True}
S = pr.HyperparameterScalingType
msgs = {
    "tuning_job": ht.HyperparameterTuningJob(
        training_job=tj.TrainingJob(
            algorithm_specification=tj.AlgorithmSpecification(
                algorithm_name=tj.AlgorithmName.XGBOOST, algorithm_version="1.7-1"),
            training_job_resource_config=tj.TrainingJobResourceConfig(instance_count=1, instance_type="ml.m5.large",
                                                                      volume_size_in_gb=10)),
        max_number_of_training_jobs=12, max_parallel_training_jobs=3),
    "tuning_config": ht.HyperparameterTuningJobConfig(
        hyperparameter_ranges=pr.ParameterRanges(parameter_range_map={
            "eta": pr.ParameterRangeOneOf(continuous_parameter_range=pr.ContinuousParameterRange(
                min_value=0.05, max_value=0.5, scaling_type=S.LOGARITHMIC)),
            "max_depth": pr.ParameterRangeOneOf(integer_parameter_range=pr.IntegerParameterRange(
                min_value=2, max_value=8, scaling_type=S.LINEAR)),
            "min_child_weight": pr.ParameterRangeOneOf(continuous_parameter_range=pr.ContinuousParameterRange(
                min_value=1, max_value=6)),
            "booster": pr.ParameterRangeOneOf(categorical_parameter_range=pr.CategoricalParameterRange(
                values=["gbtree", "dart"])),
        }),
        tuning_strategy=ht.HyperparameterTuningStrategy.RANDOM,
        tuning_objective=ht.HyperparameterTuningObjective(
            objective_type=ht.HyperparameterTuningObjectiveType.MINIMIZE, metric_name="validation:rmse"),
        training_job_early_stopping_type=ht.TrainingJobEarlyStoppingType.AUTO),
    "tuning_config_defaults": ht.HyperparameterTuningJobConfig(
        tuning_objective=ht.HyperparameterTuningObjective(metric_name="validation:rmse")),
}
for name, m in msgs.items():
    with open(f"{out}/{name}.omitted.json", "w") as f:
        f.write(json_format.MessageToJson(m) + "\n")
    with open(f"{out}/{name}.included.json", "w") as f:
        f.write(json_format.MessageToJson(m, **DEFAULTS) + "\n")
    with open(f"{out}/{name}.snake.json", "w") as f:
        f.write(json_format.MessageToJson(m, preserving_proto_field_name=True) + "\n")
    with open(f"{out}/{name}.numbers.json", "w") as f:
        f.write(json_format.MessageToJson(m, use_integers_for_enums=True, preserving_proto_field_name=True) + "\n")
