"""End to end: signals during a run, `local serve` itself, and status, stop and logs from other processes, with a
local SageMaker running (the helpers: tests/support/cli_e2e.py; the shared servers: tests/e2e/conftest.py). With none
running, status, stop, logs and metrics look in the data folder: test_rerun.py, beside the other commands that do."""

from __future__ import annotations

import json
import re
import signal
import socket
from pathlib import Path

import pytest

from cli_e2e import (
    Served,
    assert_no_traceback,
    assert_same_logs,
    cli,
    cloudwatch_events,
    describe,
    expected_job,
    jobs_named,
    keys_of,
    last_json,
    log_lines,
    start_serve,
    started,
    statuses,
    unique,
    write_config,
    write_task,
)
from cli_in_process import cli_here
from local_sagemaker.testing import LocalClients

pytestmark = pytest.mark.timeout(120)


# --- 4. SIGINT / SIGTERM during training ------------------------------------------------------------------------

@pytest.mark.parametrize(("sig", "as_json", "twice"),
                         [(signal.SIGINT, False, ""), (signal.SIGTERM, True, ""), (signal.SIGINT, False, "stopping"),
                          (signal.SIGINT, False, "at-once")],
                         ids=["SIGINT", "SIGTERM-json", "SIGINT-twice", "SIGINT-twice-at-once"])
def test_signal_during_training_stops_the_job_and_exits_130(long_served: Served, sig: signal.Signals,
                                                             as_json: bool, twice: str) -> None:
    served = long_served
    identity = unique(f"sig{int(sig)}")
    task = write_task(served.work, identity)
    job = expected_job(identity)
    progress = "err" if as_json else "out"
    with started(["run", task, "--config", served.config, *(["--json"] if as_json else [])], served.work) as proc:
        proc.wait_for(r"^phase RUNNING: Training", progress)
        before = describe(served, job)
        assert (before["TrainingJobStatus"], before["SecondaryStatus"]) == ("InProgress", "Training")
        proc.popen.send_signal(sig)
        if twice:  # an impatient second Ctrl-C, at once or while the job is being stopped, must not leave it running
            if twice == "stopping":
                proc.wait_for(r"^SIGINT: stopping training job ", "err")
                proc.popen.send_signal(sig)
            else:  # another signal: the same one would merge with the first while it is pending
                proc.popen.send_signal(signal.SIGTERM)
        code, out, err = proc.finish(timeout=40)
    assert code == 130, err
    assert_no_traceback(out, err)
    assert f"{sig.name}: stopping training job {job} ...\n" in err + "\n", err
    report = err if as_json else out
    assert f"{job}: ABORTED (stopped by the plugin (the execution was aborted))" in report
    if as_json:
        body = last_json(out)
        assert (body["phase"], body["job_name"]) == ("ABORTED", job)

    after = describe(served, job)
    assert (after["TrainingJobStatus"], after["SecondaryStatus"]) == ("Stopped", "Stopped")
    assert statuses(after)[-3:] == ["Training", "Stopping", "Stopped"]
    assert "ModelArtifacts" in after, "a job stopped in Training still uploads its model, as SageMaker does"
    mine = jobs_named(served, identity)
    assert [(s["TrainingJobName"], s["TrainingJobStatus"]) for s in mine] == [(job, "Stopped")]
    assert jobs_named(served, identity, StatusEquals="InProgress") == []
    assert jobs_named(served, identity, StatusEquals="Stopping") == []

    status = cli_here(["status", job, "--json", "--config", served.config], served.work)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["phase"] == "ABORTED"


# --- 6. local serve, with status, stop and logs from other processes -----------------------------------------------

