"""End to end: `sagemaker-plugin metrics` and the end of `run`, in subprocesses, on the XGBoost example and on a
custom job with its own metric, against a local SageMaker; the pictures looked at (the PNG's panels and lines, the
HTML in headless Chromium).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

pytest.importorskip("moto")

import browser
from cli_in_process import cli_here
from local_sagemaker import LocalSageMaker, LocalSettings
from pictures import check_panels

pytestmark = pytest.mark.timeout(180)

REPO = Path(__file__).resolve().parents[2]
SCRIPT = Path(sys.executable).parent / "sagemaker-plugin"
#: jobs really run (the built-in XGBoost, the custom job's script): the curves are what training printed, on a machine
#: as busy as it is (lines it prints in a burst reach the logs with one timestamp: every value still counts)
LOCAL_SETTINGS = LocalSettings(execution="run")
EXAMPLE_JOB = "examples-development-xgboost-regression-n0-0"


def cli_env(tmp: Path, server: LocalSageMaker) -> dict[str, str]:
    """No AWS variables of the caller, no way out to AWS; the local SageMaker's own key pair where it has one."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("AWS_", "SAGEMAKER_PLUGIN_", "BOTO_"))}
    env.update(AWS_EC2_METADATA_DISABLED="true", AWS_CONFIG_FILE=str(tmp / "none"),
               AWS_SHARED_CREDENTIALS_FILE=str(tmp / "none"), AWS_ENDPOINT_URL="http://127.0.0.1:1")
    credentials = getattr(server, "credentials", None)
    if credentials is not None:
        env.update(credentials.env())
    return env


def argv(server: LocalSageMaker, cwd: Path, args: tuple[str | Path, ...]) -> list[str]:
    """The command's arguments with `--config` of a config on `server` (written in `cwd` the first time)."""
    config = cwd / "config.yaml"
    if not config.exists():
        config.write_text(yaml.safe_dump({"backend": "local", "local": {"endpoint_url": server.url}}))
    return [*map(str, args[:1]), "--config", str(config), *map(str, args[1:])]


def cli(server: LocalSageMaker, cwd: Path, *args: str | Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), *argv(server, cwd, args)], capture_output=True, text=True, cwd=cwd,
                          env=cli_env(cwd, server), timeout=timeout)


