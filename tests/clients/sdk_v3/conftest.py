"""tests/clients/sdk_v3: one `local serve` whose jobs run for real, for the SageMaker Python SDK v3's tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local_serve import Served, local_serve
from sdk_v3_setup import RUN_CONFIG, sdk_v3_session


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with local_serve(tmp_path_factory.mktemp("sdk-v3"), RUN_CONFIG) as server:
        yield server


@pytest.fixture(scope="module")
def v3_session(served: Served, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with pytest.MonkeyPatch.context() as patch:
        yield sdk_v3_session(served, patch, tmp_path_factory.mktemp("sdk-v3-config"))


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sdk-v3-data")
