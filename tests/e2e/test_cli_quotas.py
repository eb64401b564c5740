"""End to end: the local SageMaker's quotas, as SageMaker enforces them: requests per second (throttled, retried,
the run succeeds) and instances (WAITING_FOR_RESOURCES, then the job runs; Ctrl-C while waiting) (the helpers:
tests/support/cli_e2e.py; the shared servers: tests/e2e/conftest.py)."""

from __future__ import annotations

import contextlib
import re
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cli_e2e import (
    KEYS_FOR,
    QUOTA_TYPE,
    Proc,
    Served,
    assert_no_traceback,
    cli,
    copy_examples,
    describe,
    expected_job,
    jobs_named,
    last_json,
    started,
    unique,
    write_config,
    write_task,
)

pytestmark = pytest.mark.timeout(120)


# --- 7. requests_per_second quotas ----------------------------------------------------------------------------------

def test_run_under_request_rate_quotas_is_throttled_but_succeeds(tmp_path: Path) -> None:
    from local_sagemaker import LocalSageMaker, LocalSettings

    rates = {"DescribeTrainingJob": 1.0, "GetLogEvents": 2.0}
    work = copy_examples(tmp_path / "examples")
    identity = unique("rate")
    task = write_task(work, identity)
    # time_scale 4: the job takes ~1.25 s, long enough for the run's 0.1 s polls to meet the limits on any machine.
    with LocalSageMaker(LocalSettings(execution="simulate", time_scale=4, requests_per_second=rates)) as server:
        config = write_config(tmp_path / "config.yaml", local={"endpoint_url": server.url, "time_scale": 10})
        KEYS_FOR[work] = server.credentials.env()
        result = cli(["run", task, "--json", "--config", config], work)
        throttled = {**server.throttled_counts("sagemaker"), **server.throttled_counts("logs")}
        received = {**server.call_counts("sagemaker"), **server.call_counts("logs")}
    assert result.returncode == 0, result.stderr
    assert_no_traceback(result.stderr)
    assert last_json(result.stdout)["phase"] == "SUCCEEDED"
    assert throttled.get("DescribeTrainingJob", 0) > 0, (throttled, received)
    assert set(throttled) <= set(rates)
    # The retries lost and repeated nothing: all 20 rounds, each once.
    rounds = re.findall(r"^\[algo-1\] \[(\d+)\]#011train-rmse:", result.stderr, re.MULTILINE)
    assert [int(r) for r in rounds] == list(range(20))


# --- 8. instance quotas: WAITING_FOR_RESOURCES, then the job runs ---------------------------------------------------

#: the quota tests' training script: it ends (exit 0) once its job's release file exists, and fails if that never
#: happens
HOLD_SCRIPT = """import os, pathlib, sys, time
release = pathlib.Path({folder!r}) / (os.environ["TRAINING_JOB_NAME"] + ".release")
deadline = time.monotonic() + 300
while not release.exists() and time.monotonic() < deadline:
    time.sleep(0.05)
print("released" if release.exists() else "never released", flush=True)
sys.exit(0 if release.exists() else 1)
"""


def holding_pair(served: Served, label: str) -> tuple[tuple[str, Path], tuple[str, Path]]:
    """Two custom tasks on the instance type the server lets hold one instance at once, (identity, task file) each.
    Each job's script runs until the test lets it end (`release`): the first holds the instance as long as the test
    needs, and the second is seen running before it ends."""
    code = served.work / f"hold-{label}-{uuid.uuid4().hex[:8]}"
    code.mkdir()
    (code / "hold.py").write_text(HOLD_SCRIPT.format(folder=str(served.work)), encoding="utf-8")

    def holding(data: dict[str, Any]) -> None:
        data["training_job"]["algorithm_specification"].pop("metric_definitions", None)
        data["training_job"]["training_job_resource_config"].update(instance_type=QUOTA_TYPE, instance_count=1)
        data["container"]["command"] = ["python", "/opt/ml/input/data/code/hold.py"]
        data["inputs"] = {"train": "data/train/", "code": f"{code.name}/"}

    first, second = unique(f"{label}-a"), unique(f"{label}-b")
    return ((first, write_task(served.work, first, base="custom-native.yaml", change=holding)),
            (second, write_task(served.work, second, base="custom-native.yaml", change=holding)))


