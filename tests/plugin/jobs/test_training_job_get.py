"""TrainingJobPlugin.get: every row of the phase table (docs/phases.md), messages, outputs and log links.

The jobs are real (made by the plugin on a moto server); moto makes each one Completed at once, so every other state
is played by a handler registered first on `before-send.sagemaker.DescribeTrainingJob` of the plugin's own client
that answers with a DescribeTrainingJob JSON body (it goes through botocore's parsing like a real answer). ListTags,
AddTags and CreateTrainingJob go to moto itself. The plugin's clock is injected, so nothing here waits.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

import boto3
import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSResponse

from aws_faults import AWS_NOT_FOUND, CUSTOM, IMAGE, STOPPED_BY_TAG, response
from handlers.client import SageMakerClient
from plugin import Phase, ResourceMeta, TrainingJobPlugin, load_task, registry
from plugin.config import Config
from plugin.jobs.resource import log_links
from plugin_setup import START, Clock, fresh_task, make_config

CAPACITY = "CapacityError: Unable to provision requested ML compute capacity"
INTERNAL = "InternalServerError: We encountered an internal error. Please try again."


# --- fixtures and helpers (config, raw, clock and session: tests/conftest.py) ---------------------------------------


def make_plugin(config: Config, clock: Clock, session: boto3.Session) -> TrainingJobPlugin:
    """The plugin as an engine gets it, with its client built on the shared session (same settings as its own)."""
    client = SageMakerClient(config.client_settings(), session=session)
    assert client.partition == session.get_partition_for_region(config.region)
    p = registry.get(CUSTOM, config=config, clock=clock, client=client)
    assert isinstance(p, TrainingJobPlugin)
    assert p.client() is client
    return p


@pytest.fixture
def plugin(config: Config, clock: Clock, session: boto3.Session) -> Iterator[TrainingJobPlugin]:
    p = make_plugin(config, clock, session)
    assert isinstance(p, TrainingJobPlugin)
    yield p
    p.client().close()


def task(name: str | None = None, **extra: Any) -> dict[str, Any]:
    return fresh_task("plg", "phases", name=name, input_mode="FILE", **extra)


class Describe:
    """Registered first on the plugin's DescribeTrainingJob: answers with `self.body` (status `self.status`) while set,
    else lets the call through to moto. Counts the calls it sees."""

    def __init__(self, plugin: TrainingJobPlugin) -> None:
        self.body: dict[str, Any] | None = None
        self.status = 200
        self.calls = 0
        events: Any = plugin.client().sagemaker.meta.events
        events.register_first("before-send.sagemaker.DescribeTrainingJob", self)

    def __call__(self, request: AWSPreparedRequest, **_: Any) -> AWSResponse | None:
        self.calls += 1
        if self.body is None:
            return None
        return response(request, self.status, self.body)

    def set(self, body: dict[str, Any], status: int = 200) -> None:
        self.body, self.status = body, status

    def not_found(self) -> None:
        """AWS's own answer for a missing training job."""
        self.set({"__type": "ValidationException", "message": AWS_NOT_FOUND}, 400)


@pytest.fixture
def describe(plugin: TrainingJobPlugin) -> Describe:
    return Describe(plugin)


def description(meta: ResourceMeta, status: str, secondary: str, **extra: Any) -> dict[str, Any]:
    """A DescribeTrainingJob answer as SageMaker sends it (timestamps as epoch seconds)."""
    return {
        "TrainingJobName": meta.job_name,
        "TrainingJobArn": meta.job_arn,
        "TrainingJobStatus": status,
        "SecondaryStatus": secondary,
        "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File"},
        "RoleArn": "arn:aws:iam::123456789012:role/SageMakerRole",
        "OutputDataConfig": {"S3OutputPath": "s3://bucket/out"},
        "ResourceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        "CreationTime": START,
        "LastModifiedTime": START + 60,
        **extra,
    }


def transitions(*pairs: tuple[str, str]) -> list[dict[str, Any]]:
    return [{"Status": s, "StartTime": START + i, "StatusMessage": m} for i, (s, m) in enumerate(pairs)]


Made = Callable[..., ResourceMeta]


