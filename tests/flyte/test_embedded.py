"""A local Flyte run just works: with the local backend and no endpoint named, the SageMaker steps start a local
SageMaker in the run's own process (once), and it is gone when the process exits. The served connector never starts
one by itself.

Each run is a fresh process with nothing from AWS or this plugin in its environment but a config file (a faster
timeline): `python workflow.py` and `pyflyte run`, for a small workflow of this test's own and for the example.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

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


@pytest.mark.parametrize("runner", ["python", "pyflyte run"])
def test_a_workflow_of_ones_own_just_works(tmp_path: Path, runner: str) -> None:
    (tmp_path / "wf.py").write_text(WORKFLOW)
    command = [sys.executable, "wf.py"] if runner == "python" else [str(PYFLYTE), "run", "wf.py", "wf"]
    out = run(command, tmp_path)
    found = REPORT.search(out)
    assert found, out
    assert_gone(found.group(1))


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