def cli_in_process(server: LocalSageMaker, cwd: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    """As `cli`, in this process (cli_in_process.cli_here): for the commands whose answer, not process, is the claim."""
    return cli_here(argv(server, cwd, args), cwd, env=cli_env(cwd, server))


@pytest.fixture(scope="module")
def example(server: LocalSageMaker, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The README's XGBoost example, run to its end: (its folder, run's stdout)."""
    folder = tmp_path_factory.mktemp("example")
    shutil.copytree(REPO / "examples", folder / "examples")
    done = cli(server, folder, "run", folder / "examples" / "xgboost.yaml")
    assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-3000:]
    return folder, done.stdout


def test_run_ends_with_the_final_values_table(example: tuple[Path, str]) -> None:
    _, out = example
    tail = out.rstrip().splitlines()[-4:]
    assert tail[0].split() == ["metric", "final", "algo-1", "last", "points"]
    assert [line.split()[0] for line in tail[2:]] == ["train:rmse", "validation:rmse"]
    assert "┌" not in out  # not a terminal: the table only, no chart
    assert "[algo-1] local SageMaker: built-in XGBoost 1.7-1 (" in out  # really trained, not a simulated timeline
    assert re.search(r"^\[algo-1\] \[19\]#011train-rmse:[.0-9]+#011validation-rmse:[.0-9]+$", out, re.MULTILINE)


def series_of(data: dict[str, Any], metric: str) -> list[dict[str, Any]]:
    return [s for s in data["series"] if s["metric"] == metric]


def test_metrics_shows_rmse_falling_over_the_rounds(server: LocalSageMaker, example: tuple[Path, str]) -> None:
    folder, _ = example
    done = cli_in_process(server, folder, "metrics", EXAMPLE_JOB, "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["metrics"][:2] == ["train:rmse", "validation:rmse"] and data["hosts"] == ["algo-1"]
    for metric in ("train:rmse", "validation:rmse"):
        [series] = series_of(data, metric)
        values = series["values"]
        assert len(values) == 20 and values[0] > values[-1]  # num_round 20: one point per round
        assert values[-1] == pytest.approx(data["final"][metric])
    shown = cli(server, folder, "metrics", EXAMPLE_JOB)
    assert shown.returncode == 0, shown.stderr
    titles = [line.strip() for line in shown.stdout.splitlines() if line.strip() in ("train:rmse", "validation:rmse")]
    assert titles == ["train:rmse", "validation:rmse"]
    assert shown.stdout.count("┌") == 2 and "algo-1" in shown.stdout


def test_the_png_has_a_panel_per_metric_titled_with_a_line_per_host(server: LocalSageMaker,
                                                                    example: tuple[Path, str]) -> None:
    image_module = pytest.importorskip("PIL.Image")
    folder, _ = example
    done = cli(server, folder, "metrics", EXAMPLE_JOB, "--plot", "curves.png")
    assert done.returncode == 0, done.stderr
    image = image_module.open(folder / "curves.png")
    assert image.size == (1280, 380)
    assert image.info["Title"] == f"{EXAMPLE_JOB} metrics"
    assert image.info["Description"] == "panels: train:rmse, validation:rmse; hosts: algo-1"
    check_panels(image.convert("RGB"), panels=2, hosts=1)


def test_the_html_renders_offline_in_a_browser(server: LocalSageMaker, example: tuple[Path, str]) -> None:
    folder, _ = example
    done = cli(server, folder, "metrics", EXAMPLE_JOB, "--plot", "curves.html")
    assert done.returncode == 0, done.stderr
    browser.require()
    dom, errors = browser.dump_dom((folder / "curves.html").as_uri(), budget_ms=1000)
    drawn = browser.without_scripts(dom)
    assert errors == [] and "errors" not in browser.body_data(dom)
    assert re.findall(r'<svg [^>]*data-metric="([^"]+)"', drawn) == ["train:rmse", "validation:rmse"]
    assert re.findall(r'<polyline class="series" data-host="(algo-\d)"', drawn) == ["algo-1", "algo-1"]
    points = re.findall(r'<polyline class="series" data-host="algo-1" points="([^"]+)"', drawn)[0].split()
    ys = [float(point.split(",")[1]) for point in points]
    assert len(ys) >= 10 and ys[0] < ys[-1]  # SVG's y grows downwards: the rmse falls
    browser.screenshot((folder / "curves.html").as_uri(), folder / "curves-html.png")


def test_a_custom_job_shows_its_scripts_own_metric(server: LocalSageMaker, tmp_path: Path) -> None:
    script = "[print(f'epoch {i} loss={1 / (i + 1):.4f}', flush=True) for i in range(6)]"  # one line: AWS's pattern
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.csv").write_text("1,2\n")
    (tmp_path / "task.yaml").write_text(yaml.safe_dump({
        "task_type": "sagemaker_custom_training_job_task",
        "training_job": {"algorithm_specification": {"metric_definitions": [
            {"name": "train:loss", "regex": "loss=([0-9.]+)"}]},
            "training_job_resource_config": {"instance_type": "ml.m5.large", "instance_count": 2}},
        "container": {"image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/trainer:1.0",
                      "command": [sys.executable, "-c", script]},
        "inputs": {"train": "data"},
        "execution": {"project": "e2e", "domain": "development", "name": "custom-metric", "node_id": "n0",
                      "retry_attempt": 0}}))
    ran = cli(server, tmp_path, "run", "task.yaml", "--no-logs")
    assert ran.returncode == 0, ran.stderr + ran.stdout
    assert re.search(r"^train:loss\s+\S+\s+\S+\s+\S+\s+\d+$", ran.stdout, re.M)
    job = "e2e-development-custom-metric-n0-0"
    data = json.loads(cli_in_process(server, tmp_path, "metrics", job, "--json").stdout)
    assert data["metrics"] == ["train:loss"] and data["hosts"] == ["algo-1", "algo-2"]
    for series in series_of(data, "train:loss"):
        assert series["values"][0] > series["values"][-1]
    assert {s["host"] for s in series_of(data, "train:loss")} == {"algo-1", "algo-2"}


@pytest.mark.parametrize(("args", "words"), [
    (["no-such-job"], "JOB_NAME: no training job named 'no-such-job'"),
    (["no-such-job", "--plot", "curves.jpg"], "--plot: must end with .png or .html, not 'curves.jpg'"),
    (["no-such-job", "--plot", "missing/curves.png"], "--plot: the folder missing does not exist"),
])
def test_bad_input_exits_2_with_a_clear_message(server: LocalSageMaker, tmp_path: Path, args: list[str],
                                                words: str) -> None:
    done = cli_in_process(server, tmp_path, "metrics", *args)
    assert done.returncode == 2 and words in done.stderr and "Traceback" not in done.stderr, done.stderr
