"""Aborting a local Flyte execution (Ctrl-C) stops its SageMaker job, which then reports ABORTED.

flytekit's local executor calls the connector's delete from its SIGINT handler; the example workflow runs in its own
process against a local SageMaker (a 5 s job) whose clock the test holds from the moment it sees the job training
until the stop has reached SageMaker: the job is still training when the stop comes, however loaded the machine.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("flytekit")
pytest.importorskip("moto")

from fly_service import connector_env, local_config
from held_training import held_in_training, wait_for
from local_sagemaker import LocalSageMaker, LocalSettings
from local_sagemaker.testing import LocalClients
from plugin import Phase, ResourceMeta, TrainingJobPlugin
from plugin.config import parse_config
from server_clock import ManualClock

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "flyte_workflow.py"
LOCAL_SETTINGS = LocalSettings(execution="simulate", time_scale=1)  # of the module's `server` (tests/conftest.py)


def test_interrupting_a_local_run_stops_the_training_job(server: LocalSageMaker, server_clock: ManualClock,
                                                         tmp_path: Path) -> None:
    config = local_config(server.url)
    env = connector_env(tmp_path, config, server.credentials.env())
    run = subprocess.Popen([sys.executable, str(EXAMPLE), "--rows", "50"], cwd=tmp_path, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    aws = LocalClients(server.url)
    try:
        name = held_in_training(run, aws, server_clock, 60)
        run.send_signal(signal.SIGINT)
        # the run waits for its job to stop: the clock runs again once the stop has reached SageMaker
        wait_for(lambda: aws.sagemaker.describe_training_job(TrainingJobName=name)["TrainingJobStatus"] != "InProgress",
                 60, "the interrupted run never stopped its job")
        server_clock.run()
        _, stderr = run.communicate(timeout=60)
    finally:
        server_clock.run()
        if run.poll() is None:
            run.kill()
            run.communicate()
    assert run.returncode != 0
    described = aws.sagemaker.describe_training_job(TrainingJobName=name)
    assert described["TrainingJobStatus"] in ("Stopping", "Stopped"), stderr[-2000:]
    # any process (here: a fresh plugin) sees the job as aborted, as Flyte would after a DeleteTask
    plugin = TrainingJobPlugin(parse_config(config))
    meta = ResourceMeta(job_name=name, region="us-east-1", created_at=time.time(), endpoint_url=server.url)
    resource = wait_for(lambda: (r := plugin.get(meta)).phase.is_terminal and r, 30, "the job never stopped")
    assert resource.phase == Phase.ABORTED, resource
