"""Creates queued on quota, and aborts that must reach them: the state machine behind `get` and `delete`.

A create refused for quota (ResourceLimitExceeded) is queued in the job's meta; each `get` that finds no job retries
it, with the one retry policy's backoff (handlers/retry.py, slower: quotas clear in minutes), until
limits.resource_wait_seconds runs out. A `delete` of a queued job writes an abort mark in S3
(handlers/abort_marks.py) before it looks for the job, and a create from the queue looks for the mark after it
made the job, so that whichever process runs either half, one of the two sees the other. Stopping tags the job
first, so that every process reports ABORTED. The memos here are this process's own; the marks and tags are what
all processes share. Phases and messages come from handlers/status.py. Training and tuning jobs alike: what differs
is data (handlers/job_kinds.py).
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from handlers import abort_marks, telemetry
from handlers.client import SageMakerClient
from handlers.errors import AccessDenied, AwsError, InvalidRequest, NotFound, ResourceLimit
from handlers.job_kinds import TRAINING, JobKind
from handlers.polling import poll_until
from handlers.request import STOPPED_BY_TAG
from handlers.retry import RetrySettings
from handlers.status import Phase, Status, plugin_status
from plugin.config import Config
from plugin.meta import ResourceMeta

log = logging.getLogger(__name__)

#: how a create queued on quota is retried: no limit of attempts; the deadline is limits.resource_wait_seconds
QUEUE_RETRY = RetrySettings(attempts=sys.maxsize, backoff_seconds=5.0, max_backoff_seconds=60.0)
NOT_FOUND_RECHECK_SECONDS = 0.25

CreateOrAdopt = Callable[[SageMakerClient, Mapping[str, Any], str], tuple[str, bool]]


class CreateQueue:
    """One per plugin; thread-safe. `create_or_adopt` makes (or adopts) a job of `kind` from its request."""

    def __init__(self, config: Config, clock: Callable[[], float], create_or_adopt: CreateOrAdopt,
                 kind: JobKind = TRAINING) -> None:
        self.config = config
        self.kind = kind
        self._clock = clock
        self._create_or_adopt = create_or_adopt
        self._lock = threading.Lock()
        # When to retry a create refused for quota, jobs deleted while still queued (also marked in S3 for other
        # processes), and made jobs whose abort mark was already looked for.
        self._next_create: dict[str, tuple[int, float]] = {}
        self._created_late: dict[str, float] = {}
        self._cancelled: set[str] = set()
        self._mark_checked: set[str] = set()
        self._stopped_untagged: set[str] = set()  # stopped without leave to tag them: ABORTED here all the same
        self._marks_denied: set[str] = set()  # marks this identity may not look for: said once each
        self._waiting: set[str] = set()  # jobs queued on quota, as this process last saw them (a metric)

    # --- get ------------------------------------------------------------------------------------------------------

    def not_found(self, client: SageMakerClient, meta: ResourceMeta) -> Status:
        """The status of a job Describe cannot see: queued (a create to retry), not yet visible, or gone."""
        now = self._clock()
        created_at = meta.created_at
        if meta.queued:
            with self._lock:
                created_late = self._created_late.get(meta.job_name)
            if created_late is None:
                status = self._retry_queued(client, meta, now)
                self.set_waiting(meta.job_name, status.phase == Phase.WAITING_FOR_RESOURCES)
                return status
            created_at = created_late
        waited = now - created_at
        grace = self.config.tracking.not_found_grace_seconds
        if meta.queued:
            self.set_waiting(meta.job_name, False)
        if waited <= grace:
            return self._status("not-yet-visible", waited=waited)
        return self._status("not-found", job_name=meta.job_name, waited=waited, grace=grace)

    def found(self, client: SageMakerClient, meta: ResourceMeta, description: dict[str, Any]) -> dict[str, Any]:
        """A job Describe sees: a job made from the queue, perhaps by a process that could not see an abort, is
        looked at for its mark once (and stopped if marked); the description to report."""
        if not meta.queued:
            return description
        self.set_waiting(meta.job_name, False)
        if description.get(self.kind.status_member) != "InProgress":
            return description
        with self._lock:
            if meta.job_name in self._mark_checked:
                return description
        marked = self._marked(client, meta)  # an error here leaves it to be looked for on the next get
        with self._lock:
            self._mark_checked.add(meta.job_name)
        if marked and self.stop(client, meta, description):
            return self.kind.describe(client, meta.job_name)
        return description

    def _status(self, state: str, **details: Any) -> Status:
        return plugin_status(state, noun=self.kind.noun, describe=self.kind.describe_operation, **details)

    def stopped_untagged(self, job_name: str) -> bool:
        """Stopped by this process without leave to tag it: ABORTED here all the same."""
        with self._lock:
            return job_name in self._stopped_untagged

    def _retry_queued(self, client: SageMakerClient, meta: ResourceMeta, now: float) -> Status:
        """A create refused for quota: retry it with backoff until limits.resource_wait_seconds runs out."""
        name = meta.job_name
        with self._lock:
            if name in self._cancelled:
                return self._status("never-created")
            attempts, next_time = self._next_create.get(name, (0, 0.0))
        reason = meta.queued_message
        policy = replace(QUEUE_RETRY, deadline_seconds=self.config.limits.resource_wait_seconds)
        if policy.gives_up(attempts, now - meta.created_at):
            return self._status("resource-wait-exceeded", waited=now - meta.created_at, reason=reason)
        if now < next_time:
            return self._status("waiting-for-resources", reason=reason)
        assert meta.queued_request is not None
        if self._marked(client, meta):  # deleted by another process while queued
            with self._lock:
                self._cancelled.add(name)
            return self._status("never-created")
        try:
            self._create_or_adopt(client, meta.queued_request, meta.fingerprint)
        except ResourceLimit as error:
            delay = policy.delay(attempts + 1)
            if self.config.backend == "local":
                delay /= self.config.local.time_scale  # the local SageMaker's jobs run faster; so do its queues
            with self._lock:
                self._next_create[name] = (attempts + 1, now + delay)
            return self._status("waiting-for-resources", reason=str(error))
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
            return self._status("created-from-queue")
        made = replace(meta, queued_request=None, adopted=True, created_at=now)
        description = self.describe_soon(client, made, grace=None)
        if description is None:  # not visible yet: the first get that sees it looks for the mark again
            return self._status("created-from-queue-deleted")
        with self._lock:
            self._mark_checked.add(name)
        self.stop(client, meta, description)
        return self._status("created-from-queue-stopped")

    def _abort_mark(self, meta: ResourceMeta) -> abort_marks.AbortMark:
        assert meta.queued_request is not None
        return abort_marks.mark_for(meta.queued_request, meta.fingerprint, meta.created_at, self.kind)

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

    def cancel(self, client: SageMakerClient, meta: ResourceMeta) -> None:
        """Remember the abort here, and for a queued job mark it where every process looks before it creates."""
        with self._lock:
            self._cancelled.add(meta.job_name)
        self.set_waiting(meta.job_name, False)
        if not meta.queued:
            return
        mark = self._abort_mark(meta)
        details = {"job_name": meta.job_name, "fingerprint": meta.fingerprint, "created_at": meta.created_at,
                   "aborted_at": self._clock()}
        try:
            abort_marks.write(client, mark, details, create_bucket=self.config.backend == "local")
        except AwsError as error:
            raise type(error)(f"{meta.job_name}: cannot record the abort at {mark.uri}, where other processes "
                              f"look before they create the job (grant s3:PutObject on it, docs/iam-policy.json): "
                              f"{error}", error.code, error.operation) from None

    def stop(self, client: SageMakerClient, meta: ResourceMeta, description: Mapping[str, Any]) -> bool:
        """Tag the job as stopped by the plugin (so every process reports ABORTED) and stop it, if it runs.

        Without leave to tag, the job is stopped all the same: a job left running costs more than a phase that other
        processes then read as FAILED (stopped by someone else); this one remembers and reports ABORTED.
        """
        if description.get(self.kind.status_member) != "InProgress":
            return False
        try:
            client.add_tags(str(description[self.kind.arn_member]),
                            [{"Key": STOPPED_BY_TAG, "Value": "sagemaker-plugin"}])
        except AccessDenied as error:
            log.warning("%s: cannot tag the %s as stopped by the plugin (%s); stopping it anyway: other processes "
                        "will report it FAILED, not ABORTED (grant sagemaker:AddTags, docs/iam-policy.json)",
                        meta.job_name, self.kind.noun, error)
            with self._lock:
                self._stopped_untagged.add(meta.job_name)
        try:
            self.kind.stop(client, meta.job_name)
        except (InvalidRequest, NotFound) as error:
            log.info("%s: stop not needed: %s", meta.job_name, error)
        return True

    def describe_soon(self, client: SageMakerClient, meta: ResourceMeta, grace: float | None
                      ) -> dict[str, Any] | None:
        """Describe; a job created a moment ago may be invisible for a while: wait for it (within `grace`, default
        tracking.not_found_grace_seconds) rather than let an abort miss a job that is about to run."""
        grace = self.config.tracking.not_found_grace_seconds if grace is None else grace
        made = (meta.job_arn or meta.adopted) and not meta.queued
        timeout = min(grace, max(0.0, grace - (self._clock() - meta.created_at))) if made else 0.0  # never longer
        return poll_until(lambda: describe_or_none(client, meta.job_name, self.kind), lambda found: found is not None,
                          NOT_FOUND_RECHECK_SECONDS, timeout)

    def set_waiting(self, job_name: str, waiting: bool) -> None:
        with self._lock:
            change = (job_name not in self._waiting) if waiting else -(job_name in self._waiting)
            if waiting:
                self._waiting.add(job_name)
            else:
                self._waiting.discard(job_name)
        telemetry.waiting_for_quota(int(change))


def describe_or_none(client: SageMakerClient, job_name: str, kind: JobKind = TRAINING) -> dict[str, Any] | None:
    try:
        return kind.describe(client, job_name)
    except NotFound:
        return None

