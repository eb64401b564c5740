"""A local SageMaker: moto's server with training jobs that behave as on AWS.

    from local_sagemaker import LocalSageMaker, LocalSettings, FailureRule
    with LocalSageMaker(LocalSettings(time_scale=10)) as server:
        boto3.client("sagemaker", endpoint_url=server.url, ...)

`LocalSageMaker(settings, data_dir=folder)` keeps its S3, jobs, tuning jobs, logs and metric series in `folder` and
answers for them again after a restart (local_sagemaker/store/); without `data_dir` it keeps nothing.

The settings import without moto (an optional dependency, the `local` extra), so a config loader can build them
anywhere; the server and moto load on first use of LocalSageMaker, serve or main. Importing this package never patches
moto; `LocalSageMaker.start()` does (see patch.py).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from handlers.local import (
    DEFAULT_TIMELINE,
    LOCAL_ACCOUNT_ID,
    PLACEHOLDER_ROLE_ARN,
    FailureRule,
    LocalSettings,
)
from handlers.local import (
    LOCAL_PHASES as PHASES,
)

if TYPE_CHECKING:
    from handlers.logs import LOG_GROUP
    from local_sagemaker.api.server import REMOTE_WARNING, LocalSageMaker, export_lines, main, serve

__all__ = [
    "DEFAULT_TIMELINE",
    "LOCAL_ACCOUNT_ID",
    "LOG_GROUP",
    "PHASES",
    "PLACEHOLDER_ROLE_ARN",
    "REMOTE_WARNING",
    "FailureRule",
    "LocalSageMaker",
    "LocalSettings",
    "export_lines",
    "main",
    "serve",
]

_LAZY = {"LocalSageMaker", "REMOTE_WARNING", "export_lines", "main", "serve"}


def __getattr__(name: str) -> Any:
    if name == "LOG_GROUP":  # handlers.logs brings botocore, which no job process (`python -m local_sagemaker.x`) needs
        return importlib.import_module("handlers.logs").LOG_GROUP
    if name in _LAZY:
        return getattr(importlib.import_module("local_sagemaker.api.server"), name)
    raise AttributeError(f"module 'local_sagemaker' has no attribute {name!r}")
