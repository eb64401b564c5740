"""Forgetting the process's shared status trackers between tests (handlers/tracker.py's `tracker_for` keeps one per
endpoint and credentials for the life of a process; a test that plays SageMaker anew must not meet an earlier one).

Importable by name (`from trackers import clear_trackers`): tests/conftest.py puts tests/support on sys.path.
"""

from __future__ import annotations

from handlers import tracker


def clear_trackers() -> None:
    """Forget every shared tracker, as a new process would start; their event listeners stop (after the receive
    each may be waiting in, without a word)."""
    with tracker._TRACKERS_LOCK:  # the registry is the tracker module's own; only tests reset it
        for shared in tracker._TRACKERS.values():
            if shared.listener is not None:
                shared.listener.stop(timeout=0)
        tracker._TRACKERS.clear()