@contextlib.contextmanager
def holding_runs(served: Served, label: str) -> Iterator[tuple[str, str, str, Proc, Proc]]:
    """`run` of a `holding_pair`'s A, then, once A's job is made, of its B: (B's identity, A's job, B's job, the run
    of A, the run of B)."""
    (first, task_a), (second, task_b) = holding_pair(served, label)
    with started(["run", task_a, "--no-logs", "--config", served.config], served.work) as run_a:
        run_a.wait_for(r"^training job ", timeout=60)
        with started(["run", task_b, "--no-logs", "--config", served.config], served.work) as run_b:
            yield second, expected_job(first), expected_job(second), run_a, run_b


def release(served: Served, job: str) -> None:
    """Lets a job of `holding_pair` end."""
    (served.work / f"{job}.release").touch()


def test_job_over_the_instance_quota_waits_then_runs(quota_served: Served) -> None:
    served = quota_served
    with holding_runs(served, "quota") as (second, job_a, job_b, run_a, run_b):
        waiting = run_b.wait_for(r"^phase WAITING_FOR_RESOURCES", timeout=60)
        assert "ResourceLimitExceeded" in waiting, waiting
        assert f"'{QUOTA_TYPE} for training job usage' is 1 Instances" in waiting, waiting
        assert describe(served, job_a)["TrainingJobStatus"] == "InProgress"
        assert jobs_named(served, second) == [], "B is not created while A holds the instance"
        release(served, job_a)  # A ends and gives its instance back
        code_a, _, err_a = run_a.finish(timeout=60)
        run_b.wait_for(r"^phase RUNNING", timeout=90)
        release(served, job_b)
        code_b, out_b, err_b = run_b.finish(timeout=60)
    assert code_a == 0, err_a
    assert code_b == 0, err_b
    assert_no_traceback(err_a, err_b)
    phases = re.findall(r"^phase (\w+)", out_b, re.MULTILINE)
    assert phases[0] == "WAITING_FOR_RESOURCES"
    assert phases[-1] == "SUCCEEDED"
    assert "RUNNING" in phases
    a, b = describe(served, job_a), describe(served, job_b)
    assert b["CreationTime"] >= a["TrainingEndTime"], "B was created once A had given its instance back"
    waited = (b["CreationTime"] - a["TrainingEndTime"]).total_seconds()
    print(f"B created {waited:.1f} s after A ended (the plugin's queued-create backoff)")


def test_ctrl_c_while_waiting_for_resources_records_the_abort_and_the_job_is_never_made(quota_served: Served
                                                                                         ) -> None:
    served = quota_served
    with holding_runs(served, "qabort") as (second, job_a, job_b, run_a, run_b):
        run_b.wait_for(r"^phase WAITING_FOR_RESOURCES", timeout=60)
        run_b.popen.send_signal(signal.SIGINT)
        code_b, out_b, err_b = run_b.finish(timeout=60)
        release(served, job_a)  # A ends and gives its instance back; B, aborted, must not take it
        code_a, _, err_a = run_a.finish(timeout=60)
    assert (code_a, code_b) == (0, 130), err_a + err_b
    assert_no_traceback(out_b, err_b)
    assert f"SIGINT: stopping training job {job_b} ...\n" in err_b + "\n", err_b
    assert f"{job_b}: ABORTED (deleted while waiting for resources; the training job was never created)" in out_b, out_b
    assert jobs_named(served, second) == [], "the quota freed when A ended, and B was still not made"
    listed = served.aws.s3.list_objects_v2(Bucket="sagemaker-plugin-local").get("Contents", ())
    assert [o["Key"] for o in listed if job_b in o["Key"] and "sagemaker-plugin-aborted-" in o["Key"]], \
        "the abort is recorded where another process holding the meta would look"
