"""A Flyte 2 user's local run: `python examples/flyte2_workflow.py` (flyte.init() + flyte.run) trains XGBoost and a
custom script for real on the local SageMaker it starts in-process, with nothing started by hand and no Flyte config,
and decides on their metrics; a Ctrl-C stops the training job and says so."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("flyte.connectors")
pytest.importorskip("moto")
pytest.importorskip("xgboost")

from children import dies_with_test

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "flyte2_workflow.py"
pytestmark = pytest.mark.slow


def user_env(tmp: Path) -> dict[str, str]:
    """A user's environment: no config of the plugin's or Flyte's, the data folder in tmp, the worktree first."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SAGEMAKER_PLUGIN_", "FLYTE"))}
    env["XDG_DATA_HOME"] = str(tmp / "data")
    env["HOME"] = str(tmp)  # no ~/.flyte config either
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def test_the_example_trains_xgboost_and_a_custom_script_and_decides(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(EXAMPLE)], cwd=tmp_path, env=user_env(tmp_path),
                          capture_output=True, text=True, timeout=600, preexec_fn=dies_with_test)
    assert done.returncode == 0, done.stderr[-3000:]
    decision = re.fullmatch(r"(deploy|retrain) (xgboost|linear): xgboost validation:rmse ([0-9.]+), linear train "
                            r"rmse ([0-9.]+) \(max 1\.0\)\n", done.stdout.splitlines(keepends=True)[-1])
    assert decision, done.stdout[-2000:]
    xgboost_rmse, linear_rmse = float(decision[3]), float(decision[4])
    assert 0 < xgboost_rmse < 1 and 0 < linear_rmse < 1  # both really trained on y = 3*x1 - 2*x2 + 0.5*x3 + noise
    assert decision[2] == ("xgboost" if xgboost_rmse <= linear_rmse else "linear")
    # each job's progress as lines that stay, one per change, ending in SUCCEEDED
    for image in ("xgboost", "sagemaker-scikit-learn"):
        assert re.search(rf"training job {image}-\S+: SUCCEEDED: Completed", done.stderr), done.stderr[-3000:]


def test_the_tuning_step_returns_the_best_trials_model_and_objective(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(EXAMPLE), "--tune"], cwd=tmp_path, env=user_env(tmp_path),
                          capture_output=True, text=True, timeout=600, preexec_fn=dies_with_test)
    assert done.returncode == 0, done.stderr[-3000:]
    decision = re.fullmatch(r"(deploy|retrain) the best trial: validation:rmse ([0-9.]+) \((s3://\S+/output/model"
                            r"\.tar\.gz)\)\n", done.stdout.splitlines(keepends=True)[-1])
    assert decision and 0 < float(decision[2]) < 1, done.stdout[-2000:]
    best = re.search(r"tuning job \S+: SUCCEEDED: trials: 4 completed, 0 running, 0 failed, 0 stopped; best (\S+) "
                     r"\(validation:rmse ([0-9.]+)\)", done.stderr)
    assert best, done.stderr[-3000:]
    assert best[1] in decision[3] and float(best[2]) == pytest.approx(float(decision[2]), abs=5e-5)


SLEEPER = """
    import asyncio, sys
    sys.path.insert(0, {root!r})
    import flyte, flyte.io
    from plugin.flyte2 import SageMakerCustomTrainingTask

    sleeper = SageMakerCustomTrainingTask(
        name="sleeper", image="python:3", command=[sys.executable, "-c", "import time; time.sleep(600)"],
        training_job={{"algorithmSpecification": {{"algorithmName": "CUSTOM"}},
                       "trainingJobResourceConfig": {{"instanceCount": "1", "instanceType": "ml.m5.large"}}}},
        inputs={{"train": flyte.io.Dir, "static_hyperparameters": dict}})
    sm = flyte.TaskEnvironment.from_task("sleeper_env", sleeper)
    env = flyte.TaskEnvironment(name="wf", depends_on=[sm])

    @env.task
    async def wf() -> float:
        _, metrics = await sleeper(train=await flyte.io.Dir.from_local({data!r}), static_hyperparameters={{}})
        return len(metrics)

    flyte.init()
    flyte.run(wf)
"""


def test_ctrl_c_stops_the_training_job_and_says_so(tmp_path: Path) -> None:
    script = tmp_path / "sleeper.py"
    script.write_text(textwrap.dedent(SLEEPER.format(root=str(ROOT), data=str(ROOT / "examples" / "data" / "train"))))

    def child() -> None:
        dies_with_test()
        signal.signal(signal.SIGINT, signal.SIG_DFL)  # a shell's background job inherits SIGINT ignored

    run = subprocess.Popen([sys.executable, str(script)], cwd=tmp_path, env=user_env(tmp_path), text=True,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=child)
    try:
        assert run.stderr is not None
        seen = []
        for line in run.stderr:  # the job's lines arrive as they happen
            seen.append(line)
            if re.match(r"training job \S+: RUNNING: Training", line):
                break
        else:
            pytest.fail("the job never reached Training:\n" + "".join(seen[-30:]))
        run.send_signal(signal.SIGINT)
        _, rest = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate()
    assert run.returncode != 0
    name = re.match(r"training job (\S+):", seen[-1])[1]  # type: ignore[index]
    assert f"interrupted: stopping training job {name} ..." in rest
    assert f"training job {name}: ABORTED" in rest
    assert f"training job {name} was stopped" in rest, rest[-3000:]