@pytest.fixture
def made(plugin: TrainingJobPlugin, raw: Any) -> Made:
    """Create a real job through the plugin; check it exists on the server."""

    def make(**extra: Any) -> ResourceMeta:
        meta = plugin.create(load_task(task(**extra)))
        assert meta.job_arn.endswith(f":training-job/{meta.job_name}")
        assert raw.describe_training_job(TrainingJobName=meta.job_name)["TrainingJobArn"] == meta.job_arn
        return meta

    return make


# --- InProgress -----------------------------------------------------------------------------------------------------

INITIALIZING = {
    "Starting": "Preparing the instances for training",
    "Pending": "Waiting for the warm pool",
    "LaunchingMLInstances": "Launching requested ML instances",
    "PreparingTrainingStack": "Preparing the training stack",
    "Downloading": "Downloading input data",
    "DownloadingTrainingImage": "Downloading the training image",
}
RUNNING = {
    "Training": "Training image download completed. Training in progress.",
    "Uploading": "Uploading generated training model",
    "Interrupted": "The spot instances were interrupted",
    "Restarting": "Restarting the training job after a spot interruption",
    "Updating": "Updating the training job",
}


@pytest.mark.parametrize(("secondary", "phase"), [*((s, Phase.INITIALIZING) for s in INITIALIZING),
                                                   *((s, Phase.RUNNING) for s in RUNNING)],
                         ids=[*(f"{s}-INITIALIZING" for s in INITIALIZING), *(f"{s}-RUNNING" for s in RUNNING)])
def test_in_progress_phase_by_secondary_status(made: Made, describe: Describe, plugin: TrainingJobPlugin,
                                               secondary: str, phase: Phase) -> None:
    meta = made()
    detail = {**INITIALIZING, **RUNNING}[secondary]
    describe.set(description(meta, "InProgress", secondary, SecondaryStatusTransitions=transitions(
        ("Starting", "Starting the training job"), (secondary, detail))))

    resource = plugin.get(meta)

    assert resource.phase is phase
    assert secondary in resource.message
    assert detail in resource.message
    assert "Starting the training job" not in resource.message  # the latest transition's message only
    assert resource.outputs == {}
    assert len(resource.log_links) == 3  # the local job page, and the logs and status command lines
    assert describe.calls == 1


def test_in_progress_without_transitions_says_the_secondary_status(made: Made, describe: Describe,
                                                                    plugin: TrainingJobPlugin) -> None:
    meta = made()
    describe.set(description(meta, "InProgress", "Downloading"))
    resource = plugin.get(meta)
    assert resource.phase is Phase.INITIALIZING
    assert "Downloading" in resource.message


def test_stopping_is_running(made: Made, describe: Describe, plugin: TrainingJobPlugin) -> None:
    meta = made()
    describe.set(description(meta, "Stopping", "Stopping"))
    resource = plugin.get(meta)
    assert resource.phase is Phase.RUNNING
    assert resource.message == "Stopping"


# --- Completed ------------------------------------------------------------------------------------------------------


def test_completed_gives_succeeded_with_every_output(made: Made, describe: Describe, plugin: TrainingJobPlugin) -> None:
    meta = made()
    model = f"s3://bucket/out/{meta.job_name}/output/model.tar.gz"
    describe.set(description(
        meta, "Completed", "Completed",
        ModelArtifacts={"S3ModelArtifacts": model},
        FinalMetricDataList=[{"MetricName": "train:loss", "Value": 0.25, "Timestamp": START + 100},
                             {"MetricName": "validation:rmse", "Value": 1.5, "Timestamp": START + 101}],
        TrainingTimeInSeconds=120, BillableTimeInSeconds=48,
    ))

    resource = plugin.get(meta)

    assert resource.phase is Phase.SUCCEEDED
    assert resource.outputs == {
        "model": model,
        "metrics": {"train:loss": 0.25, "validation:rmse": 1.5},
        "training_job_name": meta.job_name,
        "training_job_arn": meta.job_arn,
        "training_seconds": 120,
        "billable_seconds": 48,
    }


def test_completed_on_moto_itself(made: Made, plugin: TrainingJobPlugin, raw: Any) -> None:
    """No injection: moto's own DescribeTrainingJob answer of a job it made Completed."""
    meta = made()
    resource = plugin.get(meta)
    truth = raw.describe_training_job(TrainingJobName=meta.job_name)
    assert resource.phase is Phase.SUCCEEDED
    assert resource.outputs["model"] == truth["ModelArtifacts"]["S3ModelArtifacts"]
    assert resource.outputs["model"].endswith(f"/{meta.job_name}/output/model.tar.gz")
    assert resource.outputs["training_job_name"] == meta.job_name
    assert resource.outputs["training_job_arn"] == meta.job_arn
    assert resource.outputs["metrics"] == {m["MetricName"]: m["Value"] for m in truth["FinalMetricDataList"]}
    assert set(resource.outputs) == {"model", "metrics", "training_job_name", "training_job_arn",
                                     "training_seconds", "billable_seconds"}


