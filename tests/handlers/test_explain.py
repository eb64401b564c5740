"""handlers/explain.py: the one "did you mean" rule, a short view of a long enum, a pattern's refusal in words.

The allowed values and patterns are botocore's own (the service model), as the plugin meets them.
"""

from __future__ import annotations

import pytest

from handlers.explain import closest, did_you_mean, not_one_of, pattern_reason
from handlers.service_model import _compiled, enum_values, member_shape

INSTANCE_TYPES = enum_values("CreateTrainingJob", "ResourceConfig.InstanceType")


def pattern(operation: str, member: str) -> object:
    return _compiled(member_shape(operation, member).metadata["pattern"])


NAME = pattern("CreateTrainingJob", "TrainingJobName")


@pytest.mark.parametrize(("typed", "meant"), [
    ("ml.m5.larg", ["ml.m5.large"]),  # a letter short
    ("ml.p3.16xl", ["ml.p3.16xlarge"]),  # typed short: the value it begins, not ml.p2.16xlarge
    ("m5.large", ["ml.m5.large"]),  # the prefix left out: not ml.r5.large, which is as near letter for letter
    ("ML.M5.LARGE", ["ml.m5.large"]),
    ("ml.m5large", ["ml.m5.large", "ml.m5.xlarge", "ml.m5.4xlarge"]),
    ("ml.p4.24xlarge", ["ml.p4d.24xlarge", "ml.p4de.24xlarge", "ml.p3.2xlarge"]),
    ("ml.bogus.xlarge", []),  # most letters agree with ml.g6.xlarge, but "bogus" is no typo of "g6"
    ("gpu", []),
])
def test_the_closest_instance_types(typed: str, meant: list[str]) -> None:
    assert closest(typed, INSTANCE_TYPES, n=3) == meant


def test_a_value_that_is_allowed_as_it_stands_has_no_suggestion() -> None:
    assert closest("ml.m5.large", INSTANCE_TYPES) == []
    assert did_you_mean("region", ["region", "profile"]) == ""


def test_the_suggestion_says_one_or_several() -> None:
    assert did_you_mean("regoin", ["region", "profile"]) == " (did you mean 'region'?)"
    assert did_you_mean("ml.m5large", INSTANCE_TYPES, n=2) == " (did you mean 'ml.m5.large' or 'ml.m5.xlarge'?)"


def test_an_enum_of_many_values_is_shown_by_its_families_when_nothing_is_near() -> None:
    said = not_one_of("gpu", INSTANCE_TYPES, "TrainingInstanceType")
    families = sorted({value.split(".")[1] for value in INSTANCE_TYPES})
    assert said.startswith(f"is not one of the {len(INSTANCE_TYPES)} values of TrainingInstanceType; each "
                           "ml.FAMILY.SIZE, FAMILY one of c4, c5, c5n, ")
    assert all(f" {family}," in said or said.endswith(f" {family}") for family in families)
    assert "ml.m5.large" not in said and len(said) < len(", ".join(INSTANCE_TYPES)) / 5


def test_an_enum_of_many_values_suggests_the_near_ones() -> None:
    assert not_one_of("ml.m5.larg", INSTANCE_TYPES, "TrainingInstanceType") == \
        f"is not one of the {len(INSTANCE_TYPES)} values of TrainingInstanceType; did you mean 'ml.m5.large'?"


def test_a_short_enum_is_listed_whole() -> None:
    modes = enum_values("CreateTrainingJob", "AlgorithmSpecification.TrainingInputMode")
    assert not_one_of("Stream", modes, "TrainingInputMode") == f"is not one of {', '.join(modes)}"
    assert not_one_of("Fille", modes, "TrainingInputMode").endswith("; did you mean 'File'?")


def test_a_long_enum_without_families_shows_its_first_dozen() -> None:
    values = [f"value{i}" for i in range(30)]
    assert not_one_of("zzz", values, "Kind") == f"is not one of the 30 values of Kind; e.g. {', '.join(values[:12])}"


@pytest.mark.parametrize(("text", "reason"), [
    ("bad_name!", "contains '_' and '!'"),
    ("my job", "contains a space"),
    ("job\nx", "contains a newline"),
    ("job\u202ex", "contains '\\u202e'"),
    ("-job", "starts with '-'"),
    ("job-", "ends with '-'"),
    ("-job-", "starts and ends with '-'"),
    ("-job_x", "contains '_' and starts with '-'"),
])
def test_why_a_job_name_breaks_its_pattern(text: str, reason: str) -> None:
    said = pattern_reason(text, NAME, "TrainingJobName")
    assert said == f"{reason}, which SageMaker's TrainingJobName does not allow"


def test_why_other_patterns_refuse_a_text() -> None:
    s3 = pattern("CreateTrainingJob", "OutputDataConfig.S3OutputPath")
    assert pattern_reason("s3://bucket/a\nb/", s3, "S3Uri") == "contains a newline, which SageMaker's S3Uri does not " \
        "allow"
    any_text = _compiled(".*")
    assert pattern_reason("key\n", any_text, "HyperParameterKey") == "contains a newline, which SageMaker's " \
        "HyperParameterKey does not allow"


@pytest.mark.parametrize(("text", "member"), [
    ("gs://bucket/out", "OutputDataConfig.S3OutputPath"),  # another scheme: no character to blame
    ("arn:aws:iam::12345678901:role/r", "RoleArn"),  # an account of 11 digits
    ("MyJob", "TrainingJobName"),  # nothing wrong
    ("a" * 64, "TrainingJobName"),  # too long: its length says why
])
def test_no_reason_is_made_up_when_no_character_is_to_blame(text: str, member: str) -> None:
    assert pattern_reason(text, pattern("CreateTrainingJob", member), "X") is None
