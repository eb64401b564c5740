"""What SageMaker fills in when a request leaves a member out, and where each DescribeTrainingJob member comes from.

Two tables, so the answers' shape is read here rather than pieced together from code: DESCRIBE names every member of
botocore's DescribeTrainingJobResponse with its source (a test fails when a newer botocore adds one nobody looked at),
and UNSET gives the value AWS returns for a request member that was left out. ListTrainingJobs' defaults are read from
the service model's own documentation ("The default is CreationTime.") where it states them.
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from handlers.service_model import operation_model

REQUEST, JOB, ABSENT = "request", "job", "absent"


@dataclass(frozen=True)
class Member:
    """Where a DescribeTrainingJob member's value comes from: the request (echoed, UNSET filling gaps), the job's
    state, or nowhere (AWS sets it only for features the local SageMaker does not have)."""

    source: str
    note: str = ""


#: Every member of DescribeTrainingJobResponse (botocore 1.43), in the model's order.
DESCRIBE: Mapping[str, Member] = {
    "TrainingJobName": Member(REQUEST),
    "TrainingJobArn": Member(JOB),
    "TuningJobArn": Member(JOB, "set for jobs a hyperparameter tuning job launched (local_sagemaker/tuning)"),
    "LabelingJobArn": Member(ABSENT, "set for jobs of a Ground Truth labeling job"),
    "AutoMLJobArn": Member(ABSENT, "set for jobs of an AutoML job"),
    "ModelArtifacts": Member(JOB, "once the model is uploaded: Completed, or Stopped after Training began"),
    "TrainingJobStatus": Member(JOB),
    "SecondaryStatus": Member(JOB),
    "FailureReason": Member(JOB, "Failed jobs only"),
    "HyperParameters": Member(REQUEST),
    "AlgorithmSpecification": Member(REQUEST, "built-in algorithms: their own MetricDefinitions"),
    "RoleArn": Member(REQUEST),
    "InputDataConfig": Member(REQUEST),
    "OutputDataConfig": Member(REQUEST),
    "ResourceConfig": Member(REQUEST),
    "WarmPoolStatus": Member(ABSENT, "set only with ResourceConfig.KeepAlivePeriodInSeconds; warm pools not emulated"),
    "VpcConfig": Member(REQUEST),
    "StoppingCondition": Member(REQUEST),
    "CreationTime": Member(JOB),
    "TrainingStartTime": Member(JOB, "from Downloading on"),
    "TrainingEndTime": Member(JOB, "once ended, after the model upload"),
    "LastModifiedTime": Member(JOB),
    "SecondaryStatusTransitions": Member(JOB),
    "FinalMetricDataList": Member(JOB, "once a metric has a value"),
    "EnableNetworkIsolation": Member(REQUEST),
    "EnableInterContainerTrafficEncryption": Member(REQUEST),
    "EnableManagedSpotTraining": Member(REQUEST),
    "CheckpointConfig": Member(REQUEST),
    "TrainingTimeInSeconds": Member(JOB, "once ended"),
    "BillableTimeInSeconds": Member(JOB, "once ended"),
    "BillableTokenCount": Member(ABSENT, "serverless (token-billed) jobs only"),
    "DebugHookConfig": Member(REQUEST),
    "ExperimentConfig": Member(REQUEST),
    "DebugRuleConfigurations": Member(REQUEST),
    "TensorBoardOutputConfig": Member(REQUEST),
    "DebugRuleEvaluationStatuses": Member(ABSENT, "Debugger rules are not run"),
    "ProfilerConfig": Member(REQUEST),
    "ProfilerRuleConfigurations": Member(REQUEST),
    "ProfilerRuleEvaluationStatuses": Member(ABSENT, "profiler rules are not run"),
    "ProfilingStatus": Member(JOB, "Enabled with a ProfilerConfig that does not disable it, else Disabled"),
    "Environment": Member(REQUEST),
    "RetryStrategy": Member(REQUEST),
    "RemoteDebugConfig": Member(REQUEST),
    "InfraCheckConfig": Member(REQUEST),
    "ServerlessJobConfig": Member(REQUEST),
    "MlflowConfig": Member(REQUEST),
    "ModelPackageConfig": Member(REQUEST),
    "MlflowDetails": Member(ABSENT, "MLflow tracking is not emulated"),
    "ProgressInfo": Member(ABSENT, "serverless jobs only"),
    "OutputModelPackageArn": Member(ABSENT, "set with ModelPackageConfig once a package is registered; not emulated"),
}


@dataclass(frozen=True)
class Unset:
    """The value DescribeTrainingJob shows for a request member left out, and why we believe AWS shows it."""

    value: Any
    source: str


#: Request members AWS fills in when they are left out, by path (`[]` = every item of a list). A member is filled only
#: where its parent is present; top-level members always.
UNSET: Mapping[str, Unset] = {
    "OutputDataConfig.KmsKeyId": Unset("", "AWS returns \"\" when no key was given; the SageMaker Python SDK's "
                                           "Estimator.attach reads it unconditionally"),
    "OutputDataConfig.CompressionType": Unset("GZIP", "service model: CompressionType \"Defaults to gzip.\""),
    "StoppingCondition.MaxRuntimeInSeconds": Unset(86400, "service model: \"The default value is 1 day.\""),
    "ResourceConfig.VolumeSizeInGB": Unset(30, "undocumented: the model says EBS-backed instances must be given a "
                                               "size; 30 GB is the console's and the SageMaker Python SDK's default"),
    "AlgorithmSpecification.EnableSageMakerMetricsTimeSeries": Unset(False, "service model: \"The default is false\""),
    "InputDataConfig[].CompressionType": Unset("None", "service model: \"The default value is None.\""),
    "InputDataConfig[].RecordWrapperType": Unset("None", "AWS echoes None when unset (RecordIO only when asked)"),
    "InputDataConfig[].DataSource.S3DataSource.S3DataDistributionType": Unset(
        "FullyReplicated", "the model's docs: replicate to every instance unless ShardedByS3Key is chosen"),
    "EnableNetworkIsolation": Unset(False, "boolean flags read false when not set"),
    "EnableInterContainerTrafficEncryption": Unset(False, "boolean flags read false when not set"),
    "EnableManagedSpotTraining": Unset(False, "boolean flags read false when not set"),
}


def with_unset(request: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of `request` with UNSET's values where the request left them out."""
    out = copy.deepcopy(dict(request))
    for path, unset in UNSET.items():
        _fill(out, path.split("."), unset.value)
    return out


