"""Engine restarts: the process that drives the plugin is SIGKILLed at each step, a new one carries on (issue 6).

The engine is a driver script (`ENGINE`, written to tmp_path, run with sys.executable) that does what an engine does
with the plugin: create, persist `meta.encode()` (atomically, as a database would), track with `get`, and, for an
aborted execution, `delete`. It is killed with SIGKILL at a precise point: a before-send handler parks it (forever)
just before a request is sent, or just after the request reached the server and before its answer is handled; or it
holds right after the meta was persisted; or the test kills it once it has reported RUNNING. A second process then
runs the same steps from the persisted meta, or, when the first died before persisting one, creates again from the
same task (same execution identity, same job name) and so adopts what the first made.

Each case checks against the server: exactly one job, the terminal phase the job really ended in, and for aborts a
job that is Stopped (marked stopped by the plugin) rather than left running. Each test runs its own local SageMaker
(time_scale 20), with a short Training for cases that run to the end and a long one for cases that abort a running
job after a restart.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from local_sagemaker import LocalSageMaker, LocalSettings
from local_sagemaker.testing import LocalClients
from plugin_setup import config_data, fresh_task

pytestmark = pytest.mark.timeout(90)

STOPPED_BY_TAG = "sagemaker-plugin:stopped-by"
#: the opt-in recorder of AWS operations (tests/conftest.py) reaches subprocesses through this variable
RECORD_OPS = "SAGEMAKER_PLUGIN_RECORD_OPS"
TIME_SCALE = 20
SHORT_TRAINING = 20  # timeline seconds: 1 s at time_scale 20 (a job lives ~1.2 s)
LONG_TRAINING = 600  # 30 s: a job is still running after a kill and a restart on a loaded machine, until stopped

ENGINE = r'''
"""An engine driving the plugin: argv = CONFIG TASK STATE_DIR STEP...; $FLT_PAUSE = "Operation:before|after";
$FLT_QUOTA_FULL = AWS's ResourceLimitExceeded message for every create."""
import json, os, sys, time
from pathlib import Path

from botocore.httpsession import URLLib3Session
from plugin import load_config, load_task, registry

config_file, task_file, state_dir, *steps = sys.argv[1:]
state = Path(state_dir)
plugin = registry.get("sagemaker_custom_training_job_task", config=load_config(config_file))


def mark(name):
    (state / name).write_text(str(os.getpid()))


def hang():
    while True:
        time.sleep(60)


pause = os.environ.get("FLT_PAUSE")
if pause:
    operation, when = pause.split(":")

    def parked(request, **_):
        if when == "after":  # the server gets the request and acts on it; this process never sees the answer
            http = URLLib3Session()
            http.send(request).content
            http.close()
        mark(f"parked-{operation}-{when}")
        hang()

    plugin.client().sagemaker.meta.events.register_first(f"before-send.sagemaker.{operation}", parked)

if os.environ.get("FLT_QUOTA_FULL"):  # every create is refused for quota, as AWS does when the account is full
    from botocore.awsrequest import AWSResponse

    class Body:
        def stream(self, **_):
            yield json.dumps({"__type": "ResourceLimitExceeded", "message": os.environ["FLT_QUOTA_FULL"]}).encode()

    plugin.client().sagemaker.meta.events.register_first(
        "before-send.sagemaker.CreateTrainingJob",
        lambda request, **_: AWSResponse(request.url, 400, {"Content-Type": "application/x-amz-json-1.1"}, Body()))

meta_file = state / "meta.json"
meta = plugin.metadata_type.decode(meta_file.read_bytes()) if meta_file.exists() else None
for step in steps:
    if step == "create":
        if meta is None:  # no persisted meta: create (again) from the task; a job this task made is adopted
            meta = plugin.create(load_task(task_file))
            scratch = state / "meta.json.tmp"
            scratch.write_bytes(meta.encode())
            os.replace(scratch, meta_file)
    elif step == "hold":
        mark("holding")
        hang()
    elif step == "delete":
        plugin.delete(meta)
        mark("deleted")
    elif step == "track":
        with open(state / "phases.log", "a") as log:
            while True:
                resource = plugin.get(meta)
                log.write(resource.phase.name + "\n")
                log.flush()
                if resource.phase.is_terminal:
                    (state / "final.json").write_text(json.dumps(resource.as_dict()))
                    break
                time.sleep(0.05)
