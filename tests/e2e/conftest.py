"""The shared `sagemaker-plugin local serve` subprocesses of the end-to-end tests, one of each per test file that uses
it (module scoped; each test uses its own execution identity, hence its own job names): `served`, whose jobs take
~3.3 s; `long_served`, whose jobs train for a minute, so that a loaded machine cannot make a job end before a test
stops it; `quota_served`, which runs jobs for real and lets them hold one instance of QUOTA_TYPE at once."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cli_e2e import QUOTA_TYPE, SERVED_FAILURE, SERVED_TIMELINE, Served, serving


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The shared local SageMaker: jobs take ~3.3 s, ~3 s of it in Training."""
    with serving(tmp_path_factory.mktemp("served"), timeline=SERVED_TIMELINE, failures=[SERVED_FAILURE]) as server:
        yield server


@pytest.fixture(scope="module")
def long_served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A local SageMaker whose jobs train for a minute, for the tests that stop them: no race with a loaded machine."""
    with serving(tmp_path_factory.mktemp("long"), timeline={**SERVED_TIMELINE, "Training": 600}) as server:
        yield server


@pytest.fixture(scope="module")
def quota_served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A local SageMaker that runs jobs for real (`execution: run`) and lets them hold one QUOTA_TYPE instance: the
    quota tests' first job runs a script that holds the instance until the test lets it end (`holding_pair`)."""
    with serving(tmp_path_factory.mktemp("quota"), execution="run", quotas={"instances": {QUOTA_TYPE: 1}}) as server:
        yield server
