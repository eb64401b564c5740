"""The TrainingJobPlugin: create, get and delete SageMaker training jobs for an engine (SPEC 5).

Every method is safe to call again, from any process: create adopts the job it already made (a retried create, a
restarted engine), get is a pure read of SageMaker's state plus the persisted meta, delete stops a job once and then
has nothing to do.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from handlers import abort_marks, telemetry, uploads
from handlers.client import SageMakerClient
from handlers.errors import (
    AccessDenied,
    AwsError,
    InputError,
    InvalidRequest,
    NameInUse,
    NotFound,
    Problem,
    ResourceLimit,
)
from handlers.request import FINGERPRINT_TAG, STOPPED_BY_TAG, described_fingerprint, tags_of
from handlers.status import Phase, Status, phase_of
from handlers.tracker import tracker_for
from image_registry import ImageRegistry
from plugin.config import Config, load_config
from plugin.meta import ResourceMeta
from plugin.render import LOCAL_OUTPUT_PREFIX, Rendered, check, render
from plugin.resource import Resource, log_links, outputs_of
from plugin.task import BUILTIN_TASK, CUSTOM_TASK, Task

LOCAL_BUCKET = uploads.split_s3_uri(LOCAL_OUTPUT_PREFIX)[0]

log = logging.getLogger(__name__)

QUEUE_BACKOFF_SECONDS = 5.0
QUEUE_BACKOFF_MAX_SECONDS = 60.0
NOT_FOUND_RECHECK_SECONDS = 0.25


class TrainingJobPlugin:
    """One per engine (or per config); thread-safe; holds one client per region, built on first use.

    `status_messages=True` gives every secondary status its StatusMessage in `get`'s message, as `run` shows it
    (the status tracker then describes a job once more per status it passes through); otherwise a status the
    tracker's sweeps saw comes bare until the job ends.
    """

    task_types = (BUILTIN_TASK, CUSTOM_TASK)
    metadata_type = ResourceMeta

    def __init__(self, config: Config | None = None, *, client: SageMakerClient | None = None,
                 images: ImageRegistry | None = None, clock: Callable[[], float] = time.time,
                 status_messages: bool = False) -> None:
        self.config = config if config is not None else load_config()
        self.status_messages = status_messages
        self._images = images
        self._clock = clock
        self._lock = threading.Lock()
        self._clients: dict[tuple[str, str | None], SageMakerClient] = {}
        if client is not None:
            self._clients[(client.region, client.endpoint_url)] = client
        # In-process memos: when to retry a create refused for quota, jobs deleted while still queued (also marked
        # in S3 for other processes: handlers/abort_marks.py), and made jobs whose abort mark was already looked for.
        self._next_create: dict[str, tuple[int, float]] = {}
        self._created_late: dict[str, float] = {}
        self._cancelled: set[str] = set()
        self._mark_checked: set[str] = set()
        self._stopped_untagged: set[str] = set()  # stopped without leave to tag them: ABORTED here all the same
        self._marks_denied: set[str] = set()  # marks this identity may not look for: said once each
        self._waiting: set[str] = set()  # jobs queued on quota, as this process last saw them (a metric)

    # --- clients --------------------------------------------------------------------------------------------------

    def client(self, region: str | None = None, endpoint_url: str | None = None) -> SageMakerClient:
        region = region or self.config.region
        endpoint_url = endpoint_url if endpoint_url is not None else self.config.endpoint_url()
        if self.config.backend == "local" and not endpoint_url:
            raise InputError(Problem("local.endpoint_url", "the local backend needs a running local SageMaker: start "
                                     "one with `sagemaker-plugin local serve` and set local.endpoint_url or "
                                     "$SAGEMAKER_PLUGIN_ENDPOINT_URL (or use `sagemaker-plugin run`, which starts "
                                     "one)"))
        key = (region, endpoint_url)
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = SageMakerClient(self.config.client_settings(endpoint_url=endpoint_url, region=region))
                self._clients[key] = client
            return client

    def _client_for(self, meta: ResourceMeta) -> SageMakerClient:
        return self.client(meta.region, meta.endpoint_url)

    # --- create ---------------------------------------------------------------------------------------------------

    def render(self, task: Task | Mapping[str, Any]) -> Rendered:
        """The request for a Task, or for a dict in task-file form (read and render problems reported together)."""
        if isinstance(task, Task):
            return render(task, self.config, registry=self._images)
        return check(task, self.config, registry=self._images)[1]

    def create(self, task: Task | Mapping[str, Any]) -> ResourceMeta:
        """Validate, render, upload local inputs (local backend), CreateTrainingJob; adopt our own job if it exists."""
        return self.create_rendered(self.render(task))

    def create_rendered(self, rendered: Rendered) -> ResourceMeta:
        """create, for a request already rendered (the caller then knows the job name before the call)."""
        request = rendered.request
        client = self.client(rendered.region)
        for item in rendered.uploads:
            uploads.upload(client, item.local_path, item.s3_uri)
        bucket = uploads.split_s3_uri(str(request["OutputDataConfig"]["S3OutputPath"]))[0]
        if self.config.backend == "local" and bucket == LOCAL_BUCKET and not rendered.uploads:
            # SageMaker never creates buckets (a job writing to a missing one fails); the local S3 starts empty, so
            # the plugin makes its own default output bucket, as uploads of local inputs do.
            uploads.ensure_bucket(client, bucket)
        meta = ResourceMeta(job_name=rendered.job_name, region=rendered.region, created_at=self._clock(),
                            fingerprint=tags_of(request)[FINGERPRINT_TAG], endpoint_url=client.endpoint_url)
        try:
            arn, adopted = self._create_or_adopt(client, request, meta.fingerprint)
        except ResourceLimit as error:
            log.info("%s: %s; queued until capacity frees", meta.job_name, error)
            self._set_waiting(meta.job_name, True)
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
        try:
            return str(client.create_training_job(request)["TrainingJobArn"]), False
        except NameInUse:
            return self._adopt(client, str(request["TrainingJobName"]), fingerprint), True

    def _adopt(self, client: SageMakerClient, name: str, fingerprint: str) -> str:
        """The ARN of the job already named `name` if this task made it, else an error naming the conflict."""
        description = client.describe_training_job(name)
        arn = str(description["TrainingJobArn"])
        theirs = tags_of({"Tags": client.list_tags(arn)}).get(FINGERPRINT_TAG) or described_fingerprint(description)
        if theirs != fingerprint:
            raise InputError(Problem("job_name", f"a different training job named {name!r} already exists ({arn}); "
                                     "names are unique per account and region for good: choose another job_name "
                                     "or execution identity"))
        log.info("%s: adopted the existing job made by this task", name)
        return arn

    # --- get ------------------------------------------------------------------------------------------------------

    def get(self, meta: ResourceMeta) -> Resource:
        """The job's phase, message, outputs (on SUCCEEDED) and log links."""
        return self.get_with_description(meta)[0]

    def get_with_description(self, meta: ResourceMeta, fresh: bool = False
                             ) -> tuple[Resource, dict[str, Any] | None]:
        """get, plus the DescribeTrainingJob answer it came from (None while the job does not exist).

        Answers come from the process's shared status tracker (one ListTrainingJobs sweep for all jobs, a Describe
        only when a job ends); `fresh` asks SageMaker directly, for a caller that follows one job closely.
        """
        client = self._client_for(meta)
        links = log_links(meta.job_name, meta.region, client.partition)
        tracker = tracker_for(client, self._sweep_interval(), messages=self.status_messages)
        try:
            description = client.describe_training_job(meta.job_name) if fresh else tracker.describe(meta.job_name)
        except NotFound:
            phase, message = self._not_found(client, meta)
            if meta.queued:
                self._set_waiting(meta.job_name, phase == Phase.WAITING_FOR_RESOURCES)
            return Resource(phase, message, log_links=links if not meta.queued else ()), None
        if meta.queued:
            self._set_waiting(meta.job_name, False)
        if meta.queued and description.get("TrainingJobStatus") == "InProgress":
            description = self._abort_if_marked(client, meta, description)
        status = self._status(client, description)
        outputs = outputs_of(description) if status.phase == Phase.SUCCEEDED else {}
        if status.phase.is_terminal:
            tracker.forget(meta.job_name)  # reported: a later get describes it afresh
        return Resource(status.phase, status.message, outputs, links), description

    def _status(self, client: SageMakerClient, description: Mapping[str, Any]) -> Status:
        stopped_by_plugin = False
        if description.get("TrainingJobStatus") == "Stopped" and description.get("SecondaryStatus") == "Stopped":
            with self._lock:
                stopped_by_plugin = description.get("TrainingJobName") in self._stopped_untagged
            if not stopped_by_plugin:
                tags = tags_of({"Tags": client.list_tags(str(description["TrainingJobArn"]))})
                stopped_by_plugin = STOPPED_BY_TAG in tags
        return phase_of(description, stopped_by_plugin)

    def _not_found(self, client: SageMakerClient, meta: ResourceMeta) -> tuple[Phase, str]:
        now = self._clock()
        created_at = meta.created_at
        if meta.queued:
            with self._lock:
                created_late = self._created_late.get(meta.job_name)
            if created_late is None:
                return self._retry_queued(client, meta, now)
            created_at = created_late
        waited = now - created_at
        grace = self.config.tracking.not_found_grace_seconds
        if waited <= grace:
            return Phase.QUEUED, f"created {waited:.0f} s ago; not yet visible to DescribeTrainingJob"
        return Phase.FAILED, (f"training job {meta.job_name} not found {waited:.0f} s after it was created "
                              f"(grace {grace:.0f} s): it was deleted, or created in another account or region")

    def _retry_queued(self, client: SageMakerClient, meta: ResourceMeta, now: float) -> tuple[Phase, str]:
        """A create refused for quota: retry it with backoff until limits.resource_wait_seconds runs out."""
        name = meta.job_name
        never_made = (Phase.ABORTED, "deleted while waiting for resources; the job was never created")
        with self._lock:
            if name in self._cancelled:
                return never_made
            attempts, next_time = self._next_create.get(name, (0, 0.0))
        message = meta.queued_message
        if now - meta.created_at > self.config.limits.resource_wait_seconds:
            return Phase.FAILED, (f"waited {now - meta.created_at:.0f} s for resources "
                                  f"(limits.resource_wait_seconds): {message}")
        if now < next_time:
            return Phase.WAITING_FOR_RESOURCES, message
        assert meta.queued_request is not None
        if self._marked(client, meta):  # deleted by another process while queued
            with self._lock:
                self._cancelled.add(name)
            return never_made
        try:
            self._create_or_adopt(client, meta.queued_request, meta.fingerprint)
        except ResourceLimit as error:
            delay = min(QUEUE_BACKOFF_MAX_SECONDS, QUEUE_BACKOFF_SECONDS * 2**attempts) * random.uniform(0.5, 1.0)
            if self.config.backend == "local":
                delay /= self.config.local.time_scale  # the local SageMaker's jobs run faster; so do its queues
            with self._lock:
                self._next_create[name] = (attempts + 1, now + delay)
            return Phase.WAITING_FOR_RESOURCES, str(error)
        except NotFound:
            pass  # the name is taken but Describe cannot see the job yet: it was just created
        with self._lock:
            self._next_create.pop(name, None)
            self._created_late[name] = now
        # A delete elsewhere may have marked the abort while this create was on its way, and missed the job: the mark
        # is written before that delete looks for the job, so one of the two always sees the other.
        if not self._marked(client, meta):
            with self._lock:
                self._mark_checked.add(name)
            return Phase.QUEUED, "created after waiting for resources"
        made = replace(meta, queued_request=None, adopted=True, created_at=now)
        description = self._describe_soon(client, made, grace=None)
        if description is None:  # not visible yet: the first get that sees it looks for the mark again
            return Phase.QUEUED, "created after waiting for resources; deleted meanwhile, to be stopped once visible"
        with self._lock:
            self._mark_checked.add(name)
        self._stop(client, meta, description)
        return Phase.QUEUED, "created after waiting for resources, then stopped: it was deleted meanwhile"

    def _abort_if_marked(self, client: SageMakerClient, meta: ResourceMeta, description: dict[str, Any]
                         ) -> dict[str, Any]:
        """A job made from the queue, perhaps by a process that could not see an abort: look for the mark once."""
        with self._lock:
            if meta.job_name in self._mark_checked:
                return description
        marked = self._marked(client, meta)  # an error here leaves it to be looked for on the next get
        with self._lock:
            self._mark_checked.add(meta.job_name)
        if marked and self._stop(client, meta, description):
            return client.describe_training_job(meta.job_name)
        return description

    def _abort_mark(self, meta: ResourceMeta) -> abort_marks.AbortMark:
        assert meta.queued_request is not None
        return abort_marks.mark_for(meta.queued_request, meta.fingerprint, meta.created_at)

    def _marked(self, client: SageMakerClient, meta: ResourceMeta) -> bool:
        mark = self._abort_mark(meta)
        try:
            return abort_marks.is_marked(client, mark)
        except AccessDenied as error:
            with self._lock:
                first = mark.key not in self._marks_denied
                self._marks_denied.add(mark.key)
            log.log(logging.WARNING if first else logging.DEBUG,
                    "%s: cannot look for the abort mark %s (%s): an abort from another process is not seen; "
                    "grant s3:ListBucket on it (docs/iam-policy.json)", meta.job_name, mark.uri, error)
            return False

    # --- delete ---------------------------------------------------------------------------------------------------

    def delete(self, meta: ResourceMeta, grace_seconds: float | None = None) -> None:
        """Stop the job, marking it as stopped by the plugin so that any process reports ABORTED.

        A job created less than `grace_seconds` (default: tracking.not_found_grace_seconds) ago that Describe cannot
        see yet is waited for, so that the abort does not miss it.
        """
        with self._lock:
            self._cancelled.add(meta.job_name)
        self._set_waiting(meta.job_name, False)
        client = self._client_for(meta)
        if meta.queued:
            # Any process may still make the job from the queue: record the abort where all of them look, before
            # looking for the job (see _retry_queued for the other half).
            mark = self._abort_mark(meta)
            details = {"job_name": meta.job_name, "fingerprint": meta.fingerprint, "created_at": meta.created_at,
                       "aborted_at": self._clock()}
            try:
                abort_marks.write(client, mark, details, create_bucket=self.config.backend == "local")
            except AwsError as error:
                raise type(error)(f"{meta.job_name}: cannot record the abort at {mark.uri}, where other processes "
                                  f"look before they create the job (grant s3:PutObject on it, docs/iam-policy.json): "
                                  f"{error}", error.code, error.operation) from None
        description = self._describe_soon(client, meta, grace_seconds)
        if description is not None:
            self._stop(client, meta, description)

    def _stop(self, client: SageMakerClient, meta: ResourceMeta, description: Mapping[str, Any]) -> bool:
        """Tag the job as stopped by the plugin (so every process reports ABORTED) and stop it, if it runs.

        Without leave to tag, the job is stopped all the same: a job left running costs more than a phase that other
        processes then read as FAILED (stopped by someone else); this one remembers and reports ABORTED.
        """
        if description.get("TrainingJobStatus") != "InProgress":
            return False
        try:
            client.add_tags(str(description["TrainingJobArn"]), [{"Key": STOPPED_BY_TAG, "Value": "sagemaker-plugin"}])
        except AccessDenied as error:
            log.warning("%s: cannot tag the job as stopped by the plugin (%s); stopping it anyway: other processes "
                        "will report it FAILED, not ABORTED (grant sagemaker:AddTags, docs/iam-policy.json)",
                        meta.job_name, error)
            with self._lock:
                self._stopped_untagged.add(meta.job_name)
        try:
            client.stop_training_job(meta.job_name)
        except (InvalidRequest, NotFound) as error:
            log.info("%s: stop not needed: %s", meta.job_name, error)
        return True

    def _set_waiting(self, job_name: str, waiting: bool) -> None:
        with self._lock:
            change = (job_name not in self._waiting) if waiting else -(job_name in self._waiting)
            if waiting:
                self._waiting.add(job_name)
            else:
                self._waiting.discard(job_name)
        telemetry.waiting_for_quota(int(change))

    def _sweep_interval(self) -> float:
        interval = self.config.tracking.sweep_interval_seconds
        if self.config.backend == "local":
            interval /= self.config.local.time_scale  # the local SageMaker's clock runs faster
        return interval

    def _describe_soon(self, client: SageMakerClient, meta: ResourceMeta, grace: float | None
                       ) -> dict[str, Any] | None:
        """Describe; a job created a moment ago may be invisible for a while: wait for it (within `grace`, default
        tracking.not_found_grace_seconds) rather than let an abort miss a job that is about to run."""
        grace = self.config.tracking.not_found_grace_seconds if grace is None else grace
        made = (meta.job_arn or meta.adopted) and not meta.queued
        deadline = time.monotonic() + max(0.0, grace - (self._clock() - meta.created_at)) if made else 0.0
        while True:
            try:
                return client.describe_training_job(meta.job_name)
            except NotFound:
                if time.monotonic() >= deadline:
                    return None
                time.sleep(NOT_FOUND_RECHECK_SECONDS)


def register(registry: Any) -> None:
    """Entry point of group `sagemaker_plugin.plugins`: both task types to the TrainingJobPlugin."""
    for task_type in TrainingJobPlugin.task_types:
        registry.register(task_type, TrainingJobPlugin)
