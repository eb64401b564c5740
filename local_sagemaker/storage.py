"""The job's effects on the local S3 and CloudWatch Logs, through moto's in-process backends.

Kept in one module because these reach into moto's internals (backend dicts, FakeKey), which is the part most
likely to change between moto versions. The caller serializes access (see server.py), so no locking here.
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from moto.cloudwatch.models import cloudwatch_backends
from moto.logs.models import logs_backends
from moto.s3.exceptions import MissingBucket
from moto.s3.models import FakeKey, s3_backends
from moto.utilities.utils import get_partition

from handlers.logs import LOG_GROUP
from handlers.metric_series import NAMESPACE as METRICS_NAMESPACE
from local_sagemaker.logs import LogLine, MetricSink


def parse_s3_uri(uri: str) -> tuple[str, str] | None:
    """(bucket, key or prefix) of an `s3://bucket/key` URI; None for anything else (https URIs, manifests)."""
    if not uri.startswith("s3://"):
        return None
    bucket, _, key = uri[len("s3://") :].partition("/")
    return (bucket, key) if bucket else None


def prefix_has_objects(account_id: str, region: str, uri: str) -> bool:
    """Whether the local S3 holds at least one object under the `s3://bucket/prefix` URI, as SageMaker checks."""
    if parse_s3_uri(uri) is None:
        return True  # not something the local S3 can answer for; let the job run
    return bool(list_objects(account_id, region, uri))


def make_buckets(account_id: str, names: Sequence[str], region: str = "us-east-1") -> None:
    """Creates the buckets that do not exist yet (the account's own, set up before any job runs)."""
    backend = s3_backends[account_id][get_partition(region)]
    for name in names:
        try:
            backend.get_bucket(name)
        except MissingBucket:
            backend.create_bucket(name, region)


def upload_failure_reason(error: Exception) -> str:
    """The FailureReason of a job whose artifacts could not be put to S3, in AWS's form, for both kinds of job."""
    return f"ClientError: Artifact upload failed:{error}"


class UploadFailed(Exception):
    """An upload SageMaker would fail the job for; the text follows AWS's "Unable to upload file to <uri> (...)"."""


def put_object(account_id: str, region: str, uri: str, body: bytes) -> None:
    """Writes `body` at the `s3://` URI; SageMaker never creates buckets: a missing one is UploadFailed."""
    parsed = parse_s3_uri(uri)
    if parsed is None:
        raise ValueError(f"not an s3:// URI: {uri}")
    bucket_name, key = parsed
    backend = s3_backends[account_id][get_partition(region)]
    try:
        backend.get_bucket(bucket_name)
    except MissingBucket:
        raise UploadFailed(f"Unable to upload file to {uri} (NoSuchBucket: The specified bucket does not exist)") \
            from None
    backend.put_object(bucket_name, key, body)


def create_streams(account_id: str, region: str, names: Sequence[str]) -> None:
    backend = logs_backends[account_id][region]
    backend.ensure_log_group(LOG_GROUP)
    for name in names:
        backend.ensure_log_stream(LOG_GROUP, name)


def put_lines(account_id: str, region: str, stream: str, lines: Sequence[LogLine]) -> None:
    """Appends lines (in time order) to one stream of the training-job log group."""
    if not lines:
        return
    backend = logs_backends[account_id][region]
    backend.ensure_log_group(LOG_GROUP)
    backend.ensure_log_stream(LOG_GROUP, stream)
    events = [{"timestamp": line.timestamp_ms, "message": line.message} for line in lines]
    backend.put_log_events(LOG_GROUP, stream, events)


def model_archive(job_name: str, built_in: bool, metrics: Mapping[str, Any]) -> bytes:
    """A small but real model.tar.gz, the same bytes for the same job: `xgboost-model` or `model.json` inside."""
    payload = json.dumps({"training_job_name": job_name, "metrics": dict(metrics)}, sort_keys=True).encode()
    member = "xgboost-model" if built_in else "model.json"
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as archive:
        info = tarfile.TarInfo(member)
        info.size = len(payload)
        info.mtime = 0
        archive.addfile(info, io.BytesIO(payload))
    return gzip.compress(raw.getvalue(), mtime=0)


def list_objects(account_id: str, region: str, uri: str) -> list[str] | None:
    """The keys under an `s3://bucket/prefix` URI, sorted; None when the bucket does not exist."""
    parsed = parse_s3_uri(uri)
    if parsed is None:
        return None
    bucket_name, prefix = parsed
    backend = s3_backends[account_id][get_partition(region)]
    try:
        bucket = backend.get_bucket(bucket_name)
    except MissingBucket:
        return None
    return sorted(
        name for name in list(bucket.keys) if name.startswith(prefix) and isinstance(bucket.keys.get(name), FakeKey)
    )


def get_object(account_id: str, region: str, bucket_name: str, key: str) -> bytes:
    """The bytes of one object of the local S3 (KeyError when it is gone)."""
    backend = s3_backends[account_id][get_partition(region)]
    found = backend.get_bucket(bucket_name).keys.get(key)
    if not isinstance(found, FakeKey):
        raise KeyError(key)
    return bytes(found.value)


def object_size(account_id: str, region: str, bucket_name: str, key: str) -> int:
    """The size of one object of the local S3, without reading it (KeyError when it or its bucket is missing)."""
    backend = s3_backends[account_id][get_partition(region)]
    try:
        found = backend.get_bucket(bucket_name).keys.get(key)
    except MissingBucket:
        raise KeyError(key) from None
    if not isinstance(found, FakeKey):
        raise KeyError(key)
    return int(found.size)


def directory_archive(folders: Sequence[Any]) -> bytes:
    """A tar.gz of the files of `folders` (paths), merged at the archive's root; later folders win on a name."""
    import os

    members: dict[str, Any] = {}
    for folder in folders:
        for parent, _dirs, names in os.walk(folder):
            for name in names:
                path = os.path.join(parent, name)
                if os.path.isfile(path) and not os.path.islink(path):
                    members[os.path.relpath(path, folder)] = path
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as archive:
        for arcname in sorted(members):
            archive.add(members[arcname], arcname=arcname, recursive=False)
    return raw.getvalue()


def metric_publisher(account_id: str, region: str, job_name: str) -> MetricSink:
    """Puts each metric value of a job into the local CloudWatch metrics as SageMaker publishes it: namespace
    /aws/sagemaker/TrainingJobs, the metric's name, at its log line's time, once per host with dimension
    Host=<job>/algo-<n> and once with TrainingJobName=<job> (what the SageMaker Python SDK's TrainingJobAnalytics
    queries). CloudWatch matches dimension sets exactly, so the two are separate series, as on AWS."""

    def publish(name: str, host: int, value: float, timestamp_ms: int) -> None:
        put_metric_values(account_id, region, [(job_name, name, host, value, timestamp_ms)])

    return publish


def put_metric_values(account_id: str, region: str, values: Sequence[tuple[str, str, int, float, int]]) -> None:
    """Each (job name, metric name, host, value, epoch ms) into the local CloudWatch metrics, as `metric_publisher`
    puts them (many at once: an earlier server's series loaded back)."""
    data = []
    for job_name, name, host, value, timestamp_ms in values:
        # moto keeps naive UTC datetimes and compares requests' bounds with them.
        when = datetime.fromtimestamp(timestamp_ms / 1000, tz=timezone.utc).replace(tzinfo=None)
        series = ({"Name": "Host", "Value": f"{job_name}/algo-{host}"}, {"Name": "TrainingJobName", "Value": job_name})
        data += [{"MetricName": name, "Value": value, "Timestamp": when, "Dimensions": [each]} for each in series]
    if data:
        cloudwatch_backends[account_id][region].put_metric_data(METRICS_NAMESPACE, data)
