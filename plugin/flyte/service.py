"""The shared plugin of the registered connectors, and the connector service's start and checks."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from plugin.connectors.shared import (
    SERVED_TASK_TYPES,
    SHARED,
    SharedPlugin,
    configure,
    new_plugin,
    service_problems,
    start_checked_service,
)
from plugin.flyte import observe, serve

__all__ = ["SERVED_TASK_TYPES", "SHARED", "SharedPlugin", "configure", "new_plugin", "service_problems", "serving",
           "start_service"]


SERVICE_COMMANDS = ("connector", "agent")  # `pyflyte serve connector`, and its name before the rename


def serving(argv: Sequence[str] | None = None) -> bool:
    """Whether this process is flytekit's connector service (`pyflyte serve connector`), not a local run.

    flytekit imports this module through its `flytekit.plugins` entry point while `pyflyte` starts, before it parses
    its command line: that command line is the one sign of the service there is then. Local runs (`python wf.py`,
    `pyflyte run`) call the connector in-process through flytekit's AsyncConnectorExecutorMixin instead, and
    propeller's CreateTask, unlike that mixin, always carries the task execution metadata (see `create`).
    """
    args = list(sys.argv if argv is None else argv)
    if not args or not Path(args[0]).name.startswith(("pyflyte", "flyte")):
        return False
    words = args[1:]
    if "--help" in words or "-h" in words:
        return False
    return any(words[i] == "serve" and words[i + 1] in SERVICE_COMMANDS for i in range(len(words) - 1))


def start_service() -> None:
    """The connector service's start: load and check the config, say what is served, or exit with code 2."""
    start_checked_service(patch_service)


def patch_service() -> None:
    """flytekit's service made to pass GetTaskLogs/GetTaskMetrics' fields and to refuse unreadable CreateTasks."""
    observe.serve_requests()
    serve.guard_creates(SERVED_TASK_TYPES)
