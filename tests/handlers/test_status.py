"""handlers/status.py: every status and secondary status of the service model has its phase in the one table."""

from __future__ import annotations

import pytest

from handlers.service_model import service_model
from handlers.status import PLUGIN_STATES, TERMINAL_STATUSES, Phase, phase_of, plugin_status

STATUSES = service_model().shape_for("TrainingJobStatus").enum
SECONDARY = service_model().shape_for("SecondaryStatus").enum
MODEL = {"ModelArtifacts": {"S3ModelArtifacts": "s3://b/j/output/model.tar.gz"}}


@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("secondary", SECONDARY)
def test_every_status_pair_of_the_service_model_has_a_known_phase(status: str, secondary: str) -> None:
    found = phase_of({"TrainingJobStatus": status, "SecondaryStatus": secondary, **MODEL})
    assert found.phase != Phase.UNDEFINED, found
    assert found.message
    assert found.phase.is_terminal == (status in TERMINAL_STATUSES | {"Deleting"})


def test_in_progress_secondary_statuses_are_listed_not_defaulted() -> None:
    """An InProgress job's secondary status decides INITIALIZING or RUNNING; a new one botocore brings must be
    placed in the table on purpose (it would silently read RUNNING)."""
    from handlers.status import _IN_PROGRESS

    not_in_progress = {"Stopping", "Stopped", "MaxRuntimeExceeded", "Completed", "Failed", "MaxWaitTimeExceeded"}
    assert set(SECONDARY) - not_in_progress == set(_IN_PROGRESS)


def test_completed_without_a_model_is_failed_for_every_caller() -> None:
    assert phase_of({"TrainingJobStatus": "Completed", "SecondaryStatus": "Completed", **MODEL}).phase == \
        Phase.SUCCEEDED
    bare = phase_of({"TrainingJobStatus": "Completed", "SecondaryStatus": "Completed"})
    assert bare.phase == Phase.FAILED and "S3ModelArtifacts" in bare.message


def test_unknown_status_is_undefined() -> None:
    assert phase_of({"TrainingJobStatus": "Exploded"}).phase == Phase.UNDEFINED


@pytest.mark.parametrize("state", sorted(PLUGIN_STATES))
def test_every_plugin_state_formats(state: str) -> None:
    status = plugin_status(state, waited=3.0, grace=60.0, job_name="j", reason="ResourceLimitExceeded: quota",
                           noun="training job", describe="DescribeTrainingJob")
    assert status.phase == PLUGIN_STATES[state][0] and "{" not in status.message
