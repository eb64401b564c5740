"""The AWS operation recorder, opt-in: while $SAGEMAKER_PLUGIN_RECORD_OPS names a file, every AWS operation the
plugin performs is appended to it as `service:Operation` (tests/security/test_iam_policy.py checks them against
docs/iam-policy.json).

It listens on botocore's `before-call` event, added to botocore's built-in handlers so that every session made
afterwards has it: the plugin's code knows nothing of it. An operation the plugin performs is a request sent by
`SageMakerClient.call` when the plugin's own code (handlers/, plugin/) asked for it: tests' own boto3 clients and a
test's direct `client.call(...)` are not recorded. A retry records its operation again (a request each).

The test session installs it from tests/conftest.py; its subprocesses from `SITE` (a sitecustomize.py that conftest
puts first on their PYTHONPATH).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

RECORD_ENV = "SAGEMAKER_PLUGIN_RECORD_OPS"
ROOT = Path(__file__).resolve().parents[2]
PLUGIN_CODE = tuple(str(ROOT / package) + os.sep for package in ("handlers", "plugin"))
#: a folder whose sitecustomize.py installs the recorder in any Python process started with it on PYTHONPATH
SITE = Path(__file__).parent / "record_ops_site"


def _asked_by_plugin_code() -> bool:
    """Whether SageMakerClient.call is on the stack, called (at any depth) from the plugin's own code."""
    from handlers.client import SageMakerClient

    call = SageMakerClient.call.__code__
    frame = sys._getframe(1)
    while frame is not None and frame.f_code is not call:
        frame = frame.f_back  # type: ignore[assignment]
    frame = frame.f_back if frame is not None else None  # type: ignore[assignment]
    while frame is not None:
        if frame.f_code.co_filename.startswith(PLUGIN_CODE):
            return True
        frame = frame.f_back  # type: ignore[assignment]
    return False


class Recorder:
    """A `before-call` handler that appends `service:Operation` to `path` (one short append: safe across
    processes)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __call__(self, model: Any, **_: Any) -> None:
        if _asked_by_plugin_code():
            with open(self.path, "a", encoding="utf-8") as out:
                out.write(f"{model.service_model.service_name}:{model.name}\n")


def installed() -> Recorder | None:
    import botocore.handlers

    return next((spec[1] for spec in botocore.handlers.BUILTIN_HANDLERS if isinstance(spec[1], Recorder)), None)


def install(path: str) -> Recorder:
    """Record into `path` in every botocore session made from now on (once per process)."""
    import botocore.handlers

    recorder = installed()
    if recorder is None:
        recorder = Recorder(path)
        botocore.handlers.BUILTIN_HANDLERS.append(("before-call", recorder))
    return recorder


def install_from_environment() -> Recorder | None:
    path = os.environ.get(RECORD_ENV)
    return install(path) if path else None


def subprocess_env(env: dict[str, str]) -> dict[str, str]:
    """`env` with SITE first on PYTHONPATH, so that a Python subprocess records too."""
    paths = [str(SITE), *(p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p != str(SITE))]
    return {**env, "PYTHONPATH": os.pathsep.join(paths)}
