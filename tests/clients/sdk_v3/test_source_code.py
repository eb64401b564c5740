"""v3's standard way to run a script, `SourceCode`, against `local serve`: v3 uploads the code and its `sm_drivers`
and runs `/bin/bash -c "chmod +x /opt/ml/input/data/sm_drivers/sm_train.sh && ..."`, whose drivers name `/opt/ml`
paths literally; and a plain `sh -c` entrypoint naming `/opt/ml`. Both work because each job sees its host's folder
at `/opt/ml` itself. Also `requirements`, installed by v3's own install script into the job's own Python
environment (never the caller's), and `distributed=MPI(...)`, refused at Training with a reason that says what its
driver needs."""

from __future__ import annotations

import importlib.util
import io
import tarfile
from pathlib import Path
from typing import Any

import pytest

from local_sagemaker import LOG_GROUP, PLACEHOLDER_ROLE_ARN
from local_sagemaker.testing import unique_name
from local_serve import BUCKET, Served
from runner_jobs import wheel
from sdk_v3_setup import custom_job, require_sdk_v3

require_sdk_v3()
from sagemaker.core.training.configs import Compute, SourceCode  # noqa: E402
from sagemaker.core.training.configs import OutputDataConfig as TrainerOutput  # noqa: E402
from sagemaker.core.utils.exceptions import FailedStatusError  # noqa: E402
from sagemaker.train import ModelTrainer  # noqa: E402
from sagemaker.train.distributed import MPI  # noqa: E402

SCRIPT = """\
import os, sys
print("hello from the entry script", sys.argv[1:], flush=True)
with open(os.path.join(os.environ["SM_MODEL_DIR"], "weights.txt"), "w") as out:
    out.write("42\\n")
"""
FAILING = """\
raise ValueError("the entry script refuses this data")
"""


def _trainer(session: Any, source: SourceCode, **extra: Any) -> ModelTrainer:
    return ModelTrainer(
        training_image="python:3.11",  # not pulled locally: the job runs on this machine's Python
        source_code=source,
        role=PLACEHOLDER_ROLE_ARN,
        sagemaker_session=session,
        compute=Compute(instance_type="ml.m5.large", instance_count=1),
        hyperparameters={"epochs": 2},
        output_data_config=TrainerOutput(s3_output_path=f"s3://{BUCKET}/sdk-v3-source"),
        base_job_name="sdk-v3-source",
        **extra,
    )


def _code(folder: Path, text: str) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.py").write_text(text, encoding="utf-8")
    return str(folder)


def _messages(served: Served, name: str) -> str:
    events = served.client("logs").filter_log_events(logGroupName=LOG_GROUP, logStreamNamePrefix=name)["events"]
    return "\n".join(event["message"] for event in events)


def _model_files(served: Served, uri: str) -> list[str]:
    body = served.client("s3").get_object(Bucket=BUCKET, Key=uri.split("/", 3)[3])["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as archive:
        return archive.getnames()


def test_source_code_entry_script_trains_and_saves_its_model(served: Served, v3_session: Any, folder: Path) -> None:
    trainer = _trainer(v3_session, SourceCode(source_dir=_code(folder / "entry", SCRIPT), entry_script="train.py"))
    trainer.train(wait=True, logs=False)
    job = trainer._latest_training_job
    assert job.training_job_status == "Completed"
    assert "hello from the entry script" in _messages(served, job.training_job_name)
    assert "weights.txt" in _model_files(served, job.model_artifacts.s3_model_artifacts)


def test_source_code_command_with_opt_ml_in_the_shell_string(served: Served, v3_session: Any, folder: Path) -> None:
    command = "python3 train.py && cat /opt/ml/input/config/hyperparameters.json && ls /opt/ml/model"
    trainer = _trainer(v3_session, SourceCode(source_dir=_code(folder / "command", SCRIPT), command=command))
    trainer.train(wait=True, logs=False)
    job = trainer._latest_training_job
    assert job.training_job_status == "Completed"
    logged = _messages(served, job.training_job_name)
    assert '"epochs"' in logged and "weights.txt" in logged


def test_a_failing_entry_script_raises_v3s_error_with_the_drivers_reason(served: Served, v3_session: Any,
                                                                         folder: Path) -> None:
    """As on SageMaker, v3's driver writes its own traceback as the FailureReason; the script's error is logged."""
    trainer = _trainer(v3_session, SourceCode(source_dir=_code(folder / "failing", FAILING), entry_script="train.py"))
    with pytest.raises(FailedStatusError) as error:
        trainer.train(wait=True, logs=False)
    job = trainer._latest_training_job
    assert job.failure_reason.startswith("AlgorithmError: ")
    assert "train.py" in job.failure_reason and "returned non-zero exit status 1" in job.failure_reason
    assert job.failure_reason in str(error.value)
    assert "ValueError: the entry script refuses this data" in _messages(served, job.training_job_name)


def test_a_shell_entrypoint_naming_opt_ml_completes(served: Served, v3_session: Any) -> None:
    name = unique_name("sdk-v3-sh")
    job = custom_job(v3_session, name, ["/bin/sh", "-c", "echo done > /opt/ml/model/marker.txt"])
    job.wait(timeout=300)
    assert job.training_job_status == "Completed"
    assert _model_files(served, job.model_artifacts.s3_model_artifacts) == ["marker.txt"]


PACKAGE = "sdkv3_req_probe"
WHEEL = f"{PACKAGE}-1.0-py3-none-any.whl"
REQUIREMENTS_SCRIPT = f"""\
import os, sys
import {PACKAGE}
print("requirement", {PACKAGE}.VALUE, "from", {PACKAGE}.__file__, "job", os.environ["TRAINING_JOB_NAME"], flush=True)
with open("/opt/ml/model/args.txt", "w") as out:
    out.write(" ".join(sys.argv[1:]))
"""


def _requirements_code(folder: Path) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.py").write_text(REQUIREMENTS_SCRIPT, encoding="utf-8")
    (folder / WHEEL).write_bytes(wheel(PACKAGE, 7))
    # pip reads options in a requirements file: no package index is needed for this one.
    (folder / "requirements.txt").write_text(f"--no-index\n/opt/ml/input/data/code/{WHEEL}\n", encoding="utf-8")
    return str(folder)


@pytest.mark.timeout(600)
def test_requirements_install_into_the_jobs_own_python(served: Served, v3_session: Any, folder: Path) -> None:
    source = SourceCode(source_dir=_requirements_code(folder / "requirements"), entry_script="train.py",
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


@pytest.mark.timeout(600)
def test_distributed_mpi_fails_at_training_saying_what_its_driver_needs(v3_session: Any, folder: Path) -> None:
    source = SourceCode(source_dir=_requirements_code(folder / "mpi"), entry_script="train.py")
    trainer = _trainer(v3_session, source, distributed=MPI(process_count_per_node=1))
    with pytest.raises(FailedStatusError, match="SSH server"):
        trainer.train(wait=True, logs=False)
    job = trainer._latest_training_job
    assert "distributed=MPI" in job.failure_reason
    assert [t.status for t in job.secondary_status_transitions][-2:] == ["Training", "Failed"]