def _fill(node: Any, parts: list[str], value: Any) -> None:
    if not isinstance(node, dict):
        return
    head, rest = parts[0], parts[1:]
    if head.endswith("[]"):
        for item in node.get(head[:-2]) or []:
            _fill(item, rest, value)
    elif not rest:
        if node.get(head) is None:
            node[head] = copy.deepcopy(value)
    else:
        _fill(node.get(head), rest, value)  # parents are never invented


# ----- ListTrainingJobs ---------------------------------------------------------------------------------------------

#: Defaults the service model does not state. MaxResults: the API reference gives only its range (1-100); AWS answers
#: 10 summaries per page when it is left out.
UNDOCUMENTED_LIST_DEFAULTS: Mapping[str, Any] = {"MaxResults": 10}

_DEFAULT_IS = re.compile(r"[Tt]he default is\s+(?:<code>)?(\w+)")


@functools.lru_cache(maxsize=32)
def documented_default(operation: str, member: str) -> str | None:
    """The default a member's documentation states ("The default is Ascending."), if it states one."""
    shape = operation_model(operation).input_shape
    if shape is None or member not in shape.members:
        return None
    match = _DEFAULT_IS.search(shape.members[member].documentation or "")
    return match.group(1) if match else None


def list_default(member: str) -> Any:
    """ListTrainingJobs' default for SortBy, SortOrder (from the model's docs) or MaxResults (from the table)."""
    documented = documented_default("ListTrainingJobs", member)
    if documented is not None:
        return documented
    if member in UNDOCUMENTED_LIST_DEFAULTS:
        return UNDOCUMENTED_LIST_DEFAULTS[member]
    raise KeyError(f"ListTrainingJobs.{member}: no documented default")
