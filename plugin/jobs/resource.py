"""What `get` reports to an engine: phase, message, outputs and log links (docs/phases.md)."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from handlers import local_credentials
from handlers.local_job_links import page_url
from handlers.logs import LOG_GROUP
from handlers.status import Phase

# Console hosts per partition: each region's console, as AWS links them.
_CONSOLE = {
    "aws": "https://{region}.console.aws.amazon.com",
    "aws-cn": "https://{region}.console.amazonaws.cn",
    "aws-us-gov": "https://{region}.console.amazonaws-us-gov.com",
}


def console_url(partition: str, region: str) -> str:
    """The AWS console of a region, on its partition's host (the commercial one for a partition we do not know)."""
    return _CONSOLE.get(partition, _CONSOLE["aws"]).format(region=region)


@dataclass(frozen=True)
class Resource:
    """`get`'s answer; `outputs` are filled in once the job has SUCCEEDED."""

    phase: Phase
    message: str = ""
    outputs: Mapping[str, Any] = field(default_factory=dict)
    log_links: tuple[LogLink, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"phase": self.phase.name, "message": self.message, "outputs": dict(self.outputs),
                "log_links": [{"name": link.name, "uri": link.uri} for link in self.log_links]}


@dataclass(frozen=True)
class LogLink:
    name: str
    uri: str


@dataclass(frozen=True)
class Embedded:
    """A local SageMaker that a process started for itself (`run`'s, a local Flyte run's): gone when that process
    ends. Its jobs stay in its data folder, where a later command's own local SageMaker finds them, given the same
    config (`config_file`, an absolute path; None: no file, the built-in defaults)."""

    config_file: str | None = None

    def args(self) -> tuple[str, ...]:
        return ("--config", self.config_file) if self.config_file else ()


def log_links(job_name: str, region: str, partition: str = "aws", endpoint_url: str | None = None,
              embedded: Embedded | None = None, running: bool = False) -> tuple[LogLink, ...]:
    """The CloudWatch streams of the job's hosts (prefix `<job>/`) and the job's SageMaker console page.

    A job on a local SageMaker (`endpoint_url`) has no console: its links are its page on that local SageMaker (status,
    logs as they grow, metric curves) and the command lines that show its logs and its status, for as long as that
    local SageMaker runs. On an `embedded` one, which is gone when its process ends, the links are command lines that
    need no endpoint (they outlast it), and the page only while the job is `running`.
    """
    if endpoint_url and embedded is not None:
        return embedded_log_links(job_name, region, endpoint_url, embedded, running)
    if endpoint_url:
        return local_log_links(job_name, region, endpoint_url)
    console = console_url(partition, region)
    group = quote(LOG_GROUP, safe="")
    return (
        LogLink("CloudWatch Logs", f"{console}/cloudwatch/home?region={region}#logStream:group={group};"
                                   f"prefix={quote(job_name, safe='')}/;streamFilter=typeLogStreamPrefix"),
        LogLink("SageMaker Training Job", f"{console}/sagemaker/home?region={region}#/jobs/{quote(job_name, safe='')}"),
    )


LOCAL_PAGE = "Job page (local SageMaker)"
LOCAL_LOGS = "Logs (local SageMaker)"
LOCAL_STATUS = "Status (local SageMaker)"
LOCAL_METRICS = "Metrics (local SageMaker)"
PAGE_WHILE_RUNNING = "Job page (while this run lasts)"


def local_command(endpoint_url: str | None, *args: str) -> str:
    """A `sagemaker-plugin` command line that reaches the local SageMaker at `endpoint_url`; None: the one the
    command starts for itself (on the data folder of the config that `args` name)."""
    where = [f"SAGEMAKER_PLUGIN_ENDPOINT_URL={shlex.quote(endpoint_url)}"] if endpoint_url else []
    return " ".join([*where, "sagemaker-plugin", *map(shlex.quote, args)])


def page_link(job_name: str, endpoint_url: str, name: str = LOCAL_PAGE) -> LogLink:
    secret = local_credentials.for_endpoint(endpoint_url).secret_access_key
    return LogLink(name, page_url(endpoint_url, job_name, secret))


def local_log_links(job_name: str, region: str, endpoint_url: str) -> tuple[LogLink, ...]:
    return (
        page_link(job_name, endpoint_url),
        LogLink(LOCAL_LOGS, local_command(endpoint_url, "logs", job_name, "--follow", "--region", region)),
        LogLink(LOCAL_STATUS, local_command(endpoint_url, "status", job_name, "--region", region)),
    )


def embedded_log_links(job_name: str, region: str, endpoint_url: str, embedded: Embedded, running: bool
                       ) -> tuple[LogLink, ...]:
    """The commands that show the job from its data folder once its local SageMaker is gone; while it runs, its
    page too (its address dies with the process)."""
    where = ("--region", region, *embedded.args())
    lasting = tuple(LogLink(name, local_command(None, command, job_name, *where))
                    for name, command in ((LOCAL_LOGS, "logs"), (LOCAL_STATUS, "status"), (LOCAL_METRICS, "metrics")))
    return (page_link(job_name, endpoint_url, PAGE_WHILE_RUNNING), *lasting) if running else lasting


def outputs_of(description: Mapping[str, Any]) -> dict[str, Any]:
    """Outputs of a completed job: model, metrics, name, ARN, training and billable seconds."""
    metrics = {m["MetricName"]: float(m["Value"]) for m in description.get("FinalMetricDataList") or ()
               if "MetricName" in m and "Value" in m}
    return {
        "model": (description.get("ModelArtifacts") or {}).get("S3ModelArtifacts", ""),
        "metrics": metrics,
        "training_job_name": description.get("TrainingJobName", ""),
        "training_job_arn": description.get("TrainingJobArn", ""),
        "training_seconds": description.get("TrainingTimeInSeconds"),
        "billable_seconds": description.get("BillableTimeInSeconds"),
    }


def unmatched_metric_definitions(description: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(name, regex) of each of the job's metric definitions that has no final value: its regex never matched a log
    line, and SageMaker drops such a metric without a word."""
    found = {m.get("MetricName") for m in description.get("FinalMetricDataList") or ()}
    definitions = (description.get("AlgorithmSpecification") or {}).get("MetricDefinitions") or ()
    return [(str(d.get("Name", "")), str(d.get("Regex", ""))) for d in definitions if d.get("Name") not in found]
