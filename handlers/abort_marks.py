"""Abort marks: the record, in S3, that a task was aborted before SageMaker ever made its job.

A create refused for quota is retried later by whichever process calls get with the meta (another connector
replica, an engine restarted). Nothing exists in SageMaker yet to carry an abort, so delete leaves this mark next to
where the job's own output would go, `<S3OutputPath>/<job name>/sagemaker-plugin-aborted-<attempt>.json` (for a
tuning job, its trials' S3OutputPath and its own name), and every process looks for it before and after it makes the
job. The attempt token ties the mark to one execution attempt
(the fingerprint and the time of the first refused create), so a later run under the same job name is not aborted
by an earlier one's mark.

Existence is checked with ListObjectsV2 on the exact key: unlike GetObject it answers "absent" rather than
AccessDenied to an identity allowed to list only that prefix (docs/iam-policy.json).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from handlers.client import SageMakerClient
from handlers.errors import NotFound
from handlers.job_kinds import TRAINING, JobKind
from handlers.uploads import ensure_bucket, split_s3_uri

MARK_PREFIX = "sagemaker-plugin-aborted-"


@dataclass(frozen=True)
class AbortMark:
    bucket: str
    key: str
    kms_key_id: str = ""  # the job's output key: the mark is encrypted as its output would be (a bucket may insist)

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def mark_for(request: Mapping[str, Any], fingerprint: str, created_at: float, kind: JobKind = TRAINING
             ) -> AbortMark:
    """Where the abort of this execution attempt of `request` (a create request of `kind`) is recorded."""
    output = kind.output_config(request)
    bucket, prefix = split_s3_uri(str(output["S3OutputPath"]))
    name = str(request[kind.name_member])
    token = hashlib.sha256(f"{fingerprint}:{created_at!r}".encode()).hexdigest()[:16]
    folder = f"{prefix.strip('/')}/{name}" if prefix.strip("/") else name
    kms_key_id = str(output.get("KmsKeyId") or "")
    return AbortMark(bucket, f"{folder}/{MARK_PREFIX}{token}.json", kms_key_id)


def write(client: SageMakerClient, mark: AbortMark, details: Mapping[str, Any], create_bucket: bool = False) -> None:
    """Record the abort (idempotent). `create_bucket`: the local backend's S3 may not have the bucket yet."""
    if create_bucket:
        ensure_bucket(client, mark.bucket)
    body = json.dumps(dict(details), sort_keys=True).encode()
    encryption = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": mark.kms_key_id} if mark.kms_key_id else {}
    client.call("s3", "PutObject", Bucket=mark.bucket, Key=mark.key, Body=body, ContentType="application/json",
                **encryption)


def is_marked(client: SageMakerClient, mark: AbortMark) -> bool:
    """Whether the abort is recorded; a bucket that does not exist holds no mark."""
    try:
        answer = client.call("s3", "ListObjectsV2", Bucket=mark.bucket, Prefix=mark.key, MaxKeys=1)
    except NotFound:
        return False
    return any(item.get("Key") == mark.key for item in answer.get("Contents", ()))
