"""Opaque page tokens of the local services: a JSON list behind a prefix, base64url without padding."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any


def encode(prefix: str, items: list[Any]) -> str:
    return prefix + base64.urlsafe_b64encode(json.dumps(items).encode()).decode().rstrip("=")


def decode(prefix: str, token: Any) -> list[Any] | None:
    """The list a token of ours carries, or None (not ours, or not readable): the caller answers as AWS does."""
    text = str(token)
    if not text.startswith(prefix):
        return None
    body = text[len(prefix):]
    try:
        value = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except (binascii.Error, ValueError, RecursionError):  # RecursionError: JSON nested deeper than the parser goes
        return None
    return value if isinstance(value, list) else None
