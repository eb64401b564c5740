"""The knobs of the local SageMaker, where local_sagemaker's modules find them: defined once in handlers/local.py,
which config.yaml's `local` section (plugin/config.py) is read into as well."""

from __future__ import annotations

from handlers.local import (
    DEFAULT_BUCKETS,
    DEFAULT_TIMELINE,
    EXECUTIONS,
    LOCAL_ACCOUNT_ID,
    PLACEHOLDER_ROLE_ARN,
    FailureRule,
    LocalSettings,
)
from handlers.local import LOCAL_PHASES as PHASES

__all__ = ["DEFAULT_BUCKETS", "DEFAULT_TIMELINE", "EXECUTIONS", "LOCAL_ACCOUNT_ID", "PHASES", "PLACEHOLDER_ROLE_ARN",
           "FailureRule", "LocalSettings"]