def test_get_with_description_returns_the_answer(made: Made, plugin: TrainingJobPlugin) -> None:
    meta = made()
    resource, answered = plugin.get_with_description(meta)
    assert resource.phase is Phase.SUCCEEDED
    assert answered is not None
    assert answered["TrainingJobName"] == meta.job_name


# --- Failed ---------------------------------------------------------------------------------------------------------

FAILURES = {
    "algorithm": ("AlgorithmError: ExecuteUserScriptError: ExitCode 1 ErrorMessage \"ValueError: bad input\"",
                  Phase.FAILED),
    "client": ("ClientError: Data download failed: NoSuchKey: The specified key does not exist.", Phase.FAILED),
    "capacity": (CAPACITY, Phase.RETRYABLE_FAILED),
    "internal": (INTERNAL, Phase.RETRYABLE_FAILED),
}


@pytest.mark.parametrize(("reason", "phase"), FAILURES.values(), ids=FAILURES.keys())
def test_failed_gives_the_failure_reason(made: Made, describe: Describe, plugin: TrainingJobPlugin, reason: str,
                                         phase: Phase) -> None:
    meta = made()
    describe.set(description(meta, "Failed", "Failed", FailureReason=reason))
    resource = plugin.get(meta)
    assert resource.phase is phase
    assert resource.message == reason
    assert resource.outputs == {}


def test_algorithm_error_mentioning_an_http_500_is_the_jobs_own_failure(made: Made, describe: Describe,
                                                                        plugin: TrainingJobPlugin) -> None:
    """SageMaker prefixes FailureReason with where the failure came from: AlgorithmError is the job's own code."""
    meta = made()
    reason = ("AlgorithmError: ExecuteUserScriptError: ExitCode 1 ErrorMessage \"requests.exceptions.HTTPError: "
              "500 Server Error: Internal Server Error for url: https://example.com/data\"")
    describe.set(description(meta, "Failed", "Failed", FailureReason=reason))
    resource = plugin.get(meta)
    assert resource.phase is Phase.FAILED
    assert resource.message == reason


# --- Stopped --------------------------------------------------------------------------------------------------------


def test_stopped_at_max_runtime_is_failed_naming_the_limit(made: Made, describe: Describe,
                                                           plugin: TrainingJobPlugin) -> None:
    meta = made()
    describe.set(description(meta, "Stopped", "MaxRuntimeExceeded", StoppingCondition={"MaxRuntimeInSeconds": 600}))
    resource = plugin.get(meta)
    assert resource.phase is Phase.FAILED
    assert "MaxRuntimeInSeconds" in resource.message
    assert "600" in resource.message
    assert "MaxWaitTimeInSeconds" not in resource.message


def test_stopped_at_max_wait_is_failed_naming_the_limit(made: Made, describe: Describe,
                                                        plugin: TrainingJobPlugin) -> None:
    meta = made()
    describe.set(description(meta, "Stopped", "MaxWaitTimeExceeded", EnableManagedSpotTraining=True,
                             StoppingCondition={"MaxRuntimeInSeconds": 600, "MaxWaitTimeInSeconds": 1200}))
    resource = plugin.get(meta)
    assert resource.phase is Phase.FAILED
    assert "MaxWaitTimeInSeconds" in resource.message
    assert "1200" in resource.message


