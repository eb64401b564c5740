"""What the plugin and the local SageMaker both know of each other: one statement each (plugin/render.py fills in
the role and output prefix a local task leaves out; local_sagemaker/ serves that account and bucket)."""

from __future__ import annotations

#: moto's default account, the one any key pair it does not know maps to (the local SageMaker's own included).
LOCAL_ACCOUNT_ID = "123456789012"
#: A role ARN SageMaker's pattern accepts, for callers without one (nothing checks roles locally).
PLACEHOLDER_ROLE_ARN = f"arn:aws:iam::{LOCAL_ACCOUNT_ID}:role/LocalSageMakerRole"
#: The bucket the local S3 holds from the start, where local jobs write unless the task names an output prefix.
LOCAL_OUTPUT_BUCKET = "sagemaker-plugin-local"
LOCAL_OUTPUT_PREFIX = f"s3://{LOCAL_OUTPUT_BUCKET}/outputs"
