"""End to end, the edit-and-run-again loop (issue 21) against a served local SageMaker: a job name is taken for good,
so `run` of an edited task under the same execution identity is refused, naming `--new-attempt`, the one flag that
runs it as the next free attempt. When `run` started its own local SageMaker: test_rerun_embedded.py.

The real console script in subprocesses, with the no-AWS helpers of cli_e2e.py and rerun_e2e.py (tests/support); the
refusals also in process (cli_in_process.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

import cli_e2e as E
from cli_in_process import cli_here
from rerun_e2e import FLAG, edit, printed_command, run_printed

pytestmark = pytest.mark.timeout(180)

#: the served jobs' timeline: ~1.3 s a job (time_scale 10); nothing here depends on how long a job takes
SHORT_TIMELINE = {**E.SERVED_TIMELINE, "Training": 10}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A served local SageMaker whose jobs take ~1.3 s (it answers ResourceInUse for a taken name)."""
    with E.serving(tmp_path_factory.mktemp("served"), timeline=SHORT_TIMELINE) as server:
        yield server


def test_an_edited_task_is_refused_naming_the_flag_which_runs_it_as_the_next_attempt(served: Any) -> None:
    identity = E.unique("edit")
    task = E.write_task(served.work, identity)
    first = E.cli(["run", task, "--json", "--config", served.config], served.work)
    assert first.returncode == 0, first.stderr

    edited = E.write_task(served.work, identity, change=edit)  # the same file, edited
    refused = cli_here(["run", edited, "--config", served.config], served.work)
    assert (refused.returncode, refused.stdout) == (2, ""), refused.stderr
    E.assert_no_traceback(refused.stderr)
    job = E.expected_job(identity)
    assert f"execution: a different training job named '{job}' already exists" in refused.stderr
    argv = printed_command(refused.stderr)
    assert argv[1:] == ["run", str(edited), "--config", str(served.config), FLAG]

    again = run_printed(argv, served.work, "--json")  # the command the refusal gave, as given
    assert again.returncode == 0, again.stderr
    body = E.last_json(again.stdout)
    assert body["job_name"] == job.removesuffix("-0") + "-1"
    assert f"{FLAG}: running as execution.retry_attempt 1 (attempt 0 holds other versions of this task)" \
        in again.stderr
    assert E.describe(served, body["job_name"])["HyperParameters"]["eta"] == "0.1"
    assert E.describe(served, job)["HyperParameters"]["eta"] != "0.1", "the first attempt's job is untouched"

    # Once more (in process): this version's job is attempt 1's, taken up again rather than made anew.
    third = cli_here([*argv[1:], "--json"], served.work)
    assert third.returncode == 0, third.stderr
    assert E.last_json(third.stdout)["job_name"] == body["job_name"]
    assert "(adopted: this task's job already existed)" in third.stderr
    assert sorted(s["TrainingJobName"] for s in E.jobs_named(served, identity)) == [job, body["job_name"]]


def test_a_given_job_name_is_refused_saying_to_change_it(served: Any) -> None:
    identity = E.unique("named")
    name = f"{identity}-mine"

    def named(data: dict[str, Any]) -> None:
        data["job_name"] = name

    assert E.cli(["run", E.write_task(served.work, identity, change=named), "--config", served.config],
                 served.work).returncode == 0

    def named_and_edited(data: dict[str, Any]) -> None:
        named(data)
        edit(data)

    task = E.write_task(served.work, identity, change=named_and_edited)
    for extra in ([], [FLAG]):
        refused = cli_here(["run", task, "--config", served.config, *extra], served.work)
        assert refused.returncode == 2, refused.stderr
        E.assert_no_traceback(refused.stderr)
        assert "job_name: " in refused.stderr and "change job_name" in refused.stderr, refused.stderr
    assert [s["TrainingJobName"] for s in E.jobs_named(served, identity)] == [name]


def tuning_task(folder: Path, identity: str, eta_max: float) -> Path:
    """examples/tuning.yaml, two trials at once, execution name `identity`."""
    data = yaml.safe_load((folder / "tuning.yaml").read_text(encoding="utf-8"))
    data["execution"]["name"] = identity
    data["hyperparameter_tuning_job"].update(max_number_of_training_jobs=2, max_parallel_training_jobs=2)
    data["tuning_config"]["hyperparameter_ranges"]["parameter_range_map"]["eta"]["continuous_parameter_range"][
        "max_value"] = eta_max
    path = folder / f"{identity}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def test_an_edited_tuning_task_takes_the_next_attempt_too(served: Any) -> None:
    identity = E.unique("tune")
    first = E.cli(["run", tuning_task(served.work, identity, 0.5), "--json", "--config", served.config], served.work)
    assert first.returncode == 0, first.stderr
    name = E.last_json(first.stdout)["job_name"]

    edited = tuning_task(served.work, identity, 0.4)
    refused = cli_here(["run", edited, "--config", served.config], served.work)
    assert refused.returncode == 2, refused.stderr
    assert f"a different tuning job named '{name}' already exists" in refused.stderr
    again = run_printed(printed_command(refused.stderr), served.work, "--json")
    assert again.returncode == 0, again.stderr
    body = E.last_json(again.stdout)
    assert body["phase"] == "SUCCEEDED" and body["job_name"] != name and len(body["job_name"]) <= 32
    assert f"{FLAG}: running as execution.retry_attempt 1" in again.stderr
    tags = served.aws.sagemaker.list_tags(ResourceArn=served.aws.sagemaker.describe_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=body["job_name"])["HyperParameterTuningJobArn"])["Tags"]
    assert {t["Key"]: t["Value"] for t in tags}["sagemaker-plugin:retry-attempt"] == "1"
