"""What the plugin and the local SageMaker both know of each other: one statement each (plugin/render.py fills in
the role and output prefix a local task leaves out; local_sagemaker/ serves that account and bucket)."""

from __future__ import annotations

from collections.abc import Mapping

#: moto's default account, the one any key pair it does not know maps to (the local SageMaker's own included).
LOCAL_ACCOUNT_ID = "123456789012"
#: A role ARN SageMaker's pattern accepts, for callers without one (nothing checks roles locally).
PLACEHOLDER_ROLE_ARN = f"arn:aws:iam::{LOCAL_ACCOUNT_ID}:role/LocalSageMakerRole"
#: The bucket the local S3 holds from the start, where local jobs write unless the task names an output prefix.
LOCAL_OUTPUT_BUCKET = "sagemaker-plugin-local"
LOCAL_OUTPUT_PREFIX = f"s3://{LOCAL_OUTPUT_BUCKET}/outputs"

#: The secondary statuses a local job passes through while InProgress, in order.
LOCAL_PHASES: tuple[str, ...] = ("Starting", "Downloading", "Training", "Uploading")
#: Timeline seconds per secondary status: a few seconds in all by default.
DEFAULT_TIMELINE: Mapping[str, float] = {"Starting": 1.0, "Downloading": 1.0, "Training": 2.0, "Uploading": 1.0}
#: An injected failure, unless its rule says otherwise (config's local.failures[], LocalSettings' FailureRule).
DEFAULT_FAILURE_AT = "Training"
DEFAULT_FAILURE_REASON = "AlgorithmError: injected failure"
