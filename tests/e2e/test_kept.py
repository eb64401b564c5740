"""End to end, what the data folder keeps (local_sagemaker/store/): jobs outlive the local SageMaker that ran them,
two of them share one folder, a SIGKILL mid-write leaves a whole database, `local reset` clears it.

The real console script in subprocesses (`sagemaker-plugin local serve`, `run`, `status`, `logs`, `metrics`,
`local reset`), with the no-AWS helpers of cli_e2e.py (tests/support); each test has a data folder of its own.
"""

from __future__ import annotations

import contextlib
import json
import os
import pty
import re
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

import cli_e2e as E

pytestmark = pytest.mark.timeout(300)

DATABASE = "local-sagemaker.sqlite3"


@contextmanager
def serving(cwd: Path, data: Path, **local: Any) -> Iterator[tuple[Any, Any]]:
    """`local serve` on the data folder `data`: (its Proc, boto3 clients of it); SIGTERM at the end."""
    config = E.write_config(cwd / f"server-{time.monotonic_ns()}.yaml", local={"data_dir": str(data), **local})
    proc, url, exports = E.start_serve(cwd, config)
    try:
        yield proc, E.LocalClients(url, credentials=E.keys_of(exports))
    finally:
        proc.popen.send_signal(signal.SIGTERM)
        try:
            proc.popen.wait(timeout=30)
        finally:
            proc.kill()


