"""Training job names: deterministic per execution attempt, always valid for SageMaker.

The same identity must always give the same name (so a retried or restarted create finds its own job), and another
attempt another name. The limits (63 characters, the alphabet) come from the service model.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable
from datetime import datetime, timezone

from handlers.service_model import member_shape

_OUTSIDE_ALPHABET = re.compile(r"[^a-zA-Z0-9-]+")
_DASHES = re.compile(r"-{2,}")
_HASH_CHARS = 8


def max_name_length(operation: str = "CreateTrainingJob", member: str = "TrainingJobName") -> int:
    """The longest name the service model allows for `member` of `operation` (a tuning job's is shorter)."""
    return int(member_shape(operation, member).metadata["max"])


def sanitize(text: str) -> str:
    """Characters outside [a-zA-Z0-9-] become '-', runs of '-' collapse, no '-' at either end."""
    return _DASHES.sub("-", _OUTSIDE_ALPHABET.sub("-", text)).strip("-")


def name_from_identity(parts: Iterable[str], limit: int | None = None) -> str:
    """`<project>-<domain>-<name>-<node_id>-<retry_attempt>`, cut with a hash of the full identity when too long."""
    parts = list(parts)
    name = sanitize("-".join(parts))
    limit = limit or max_name_length()
    if len(name) > limit or not name:
        digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:_HASH_CHARS]
        head = name[: limit - _HASH_CHARS - 1].rstrip("-")
        name = f"{head}-{digest}" if head else f"job-{digest}"
    return name


def unique_name(base: str, now: datetime | None = None, limit: int | None = None) -> str:
    """`<base>-<UTC yyyymmdd-HHMMSS>-<4 random hex>` for a task with no identity."""
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%d-%H%M%S")
    suffix = f"-{stamp}-{secrets.token_hex(2)}"
    head = sanitize(base)[: (limit or max_name_length()) - len(suffix)].rstrip("-") or "job"
    return head + suffix


def image_base_name(image: str) -> str:
    """The repository name of an image URI: `123.dkr.ecr.../team/trainer:1.0` -> `trainer`."""
    repository = image.rsplit("@", 1)[0]
    last = repository.rsplit("/", 1)[-1]
    return last.split(":", 1)[0] or "training"