def test_stopped_after_the_plugins_delete_is_aborted(made: Made, describe: Describe, plugin: TrainingJobPlugin,
                                                     raw: Any) -> None:
    """The real delete path: AddTags to moto, StopTrainingJob answered 200 (moto lacks it), then ListTags from moto."""
    meta = made()
    stops: list[str] = []

    def stop(request: AWSPreparedRequest, **_: Any) -> AWSResponse:
        stops.append(json.loads(request.body)["TrainingJobName"])  # type: ignore[arg-type]
        return response(request, 200, {})

    events: Any = plugin.client().sagemaker.meta.events
    events.register_first("before-send.sagemaker.StopTrainingJob", stop)
    describe.set(description(meta, "InProgress", "Training"))

    plugin.delete(meta)

    assert stops == [meta.job_name]
    assert STOPPED_BY_TAG in {t["Key"] for t in raw.list_tags(ResourceArn=meta.job_arn)["Tags"]}
    describe.set(description(meta, "Stopped", "Stopped"))
    resource = plugin.get(meta)
    assert resource.phase is Phase.ABORTED
    assert resource.outputs == {}


def test_stopped_as_seen_by_another_process_after_delete_is_aborted(made: Made, config: Config, clock: Clock,
                                                                     raw: Any, session: boto3.Session) -> None:
    """The mark lives on the job (a tag), so a fresh plugin with a decoded meta tells ABORTED too."""
    meta = made()
    raw.add_tags(ResourceArn=meta.job_arn, Tags=[{"Key": STOPPED_BY_TAG, "Value": "sagemaker-plugin"}])
    other = make_plugin(config, clock, session)
    Describe(other).set(description(meta, "Stopped", "Stopped"))
    assert other.get(ResourceMeta.decode(meta.encode())).phase is Phase.ABORTED
    other.client().close()


def test_stopped_by_anyone_else_is_failed(made: Made, describe: Describe, plugin: TrainingJobPlugin) -> None:
    meta = made()  # no stopped-by tag on the real job
    describe.set(description(meta, "Stopped", "Stopped"))
    resource = plugin.get(meta)
    assert resource.phase is Phase.FAILED
    assert "stopped" in resource.message.lower()


def test_deleting_is_failed(made: Made, describe: Describe, plugin: TrainingJobPlugin) -> None:
    meta = made()
    describe.set(description(meta, "Deleting", "Stopped"))
    resource = plugin.get(meta)
    assert resource.phase is Phase.FAILED
    assert "delet" in resource.message.lower()


# --- not yet visible ------------------------------------------------------------------------------------------------


def test_just_created_but_not_found_is_queued_within_the_grace_then_failed(made: Made, describe: Describe,
                                                                           plugin: TrainingJobPlugin,
                                                                           clock: Clock) -> None:
    grace = plugin.config.tracking.not_found_grace_seconds
    meta = made()
    assert meta.created_at == START
    describe.not_found()

    at_once = plugin.get(meta)
    clock.now = START + grace
    at_the_end = plugin.get(meta)
    clock.now = START + grace + 1
    after = plugin.get(meta)

    assert at_once.phase is Phase.QUEUED
    assert at_the_end.phase is Phase.QUEUED
    assert len(at_once.log_links) == 3
    assert after.phase is Phase.FAILED
    assert meta.job_name in after.message
    assert "not found" in after.message
    assert describe.calls == 3


def test_not_found_grace_comes_from_config(endpoint: str, clock: Clock, session: boto3.Session) -> None:
    p = make_plugin(make_config(endpoint, tracking={"not_found_grace_seconds": 5}), clock, session)
    meta = ResourceMeta(job_name=f"plg-gone-{uuid.uuid4().hex[:8]}", region="us-east-1", created_at=START,
                        endpoint_url=endpoint)
    Describe(p).not_found()
    clock.now = START + 5
    assert p.get(meta).phase is Phase.QUEUED
    clock.now = START + 6
    assert p.get(meta).phase is Phase.FAILED
    p.client().close()


def test_not_found_as_moto_answers(plugin: TrainingJobPlugin, clock: Clock, endpoint: str) -> None:
    """moto's own answer for a missing job ("Could not find training job ...") counts as not found too."""
    meta = ResourceMeta(job_name=f"plg-never-{uuid.uuid4().hex[:8]}", region="us-east-1", created_at=START,
                        endpoint_url=endpoint)
    resource, answered = plugin.get_with_description(meta)
    assert resource.phase is Phase.QUEUED
    assert answered is None
    clock.now = START + plugin.config.tracking.not_found_grace_seconds + 1
    assert plugin.get(meta).phase is Phase.FAILED


# --- log links ------------------------------------------------------------------------------------------------------

PARTITIONS = {
    "aws": ("us-east-1", "console.aws.amazon.com", "arn:aws:"),
    "aws-cn": ("cn-north-1", "console.amazonaws.cn", "arn:aws-cn:"),
    "aws-us-gov": ("us-gov-west-1", "console.amazonaws-us-gov.com", "arn:aws-us-gov:"),
}


