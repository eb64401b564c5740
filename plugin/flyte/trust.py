"""Kept for imports that predate plugin/connectors/: the trust checks are generation-neutral."""

from __future__ import annotations

from plugin.connectors.trust import endpoint_key, queued_request_problems, same_endpoint, trusted_meta

__all__ = ["endpoint_key", "queued_request_problems", "same_endpoint", "trusted_meta"]
