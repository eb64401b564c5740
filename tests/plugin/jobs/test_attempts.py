"""`run --new-attempt`'s search for the next free attempt, and the refusal that names it (plugin/jobs/attempts.py).

The search against SageMaker (Describe, fingerprints, rendering each attempt) is tested with the create tests, on a
moto server (tests/plugin/jobs/test_training_job_create.py); here, the search itself on scripted holders, and the texts.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest

from plugin import load_task
from plugin.jobs.attempts import FLAG, SPAN, Holder, NameTaken, find_attempt
from plugin_setup import fresh_task


def holders(theirs: set[int], ours: set[int] = frozenset()) -> tuple[Callable[[int], Holder], list[int]]:
    """A probe answering from the sets, and the attempts it was asked about."""
    asked: list[int] = []

    def probe(attempt: int) -> Holder:
        asked.append(attempt)
        return Holder.OURS if attempt in ours else Holder.THEIRS if attempt in theirs else Holder.FREE

    return probe, asked


def test_a_free_first_attempt_costs_one_look() -> None:
    probe, asked = holders(set())
    assert find_attempt(probe, 3) == 3
    assert asked == [3]


@pytest.mark.parametrize("taken", [1, 2, 3, 5, 8, 13, 100, 1000])
def test_after_taken_attempts_without_gaps_the_first_free_one_in_logarithmic_looks(taken: int) -> None:
    probe, asked = holders(set(range(taken)))
    assert find_attempt(probe, 0) == taken
    assert len(asked) == len(set(asked)), "no attempt looked at twice"
    assert len(asked) <= 2 * math.ceil(math.log2(taken + 1)) + 2, asked


def test_the_search_starts_at_the_tasks_own_attempt() -> None:
    probe, asked = holders({0, 1, 2, 5, 6})  # 0-2 belong to other identities' numbering: not looked at
    assert find_attempt(probe, 5) == 7
    assert min(asked) == 5


@pytest.mark.parametrize("ours", [0, 1, 4, 6, 7])
def test_this_tasks_own_job_is_taken_up_again_not_passed_by(ours: int) -> None:
    """The last attempt a --new-attempt made holds this task's job: the next run adopts it instead of making
    another (wherever the search first meets it)."""
    probe, _ = holders(set(range(ours)), {ours})
    assert find_attempt(probe, 0) == ours


def test_with_gaps_the_answer_is_still_a_free_attempt_above_a_taken_one() -> None:
    theirs = {0, 1, 2, 3, 4, 6, 9}
    probe, asked = holders(theirs)
    found = find_attempt(probe, 0)
    assert found is not None and found not in theirs and found - 1 in theirs
    assert found in asked


def test_when_every_attempt_within_the_span_is_taken_it_gives_up_after_few_looks() -> None:
    probe, asked = holders(set(range(10_000)))
    assert find_attempt(probe, 0, span=1000) is None
    assert len(asked) <= math.ceil(math.log2(1000)) + 2
    probe, asked = holders(set(range(SPAN + 2)))
    assert find_attempt(probe, 0) is None
    assert len(asked) <= math.ceil(math.log2(SPAN)) + 2


def test_runs_refusal_of_an_edited_task_names_the_flag_and_the_command() -> None:
    task = load_task(fresh_task("att", "refuse", name="edited"))
    taken = NameTaken("training job", "att-refuse-edited-n0-0", "arn:aws:sagemaker:us-east-1:1:training-job/x")
    refusal = taken.for_run(task, "sagemaker-plugin run task.yaml --config c.yaml")
    [problem] = refusal.problems
    assert problem.path == "execution"
    assert "a different training job named 'att-refuse-edited-n0-0' already exists" in problem.message
    assert problem.message.endswith(f"`sagemaker-plugin run task.yaml --config c.yaml {FLAG}`")


def test_runs_refusal_under_a_given_job_name_says_to_change_it() -> None:
    task = load_task(fresh_task("att", "refuse", job_name="mine"))
    [problem] = NameTaken("tuning job", "mine", "arn:x").for_run(task, "sagemaker-plugin run t.yaml").problems
    assert problem.path == "job_name"
    assert "a different tuning job named 'mine' already exists" in problem.message
    assert "change job_name" in problem.message
    assert f"sagemaker-plugin run t.yaml {FLAG}" not in problem.message  # the flag would not help


def test_the_plugins_own_refusal_names_the_fields_and_the_flag() -> None:
    """For the Python API and Flyte: the fields to change, and where a person finds the next free attempt."""
    [problem] = NameTaken("training job", "n", "arn:x").problems
    assert problem.path == "job_name"
    assert "execution.retry_attempt" in problem.message and FLAG in problem.message
