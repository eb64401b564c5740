"""The AWS operation recorder, opt-in: `SAGEMAKER_PLUGIN_RECORD_OPS=/tmp/ops.txt pytest`.

While the variable names a file, every AWS operation the plugin performs is appended to it as `service:Operation`
(tests/support/record_ops.py, on botocore's `before-call` event, in this process and in its Python subprocesses), and
at the end of the session each must be allowed by docs/iam-policy.json (tests/security/test_iam_policy.py says
what each needs); otherwise the session fails and lists what is missing. Without the variable this file does nothing.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # the fixtures below import these when a module first asks for them, never at collection
    import boto3

    from local_sagemaker import LocalSageMaker
    from local_sagemaker.testing import LocalClients
    from plugin.config import Config
    from plugin_setup import Clock
    from server_clock import ManualClock

# Shared test helpers (tests/support/*.py) are plain modules: tests have no packages and run with
# --import-mode=importlib, so the folder goes on sys.path and test modules import them by name (`from aws_faults ...`).
SUPPORT = str(Path(__file__).parent / "support")
if SUPPORT not in sys.path:
    sys.path.insert(0, SUPPORT)

RECORD_ENV = "SAGEMAKER_PLUGIN_RECORD_OPS"
POLICY_TEST = Path(__file__).parent / "security" / "test_iam_policy.py"


def _private_data_dir(config: pytest.Config) -> None:
    """The local S3 that command-line runs keep on disk goes to a folder of this session, never the user's own: one
    per process, so that parallel workers (pytest-xdist; each runs this hook itself) never share one. A worker's is
    inside the controller's (its inherited $XDG_DATA_HOME), which the controller removes even if a worker was killed."""
    import shutil
    import tempfile

    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    inside = os.environ.get("XDG_DATA_HOME") if _is_worker(config) else None
    folder = tempfile.mkdtemp(prefix=f"sagemaker-plugin-tests-data-{worker}-", dir=inside)
    os.environ["XDG_DATA_HOME"] = folder
    config.add_cleanup(lambda: shutil.rmtree(folder, ignore_errors=True))


def _is_worker(config: pytest.Config) -> bool:
    """Whether this process is a pytest-xdist worker (the controller sums up what its workers did)."""
    return hasattr(config, "workerinput")


def pytest_configure(config: pytest.Config) -> None:
    _private_data_dir(config)
    # Tests reach loopback only: botocore's credential chain must not look for an instance role at 169.254.169.254
    # (the SageMaker SDK builds a session when it is imported, before a test hands it credentials).
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    import record_ops

    if record_ops.install_from_environment() is not None:
        os.environ.update(record_ops.subprocess_env(dict(os.environ)))


#: what `./scripts/test --quick` leaves out (`-m "not slow"`): the folders of end-to-end runs, real clients, faults,
#: benchmarks, served connectors, security sweeps and jobs run for real, whose tests start servers or subprocesses or
#: search inputs, and the files elsewhere that took longest (by file name, which survives a move to another folder)
SLOW_FOLDERS = ("benchmarks", "clients", "e2e", "faults", "flyte", "security", "xgboost", "tuning")
SLOW_FILES = ("test_docs.py", "test_tuning_job.py", "test_bad_tasks.py", "test_runner.py", "test_job_page.py",
              "test_persistence.py", "test_restart.py")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    tests = Path(__file__).parent
    for item in items:
        parts = item.path.relative_to(tests).parts if item.path.is_relative_to(tests) else ()
        if parts and (any(part in SLOW_FOLDERS for part in parts[:-1]) or parts[-1] in SLOW_FILES):
            item.add_marker(pytest.mark.slow)
    # The files with slow tests first, each file whole and in its own order: pytest-xdist (`--dist loadfile
    # --no-loadscope-reorder`, scripts/test) hands files out in this order, so the last to start are short unit test
    # files that fill the gaps, not an end-to-end file of 100 s that one worker runs alone while the others idle.
    slow_files = {item.path for item in items if item.get_closest_marker("slow") is not None}
    items.sort(key=lambda item: item.path not in slow_files)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    record = os.environ.get(RECORD_ENV)
    # every worker appends to the one file; the controller checks it once, after all of them have finished
    if not record or not Path(record).exists() or _is_worker(session.config):
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


# --- shared fixtures: each is made only when a test asks for it (the module-scoped ones once a module) and imports
# what it needs only then, so that a module that uses none of them pays nothing. A module's own fixture of the same
# name wins over these.


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


@pytest.fixture(scope="module")
def raw(endpoint: str) -> Any:
    """A plain boto3 SageMaker client on `endpoint`, with no faults: the test's view of what really exists."""
    import boto3

    return boto3.client("sagemaker", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


@pytest.fixture(scope="module")
def server_clock() -> ManualClock:
    """The clock of `server`'s simulated jobs and rate buckets: it follows the wall clock unless a test holds it
    (`with server_clock.held(): ...`) to keep a job in the phase it checks, however loaded the machine. A module may
    have its own (held from the start: only its tests move it)."""
    from server_clock import ManualClock

    return ManualClock(running=True)


@pytest.fixture(scope="module")
def server(request: pytest.FixtureRequest, server_clock: ManualClock) -> Iterator[LocalSageMaker]:
    """A local SageMaker with a real job lifecycle, one per test module, on the module's own `LOCAL_SETTINGS`
    (a local_sagemaker.LocalSettings; the defaults where the module sets none), on `server_clock`."""
    from local_sagemaker import LocalSageMaker, LocalSettings

    settings = getattr(request.module, "LOCAL_SETTINGS", None)
    with LocalSageMaker(LocalSettings(execution="simulate") if settings is None else settings,
                        clock=server_clock) as running:
        yield running


@pytest.fixture(autouse=True)
def _server_clock_restored(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test that failed while it held its module's server clock does not leave it held for the next."""
    yield
    if "server_clock" in request.fixturenames:
        request.getfixturevalue("server_clock").restore()


@pytest.fixture(scope="module")
def aws(server: LocalSageMaker) -> LocalClients:
    """Plain boto3 clients on `server`, signing with its key pair: what really exists there, seen without faults."""
    from local_sagemaker.testing import LocalClients

    return LocalClients(server.url, credentials=server.credentials)


@pytest.fixture(scope="module")
def session() -> boto3.Session:
    """One boto3 session for the module's clients: it caches the service models, so each client built on it is cheap
    (a new session per client costs ~0.5 s)."""
    import boto3

    return boto3.Session(region_name="us-east-1")


@pytest.fixture(scope="module")
def config(endpoint: str) -> Config:
    """The plugin's config on `endpoint` (plugin_setup.make_config: tiny backoff, no rate limits, no tracker sweeps).
    A module whose plugin talks to `server`, or needs other settings, has a `config` of its own."""
    from plugin_setup import make_config

    return make_config(endpoint)


@pytest.fixture
def clock() -> Clock:
    """The plugin's fake wall clock, at plugin_setup.START until the test moves it."""
    from plugin_setup import Clock

    return Clock()


@pytest.fixture(autouse=True)
def _no_config_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never depend on the environment they run in: no $SAGEMAKER_PLUGIN_CONFIG or $SAGEMAKER_PLUGIN_ENDPOINT_URL
    of the caller's (a test that wants one sets it); every CLI run gets an explicit --config or a clean folder."""
    monkeypatch.delenv("SAGEMAKER_PLUGIN_CONFIG", raising=False)
    monkeypatch.delenv("SAGEMAKER_PLUGIN_ENDPOINT_URL", raising=False)
