"""End to end: the plugin tracking jobs by their EventBridge events through the local SageMaker's SQS queue
(config's tracking.events), its safety net, and `sagemaker-plugin events setup` / `teardown` in subprocesses.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cli_in_process import cli_here
from handlers.client import SageMakerClient
from handlers.local import EventFault
from handlers.tracker import StatusTracker
from local_sagemaker import LocalSageMaker, LocalSettings
from local_sagemaker.testing import LocalClients
from plugin.cli.events import DEFAULT_NAME, setup
from plugin.config import parse_config
from plugin.jobs.training_job import TrainingJobPlugin
from plugin.meta import ResourceMeta
from trackers import clear_trackers

pytestmark = pytest.mark.timeout(240)

TIMELINE = {"Starting": 0.3, "Downloading": 0.3, "Training": 1.2, "Uploading": 0.3}
#: the safety net's sweeps (the polling interval, 1 s, is what they slow down from)
SAFETY_SECONDS = 3.0
LOST = "e2e-lost"  # its Completed event never comes: only the safety net's sweep can tell it ended
SCRIPT = Path(sys.executable).parent / "sagemaker-plugin"


@pytest.fixture
def server() -> Iterator[LocalSageMaker]:
    settings = LocalSettings(execution="simulate", timeline=TIMELINE,
                             event_faults=(EventFault(LOST, "drop", "Completed"), EventFault("e2e-twice", "duplicate"),
                                           EventFault("e2e-late", "delay", "Training", delay_seconds=0.5)))
    clear_trackers()
    with LocalSageMaker(settings) as made:
        yield made
    clear_trackers()


def plugin_on(server: LocalSageMaker, queue_url: str, polling: float = 1.0) -> TrainingJobPlugin:
    return TrainingJobPlugin(parse_config({
        "backend": "local", "local": {"endpoint_url": server.url},
        "rate_limits": {"create_per_second": 0, "read_per_second": 0},
        "tracking": {"sweep_interval_seconds": polling,
                     "events": {"queue_url": queue_url, "sweep_interval_seconds": SAFETY_SECONDS}}}))


def follow(plugin: TrainingJobPlugin, server: LocalSageMaker, names: list[str], timeout: float = 90.0,
           first_only: bool = False) -> dict[str, Any]:
    """Each job's `get` until its phase is terminal (`first_only`: one `get` each): name -> its last Resource."""
    metas = {name: ResourceMeta(job_name=name, region="us-east-1", created_at=time.time(), endpoint_url=server.url)
             for name in names}
    done: dict[str, Any] = {}
    deadline = time.monotonic() + timeout
    while len(done) < len(names):
        if first_only:
            return {name: plugin.get(metas[name]) for name in names}
        assert time.monotonic() < deadline, f"still running: {sorted(set(names) - set(done))}"
        for name in names:
            if name not in done:
                resource = plugin.get(metas[name])
                if resource.phase.is_terminal:
                    done[name] = resource
        time.sleep(0.05)
    return done


def tracker_of(plugin: TrainingJobPlugin) -> StatusTracker:
    return plugin._tracker(plugin.client())


def test_jobs_are_followed_by_their_events_and_a_lost_one_by_the_safety_net(server: LocalSageMaker) -> None:
    made = setup(SageMakerClient(parse_config({"local": {"endpoint_url": server.url}}).client_settings()))
    aws = LocalClients(server.url)
    names = ["e2e-plain", "e2e-twice", "e2e-late", LOST]
    plugin = plugin_on(server, made.queue_url)
    tracker_of(plugin)  # the tracker and its listener run before the jobs are made, as a running connector's would
    server.reset_counts()
    for name in names:
        aws.sagemaker.create_training_job(**aws.training_request(name))
    follow(plugin, server, names, first_only=True)  # each job tracked from its start (the census lists them running)
    done = follow(plugin, server, names)
    assert {name: resource.phase.name for name, resource in done.items()} == dict.fromkeys(names, "SUCCEEDED")
    assert all(resource.outputs["training_seconds"] is not None for resource in done.values())
    tracker = tracker_of(plugin)
    assert tracker.sweep_interval_seconds == SAFETY_SECONDS
    stats = tracker.stats
    assert stats.events_applied >= 3 * len(names) and stats.events_ignored >= 1  # the duplicates, the late one
    assert stats.sweep_caught >= 1 and stats.sweeps >= 1  # the lost Completed
    counts = server.call_counts()
    assert counts.get("DescribeTrainingJob", 0) <= len(names)  # one per job, at its end (the events lack its figures)
    assert tracker_of(plugin).listener.active


