"""The TuningJobPlugin: create, get and delete SageMaker hyperparameter tuning jobs for an engine.

The training plugin's machinery, pointed at CreateHyperParameterTuningJob: the same clients and rendering, the
same fingerprint adoption when a create meets its own job under the name (a lost response, a restarted engine),
the same ResourceMeta, phases from the one table (handlers/status.py, `tuning_phase_of`), the same stopped-by tag
so that every process reports a deleted job ABORTED, and the same create queue (plugin/jobs/create_queue.py): a create
refused for quota is kept in the meta and retried by `get` until limits.resource_wait_seconds runs out, and a delete
meanwhile leaves an abort mark in S3 that every process honours. What differs is data (handlers/job_kinds.py).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from handlers.client import SageMakerClient
from handlers.job_kinds import TUNING
from handlers.service_model import member_shape
from handlers.status import Phase
from plugin.jobs.resource import LOCAL_STATUS, Embedded, LogLink, console_url, local_command
from plugin.jobs.training_job import TrainingJobPlugin
from plugin.meta import ResourceMeta
from plugin.task import TUNING_TASK

log = logging.getLogger(__name__)

LIST_TRIALS = "ListTrainingJobsForHyperParameterTuningJob"
PAGE_SIZE = int(member_shape(LIST_TRIALS, "MaxResults").metadata["max"])


class TuningJobPlugin(TrainingJobPlugin):
    """One per engine (or per config); thread-safe. `get` describes the tuning job each time (tuning jobs are
    few and long; the training plugin's sweeping tracker is for the many), unless job events tell it (config's
    tracking.events: a running job's latest event, younger than the events' sweep interval, stands for it)."""

    task_types = (TUNING_TASK,)
    metadata_type = ResourceMeta
    kind = TUNING
    wrong_task = f"the tuning plugin runs {TUNING_TASK} tasks; a training task goes to registry.get(<its task_type>)"

    def _described_fingerprint(self, description: Mapping[str, Any]) -> str | None:
        return None  # a tuning job is adopted by its tag only

    # --- get ------------------------------------------------------------------------------------------------------

    def _read(self, client: SageMakerClient, name: str, fresh: bool) -> dict[str, Any]:
        events = self.events_settings()
        if not fresh and events is not None and self._sweep_interval() > 0:
            listener = self._tracker(client).listener
            answer: dict[str, Any] | None = (listener.tuning_answer(name, events.sweep_interval_seconds)
                                             if listener is not None else None)
            if answer is not None and answer.get("HyperParameterTuningJobStatus") in ("InProgress", "Stopping"):
                return answer  # an ended job is described: its outputs (the best trial) come from the Describe
        return self._describe_job(client, name)  # else described each time: tuning jobs are few and long

    def _forget(self, client: SageMakerClient, name: str) -> None:
        pass  # no tracker follows tuning jobs

    def _created(self, client: SageMakerClient, name: str, arn: str) -> None:
        pass

    def links(self, meta: ResourceMeta, client: SageMakerClient, phase: Phase) -> tuple[LogLink, ...]:
        return tuning_links(meta.job_name, meta.region, client.partition, client.endpoint_url, self._own_server)

    def outputs(self, client: SageMakerClient, description: Mapping[str, Any]) -> dict[str, Any]:
        """model (the best trial's), best_training_job_name, best_hyperparameters, objective, trials."""
        best = description.get("BestTrainingJob") or {}
        best_name = str(best.get("TrainingJobName", ""))
        model = ""
        if best_name:
            trained = client.describe_training_job(best_name)
            model = str((trained.get("ModelArtifacts") or {}).get("S3ModelArtifacts", ""))
        metric = best.get("FinalHyperParameterTuningJobObjectiveMetric") or {}
        objective_name = ((description.get("HyperParameterTuningJobConfig") or {})
                          .get("HyperParameterTuningJobObjective") or {}).get("MetricName", "")
        return {
            "model": model,
            "best_training_job_name": best_name,
            "best_hyperparameters": dict(best.get("TunedHyperParameters") or {}),
            "objective": {"metric_name": metric.get("MetricName", objective_name),
                          "value": float(metric["Value"]) if "Value" in metric else None},
            "trials": trials(client, str(description.get("HyperParameterTuningJobName", ""))),
        }

def trials(client: SageMakerClient, tuning_job_name: str) -> list[dict[str, Any]]:
    """Every trial of a tuning job (all pages): name, tuned hyperparameters, status, objective value (or None)."""
    params = {"HyperParameterTuningJobName": tuning_job_name, "MaxResults": PAGE_SIZE}
    summaries = (summary for page in client.pages("sagemaker", "ListTrainingJobsForHyperParameterTuningJob", params)
                 for summary in page.get("TrainingJobSummaries") or ())
    return [{"name": summary.get("TrainingJobName", ""),
             "hyperparameters": dict(summary.get("TunedHyperParameters") or {}),
             "status": summary.get("TrainingJobStatus", ""),
             "objective": _objective(summary)} for summary in summaries]


def _objective(summary: Mapping[str, Any]) -> float | None:
    metric = summary.get("FinalHyperParameterTuningJobObjectiveMetric") or {}
    return float(metric["Value"]) if "Value" in metric else None


def tuning_links(job_name: str, region: str, partition: str = "aws", endpoint_url: str | None = None,
                 embedded: Embedded | None = None) -> tuple[LogLink, ...]:
    """The tuning job's SageMaker console page; on a local SageMaker, the command that shows its status (one that
    needs no endpoint when that local SageMaker is `embedded` in a process, gone when it ends)."""
    if endpoint_url and embedded is not None:
        return (LogLink(LOCAL_STATUS, local_command(None, "status", job_name, "--region", region, *embedded.args())),)
    if endpoint_url:
        return (LogLink(LOCAL_STATUS, local_command(endpoint_url, "status", job_name, "--region", region)),)
    console = console_url(partition, region)
    return (LogLink("SageMaker Tuning Job",
                    f"{console}/sagemaker/home?region={region}#/hyper-tuning-jobs/{quote(job_name, safe='')}"),)


def register(registry: Any) -> None:
    """Entry point of group `sagemaker_plugin.plugins`: the tuning task type to the TuningJobPlugin."""
    for task_type in TuningJobPlugin.task_types:
        registry.register(task_type, TuningJobPlugin)