def image_in(region: str) -> dict[str, str]:
    """A custom image in the region's own ECR: SageMaker pulls from no other."""
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return {"image": f"123456789012.dkr.ecr.{region}.{suffix}/trainer:1.0"}


@pytest.mark.parametrize(("region", "domain", "arn_prefix"), PARTITIONS.values(), ids=PARTITIONS.keys())
def test_log_links_per_partition(endpoint: str, clock: Clock, session: boto3.Session, region: str, domain: str,
                                arn_prefix: str) -> None:
    p = make_plugin(make_config(endpoint, region=region), clock, session)
    meta = p.create(task(container=image_in(region)))
    assert meta.region == region
    assert meta.job_arn.startswith(arn_prefix)

    resource = p.get(meta)

    assert resource.phase is Phase.SUCCEEDED
    # On a local SageMaker the links are its job page and command lines (no console exists); on AWS, the console's.
    page, *commands = resource.log_links
    assert page.uri.startswith(f"{meta.endpoint_url}/~jobs/{meta.job_name}?token=")
    assert [link.uri.split(" sagemaker-plugin ")[1] for link in commands] == [
        f"logs {meta.job_name} --follow --region {region}", f"status {meta.job_name} --region {region}"]
    links = {link.name: link.uri for link in log_links(meta.job_name, meta.region, p.client(region).partition)}
    assert len(links) == 2
    cloudwatch = next(urlparse(uri) for name, uri in links.items() if "CloudWatch" in name)
    console = next(urlparse(uri) for name, uri in links.items() if "SageMaker" in name)
    for url in (cloudwatch, console):
        assert url.scheme == "https"
        assert url.netloc.endswith(domain)
        assert region in url.netloc
        assert parse_qs(url.query)["region"] == [region]
    assert cloudwatch.path.startswith("/cloudwatch/")
    fragment = unquote(cloudwatch.fragment)
    assert "group=/aws/sagemaker/TrainingJobs" in fragment
    assert f"prefix={meta.job_name}" in fragment
    assert console.path.startswith("/sagemaker/")
    assert unquote(console.fragment).endswith(f"/jobs/{meta.job_name}")
    p.client().close()


def test_log_links_follow_the_jobs_region_not_the_engines(endpoint: str, clock: Clock, session: boto3.Session,
                                                          config: Config) -> None:
    """A meta made in cn-north-1, read by an engine configured for us-east-1: links in the job's partition."""
    china = make_plugin(make_config(endpoint, region="cn-north-1"), clock, session)
    meta = china.create(task(container=image_in("cn-north-1")))
    china.client().close()
    engine = make_plugin(config, clock, session)

    resource = engine.get(ResourceMeta.decode(meta.encode()))

    assert resource.phase is Phase.SUCCEEDED
    assert resource.outputs["training_job_arn"].startswith("arn:aws-cn:")
    assert all(link.uri.endswith("--region cn-north-1") for link in resource.log_links[1:])
    partition = engine.client(meta.region, meta.endpoint_url).partition
    for link in log_links(meta.job_name, meta.region, partition):  # as they would be on AWS
        url = urlparse(link.uri)
        assert url.netloc == "cn-north-1.console.amazonaws.cn"
        assert parse_qs(url.query)["region"] == ["cn-north-1"]
    engine.client().close()


# --- a job the plugin made ------------------------------------------------------------------------------------------


def test_the_first_get_of_a_job_the_plugin_made_needs_no_describe(endpoint: str, clock: Clock,
                                                                  session: boto3.Session) -> None:
    """With tracking on, the tracker knows a job it has just made is InProgress and Starting (what Describe says of
    a new job); the sweeps or events tell the rest. Without tracking, every get describes."""
    from trackers import clear_trackers

    for interval, expected in ((3600, 0), (0, 1)):
        clear_trackers()
        p = make_plugin(make_config(endpoint, tracking={"sweep_interval_seconds": interval}), clock, session)
        try:
            describes = Describe(p)
            made = p.create(load_task(task()))
            resource = p.get(made)
            assert describes.calls == expected, interval
            if expected == 0:
                assert resource.phase is Phase.INITIALIZING
        finally:
            clear_trackers()
            p.client().close()
