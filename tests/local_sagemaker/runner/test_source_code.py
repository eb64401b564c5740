"""Jobs shaped as the SageMaker Python SDK v3's `SourceCode` makes them: a `code` channel, an `sm_drivers` channel
(sourcecode.json, a launcher script naming /opt/ml) and `/bin/bash -c "chmod +x .../sm_train.sh && ..."`.

The launcher here is this test's own small script with v3's shape (the real drivers run in tests/clients/sdk_v3/,
with the SDK installed): requirements go into the job's own Python environment, never into the caller's.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

from local_sagemaker import LocalSettings
from local_sagemaker.runner import sdk_drivers
from local_sagemaker.testing import CUSTOM_IMAGE, DATA_BUCKET, LocalClients, unique_name
from runner_jobs import logs, model_files, wait, wheel

pytestmark = pytest.mark.timeout(180)

LOCAL_SETTINGS = LocalSettings(execution="run", stop_seconds=1)
DRIVERS = "/opt/ml/input/data/sm_drivers"
ENTRY = ["/bin/bash", "-c"]
ARGUMENTS = [f"chmod +x {DRIVERS}/sm_train.sh && {DRIVERS}/sm_train.sh"]
PACKAGE = "localpkg_v3test"
WHEEL = f"{PACKAGE}-1.0-py3-none-any.whl"
LAUNCHER = """#!/bin/bash
set -e
PY=$(command -v python3)
cat /opt/ml/input/config/resourceconfig.json
cd /opt/ml/input/data/code
$PY -m pip install --no-index -r requirements.txt
$PY {driver}
"""
TRAIN = f"""
import json, os, sys
import boto3  # the caller's packages stay importable
import {PACKAGE}
print("package", {PACKAGE}.VALUE, {PACKAGE}.__file__)
print("prefix", sys.prefix)
config = json.load(open("/opt/ml/input/config/resourceconfig.json"))
with open("/opt/ml/model/seen.json", "w") as out:
    json.dump({{"job": os.environ["TRAINING_JOB_NAME"], "type": config["current_instance_type"],
               "cwd": os.getcwd()}}, out)
"""


def upload(aws: LocalClients, prefix: str, files: Mapping[str, bytes | str]) -> str:
    for name, body in files.items():
        aws.s3.put_object(Bucket=DATA_BUCKET, Key=f"{prefix}/{name}", Body=body)
    return f"s3://{DATA_BUCKET}/{prefix}/"


def create_source_code_job(aws: LocalClients, name: str, driver: str) -> None:
    aws.put_data(f"v3/{name}/train")  # the bucket
    code = upload(aws, f"v3/{name}/code", {"train.py": TRAIN, WHEEL: wheel(PACKAGE),
                                           "requirements.txt": f"/opt/ml/input/data/code/{WHEEL}\n"})
    drivers = upload(aws, f"v3/{name}/sm_drivers", {
        "sm_train.sh": LAUNCHER.format(driver=driver),
        "sourcecode.json": json.dumps({"source_dir": "code", "entry_script": "train.py",
                                       "requirements": "requirements.txt", "command": None}),
        "distributed.json": "{}",
    })
    request = aws.training_request(name, image=CUSTOM_IMAGE, channels={"code": code, "sm_drivers": drivers},
                                   instance_type="ml.m5.large")
    request["AlgorithmSpecification"].update(ContainerEntrypoint=ENTRY, ContainerArguments=ARGUMENTS)
    aws.sagemaker.create_training_job(**request)


def test_source_code_requirements_go_into_the_jobs_own_python(aws: LocalClients) -> None:
    name = unique_name("v3src")
    create_source_code_job(aws, name, "train.py")
    job = wait(aws, name, timeout=150)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    lines = logs(aws, name)["algo-1"]
    assert any(f"Successfully installed {PACKAGE.replace('_', '-')}-1.0" in line for line in lines), lines
    assert any("Python environment of this job's own" in line for line in lines)
    prefix = next(line.split(" ", 1)[1] for line in lines if line.startswith("prefix "))
    assert prefix != sys.prefix and prefix.endswith("/algo-1-python")
    assert next(line for line in lines if line.startswith("package ")).startswith(f"package 42 {prefix}/")
    assert json.loads(model_files(aws, job)["seen.json"]) == {"job": name, "type": "ml.m5.large",
                                                             "cwd": "/opt/ml/input/data/code"}
    # Never into the caller's environment.
    assert importlib.util.find_spec(PACKAGE) is None
    assert not any(Path(folder, PACKAGE).exists() for folder in sdk_drivers.caller_site_dirs())


def test_source_code_with_mpi_fails_at_training_saying_what_is_missing(aws: LocalClients) -> None:
    name = unique_name("v3mpi")
    create_source_code_job(aws, name, "/opt/ml/input/data/sm_drivers/distributed_drivers/mpi_driver.py")
    job = wait(aws, name)
    assert job["TrainingJobStatus"] == "Failed"
    assert [t["Status"] for t in job["SecondaryStatusTransitions"]][-2:] == ["Training", "Failed"]
    assert "distributed=MPI" in job["FailureReason"] and "SSH server" in job["FailureReason"]
    assert "sagemaker_mpi_enabled" in job["FailureReason"]
