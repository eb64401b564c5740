"""A connector's resource meta: the plugin's own ResourceMeta, or why the task failed, as JSON.

Both generations' connectors hand this meta to Flyte and get it back; each subclasses it with its SDK's ResourceMeta.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import TypeVar

from handlers.errors import InputError
from plugin.meta import JsonRefusal, ResourceMeta, json_object

log = logging.getLogger(__name__)

UNREADABLE_META = "the SageMaker connector cannot read this task's resource meta"
UNTRUSTED_META = "the SageMaker connector will not follow this task's resource meta"
#: the largest meta read: Flyte keeps it in the task's custom resource, which etcd caps at 1.5 MiB
MAX_META_BYTES = 1024 * 1024

M = TypeVar("M", bound="JobMeta")


@dataclass
class JobMeta:
    """One training or tuning job's meta: `job`, or `error` when create found the task invalid.

    With `error`, get reports FAILED with every problem, so that Flyte fails the task for good (a user error) instead
    of retrying a create that cannot succeed. A meta that cannot be read (corrupt, empty, or from another version)
    decodes to such an error too: get then answers FAILED saying why, rather than a gRPC INTERNAL error that Flyte
    would retry as a system error.
    """

    job: ResourceMeta | None = None
    error: str = ""

    def encode(self) -> bytes:
        data = {"job": json.loads(self.job.encode()) if self.job is not None else None, "error": self.error}
        return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def decode(cls: type[M], data: bytes | str) -> M:
        try:
            return cls.parse(data)
        except InputError as error:
            log.warning("unreadable resource meta (%d bytes): %s", len(data), error)
            return cls(error=f"{UNREADABLE_META}: {error}. The task "
                       "cannot be followed; if a training job was started for it, find it in the SageMaker console "
                       "(named <project>-<domain>-<execution>-<node>-<attempt>) and stop it there if it still runs")

    @classmethod
    def parse(cls: type[M], data: bytes | str) -> M:
        """decode, strictly: InputError saying what is wrong when the meta cannot be read."""
        if not data:
            raise InputError("it is empty")
        if len(data) > MAX_META_BYTES:
            raise InputError(f"it is {len(data)} bytes long, more than the {MAX_META_BYTES} a meta of this connector "
                             "ever takes")
        value = json_object(data)
        not_a_meta = "it is not a JSON object with keys job and error (written by another connector?)"
        if isinstance(value, JsonRefusal):
            raise InputError(value.say(not_json="it is not JSON ({error})", not_object=not_a_meta,
                                       too_deep="it is nested too deeply to be a meta of this connector"))
        if set(value) != {"job", "error"}:
            raise InputError(not_a_meta)
        job, failure = value["job"], value["error"]
        if not isinstance(failure, str) or (job is None) == (not failure):
            raise InputError("it needs either a job or an error")
        try:
            return cls(job=ResourceMeta.decode(json.dumps(job)) if job is not None else None, error=failure)
        except InputError as error:  # e.g. written by another version of the plugin
            name = job.get("job_name") if isinstance(job, dict) else None
            raise InputError(f"its job{f' ({name})' if isinstance(name, str) else ''}: {error}") from None