def test_a_queue_deleted_mid_run_falls_back_to_sweeps_said_once(server: LocalSageMaker,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    made = setup(SageMakerClient(parse_config({"local": {"endpoint_url": server.url}}).client_settings()))
    aws = LocalClients(server.url)
    aws.sagemaker.create_training_job(**aws.training_request("e2e-first"))
    plugin = plugin_on(server, made.queue_url, polling=0.5)
    with caplog.at_level(logging.WARNING, logger="handlers.tracker"):
        follow(plugin, server, ["e2e-first"])
        aws.client("sqs").delete_queue(QueueUrl=made.queue_url)
        names = [f"e2e-after-{i}" for i in range(3)]
        for name in names:
            aws.sagemaker.create_training_job(**aws.training_request(name))
        done = follow(plugin, server, names)
    assert {resource.phase.name for resource in done.values()} == {"SUCCEEDED"}
    tracker = tracker_of(plugin)
    assert not tracker.listener.active and not tracker.follows_events and tracker.sweep_interval_seconds == 0.5
    lines = [record.getMessage() for record in caplog.records if record.name == "handlers.tracker"]
    assert len(lines) == 1 and "does not exist" in lines[0] and "falls back" in lines[0]


def cli(args: list[str | Path], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), *map(str, args)], capture_output=True, text=True, cwd=cwd, env=env, timeout=120)


def test_setup_and_teardown_are_idempotent_and_say_what_to_add(server: LocalSageMaker, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(json.dumps({"backend": "local", "local": {"endpoint_url": server.url}}), encoding="utf-8")
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "SAGEMAKER_PLUGIN_"))}
    env.update(server.credentials.env(), AWS_EC2_METADATA_DISABLED="true", XDG_DATA_HOME=str(tmp_path / "data"))
    sqs, events = LocalClients(server.url).client("sqs"), LocalClients(server.url).client("events")
    # the console script once; again, in process (cli_in_process: the same command line, milliseconds instead of a
    # Python of its own)
    first, again = (run(["events", "setup", "--config", str(config)], tmp_path, env=env) for run in (cli, cli_here))
    assert first.returncode == again.returncode == 0, first.stderr + again.stderr
    assert first.stdout == again.stdout
    url = sqs.get_queue_url(QueueName=DEFAULT_NAME)["QueueUrl"]
    assert f"tracking:\n  events:\n    queue_url: {url}\n" in first.stdout
    statement = json.loads(first.stdout[first.stdout.index("{"):])
    assert statement["Action"] == ["sqs:DeleteMessage", "sqs:ReceiveMessage"] and statement["Resource"].endswith(
        f":{DEFAULT_NAME}")
    rule = events.describe_rule(Name=DEFAULT_NAME)
    assert json.loads(rule["EventPattern"])["source"] == ["aws.sagemaker"] and rule["State"] == "ENABLED"
    assert len(events.list_targets_by_rule(Rule=DEFAULT_NAME)["Targets"]) == 1
    policy = json.loads(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])["Attributes"]["Policy"])
    assert policy["Statement"][0]["Condition"] == {"ArnEquals": {"aws:SourceArn": rule["Arn"]}}

    gone, nothing = (run(["events", "teardown", "--config", str(config)], tmp_path, env=env) for run in (cli, cli_here))
    assert gone.returncode == nothing.returncode == 0, gone.stderr + nothing.stderr
    assert "removed rule" in gone.stdout and "nothing named" in nothing.stdout
    assert not events.list_rules(NamePrefix=DEFAULT_NAME)["Rules"]
    assert not sqs.list_queues(QueueNamePrefix=DEFAULT_NAME).get("QueueUrls")

    bad = cli_here(["events", "setup", "--config", str(config), "--name", "no spaces"], tmp_path, env=env)
    assert bad.returncode == 2 and "--name" in bad.stderr and "Traceback" not in bad.stderr
    config.write_text(json.dumps({"backend": "local"}), encoding="utf-8")  # nothing running to keep the queue
    alone = cli_here(["events", "setup", "--config", str(config)], tmp_path, env=env)
    assert alone.returncode == 2 and "local serve" in alone.stderr and "Traceback" not in alone.stderr
