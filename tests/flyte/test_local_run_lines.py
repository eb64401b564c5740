"""What `pyflyte run` of the example workflow prints about its SageMaker job, without a terminal (issue 24 item 6).

Each run is a real `pyflyte run` process on the module's local SageMaker (simulated 5 s jobs on the wall clock): its
stderr holds one line per change of the job's phase, message or link, whole (never cut at 80 columns), and on
Ctrl-C the lines that say the training job is being stopped and was. The interrupted run's job is held in Training by
the test's clock until the stop has reached SageMaker, however loaded the machine.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from itertools import pairwise
from pathlib import Path

import pytest

pytest.importorskip("flytekit")
pytest.importorskip("moto")

from fly_service import connector_env, local_config
from held_training import held_in_training, wait_for
from local_sagemaker import LocalSageMaker, LocalSettings
from local_sagemaker.testing import LocalClients
from plugin.jobs.resource import log_links
from server_clock import ManualClock

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "flyte_workflow.py"
LOCAL_SETTINGS = LocalSettings(execution="simulate", time_scale=1)  # of the module's `server` (tests/conftest.py)
JOB_LINE = re.compile(r"^training job (\S+): (.*)$")


def pyflyte_run(tmp_path: Path, server: LocalSageMaker) -> subprocess.Popen[str]:
    env = connector_env(tmp_path, local_config(server.url), server.credentials.env())
    env["COLUMNS"] = "80"  # flytekit's live line was cut here
    pyflyte = Path(sys.executable).with_name("pyflyte")
    return subprocess.Popen([str(pyflyte), "run", str(EXAMPLE), "training_workflow", "--rows", "50"], cwd=tmp_path,
                            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def job_lines(stderr: str) -> tuple[str, list[str]]:
    """The one job's name and what its lines say (after `training job <name>: `)."""
    matches = [m for m in map(JOB_LINE.match, stderr.splitlines()) if m]
    assert matches, stderr[-3000:]
    names = {m.group(1) for m in matches}
    assert len(names) == 1, names
    return names.pop(), [m.group(2) for m in matches]


def test_a_local_run_prints_a_line_per_change_with_its_links_whole(server: LocalSageMaker, aws: LocalClients,
                                                                   tmp_path: Path) -> None:
    run = pyflyte_run(tmp_path, server)
    try:
        stdout, stderr = run.communicate(timeout=300)
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate()
    assert run.returncode == 0, stderr[-3000:]
    assert re.search(r"^(deploy|retrain): validation:rmse ", stdout, re.M), stdout
    name, said = job_lines(stderr)
    assert aws.sagemaker.describe_training_job(TrainingJobName=name)["TrainingJobStatus"] == "Completed"
    phases = [line for line in said if re.match(r"^[A-Z_]+(: |$)", line)]
    assert phases[-1] == "SUCCEEDED: Completed", said
    assert all(before != after for before, after in pairwise(phases)), phases  # changes only
    assert len(said) == len(set(said)), said  # nothing printed twice
    # every link the job had while it ran, each on a line of its own, whole
    for link in log_links(name, "us-east-1", endpoint_url=server.url, running=True):
        assert f"{link.name}: {link.uri}" in said, (link, said)
    assert max(len(line) for line in stderr.splitlines()) > 80
    assert "\r" not in stderr and "\x1b[" not in stderr


def interrupt_while_training(tmp_path: Path, server: LocalSageMaker, server_clock: ManualClock, aws: LocalClients,
                             *, again: bool) -> tuple[str, int, str]:
    """A run's Ctrl-C once its job trains (the clock held from then on): the job's name, the run's exit code and
    stderr. The clock runs again once the stop has reached SageMaker; with `again`, a second Ctrl-C comes first."""
    run = pyflyte_run(tmp_path, server)
    try:
        name = held_in_training(run, aws, server_clock, 120)
        run.send_signal(signal.SIGINT)
        wait_for(lambda: aws.sagemaker.describe_training_job(TrainingJobName=name)["TrainingJobStatus"] != "InProgress",
                 120, "the interrupted run never stopped its job")
        if again:
            run.send_signal(signal.SIGINT)  # the job cannot have stopped: its clock is held
        else:
            server_clock.run()
        _, stderr = run.communicate(timeout=120)
    finally:
        server_clock.run()
        if run.poll() is None:
            run.kill()
            run.communicate()
    assert "Traceback" not in stderr
    assert f"interrupted: stopping training job {name} ..." in stderr.splitlines(), stderr[-3000:]
    return name, run.returncode, stderr


def test_ctrl_c_stops_the_training_job_and_says_so(server: LocalSageMaker, server_clock: ManualClock,
                                                    aws: LocalClients, tmp_path: Path) -> None:
    name, code, stderr = interrupt_while_training(tmp_path, server, server_clock, aws, again=False)
    assert code == 1, stderr[-3000:]
    assert aws.sagemaker.describe_training_job(TrainingJobName=name)["TrainingJobStatus"] == "Stopped"
    lines = stderr.splitlines()
    assert lines[-1] == f"training job {name} was stopped", stderr[-3000:]
    assert lines[-2].startswith(f"training job {name}: ABORTED"), stderr[-3000:]


def test_a_second_ctrl_c_stops_the_waiting_and_says_the_job_may_still_run(
        server: LocalSageMaker, server_clock: ManualClock, aws: LocalClients, tmp_path: Path) -> None:
    name, code, stderr = interrupt_while_training(tmp_path, server, server_clock, aws, again=True)
    assert code == 1, stderr[-3000:]
    assert stderr.splitlines()[-1] == (f"training job {name} was asked to stop but had not stopped yet when this run "
                                       "ended; its phase shows whether it did"), stderr[-3000:]
    assert f"training job {name} was stopped" not in stderr
