"""The CreateTrainingJob request, built from a flat, resolved JobSpec (docs/task-file.md: what each key becomes).

The spec is what SageMaker needs and nothing of how the engine said it; turning a task into a spec is the plugin's
job. The request carries a fingerprint tag so that a job found under the same name can be recognised as this
task's own (a create retried after a lost response, a restarted engine).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

TAG_PREFIX = "sagemaker-plugin:"
FINGERPRINT_TAG = TAG_PREFIX + "fingerprint"
STOPPED_BY_TAG = TAG_PREFIX + "stopped-by"
EXECUTION_TAGS = ("project", "domain", "name", "node_id", "retry_attempt")


@dataclass(frozen=True)
class JobSpec:
    name: str
    image: str
    instance_type: str
    role_arn: str
    output_path: str
    max_runtime_seconds: int
    input_mode: str = "File"
    instance_count: int = 1
    volume_size_in_gb: int = 30
    metric_definitions: tuple[tuple[str, str], ...] = ()
    entrypoint: tuple[str, ...] | None = None
    arguments: tuple[str, ...] | None = None
    environment: Mapping[str, str] = field(default_factory=dict)
    hyperparameters: Mapping[str, str] = field(default_factory=dict)
    channels: tuple[tuple[str, str], ...] = ()
    content_type: str = "text/csv"
    output_kms_key_id: str | None = None
    volume_kms_key_id: str | None = None
    spot_max_wait_seconds: int | None = None
    checkpoint_s3_uri: str | None = None
    subnets: tuple[str, ...] = ()
    security_group_ids: tuple[str, ...] = ()
    enable_network_isolation: bool | None = None
    enable_inter_container_traffic_encryption: bool | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    execution: Mapping[str, str] | None = None


def build_request(spec: JobSpec) -> dict[str, Any]:
    """The request, in the order SageMaker's documentation lists the fields; empty optional parts omitted."""
    algorithm: dict[str, Any] = {"TrainingImage": spec.image, "TrainingInputMode": spec.input_mode}
    if spec.metric_definitions:
        algorithm["MetricDefinitions"] = [{"Name": n, "Regex": r} for n, r in spec.metric_definitions]
    if spec.entrypoint:
        algorithm["ContainerEntrypoint"] = list(spec.entrypoint)
    if spec.arguments:
        algorithm["ContainerArguments"] = list(spec.arguments)

    request: dict[str, Any] = {"TrainingJobName": spec.name, "AlgorithmSpecification": algorithm,
                               "RoleArn": spec.role_arn}
    if spec.hyperparameters:
        request["HyperParameters"] = dict(spec.hyperparameters)
    if spec.channels:
        request["InputDataConfig"] = [_channel(name, uri, spec) for name, uri in spec.channels]
    output: dict[str, Any] = {"S3OutputPath": spec.output_path.rstrip("/")}
    if spec.output_kms_key_id:
        output["KmsKeyId"] = spec.output_kms_key_id
    request["OutputDataConfig"] = output
    resources: dict[str, Any] = {"InstanceType": spec.instance_type, "InstanceCount": spec.instance_count,
                                 "VolumeSizeInGB": spec.volume_size_in_gb}
    if spec.volume_kms_key_id:
        resources["VolumeKmsKeyId"] = spec.volume_kms_key_id
    request["ResourceConfig"] = resources
    stopping: dict[str, Any] = {"MaxRuntimeInSeconds": spec.max_runtime_seconds}
    if spec.spot_max_wait_seconds is not None:
        stopping["MaxWaitTimeInSeconds"] = spec.spot_max_wait_seconds
    request["StoppingCondition"] = stopping
    if spec.subnets or spec.security_group_ids:
        request["VpcConfig"] = {"SecurityGroupIds": list(spec.security_group_ids), "Subnets": list(spec.subnets)}
    if spec.enable_network_isolation is not None:
        request["EnableNetworkIsolation"] = spec.enable_network_isolation
    if spec.enable_inter_container_traffic_encryption is not None:
        request["EnableInterContainerTrafficEncryption"] = spec.enable_inter_container_traffic_encryption
    if spec.spot_max_wait_seconds is not None:
        request["EnableManagedSpotTraining"] = True
        if spec.checkpoint_s3_uri:
            request["CheckpointConfig"] = {"S3Uri": spec.checkpoint_s3_uri}
    if spec.environment:
        request["Environment"] = dict(spec.environment)
    tags = dict(spec.tags)
    for key in EXECUTION_TAGS:
        if spec.execution and key in spec.execution:
            tags[TAG_PREFIX + key.replace("_", "-")] = spec.execution[key]
    tags[FINGERPRINT_TAG] = fingerprint(request)
    request["Tags"] = [{"Key": k, "Value": v} for k, v in tags.items()]
    return request


def _channel(name: str, uri: str, spec: JobSpec) -> dict[str, Any]:
    return {
        "ChannelName": name,
        "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri,
                                        "S3DataDistributionType": "FullyReplicated"}},
        "ContentType": spec.content_type,
        "InputMode": spec.input_mode,
    }


def fingerprint(request: Mapping[str, Any]) -> str:
    """A hash of what the job does (tags aside): equal requests, equal fingerprints, in any process."""
    body = {k: v for k, v in request.items() if k != "Tags"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def tags_of(request_or_description: Mapping[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in request_or_description.get("Tags") or ()}


def described_fingerprint(description: Mapping[str, Any]) -> str:
    """The fingerprint of the request a DescribeTrainingJob answer came from (for jobs whose tags are not at hand).

    Only fields the create request set and Describe returns unchanged are compared.
    """
    fields = ("TrainingJobName", "AlgorithmSpecification", "RoleArn", "HyperParameters", "InputDataConfig",
              "OutputDataConfig", "ResourceConfig", "StoppingCondition", "VpcConfig", "EnableNetworkIsolation",
              "EnableInterContainerTrafficEncryption", "EnableManagedSpotTraining", "CheckpointConfig", "Environment")
    return fingerprint({k: description[k] for k in fields if k in description})