def until(check: Callable[[], Any], timeout: float = 30.0, what: str = "") -> Any:
    """`check()` once it is truthy, polled; fails after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout} s: {what}")
        time.sleep(0.1)


def error_of(call: Callable[..., Any], **params: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as raised:
        call(**params)
    error = raised.value.response["Error"]
    return str(error["Code"]), str(error["Message"])


def stored_statuses(data: Path, names: list[str]) -> set[str]:
    """The statuses the database holds for `names` (read-only, beside the server that writes it)."""
    with contextlib.closing(sqlite3.connect(f"{(data / DATABASE).as_uri()}?mode=ro", uri=True)) as db:
        marks = ",".join("?" * len(names))
        return {row[0] for row in db.execute(f"SELECT status FROM training_jobs WHERE name IN ({marks})", names)}


def integrity(data: Path) -> str:
    with contextlib.closing(sqlite3.connect(data / DATABASE)) as db:
        return str(db.execute("PRAGMA integrity_check").fetchone()[0])


# --- run twice, then look at the job with no server started by hand -------------------------------------------------


def test_run_twice_adopts_or_refuses_and_the_job_answers_after_the_run(tmp_path: Path) -> None:
    """`run` with its own local SageMaker, twice with the same execution: the second adopts the job the first made
    (never a new one over its model); an edited task is refused; `status`, `logs` and `metrics` answer afterwards."""
    work = E.copy_examples(tmp_path / "examples")
    config = E.write_config(tmp_path / "config.yaml", local={"execution": "run"})
    identity = E.unique("twice")
    task, job = E.write_task(work, identity), E.expected_job(identity)
    first = E.cli(["run", task, "--config", config], work, timeout=240)
    assert first.returncode == 0, first.stderr
    model = Path(re.findall(r"^model file (\S+)$", first.stdout, re.MULTILINE)[0])
    kept = (model.read_bytes(), model.stat().st_mtime_ns)

    second = E.cli(["run", task, "--no-logs", "--config", config], work, timeout=120)
    assert second.returncode == 0, second.stderr
    assert E.job_line(second.stdout) == job and "(adopted: this task's job already existed)" in second.stdout
    edited = E.write_task(work, identity, file_name="edited.yaml",
                          change=lambda data: data["inputs"]["static_hyperparameters"].update(num_round=5))
    third = E.cli(["run", edited, "--no-logs", "--config", config], work, timeout=120)
    assert third.returncode == 2, third.stdout + third.stderr
    assert f"a different training job named '{job}' already exists" in third.stderr
    assert (model.read_bytes(), model.stat().st_mtime_ns) == kept

    status = E.cli(["status", job, "--config", config], work)
    assert status.returncode == 0, status.stderr
    assert status.stdout.startswith(f"{job}: SUCCEEDED") and "Completed / Completed" in status.stdout
    logs = E.cli(["logs", job, "--config", config], work)
    assert logs.returncode == 0, logs.stderr
    assert logs.stdout.splitlines() == E.log_lines(first.stdout) != []
    metrics = E.cli(["metrics", job, "--json", "--config", config], work)
    assert metrics.returncode == 0, metrics.stderr
    series = json.loads(metrics.stdout)
    assert "validation:rmse" in json.dumps(series) and "train:rmse" in json.dumps(series)
    E.assert_no_traceback(second.stderr, third.stderr, status.stderr, logs.stderr, metrics.stderr)


# --- two local SageMakers on one folder ---------------------------------------------------------------------------


def test_two_local_sagemakers_share_one_data_folder(tmp_path: Path) -> None:
    """Each runs its own jobs; a name is taken across both; each answers for the other's jobs (status, logs, listing)
    and passes a stop on to their owner; when one is killed the other fails its running jobs, saying so."""
    data = tmp_path / "data"
    timeline = {"Starting": 1, "Downloading": 1, "Training": 60, "Uploading": 1}  # 6.3 s a job
    with serving(tmp_path, data, time_scale=10, timeline=timeline) as (proc_a, a), \
            serving(tmp_path, data, time_scale=10, timeline=timeline) as (_, b):
        a.sagemaker.create_training_job(**a.training_request("shared-done"))
        assert error_of(b.sagemaker.create_training_job, **b.training_request("shared-done"))[0] == "ResourceInUse"
        seen = b.sagemaker.describe_training_job(TrainingJobName="shared-done")
        assert seen["TrainingJobStatus"] == "InProgress"
        a.sagemaker.create_training_job(**a.training_request("shared-stopped"))
        until(lambda: b.sagemaker.describe_training_job(TrainingJobName="shared-stopped"), what="b sees a's job")
        b.sagemaker.stop_training_job(TrainingJobName="shared-stopped")  # a runs it: a stops it
        assert a.wait("shared-stopped", timeout=60)["TrainingJobStatus"] == "Stopped"
        assert until(lambda: b.sagemaker.describe_training_job(TrainingJobName="shared-stopped")[
            "TrainingJobStatus"] == "Stopped", what="b sees the stop it asked for")

        # names raced from both servers at once: each is made exactly once
        names = [f"raced-{n}" for n in range(12)]
        outcomes: dict[str, list[str]] = {name: [] for name in names}

        def race(clients: Any) -> None:
            for name in names:
                try:
                    clients.sagemaker.create_training_job(**clients.training_request(name))
                    outcomes[name].append("created")
                except ClientError as error:
                    outcomes[name].append(error.response["Error"]["Code"])

        racers = [threading.Thread(target=race, args=(clients,)) for clients in (a, b)]
        for racer in racers:
            racer.start()
        for racer in racers:
            racer.join(timeout=120)
        assert all(sorted(found) == ["ResourceInUse", "created"] for found in outcomes.values()), outcomes

        until(lambda: {job["TrainingJobName"] for job in b.sagemaker.list_training_jobs(MaxResults=100)[
            "TrainingJobSummaries"]} == {"shared-done", "shared-stopped", *names}, what="b lists a's jobs and its own")
        done = a.wait("shared-done", timeout=60)
        assert until(lambda: b.sagemaker.describe_training_job(TrainingJobName="shared-done")["TrainingJobStatus"]
                     == "Completed", what="b sees a's job end")
        assert until(lambda: b.log_messages("shared-done") == a.log_messages("shared-done") != {},
                     what="b shows a's logs")
        assert b.sagemaker.describe_training_job(TrainingJobName="shared-done")["TrainingEndTime"] == \
            done["TrainingEndTime"]

        a.sagemaker.create_training_job(**a.training_request("shared-cut"))
        a.wait("shared-cut", until=lambda job: job["SecondaryStatus"] == "Training")
        proc_a.popen.kill()  # SIGKILL: no clean stop, its lock is freed by the kernel
        proc_a.popen.wait(timeout=30)
        cut = until(lambda: (found := b.sagemaker.describe_training_job(TrainingJobName="shared-cut"))[
            "TrainingJobStatus"] == "Failed" and found, timeout=60, what="b fails the job of a server that died")
        assert "the local SageMaker that ran this training job" in cut["FailureReason"]
        assert a.url in cut["FailureReason"]
    assert integrity(data) == "ok"


# --- SIGKILL mid-write ----------------------------------------------------------------------------------------------


def test_a_local_sagemaker_killed_mid_write_leaves_whole_records(tmp_path: Path) -> None:
    """Clients create jobs as fast as they can while jobs log and end; the server is SIGKILLed in the middle of it.
    The database opens whole; every job whose create was answered is there and answers consistently; those that were
    running are Failed with the reason; their names stay taken."""
    data = tmp_path / "data"
    timeline = {"Starting": 0.5, "Downloading": 0.5, "Training": 4, "Uploading": 0.5}
    created: list[str] = []
    attempted: list[str] = []
    stop = threading.Event()
    with serving(tmp_path, data, time_scale=5, timeline=timeline) as (proc, aws):
        uri = aws.put_data("crash/train")

        def create_many(worker: int) -> None:
            number = 0
            while not stop.is_set():
                name = f"crash-{worker}-{number}"
                number += 1
                attempted.append(name)
                try:
                    aws.sagemaker.create_training_job(**aws.training_request(name, channels={"train": uri}))
                except Exception:  # the server died under it
                    return
                created.append(name)

        workers = [threading.Thread(target=create_many, args=(n,)) for n in range(4)]
        for worker in workers:
            worker.start()
        ended = until(lambda: len(created) >= 60 and aws.sagemaker.list_training_jobs(StatusEquals="Completed")[
            "TrainingJobSummaries"], timeout=120, what="jobs created, some of them ended")
        names = [job["TrainingJobName"] for job in ended]
        until(lambda: stored_statuses(data, names) == {"Completed"}, what="the ended jobs committed")
        proc.popen.kill()  # while the clients go on creating and the jobs go on logging
        proc.popen.wait(timeout=30)
        stop.set()
        for worker in workers:
            worker.join(timeout=60)
    assert integrity(data) == "ok"

    with serving(tmp_path, data, time_scale=5, timeline=timeline) as (_, aws):
        listed = {job["TrainingJobName"]: job for job in aws.sagemaker.get_paginator("list_training_jobs").paginate(
            PaginationConfig={"PageSize": 100}).build_full_result()["TrainingJobSummaries"]}
        assert set(created) <= set(listed) <= set(attempted)
        statuses = {job["TrainingJobStatus"] for job in listed.values()}
        assert statuses <= {"Completed", "Failed"} and "Failed" in statuses
        assert all(listed[job["TrainingJobName"]]["TrainingJobStatus"] == "Completed" for job in ended)
        for name, summary in listed.items():
            job = aws.sagemaker.describe_training_job(TrainingJobName=name)
            transitions = job["SecondaryStatusTransitions"]
            assert job["TrainingJobStatus"] == summary["TrainingJobStatus"] == transitions[-1]["Status"], name
            assert [t["StartTime"] for t in transitions] == sorted(t["StartTime"] for t in transitions), name
            assert all("EndTime" in t for t in transitions), name
            if job["TrainingJobStatus"] == "Failed":
                assert job["FailureReason"].startswith("InternalServerError: the local SageMaker that ran this "
                                                       "training job"), name
            else:
                assert "FailureReason" not in job and job["ModelArtifacts"]["S3ModelArtifacts"], name
            for stream, lines in aws.log_messages(name).items():
                assert lines, stream
        for name in created[:5]:
            assert error_of(aws.sagemaker.create_training_job,
                            **aws.training_request(name, channels={"train": uri}))[0] == "ResourceInUse"


# --- local reset ----------------------------------------------------------------------------------------------------


def _with_terminal(args: list[str], cwd: Path, answer: str) -> tuple[int, str]:
    """Runs the command with a terminal as its stdin and stdout, typing `answer` once asked; (exit code, output)."""
    leader, follower = pty.openpty()
    process = subprocess.Popen([str(E.SCRIPT), *args], stdin=follower, stdout=follower, stderr=follower, cwd=cwd,
                               env=E.cli_env(cwd), close_fds=True)
    os.close(follower)
    output = b""
    try:
        while b"[y/N]" not in output and process.poll() is None:
            output += os.read(leader, 1024)
        os.write(leader, answer.encode() + b"\n")
        code = process.wait(timeout=60)
        while True:
            try:
                chunk = os.read(leader, 1024)
            except OSError:  # the terminal closed with the process
                break
            if not chunk:
                break
            output += chunk
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(leader)
    return code, output.decode(errors="replace")


def test_local_reset_asks_refuses_without_an_answer_and_while_in_use(tmp_path: Path) -> None:
    data = tmp_path / "data"
    config = E.write_config(tmp_path / "config.yaml", local={"data_dir": str(data)})
    reset = ["local", "reset", "--config", str(config)]
    with serving(tmp_path, data, execution="simulate", time_scale=20) as (_, aws):  # a job to forget, at once
        aws.sagemaker.create_training_job(**aws.training_request("to-forget"))
        aws.wait("to-forget")
        in_use = E.cli([*reset, "--yes"], tmp_path)
        assert in_use.returncode == 2, in_use.stdout + in_use.stderr
        assert f"a local SageMaker is using the data folder {data} (process " in in_use.stderr
        assert aws.url in in_use.stderr
    assert (data / DATABASE).is_file() and (data / "s3").is_dir()

    unasked = E.cli(reset, tmp_path)  # no terminal: nobody can answer
    assert unasked.returncode == 2 and "pass --yes" in unasked.stderr, unasked.stdout + unasked.stderr
    code, output = _with_terminal(reset, tmp_path, "n")
    assert code == 0 and "nothing deleted" in output, output
    assert (data / DATABASE).is_file()

    code, output = _with_terminal(reset, tmp_path, "y")
    assert code == 0, output
    assert not (data / DATABASE).exists() and not (data / "s3").exists()
    again = E.cli([*reset, "--yes"], tmp_path)
    assert again.returncode == 0 and "nothing kept" in again.stdout
    gone = E.cli(["status", "to-forget", "--config", str(config)], tmp_path)
    assert gone.returncode == 2 and "no training job named 'to-forget'" in gone.stderr, gone.stderr
    E.assert_no_traceback(in_use.stderr, unasked.stderr, gone.stderr, again.stderr)


def test_records_that_cannot_be_read_are_bad_input_naming_the_folder(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / DATABASE).write_bytes(b"not a database at all" * 200)
    config = E.write_config(tmp_path / "config.yaml", local={"data_dir": str(data)})
    result = E.cli(["status", "some-job", "--config", str(config)], tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "local.data_dir: cannot use the local SageMaker's records in" in result.stderr
    E.assert_no_traceback(result.stderr)


def test_a_local_s3_index_that_cannot_be_read_is_bad_input_and_reset_clears_it(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "s3").mkdir(parents=True)
    (data / "s3" / ".index.sqlite3").write_bytes(b"not an index either" * 200)
    config = E.write_config(tmp_path / "config.yaml", local={"data_dir": str(data)})
    result = E.cli(["status", "some-job", "--config", str(config)], tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "local.data_dir: cannot use the local S3's index" in result.stderr
    assert "sagemaker-plugin local reset" in result.stderr
    cleared = E.cli(["local", "reset", "--yes", "--config", str(config)], tmp_path)
    assert cleared.returncode == 0, cleared.stderr
    again = E.cli(["status", "some-job", "--config", str(config)], tmp_path)
    assert again.returncode == 2 and "no training job named 'some-job'" in again.stderr, again.stderr
    E.assert_no_traceback(result.stderr, cleared.stderr, again.stderr)