'''


@dataclass(frozen=True)
class Case:
    first: tuple[str, ...]  # the first process's steps
    killed_when: str  # a marker file the first process writes (parked-..., holding), or "RUNNING" in phases.log
    pause: str = ""  # $FLT_PAUSE of the first process
    then: tuple[str, ...] = ("create", "track")  # the second process's steps
    expected: str = "SUCCEEDED"
    at_kill: str = ""  # what exists when the first process dies: "no job", "job, no meta", "job and meta", ...
    long: bool | None = None  # a long Training (default: for cases that abort a running job)

    @property
    def training(self) -> float:
        long = self.expected == "ABORTED" if self.long is None else self.long
        return LONG_TRAINING if long else SHORT_TRAINING


CASES: dict[str, Case] = {
    "during-create-before-it-is-sent": Case(
        ("create", "track"), "parked-CreateTrainingJob-before", "CreateTrainingJob:before", at_kill="no job"),
    "during-create-after-the-job-was-made": Case(
        ("create", "track"), "parked-CreateTrainingJob-after", "CreateTrainingJob:after", at_kill="job, no meta"),
    "right-after-create-meta-persisted": Case(("create", "hold", "track"), "holding", at_kill="job and meta"),
    "while-tracking": Case(("create", "track"), "RUNNING", at_kill="job and meta"),
    "while-tracking-then-aborted": Case(
        ("create", "track"), "RUNNING", then=("create", "delete", "track"), expected="ABORTED",
        at_kill="job and meta"),
    "during-create-after-the-job-was-made-then-aborted": Case(
        ("create", "track"), "parked-CreateTrainingJob-after", "CreateTrainingJob:after",
        then=("create", "delete", "track"), expected="ABORTED", at_kill="job, no meta"),
    "during-delete-before-the-job-is-marked": Case(
        ("create", "delete", "track"), "parked-AddTags-before", "AddTags:before", then=("create", "delete", "track"),
        expected="ABORTED", at_kill="running, unmarked"),
    "during-delete-after-the-mark-before-the-stop": Case(
        ("create", "delete", "track"), "parked-StopTrainingJob-before", "StopTrainingJob:before",
        then=("create", "delete", "track"), expected="ABORTED", at_kill="running, marked"),
    "during-delete-after-the-stop-was-made": Case(
        ("create", "delete", "track"), "parked-StopTrainingJob-after", "StopTrainingJob:after",
        then=("create", "delete", "track"), expected="ABORTED", at_kill="stopping, marked"),
}


@pytest.fixture(scope="module")
def engine_script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("engine") / "engine.py"
    path.write_text(ENGINE)
    return path


#: the running local SageMaker's key pair, as environment variables: it takes requests signed with it only
KEYS: dict[str, str] = {}


@dataclass
class World:
    server: LocalSageMaker
    aws: LocalClients
    config: Path
    task: Path
    state: Path
    identity: str
    name: str


@pytest.fixture
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    case: Case = request.getfixturevalue("case")
    settings = LocalSettings(execution="simulate", time_scale=TIME_SCALE, timeline={"Starting": 1, "Downloading": 1,
                                                              "Training": case.training, "Uploading": 1})
    with LocalSageMaker(settings) as server:
        aws = LocalClients(server.url)
        KEYS.update(server.credentials.env())
        identity = uuid.uuid4().hex[:12]
        config = tmp_path / "config.yaml"
        config.write_text(yaml.safe_dump(config_data(
            server.url, local={"endpoint_url": server.url, "time_scale": TIME_SCALE},
            tracking={"sweep_interval_seconds": 0.2})))
        task = tmp_path / "task.yaml"
        task.write_text(yaml.safe_dump(fresh_task("flt", "restart", name=identity,
                                                  train=aws.put_data("flt-restart/train"))))
        state = tmp_path / "state"
        state.mkdir()
        yield World(server, aws, config, task, state, identity, f"flt-restart-{identity}-n0-0")


def env(tmp: Path, pause: str = "", quota_full: str = "") -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("AWS_", "SAGEMAKER_PLUGIN_", "FLT_")) or k == RECORD_OPS}
    clean.update(AWS_EC2_METADATA_DISABLED="true", AWS_CONFIG_FILE=str(tmp / "none"),
                 AWS_SHARED_CREDENTIALS_FILE=str(tmp / "none"), AWS_ENDPOINT_URL="http://127.0.0.1:1", **KEYS)
    if pause:
        clean["FLT_PAUSE"] = pause
    if quota_full:
        clean["FLT_QUOTA_FULL"] = quota_full
    return clean


def wait_for(condition: Callable[[], bool], process: subprocess.Popen[bytes], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            _, err = process.communicate()
            pytest.fail(f"the engine ended (exit {process.returncode}) before {what}:\n{err.decode()}")
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} after {timeout} s")
        time.sleep(0.01)


def describe(world: World) -> dict[str, Any] | None:
    try:
        job: dict[str, Any] = world.aws.sagemaker.describe_training_job(TrainingJobName=world.name)
    except world.aws.sagemaker.exceptions.ClientError:
        return None
    return job


def jobs(world: World) -> list[str]:
    pages = world.aws.sagemaker.get_paginator("list_training_jobs").paginate(NameContains=world.identity)
    return [summary["TrainingJobName"] for page in pages for summary in page["TrainingJobSummaries"]]


def marked(world: World, job: dict[str, Any]) -> bool:
    tags = world.aws.sagemaker.list_tags(ResourceArn=job["TrainingJobArn"])["Tags"]
    return STOPPED_BY_TAG in {t["Key"] for t in tags}


def check_at_kill(world: World, at_kill: str) -> None:
    """What the dead engine left behind is what the case means to test."""
    job = describe(world)
    has_meta = (world.state / "meta.json").exists()
    if at_kill == "no job":
        assert (job, has_meta) == (None, False)
        return
    assert job is not None, "the first engine made no job"
    if at_kill == "job, no meta":
        assert not has_meta
        return
    assert has_meta
    status = job["TrainingJobStatus"]
    if at_kill == "running, unmarked":
        assert (status, marked(world, job)) == ("InProgress", False)
    elif at_kill == "running, marked":
        assert (status, marked(world, job)) == ("InProgress", True)
    elif at_kill == "stopping, marked":
        assert status in ("Stopping", "Stopped") and marked(world, job), status


def real_phase(world: World) -> str:
    job = describe(world)
    assert job is not None
    status = job["TrainingJobStatus"]
    if status == "Completed":
        return "SUCCEEDED"
    if status == "Stopped" and job["SecondaryStatus"] == "Stopped" and marked(world, job):
        return "ABORTED"
    return f"{status}/{job['SecondaryStatus']}"


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_an_engine_killed_mid_step_is_continued_by_a_new_one(case: Case, world: World, engine_script: Path,
                                                             tmp_path: Path) -> None:
    args = [sys.executable, str(engine_script), str(world.config), str(world.task), str(world.state)]
    phases = world.state / "phases.log"
    first = subprocess.Popen([*args, *case.first], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path,
                             env=env(tmp_path, case.pause))
    try:
        if case.killed_when == "RUNNING":
            wait_for(lambda: phases.exists() and "RUNNING" in phases.read_text(), first, "phase RUNNING")
        else:
            wait_for((world.state / case.killed_when).exists, first, case.killed_when)
    finally:
        first.kill()  # SIGKILL: no cleanup, no atexit, no finally in the engine
        first.communicate()
    assert first.returncode == -9
    check_at_kill(world, case.at_kill)

    second = subprocess.run([*args, *case.then], capture_output=True, cwd=tmp_path, env=env(tmp_path), timeout=60,
                            check=False)

    assert second.returncode == 0, second.stderr.decode()
    final = json.loads((world.state / "final.json").read_text())
    assert final["phase"] == case.expected, final
    assert jobs(world) == [world.name]
    assert real_phase(world) == case.expected
    if case.expected == "SUCCEEDED":
        assert final["outputs"]["training_job_name"] == world.name


@pytest.mark.parametrize("case", [Case(("create", "delete", "hold"), "holding", expected="ABORTED", long=False)],
                         ids=["queued"])
def test_an_abort_while_waiting_for_resources_holds_in_another_process(case: Case, world: World,
                                                                       engine_script: Path, tmp_path: Path) -> None:
    args = [sys.executable, str(engine_script), str(world.config), str(world.task), str(world.state)]
    quota = "The account-level service limit 'ml.m5.xlarge for training job usage' is 0 Instances"
    first = subprocess.Popen([*args, *case.first], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path,
                             env=env(tmp_path, quota_full=quota))
    try:
        wait_for((world.state / "holding").exists, first, "holding")
    finally:
        first.kill()
        first.communicate()
    assert json.loads((world.state / "meta.json").read_text())["queued_request"] is not None
    assert (world.state / "deleted").exists()
    assert jobs(world) == []

    second = subprocess.run([*args, "track"], capture_output=True, cwd=tmp_path, env=env(tmp_path), timeout=60,
                            check=False)  # the quota has freed meanwhile

    assert second.returncode == 0, second.stderr.decode()
    assert jobs(world) == [], "a job was made after its execution was aborted"
    assert json.loads((world.state / "final.json").read_text())["phase"] == "ABORTED"
