"""A restarted engine: one process creates and persists the meta, another decodes it and carries on.

Each process is a fresh Python (`sys.executable`) that only has the config file, the task file and the meta bytes;
the jobs live on a moto server in this process. Plain moto makes a job Completed at once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from aws_faults import CUSTOM
from plugin import ResourceMeta
from plugin_setup import config_data, fresh_task

AWS_QUOTA = "The account-level service limit 'ml.p3.2xlarge for training job usage' is 0 Instances"

ENGINE_CREATE = """
import sys
from plugin import registry, load_task, load_config
config = load_config(sys.argv[1])
p = registry.get(sys.argv[3], config=config)
if len(sys.argv) > 4:  # refuse creates for quota, as AWS does when the account is full
    import json
    from botocore.awsrequest import AWSResponse

    class Body:
        def stream(self, **_):
            yield json.dumps({"__type": "ResourceLimitExceeded", "message": sys.argv[4]}).encode()

    p.client().sagemaker.meta.events.register_first(
        "before-send.sagemaker.CreateTrainingJob",
        lambda request, **_: AWSResponse(request.url, 400, {"Content-Type": "application/x-amz-json-1.1"}, Body()))
meta = p.create(load_task(sys.argv[2]))
sys.stdout.buffer.write(meta.encode())
"""

ENGINE_CONTINUE = """
import json, sys
from plugin import registry, load_config
config = load_config(sys.argv[1])
p = registry.get(sys.argv[2], config=config)
meta = p.metadata_type.decode(sys.stdin.buffer.read())
seen = [p.get(meta).as_dict() for _ in range(int(sys.argv[3]))]
p.delete(meta)
p.delete(meta)
print(json.dumps({"job_name": meta.job_name, "job_arn": meta.job_arn, "seen": seen}))
"""


@pytest.fixture
def files(tmp_path: Path, endpoint: str) -> tuple[Path, Path]:
    """The config and task files each engine process reads (the tests look at the server through `raw`)."""
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(config_data(endpoint)))
    task = tmp_path / "task.yaml"
    task.write_text(yaml.safe_dump(fresh_task("plg", "restart", instance_type="ml.p3.2xlarge")))
    return config, task


def run(tmp_path: Path, script: str, *args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAGEMAKER_PLUGIN_")}
    done = subprocess.run([sys.executable, "-c", script, *args], input=stdin, capture_output=True, cwd=tmp_path,
                          env=env, timeout=60, check=False)
    assert done.returncode == 0, done.stderr.decode()
    return done


def jobs_named(raw: Any, name: str) -> list[str]:
    """Every page: moto keeps one state per process, so other modules' jobs are listed too and one page may miss it."""
    pages = raw.get_paginator("list_training_jobs").paginate(NameContains=name)
    names = [s["TrainingJobName"] for page in pages for s in page["TrainingJobSummaries"]]
    return [found for found in names if found == name]


def test_a_restarted_engine_continues_from_the_persisted_meta(tmp_path: Path, files: tuple[Path, Path],
                                                              raw: Any) -> None:
    config, task = files
    created = run(tmp_path, ENGINE_CREATE, str(config), str(task), CUSTOM)
    blob = created.stdout
    meta = ResourceMeta.decode(blob)  # what the engine persisted is a valid meta
    assert json.loads(blob)["job_arn"] == meta.job_arn
    assert jobs_named(raw, meta.job_name) == [meta.job_name]

    carried_on = run(tmp_path, ENGINE_CONTINUE, str(config), CUSTOM, "1", stdin=blob)
    report = json.loads(carried_on.stdout)

    assert report["job_name"] == meta.job_name
    assert report["job_arn"] == meta.job_arn
    [resource] = report["seen"]
    assert resource["phase"] == "SUCCEEDED"
    assert resource["outputs"]["training_job_name"] == meta.job_name
    assert resource["outputs"]["training_job_arn"] == meta.job_arn
    assert resource["outputs"]["model"].endswith(f"/{meta.job_name}/output/model.tar.gz")
    assert {link["name"] for link in resource["log_links"]} == {"Job page (local SageMaker)", "Logs (local SageMaker)",
                                                                 "Status (local SageMaker)"}
    assert jobs_named(raw, meta.job_name) == [meta.job_name]


def test_a_restarted_engine_creates_a_job_queued_for_quota(tmp_path: Path, files: tuple[Path, Path],
                                                           raw: Any) -> None:
    """The first engine was refused for quota and died; the next one retries the create from the meta alone."""
    config, task = files
    blob = run(tmp_path, ENGINE_CREATE, str(config), str(task), CUSTOM, AWS_QUOTA).stdout
    meta = ResourceMeta.decode(blob)
    assert meta.queued
    assert AWS_QUOTA in meta.queued_message
    assert jobs_named(raw, meta.job_name) == []

    report = json.loads(run(tmp_path, ENGINE_CONTINUE, str(config), CUSTOM, "2", stdin=blob).stdout)

    assert [seen["phase"] for seen in report["seen"]] == ["QUEUED", "SUCCEEDED"]
    assert report["seen"][1]["outputs"]["training_job_name"] == meta.job_name
    assert jobs_named(raw, meta.job_name) == [meta.job_name]
