"""Writes fixtures with protobuf's own json_format (run once, offline, with flyteidl 1.10.0's training_job_pb2).

flyteidl 1.10.0 still ships flyteidl.plugins.sagemaker (1.10.7, like the installed flyteidl, does not). Made with:
    pip download --no-deps "flyteidl==1.10.0" -d /tmp/f && unzip /tmp/f/*.whl 'flyteidl/*' -d /tmp/f/ext
    PYTHONPATH=/tmp/f/ext python tests/data/proto3/generate_fixtures.py tests/data/proto3
"""
import sys

from google.protobuf import json_format
from flyteidl.plugins.sagemaker import training_job_pb2 as pb

out = sys.argv[1]
try:  # protobuf >= 5 renamed the option
    json_format.MessageToJson(pb.TrainingJob(), always_print_fields_with_no_presence=True)
    DEFAULTS = {"always_print_fields_with_no_presence": True}
except TypeError:
    DEFAULTS = {"including_default_value_fields": True}
msgs = {
  "xgboost": pb.TrainingJob(
    algorithm_specification=pb.AlgorithmSpecification(
      input_mode=pb.InputMode.FILE, algorithm_name=pb.AlgorithmName.XGBOOST, algorithm_version="1.7-1",
      metric_definitions=[pb.MetricDefinition(name="validation:rmse", regex=r"validation-rmse:([0-9\.]+)")],
      input_content_type=pb.InputContentType.TEXT_CSV),
    training_job_resource_config=pb.TrainingJobResourceConfig(instance_count=2, instance_type="ml.m5.xlarge", volume_size_in_gb=25)),
  "custom_mpi": pb.TrainingJob(
    algorithm_specification=pb.AlgorithmSpecification(input_mode=pb.InputMode.PIPE, algorithm_name=pb.AlgorithmName.CUSTOM),
    training_job_resource_config=pb.TrainingJobResourceConfig(instance_count=2, instance_type="ml.p3.16xlarge", volume_size_in_gb=100, distributed_protocol=pb.DistributedProtocol.MPI)),
  "defaults": pb.TrainingJob(algorithm_specification=pb.AlgorithmSpecification(), training_job_resource_config=pb.TrainingJobResourceConfig(instance_type="ml.m5.large")),
}
for name, m in msgs.items():
    with open(f"{out}/{name}.omitted.json", "w") as f: f.write(json_format.MessageToJson(m) + "\n")
    with open(f"{out}/{name}.included.json", "w") as f: f.write(json_format.MessageToJson(m, **DEFAULTS) + "\n")
    with open(f"{out}/{name}.snake.json", "w") as f: f.write(json_format.MessageToJson(m, preserving_proto_field_name=True) + "\n")
    with open(f"{out}/{name}.numbers.json", "w") as f: f.write(json_format.MessageToJson(m, use_integers_for_enums=True, preserving_proto_field_name=True) + "\n")
