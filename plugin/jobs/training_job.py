"""The TrainingJobPlugin: create, get and delete SageMaker training jobs for an engine.

Every method is safe to call again, from any process: create adopts the job it already made (a retried create, a
restarted engine); delete stops a job once and then has nothing to do. `get` reads SageMaker's state (through the
process's status tracker) and the persisted meta, and also moves the job's own state machine on
(plugin/jobs/create_queue.py): it retries a create queued on quota, looks once for an abort mark in S3 that another
process's delete left, and then tags and stops the job it made. So `get` may write, but only what an abort or a
queued create already asked for.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from handlers import uploads
from handlers.client import SageMakerClient
from handlers.errors import (
    InputError,
    NameInUse,
    NotFound,
    Problem,
    ResourceLimit,
)
from handlers.job_kinds import TRAINING, JobKind
from handlers.request import FINGERPRINT_TAG, STOPPED_BY_TAG, described_fingerprint, tags_of
from handlers.status import Phase, Status
from handlers.tracker import StatusTracker, tracker_for
from handlers.tracker_events import EventSettings, listen
from image_registry import ImageRegistry
from plugin import embedded
from plugin.config import Config, load_config
from plugin.embedded import own_server
from plugin.jobs.attempts import Holder, NameTaken
from plugin.jobs.create_queue import CreateQueue
from plugin.jobs.mapping import REQUEST_MEMBERS
from plugin.jobs.pipeline import Rendered
from plugin.jobs.requests import check, render
from plugin.jobs.resource import LogLink, Resource, log_links, outputs_of
from plugin.meta import ResourceMeta
from plugin.task import BUILTIN_TASK, CUSTOM_TASK, Task

log = logging.getLogger(__name__)



class TrainingJobPlugin:
    """One per engine (or per config); thread-safe; holds one client per region, built on first use.

    `status_messages=True` gives every secondary status its StatusMessage in `get`'s message, as `run` shows it
    (the status tracker then describes a job once more per status it passes through); otherwise a status the
    tracker's sweeps saw comes bare until the job ends.
    With the local backend and no endpoint named, it uses this process's own local SageMaker, started on first use
    (plugin/embedded.py); `embedded=False` (a served connector) uses one only if something else started it.
    """

    task_types: tuple[str, ...] = (BUILTIN_TASK, CUSTOM_TASK)
    metadata_type = ResourceMeta
    #: what this plugin creates (its name in messages, its members and operations in SageMaker's answers)
    kind: JobKind = TRAINING
    wrong_task = "a tuning task goes to the tuning plugin: registry.get(\"sagemaker_hyperparameter_tuning_job_task\")"

    def __init__(self, config: Config | None = None, *, client: SageMakerClient | None = None,
                 images: ImageRegistry | None = None, clock: Callable[[], float] = time.time,
                 status_messages: bool = False, embedded: bool = True) -> None:
        self.config = config if config is not None else load_config()
        self.status_messages = status_messages
        self.embedded = embedded
        self._images = images
        self._clock = clock
        self._lock = threading.Lock()
        self._clients: dict[tuple[str, str | None], SageMakerClient] = {}
        if client is not None:
            self._clients[(client.region, client.endpoint_url)] = client
        self._queue = CreateQueue(self.config, clock, self._create_or_adopt, self.kind)
        #: how later commands find this plugin's jobs when its local SageMaker lives (and dies) in this process
        self._own_server = own_server(self.config)

    # --- clients --------------------------------------------------------------------------------------------------

    def client(self, region: str | None = None, endpoint_url: str | None = None) -> SageMakerClient:
        region = region or self.config.region
        endpoint_url = endpoint_url if endpoint_url is not None else self.config.endpoint_url()
        if self.config.backend == "local" and not endpoint_url:
            endpoint_url = embedded.process_endpoint(self.config, start=self.embedded)
        if self.config.backend == "local" and not endpoint_url:
            raise embedded.no_local_sagemaker()
        key = (region, endpoint_url)
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = SageMakerClient(self.config.client_settings(endpoint_url=endpoint_url, region=region))
                self._clients[key] = client
            return client

    def _client_for(self, meta: ResourceMeta, following: bool = False) -> SageMakerClient:
        """The job's client; `following` the job to its end, its reads retry until the deadline."""
        client = self.client(meta.region, meta.endpoint_url)
        return client.following() if following else client

    # --- create ---------------------------------------------------------------------------------------------------

    def render(self, task: Task | Mapping[str, Any], ignore_unknown: bool = False) -> Rendered:
        """The request for a Task, or for a dict in task-file form (read and render problems reported together;
        `ignore_unknown`: TrainingJob fields this version does not know are left out, as from newer producers)."""
        if isinstance(task, Task):
            return render(task, self.config, registry=self._images)
        return check(task, self.config, registry=self._images, ignore_unknown=ignore_unknown)[1]

    def create(self, task: Task | Mapping[str, Any], ignore_unknown: bool = False) -> ResourceMeta:
        """Validate, render, upload local inputs (local backend), create the job; adopt our own job if it exists."""
        rendered = self.render(task, ignore_unknown=ignore_unknown)
        if rendered.kind != self.kind:
            raise InputError(Problem("task_type", self.wrong_task))
        for warning in rendered.warnings:
            log.warning("%s: %s", rendered.job_name, warning)
        return self.create_rendered(rendered)

    def create_rendered(self, rendered: Rendered) -> ResourceMeta:
        """create, for a request already rendered (the caller then knows the job name before the call)."""
        request = rendered.request
        client = self.client(rendered.region)
        for item in rendered.uploads:
            uploads.upload(client, item.local_path, item.s3_uri)
        meta = ResourceMeta(job_name=rendered.job_name, region=rendered.region, created_at=self._clock(),
                            fingerprint=tags_of(request)[FINGERPRINT_TAG], endpoint_url=client.endpoint_url)
        try:
            arn, adopted = self._create_or_adopt(client, request, meta.fingerprint)
        except ResourceLimit as error:
            log.info("%s: %s; queued until capacity frees", meta.job_name, error)
            self._queue.set_waiting(meta.job_name, True)
            return replace(meta, queued_request=request, queued_message=str(error))
        except NotFound:
            # The name is taken (a lost response's retry met ResourceInUse) but Describe cannot see the job yet:
            # it was made a moment ago, by this very call. get() reports QUEUED until it shows.
            log.warning("%s: created, not yet visible to DescribeTrainingJob", meta.job_name)
            return replace(meta, adopted=True)
        return replace(meta, job_arn=arn, adopted=adopted)

    def _create_or_adopt(self, client: SageMakerClient, request: Mapping[str, Any], fingerprint: str
                         ) -> tuple[str, bool]:
        """(ARN, whether an existing job was adopted)."""
        name = str(request[self.kind.name_member])
        try:
            arn = self.kind.create(client, request)
        except NameInUse:
            return self._adopt(client, name, fingerprint), True
        self._created(client, name, arn)
        return arn, False

    def _created(self, client: SageMakerClient, name: str, arn: str) -> None:
        """A job just made: the tracker serves its first get without a Describe."""
        if self._sweep_interval() > 0:
            self._tracker(client).created(name, arn)

    def _adopt(self, client: SageMakerClient, name: str, fingerprint: str) -> str:
        """The ARN of the job already named `name` if this task made it, else an error naming the conflict."""
        arn, theirs = self._fingerprint_of(client, self._describe_job(client, name))
        if theirs != fingerprint:
            raise NameTaken(self.kind.noun, name, arn)
        log.info("%s: adopted the existing %s made by this task", name, self.kind.noun)
        return arn

    def name_holder(self, client: SageMakerClient, name: str, fingerprint: str) -> Holder:
        """Who holds `name`: nobody, the job of the request with `fingerprint`, or another job."""
        try:
            description = self._describe_job(client, name)
        except NotFound:
            return Holder.FREE
        return Holder.OURS if self._fingerprint_of(client, description)[1] == fingerprint else Holder.THEIRS

    def _fingerprint_of(self, client: SageMakerClient, description: Mapping[str, Any]) -> tuple[str, str | None]:
        """(ARN, fingerprint) of a described job: its tag, else (a job whose tags lack it) from its description."""
        arn = str(description[self.kind.arn_member])
        return arn, (tags_of({"Tags": client.list_tags(arn)}).get(FINGERPRINT_TAG)
                     or self._described_fingerprint(description))

    def _describe_job(self, client: SageMakerClient, name: str) -> dict[str, Any]:
        return self.kind.describe(client, name)

    def _described_fingerprint(self, description: Mapping[str, Any]) -> str | None:
        """The fingerprint of a job whose tags do not carry it (tags cannot be read), from its description."""
        return described_fingerprint(description, REQUEST_MEMBERS)

    # --- get ------------------------------------------------------------------------------------------------------

    def get(self, meta: ResourceMeta) -> Resource:
        """The job's phase, message, outputs (on SUCCEEDED) and log links. An engine's get follows the job `create`
        made: its reads ride out throttling and 5xx until `retry.deadline_seconds` (`following`)."""
        return self.get_with_description(meta, following=True)[0]

    def get_with_description(self, meta: ResourceMeta, fresh: bool = False, following: bool = False
                             ) -> tuple[Resource, dict[str, Any] | None]:
        """get, plus the Describe answer it came from (None while the job does not exist).

        Answers come from the process's shared status tracker (one ListTrainingJobs sweep for all jobs, a Describe
        only when a job ends); `fresh` asks SageMaker directly, for a caller that follows one job closely.
        `following`: the caller follows the job to its end (its reads retry until the deadline, see
        `SageMakerClient.following`); else a person waits for this one answer, and a read stops at the attempt cap.
        """
        client = self._client_for(meta, following)
        try:
            description = self._read(client, meta.job_name, fresh)
        except NotFound:
            status = self._queue.not_found(client, meta)
            links = self.links(meta, client, status.phase) if not meta.queued else ()
            return Resource(status.phase, status.message, log_links=links), None
        description = self._queue.found(client, meta, description)
        status = self._status(client, description)
        outputs = self.outputs(client, description) if status.phase == Phase.SUCCEEDED else {}
        if status.phase.is_terminal:
            self._forget(client, meta.job_name)
        return Resource(status.phase, status.message, outputs, self.links(meta, client, status.phase)), description

    def links(self, meta: ResourceMeta, client: SageMakerClient, phase: Phase) -> tuple[LogLink, ...]:
        """The job's log links; on a local SageMaker of this process's own, those that outlast it."""
        return log_links(meta.job_name, meta.region, client.partition, client.endpoint_url, self._own_server,
                         running=not phase.is_terminal)

    def outputs(self, client: SageMakerClient, description: Mapping[str, Any]) -> dict[str, Any]:
        """What a SUCCEEDED job hands on: the model and the final metrics."""
        return outputs_of(description)

    def _read(self, client: SageMakerClient, name: str, fresh: bool) -> dict[str, Any]:
        """The job's description: from the process's shared status tracker (one ListTrainingJobs sweep for all
        jobs), or asked of SageMaker when `fresh`."""
        return self._describe_job(client, name) if fresh else self._tracker(client).describe(name)

    def _forget(self, client: SageMakerClient, name: str) -> None:
        self._tracker(client).forget(name)  # reported: a later get describes it afresh

    def _tracker(self, client: SageMakerClient) -> StatusTracker:
        events = self.events_settings()
        return tracker_for(client, self._sweep_interval(), messages=self.status_messages,
                           events=listen(client, events) if events is not None else None)

    def events_settings(self) -> EventSettings | None:
        """tracking.events, its durations on the local SageMaker's clock (which runs faster)."""
        events = self.config.tracking.events
        if events is None or self.config.backend != "local":
            return events
        scale = self.config.local.time_scale
        return replace(events, sweep_interval_seconds=events.sweep_interval_seconds / scale,
                       max_silence_seconds=events.max_silence_seconds / scale)

    def _status(self, client: SageMakerClient, description: Mapping[str, Any]) -> Status:
        """The job's phase; a stopped job is ABORTED when this plugin stopped it (its tag, or this process's memo
        of a stop whose tag could not be written)."""
        stopped_by_plugin = False
        if self.kind.stopped(description):
            stopped_by_plugin = self._queue.stopped_untagged(str(description.get(self.kind.name_member)))
            if not stopped_by_plugin:
                tags = tags_of({"Tags": client.list_tags(str(description[self.kind.arn_member]))})
                stopped_by_plugin = STOPPED_BY_TAG in tags
        return self.kind.phase(description, stopped_by_plugin)

    # --- delete ---------------------------------------------------------------------------------------------------

    def delete(self, meta: ResourceMeta, grace_seconds: float | None = None) -> None:
        """Stop the job, marking it as stopped by the plugin so that any process reports ABORTED.

        A job created less than `grace_seconds` (default: tracking.not_found_grace_seconds) ago that Describe cannot
        see yet is waited for, so that the abort does not miss it. A queued job's abort is marked in S3 first, where
        any process that may still create it looks (plugin/jobs/create_queue.py).
        """
        client = self._client_for(meta)
        self._queue.cancel(client, meta)
        description = self._queue.describe_soon(client, meta, grace_seconds)
        if description is not None:
            self._queue.stop(client, meta, description)

    def _sweep_interval(self) -> float:
        interval = self.config.tracking.sweep_interval_seconds
        if self.config.backend == "local":
            interval /= self.config.local.time_scale  # the local SageMaker's clock runs faster
        return interval


def register(registry: Any) -> None:
    """Entry point of group `sagemaker_plugin.plugins`: both task types to the TrainingJobPlugin."""
    for task_type in TrainingJobPlugin.task_types:
        registry.register(task_type, TrainingJobPlugin)
