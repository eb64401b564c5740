"""A local Flyte run just works: with the local backend and no endpoint named, the SageMaker steps start a local
SageMaker in the run's own process (once), and it is gone when the process exits. The served connector never starts
one by itself.

Each run is a fresh process with nothing from AWS or this plugin in its environment but a config file (a faster
timeline): `python workflow.py` and `pyflyte run`, for a small workflow of this test's own and for the example.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("flytekit")
pytest.importorskip("moto")

from plugin.flyte import SageMakerTrainingConnector, configure
from plugin.task import CUSTOM_TASK

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "flyte_workflow.py"
PYFLYTE = Path(sys.executable).with_name("pyflyte")
REPORT = re.compile(r"trained by (http://127\.0\.0\.1:\d+): model (s3://\S+/model\.tar\.gz)")

WORKFLOW = '''
import sys
from dataclasses import dataclass
from pathlib import Path

from flytekit import task, workflow
from flytekit.types.file import FlyteFile

from plugin.flyte import SageMakerCustomTrainingTask

train = SageMakerCustomTrainingTask(
    name="embedded.train",
    training_job={"algorithm_specification": {"algorithm_name": "CUSTOM"},
                  "training_job_resource_config": {"instance_type": "ml.m5.xlarge", "instance_count": 1}},
    image="123456789012.dkr.ecr.us-east-1.amazonaws.com/team/trainer:1.0",
    command=[sys.executable, "-c", "print('loss=0.5')"],
    inputs={"train": FlyteFile, "static_hyperparameters": dict},
)


@task
def rows() -> FlyteFile:
    path = Path("rows.csv")
    path.write_text("1,2,3\\n")
    return FlyteFile(str(path))


@task
def report(model: FlyteFile) -> str:
    from plugin import embedded

    # the local SageMaker this run's process started for the training step
    return f"trained by {embedded.process_endpoint(None, start=False)}: model {model.remote_source}"


@workflow
def wf() -> str:
    trained = train(train=rows(), static_hyperparameters={"epochs": 1})
    return report(model=trained.model)


if __name__ == "__main__":
    print(wf())
'''


def clean_env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SAGEMAKER_PLUGIN_"))}
    (tmp / "config.yaml").write_text("backend: local\nlocal:\n  time_scale: 20\n")
    env.update(SAGEMAKER_PLUGIN_CONFIG=str(tmp / "config.yaml"), AWS_EC2_METADATA_DISABLED="true",
               XDG_DATA_HOME=str(tmp / ".local-data"),  # the local SageMaker's data folder: the test's own
               PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p))
    return env


def run(command: list[str], tmp: Path) -> str:
    done = subprocess.run(command, cwd=tmp, env=clean_env(tmp), capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    return done.stdout


def assert_gone(url: str) -> None:
    """The local SageMaker stopped with the process that started it."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    with pytest.raises(OSError), socket.create_connection((parts.hostname or "", parts.port or 80), timeout=2):
        pass


def test_a_workflow_of_ones_own_just_works_with_pyflyte_run(tmp_path: Path) -> None:
    (tmp_path / "wf.py").write_text(WORKFLOW)
    out = run([str(PYFLYTE), "run", "wf.py", "wf"], tmp_path)
    found = REPORT.search(out)
    assert found, out
    assert_gone(found.group(1))


def test_a_workflow_of_ones_own_just_works_with_python(recorded: Recorded) -> None:
    """`python wf.py` (run as `__main__` by the module's one recording run, which only watches its connector)."""
    found = REPORT.search(recorded.out)
    assert found, recorded.out
    assert_gone(found.group(1))


