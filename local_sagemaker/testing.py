"""Helpers for tests and examples against a running local SageMaker, with plain boto3 clients.

Example::

    with LocalSageMaker(LocalSettings(time_scale=20)) as server:
        aws = LocalClients(server.url, credentials=server.credentials)
        name = unique_name("demo")
        aws.sagemaker.create_training_job(**aws.training_request(name))
        job = aws.wait(name)  # Describe, once the job has ended
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from handlers import local_credentials
from handlers.local import PLACEHOLDER_ROLE_ARN
from handlers.local_credentials import LocalCredentials
from handlers.logs import LOG_GROUP

XGBOOST_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
CUSTOM_IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/team/trainer:1.0"
DATA_BUCKET = "local-sagemaker-data"
ENDED = ("Completed", "Failed", "Stopped")


def unique_name(prefix: str = "job") -> str:
    """A valid training job name no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def ended(job: Mapping[str, Any]) -> bool:
    return job["TrainingJobStatus"] in ENDED


@dataclass
class LocalClients:
    """boto3 clients for one endpoint and region, and a few shortcuts.

    They sign with `credentials`: by default the key pair of the local SageMaker this process serves at `url`, else
    $AWS_ACCESS_KEY_ID/$AWS_SECRET_ACCESS_KEY, else dummies (what a plain moto server takes).
    """

    url: str
    region: str = "us-east-1"
    credentials: LocalCredentials | None = None
    _clients: dict[tuple[str, str, str], Any] = field(default_factory=dict, repr=False)

    def client(self, service: str, region: str | None = None, **config: Any) -> Any:
        """A client of `service`; `config` goes to botocore's Config (e.g. retries={"total_max_attempts": 1})."""
        key = (service, region or self.region, repr(sorted(config.items())))
        if key not in self._clients:
            # boto3's stubs type client() per literal service name; here the name is a parameter.
            factory: Callable[..., Any] = boto3.client
            credentials = self.credentials or local_credentials.for_endpoint(self.url)
            self._clients[key] = factory(
                service,
                endpoint_url=self.url,
                region_name=region or self.region,
                aws_access_key_id=credentials.access_key_id,
                aws_secret_access_key=credentials.secret_access_key,
                config=Config(**config) if config else None,
            )
        return self._clients[key]

    #: the default region's clients, by their service's name
    sagemaker = property(lambda self: self.client("sagemaker"))
    s3 = property(lambda self: self.client("s3"))
    logs = property(lambda self: self.client("logs"))

    def put_data(self, prefix: str, body: bytes = b"1.0,2.0,3.0\n", bucket: str = DATA_BUCKET) -> str:
        """Uploads one object under `prefix` in `bucket`; returns the prefix as an s3:// URI."""
        where = {} if self.region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": self.region}}
        try:
            self.s3.create_bucket(Bucket=bucket, **where)
        except ClientError as error:
            if error.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise
        self.s3.put_object(Bucket=bucket, Key=f"{prefix.strip('/')}/part-0.csv", Body=body)
        return f"s3://{bucket}/{prefix.strip('/')}/"

    def training_request(
        self,
        name: str,
        *,
        image: str = XGBOOST_IMAGE,
        channels: Mapping[str, str] | None = None,
        hyperparameters: Mapping[str, str] | None = None,
        instance_type: str = "ml.m5.xlarge",
        instance_count: int = 1,
        max_runtime: int = 3600,
        **extra: Any,
    ) -> dict[str, Any]:
        """A valid CreateTrainingJob request; without `channels`, a `train` channel with data in the local S3."""
        if channels is None:
            channels = {"train": self.put_data(f"data/{name}/train")}
        request: dict[str, Any] = {
            "TrainingJobName": name,
            "RoleArn": PLACEHOLDER_ROLE_ARN,
            "AlgorithmSpecification": {"TrainingImage": image, "TrainingInputMode": "File"},
            "InputDataConfig": [
                {
                    "ChannelName": channel,
                    "DataSource": {
                        "S3DataSource": {
                            "S3DataType": "S3Prefix",
                            "S3Uri": uri,
                            "S3DataDistributionType": "FullyReplicated",
                        }
                    },
                    "ContentType": "text/csv",
                    "InputMode": "File",
                }
                for channel, uri in channels.items()
            ],
            "OutputDataConfig": {"S3OutputPath": f"s3://{DATA_BUCKET}/output"},
            "ResourceConfig": {"InstanceType": instance_type, "InstanceCount": instance_count, "VolumeSizeInGB": 30},
            "StoppingCondition": {"MaxRuntimeInSeconds": max_runtime},
        }
        if hyperparameters is not None:
            request["HyperParameters"] = dict(hyperparameters)
        request.update(extra)
        return request

    def wait(
        self,
        name: str,
        until: Callable[[Mapping[str, Any]], bool] = ended,
        timeout: float = 15.0,
        interval: float = 0.02,
    ) -> dict[str, Any]:
        """Describes the job until `until(job)` holds; TimeoutError with the last answer otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            job: dict[str, Any] = self.sagemaker.describe_training_job(TrainingJobName=name)
            if until(job):
                return job
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name}: still {job['TrainingJobStatus']}/{job['SecondaryStatus']}")
            time.sleep(interval)

    def log_messages(self, name: str) -> dict[str, list[str]]:
        """Every stream of the job (`<name>/algo-<n>-<epoch>`) and its messages so far, oldest first."""
        try:
            found = self.logs.describe_log_streams(logGroupName=LOG_GROUP, logStreamNamePrefix=f"{name}/")
            streams = found["logStreams"]
        except ClientError as error:
            if error.response["Error"]["Code"] == "ResourceNotFoundException":
                return {}  # no job has reached Training yet in this region
            raise
        out: dict[str, list[str]] = {}
        for stream in streams:
            events = self.logs.get_log_events(
                logGroupName=LOG_GROUP, logStreamName=stream["logStreamName"], startFromHead=True
            )["events"]
            out[stream["logStreamName"]] = [event["message"] for event in events]
        return out
