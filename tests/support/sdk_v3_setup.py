"""Helpers of tests/clients/sdk_v3: the SageMaker Python SDK v3 (`sagemaker` 3.x) against `local serve`.

v3 and the `test` extra's SDK 2.x cannot share one environment: these tests run in a second one (`.ci/run` and
`./scripts/test` build it from `.ci/sdk-v3-constraints.txt`), and skip, saying so, in an environment with 2.x. Where
the v3 run is meant to happen ($SAGEMAKER_PLUGIN_SDK_V3=required, which ./scripts/test sets), a missing v3 fails.
"""

from __future__ import annotations

import importlib.metadata
import os
from pathlib import Path
from typing import Any

import pytest

from local_serve import BUCKET, FastClock, Served, only_the_server

REQUIRED_ENV = "SAGEMAKER_PLUGIN_SDK_V3"
#: The jobs run for real (execution: run): the SDK reads their logs, model.tar.gz and failure reasons.
RUN_CONFIG = """\
backend: local
local:
  execution: run
"""
#: The SDK's defaults config: telemetry off (it would call an AWS host; tests reach 127.0.0.1 only).
SDK_CONFIG = """\
SchemaVersion: '1.0'
SageMaker:
  PythonSDK:
    Modules:
      TelemetryOptOut: true
"""
#: XGBoost's CSV: the label first.
CSV = "".join(f"{i % 7}.0,{i}.0,{i * 2 % 5}.0\n" for i in range(40))


def require_sdk_v3() -> None:
    """Skips the calling test module unless `sagemaker` 3.x is installed (fails instead where it must be)."""
    try:
        version = importlib.metadata.version("sagemaker")
    except importlib.metadata.PackageNotFoundError:
        version = "none"
    if version.split(".")[0].isdigit() and int(version.split(".")[0]) >= 3:
        return
    reason = (f"needs the SageMaker Python SDK v3 (this environment has sagemaker {version}); ./scripts/test runs "
              "tests/clients/sdk_v3 in an environment of its own")
    if os.environ.get(REQUIRED_ENV) == "required":
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def sdk_v3_session(served: Served, patch: pytest.MonkeyPatch, folder: Path) -> Any:
    """A v3 Session for the server, with this process as its client while `patch` lasts: the endpoint through
    AWS_ENDPOINT_URL (every client v3 builds from its boto session reads it), the server's key pair and nothing of the
    caller's AWS setup, telemetry off, `default_bucket` given (v3 would otherwise name it from STS on an AWS host),
    role validation as v3 does it by default, and FastClock as the time of sagemaker-core's 5 s polls."""
    import sagemaker.core.resources
    from sagemaker.core.helper.session_helper import Session

    only_the_server(served, patch)
    patch.delenv("SAGEMAKER_VALIDATE_ROLE", raising=False)
    config = folder / "sagemaker-config.yaml"
    config.write_text(SDK_CONFIG, encoding="utf-8")
    patch.setenv("SAGEMAKER_USER_CONFIG_OVERRIDE", str(config))
    patch.setattr(sagemaker.core.resources, "time", FastClock())
    return Session(boto_session=served.session(), default_bucket=BUCKET)


def csv_folder(folder: Path, rows: str = CSV) -> Path:
    """A local folder holding one CSV file, as users hand InputData."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "data.csv").write_text(rows, encoding="utf-8")
    return folder


def custom_job(session: Any, name: str, entrypoint: list[str]) -> Any:
    """sagemaker-core's TrainingJob.create of a custom image: not pulled locally, its `entrypoint` runs on this
    machine."""
    from sagemaker.core.resources import TrainingJob
    from sagemaker.core.shapes import AlgorithmSpecification, OutputDataConfig, ResourceConfig, StoppingCondition

    from local_sagemaker import PLACEHOLDER_ROLE_ARN
    from local_serve import REGION

    return TrainingJob.create(
        training_job_name=name,
        role_arn=PLACEHOLDER_ROLE_ARN,
        algorithm_specification=AlgorithmSpecification(
            training_image="123456789012.dkr.ecr.us-east-1.amazonaws.com/custom:latest", training_input_mode="File",
            container_entrypoint=entrypoint),
        output_data_config=OutputDataConfig(s3_output_path=f"s3://{BUCKET}/sdk-v3-core"),
        resource_config=ResourceConfig(instance_type="ml.m5.large", instance_count=1, volume_size_in_gb=10),
        stopping_condition=StoppingCondition(max_runtime_in_seconds=600),
        session=session.boto_session, region=REGION,
    )