#: runs wf.py as `python wf.py` does (as `__main__`: it prints its workflow's result), recording the log links of
#: every `get` of the training step's connector (as flytekit shows them while the step runs), printed as one JSON list
#: at the end
RECORD_LINKS = '''
import json
import runpy

from flytekit.extend.backend.base_connector import ConnectorRegistry
from flytekit.extend.backend.utils import is_terminal_phase

import plugin.flyte  # registers the connectors, as wf.py's own import does

connector = ConnectorRegistry.get_connector("sagemaker_custom_training_job_task")
original, seen = connector.get, []


def get(resource_meta, **kwargs):
    resource = original(resource_meta, **kwargs)
    seen.append({"terminal": is_terminal_phase(resource.phase), "links": {l.name: l.uri for l in resource.log_links}})
    return resource


connector.get = get
runpy.run_path("wf.py", run_name="__main__")
print(json.dumps(seen))
'''
COMMANDS = ("Logs (local SageMaker)", "Status (local SageMaker)", "Metrics (local SageMaker)")
PAGE = "Job page (while this run lasts)"


@dataclass(frozen=True)
class Recorded:
    """The module's one run of wf.py: its folder, its stdout and the links of every `get`."""

    folder: Path
    out: str
    seen: list[dict[str, Any]]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    """One run read by the tests below: each only reads what it printed or what it left in its data folder."""
    tmp = tmp_path_factory.mktemp("recorded")
    (tmp / "wf.py").write_text(WORKFLOW)
    (tmp / "record.py").write_text(RECORD_LINKS)
    out = run([sys.executable, "record.py"], tmp)
    seen: list[dict[str, Any]] = json.loads(out.splitlines()[-1])
    assert seen and seen[-1]["terminal"] and not any(s["terminal"] for s in seen[:-1]), seen
    return Recorded(tmp, out, seen)


def test_a_local_flyte_runs_links_outlast_its_local_sagemaker(recorded: Recorded) -> None:
    """Links name the run's own local SageMaker only for its page, only while the step runs; the rest are commands
    that need no endpoint, with the run's config (its data folder)."""
    for get in recorded.seen:
        links = get["links"]
        page = {} if get["terminal"] else {PAGE: links.get(PAGE)}
        assert set(links) == {*page, *COMMANDS}, links
        assert all(re.match(r"http://127\.0\.0\.1:\d+/", uri) for uri in page.values()), page
        for name in COMMANDS:
            assert links[name].startswith("sagemaker-plugin ") and "127.0.0.1" not in links[name]
            assert links[name].endswith(f"--region us-east-1 --config {recorded.folder / 'config.yaml'}"), links[name]


def test_after_a_local_flyte_run_its_printed_commands_work(recorded: Recorded) -> None:
    final, folder = recorded.seen[-1]["links"], recorded.folder
    shown = {name: subprocess.run(final[name], shell=True, cwd=folder, env=clean_env(folder),
                                  capture_output=True, text=True, timeout=60) for name in COMMANDS}
    for name, done in shown.items():
        assert done.returncode == 0, (name, done.stderr)
    assert ": SUCCEEDED (Completed)" in shown["Status (local SageMaker)"].stdout
    assert "loss" in shown["Metrics (local SageMaker)"].stdout or shown["Logs (local SageMaker)"].stdout


def test_the_example_with_pyflyte_run(tmp_path: Path) -> None:
    out = run([str(PYFLYTE), "run", str(EXAMPLE), "training_workflow", "--rows", "100"], tmp_path)
    assert re.search(r"(deploy|retrain): validation:rmse \d+\.\d{4}", out), out


def test_the_served_connector_starts_no_local_sagemaker(monkeypatch: pytest.MonkeyPatch) -> None:
    """`pyflyte serve connector` builds its plugin with embedded=False: with no endpoint it says what to set."""
    monkeypatch.delenv("SAGEMAKER_PLUGIN_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("SAGEMAKER_PLUGIN_CONFIG", raising=False)
    monkeypatch.chdir(ROOT / "tests")  # no config.yaml here: the built-in defaults, backend local
    configure()
    try:
        plugin = SageMakerTrainingConnector(CUSTOM_TASK).plugin
        assert plugin.config.backend == "local" and not plugin.embedded
        from plugin import InputError, embedded

        if embedded.process_endpoint(plugin.config, start=False) is None:  # none started by another test here
            with pytest.raises(InputError, match=r"local\.endpoint_url"):
                plugin.client()
    finally:
        configure()
