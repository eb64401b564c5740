"""v3's `SourceCode` drivers as on SageMaker: `requirements` installed by v3's own install script into the job's own
Python environment (never the caller's), what the drivers read there (resourceconfig.json's
current_instance_type, TRAINING_JOB_NAME, sourcecode.json), and `distributed=MPI(...)` refused at Training with a
reason that says what its driver needs."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

from local_sagemaker import LOG_GROUP, PLACEHOLDER_ROLE_ARN
from local_serve import BUCKET, Served
from runner_jobs import wheel

# tests/support/sdk_v3_setup.py comes with this folder's conftest (the v3 environment's fixtures)
pytest.importorskip("sdk_v3_setup", reason="tests/clients/sdk_v3's helpers are not here").require_sdk_v3()
from sagemaker.core.training.configs import Compute, SourceCode  # noqa: E402
from sagemaker.core.training.configs import OutputDataConfig as TrainerOutput  # noqa: E402
from sagemaker.core.utils.exceptions import FailedStatusError  # noqa: E402
from sagemaker.train import ModelTrainer  # noqa: E402
from sagemaker.train.distributed import MPI  # noqa: E402

pytestmark = pytest.mark.timeout(600)

PACKAGE = "sdkv3_req_probe"
WHEEL = f"{PACKAGE}-1.0-py3-none-any.whl"
SCRIPT = f"""\
import os, sys
import {PACKAGE}
print("requirement", {PACKAGE}.VALUE, "from", {PACKAGE}.__file__, "job", os.environ["TRAINING_JOB_NAME"], flush=True)
with open("/opt/ml/model/args.txt", "w") as out:
    out.write(" ".join(sys.argv[1:]))
"""


def _trainer(session: Any, source: SourceCode, **extra: Any) -> ModelTrainer:
    return ModelTrainer(
        training_image="python:3.11",  # not pulled locally: the job runs on this machine's Python
        source_code=source,
        role=PLACEHOLDER_ROLE_ARN,
        sagemaker_session=session,
        compute=Compute(instance_type="ml.m5.large", instance_count=1),
        hyperparameters={"epochs": 3},
        output_data_config=TrainerOutput(s3_output_path=f"s3://{BUCKET}/sdk-v3-sourcecode"),
        base_job_name="sdk-v3-sourcecode",
        **extra,
    )


def _code(folder: Path) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.py").write_text(SCRIPT, encoding="utf-8")
    (folder / WHEEL).write_bytes(wheel(PACKAGE, 7))
    # pip reads options in a requirements file: no package index is needed for this one.
    (folder / "requirements.txt").write_text(f"--no-index\n/opt/ml/input/data/code/{WHEEL}\n", encoding="utf-8")
    return str(folder)


def _messages(served: Served, name: str) -> str:
    logs = served.client("logs")
    events = logs.filter_log_events(logGroupName=LOG_GROUP, logStreamNamePrefix=name)["events"]
    return "\n".join(event["message"] for event in events)


def test_requirements_install_into_the_jobs_own_python(served: Served, v3_session: Any, folder: Path) -> None:
    source = SourceCode(source_dir=_code(folder / "requirements"), entry_script="train.py",
                        requirements="requirements.txt")
    trainer = _trainer(v3_session, source)
    trainer.train(wait=True, logs=False)
    job = trainer._latest_training_job
    assert job.training_job_status == "Completed", job.failure_reason
    logged = _messages(served, job.training_job_name)
    assert f"Successfully installed {PACKAGE.replace('_', '-')}-1.0" in logged  # pip's own output, in the job's log
    assert "requirement 7 from " in logged and f"job {job.training_job_name}" in logged
    installed = logged.split("requirement 7 from ", 1)[1].split(" ", 1)[0]
    assert "/algo-1-python/" in installed, installed  # the job's environment, not this one
    assert '"current_instance_type": "ml.m5.large"' in logged  # sm_train.sh prints resourceconfig.json
    assert importlib.util.find_spec(PACKAGE) is None


def test_distributed_mpi_fails_at_training_saying_what_its_driver_needs(v3_session: Any, folder: Path) -> None:
    source = SourceCode(source_dir=_code(folder / "mpi"), entry_script="train.py")
    trainer = _trainer(v3_session, source, distributed=MPI(process_count_per_node=1))
    with pytest.raises(FailedStatusError, match="SSH server"):
        trainer.train(wait=True, logs=False)
    job = trainer._latest_training_job
    assert "distributed=MPI" in job.failure_reason
    assert [t.status for t in job.secondary_status_transitions][-2:] == ["Training", "Failed"]