@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_local_serve_prints_its_url_and_stops_cleanly(tmp_path: Path, sig: signal.Signals) -> None:
    config = write_config(tmp_path / "config.yaml")
    port = 0
    if sig == signal.SIGTERM:  # an explicit port this time
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
    proc, url, exports = start_serve(tmp_path, config, port=port)
    try:
        if port:
            assert url == f"http://127.0.0.1:{port}"
        # the lines another shell evaluates: where, and the key pair it made at start (AWS's format)
        assert set(exports) == {"AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                "SAGEMAKER_PLUGIN_ENDPOINT_URL"}
        assert exports["SAGEMAKER_PLUGIN_ENDPOINT_URL"] == exports["AWS_ENDPOINT_URL"] == url
        assert re.fullmatch(r"AKIA[A-Z2-7]{16}", exports["AWS_ACCESS_KEY_ID"])
        assert len(exports["AWS_SECRET_ACCESS_KEY"]) == 40
        aws = LocalClients(url, credentials=keys_of(exports))
        assert aws.sagemaker.list_training_jobs()["TrainingJobSummaries"] == []
        proc.popen.send_signal(sig)
        code, out, err = proc.finish(timeout=15)
    finally:
        proc.kill()
    assert code == 0, err
    assert_no_traceback(out, err)
    assert err == ""
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), timeout=2):
        pass


def test_local_serve_on_a_port_in_use_says_so(long_served: Served, tmp_path: Path) -> None:
    """On the port of the module's other `local serve` (the one its other tests use: no server started for this)."""
    port = int(long_served.url.rsplit(":", 1)[1])
    result = cli(["local", "serve", "--port", port, "--config", write_config(tmp_path / "c.yaml")], tmp_path,
                 timeout=30)
    assert result.returncode != 0
    assert_no_traceback(result.stdout, result.stderr)
    assert f"Port {port} is in use" in result.stderr


def test_status_stop_and_logs_follow_from_other_processes(long_served: Served) -> None:
    served = long_served
    identity = unique("ctl")
    task = write_task(served.work, identity)
    job = expected_job(identity)
    config = ["--config", served.config]
    with started(["run", task, *config], served.work) as run:
        run.wait_for(r"^phase RUNNING: Training")
        # Three other processes at once, while the job trains: follow its logs, its status twice.
        with started(["logs", job, "--follow", *config], served.work) as follow, \
                started(["status", job, *config], served.work) as status, \
                started(["status", job, "--json", *config], served.work) as as_json:
            code, out, err = status.finish()
            assert (code, err) == (0, "")
            lines = out.splitlines()
            assert lines[0] == f"{job}: RUNNING (Training: Training image download completed. Training in progress.)"
            assert lines[1] == "status InProgress / Training"
            assert re.fullmatch(r"  \d\d:\d\d:\d\d Starting \(0\.1 s\): Preparing the instances for training",
                                lines[2])
            assert re.fullmatch(r"  \d\d:\d\d:\d\d Downloading \(0\.1 s\): Downloading input data", lines[3])
            assert re.fullmatch(r"  \d\d:\d\d:\d\d Training: Training image download completed\. Training in "
                                r"progress\.", lines[4])

            code, out, err = as_json.finish()
            assert (code, err) == (0, "")
            body = json.loads(out)
            assert (body["phase"], body["job_name"], body["status"], body["secondary_status"]) == (
                "RUNNING", job, "InProgress", "Training")
            assert body["outputs"] == {}

            stop = cli(["stop", job, *config], served.work)
            assert (stop.returncode, stop.stdout, stop.stderr) == (0, f"{job}: stopping\n", "")

            run_code, run_out, run_err = run.finish()
            assert run_code == 1, run_err
            assert f"{job}: ABORTED (stopped by the plugin (the execution was aborted))" in run_out
            follow_code, follow_out, follow_err = follow.finish()
    assert (follow_code, follow_err) == (0, "")

    after = cli_here(["status", job, "--json", "--config", served.config], served.work)
    body = json.loads(after.stdout)
    assert (body["phase"], body["status"], body["secondary_status"]) == ("ABORTED", "Stopped", "Stopped")
    text = cli_here(["status", job, "--config", served.config], served.work).stdout
    assert text.startswith(f"{job}: ABORTED")
    assert re.search(r"^  \d\d:\d\d:\d\d Stopping \(\d+\.\d s\): Stopping the training job$", text, re.MULTILINE)

    events = cloudwatch_events(served.aws, job)
    assert follow_out.splitlines() == log_lines(follow_out), "nothing but log lines"
    assert_same_logs(follow_out.splitlines(), events, hosts=1)
    assert_same_logs(log_lines(run_out), events, hosts=1)

