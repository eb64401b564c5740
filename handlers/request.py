"""The plugin's tags on a CreateTrainingJob request (plugin/jobs/mapping.py builds the request from the task).

The request carries a fingerprint tag so that a job found under the same name can be recognised as this
task's own (a create retried after a lost response, a restarted engine).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

TAG_PREFIX = "sagemaker-plugin:"
FINGERPRINT_TAG = TAG_PREFIX + "fingerprint"
STOPPED_BY_TAG = TAG_PREFIX + "stopped-by"
EXECUTION_TAGS = ("project", "domain", "name", "node_id", "retry_attempt")


def fingerprint(request: Mapping[str, Any]) -> str:
    """A hash of what the job does (tags aside): equal requests, equal fingerprints, in any process."""
    body = {k: v for k, v in request.items() if k != "Tags"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def tags_of(request_or_description: Mapping[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in request_or_description.get("Tags") or ()}


def described_fingerprint(description: Mapping[str, Any], members: Iterable[str]) -> str:
    """The fingerprint of the request a DescribeTrainingJob answer came from (for jobs whose tags are not at hand).

    `members` are the request members the create sets (plugin/jobs/mapping.py's REQUEST_MEMBERS, read from its table);
    Describe returns them unchanged.
    """
    return fingerprint({k: description[k] for k in members if k in description})
