"""Fixtures of the foundation tests.

Tests here never depend on the environment: $SAGEMAKER_PLUGIN_CONFIG and $SAGEMAKER_PLUGIN_ENDPOINT_URL are removed for
every test, and every CLI run gets an explicit --config or a clean working directory.
"""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _no_config_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SAGEMAKER_PLUGIN_CONFIG", raising=False)
    monkeypatch.delenv("SAGEMAKER_PLUGIN_ENDPOINT_URL", raising=False)
