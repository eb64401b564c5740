"""The AWS operation recorder, opt-in: `SAGEMAKER_PLUGIN_RECORD_OPS=/tmp/ops.txt pytest`.

While the variable names a file, every AWS operation the plugin performs is appended to it as `service:Operation`, and
at the end of the session each must be allowed by docs/iam-policy.json (tests/security/test_sec_iam_policy.py says
what each needs); otherwise the session fails and lists what is missing. Without the variable this file does nothing.

An operation the plugin performs is a `SageMakerClient.call` made from the plugin's code (handlers/, plugin/): tests'
own boto3 clients are never recorded, nor are a test's direct `client.call(...)`s for its own setup. In this process
a wrapper of `SageMakerClient.call` records them; subprocesses inherit the variable and record through the client's
own hook (handlers/client.py RECORD_OPS_ENV, read at import), which this process turns off for itself.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# Shared test helpers (tests/support/*.py) are plain modules: tests have no packages and run with
# --import-mode=importlib, so the folder goes on sys.path and test modules import them by name (`from aws_faults ...`).
SUPPORT = str(Path(__file__).parent / "support")
if SUPPORT not in sys.path:
    sys.path.insert(0, SUPPORT)

RECORD_ENV = "SAGEMAKER_PLUGIN_RECORD_OPS"
ROOT = Path(__file__).resolve().parents[1]
PLUGIN_CODE = tuple(str(ROOT / package) + os.sep for package in ("handlers", "plugin"))
POLICY_TEST = Path(__file__).parent / "security" / "test_sec_iam_policy.py"


def _called_from_plugin_code() -> bool:
    frame = sys._getframe(2)  # the caller of the wrapper
    while frame is not None:
        if frame.f_code.co_filename.startswith(PLUGIN_CODE):
            return True
        frame = frame.f_back  # type: ignore[assignment]
    return False


def pytest_configure(config: pytest.Config) -> None:
    record = os.environ.get(RECORD_ENV)
    if not record:
        return
    import handlers.client

    if hasattr(handlers.client, "_RECORD_OPS_FILE"):
        handlers.client._RECORD_OPS_FILE = None  # in this process the wrapper below records, tests' own calls apart
    original = handlers.client.SageMakerClient.call

    @functools.wraps(original)
    def call(self: Any, service: str, operation: str, **params: Any) -> Any:
        if _called_from_plugin_code():
            with open(record, "a", encoding="utf-8") as out:
                out.write(f"{service}:{operation}\n")
        return original(self, service, operation, **params)

    handlers.client.SageMakerClient.call = call  # type: ignore[method-assign]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    record = os.environ.get(RECORD_ENV)
    if not record or not Path(record).exists():
        return
    spec = importlib.util.spec_from_file_location("_recorded_ops_policy", POLICY_TEST)
    assert spec is not None and spec.loader is not None
    policy_test = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = policy_test  # its dataclasses look their module up there
    spec.loader.exec_module(policy_test)
    operations = Path(record).read_text(encoding="utf-8").split()
    missing = policy_test.uncovered(operations)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"{RECORD_ENV}: {len(operations)} AWS operations recorded "
                            f"({len(set(operations))} distinct), {len(missing)} not allowed by docs/iam-policy.json")
        for line in missing:
            reporter.write_line(f"  not allowed: {line}", red=True)
    if missing:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    """A plain moto server on loopback, one per test module: SageMaker as moto alone answers it."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()
