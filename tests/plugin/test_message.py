"""The TrainingJob message: every encoding protobuf's json_format writes, and the errors of bad ones."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from handlers.errors import InputError
from plugin.message import (
    AlgorithmName,
    AlgorithmSpecification,
    DistributedProtocol,
    InputContentType,
    InputMode,
    MetricDefinition,
    TrainingJob,
    TrainingJobResourceConfig,
)

PROTO3 = Path(__file__).resolve().parents[1] / "data" / "proto3"
FIXTURES = sorted(p for p in PROTO3.glob("*.json") if not p.name.startswith("tuning_"))  # tuning: test_tuning_render
ENCODINGS = ("omitted", "included", "snake", "numbers")
MESSAGES = ("xgboost", "custom_mpi", "defaults")
RES = "training_job.training_job_resource_config"
ALGO = "training_job.algorithm_specification"

# What protobuf was asked to write (tests/data/proto3/generate_fixtures.py), rebuilt by hand.
EXPECTED = {
    "xgboost": TrainingJob(
        AlgorithmSpecification(
            input_mode=InputMode.FILE,
            algorithm_name=AlgorithmName.XGBOOST,
            algorithm_version="1.7-1",
            metric_definitions=(MetricDefinition("validation:rmse", r"validation-rmse:([0-9\.]+)"),),
            input_content_type=InputContentType.TEXT_CSV,
        ),
        TrainingJobResourceConfig(instance_count=2, instance_type="ml.m5.xlarge", volume_size_in_gb=25,
                                  distributed_protocol=DistributedProtocol.UNSPECIFIED),
    ),
    "custom_mpi": TrainingJob(
        AlgorithmSpecification(input_mode=InputMode.PIPE, algorithm_name=AlgorithmName.CUSTOM),
        TrainingJobResourceConfig(instance_count=2, instance_type="ml.p3.16xlarge", volume_size_in_gb=100,
                                  distributed_protocol=DistributedProtocol.MPI),
    ),
    "defaults": TrainingJob(AlgorithmSpecification(), TrainingJobResourceConfig(instance_type="ml.m5.large")),
}


def load(name: str, encoding: str) -> Any:
    return json.loads((PROTO3 / f"{name}.{encoding}.json").read_text(encoding="utf-8"))


def problems_of(data: Any, **kwargs: Any) -> list[tuple[str, str]]:
    with pytest.raises(InputError) as info:
        TrainingJob.parse(data, **kwargs)
    return [(p.path, p.message) for p in info.value.problems]


def resources(**fields: Any) -> dict[str, Any]:
    return {"training_job_resource_config": {"instance_type": "ml.m5.large", **fields}}


def algorithm(**fields: Any) -> dict[str, Any]:
    return {"algorithm_specification": fields}


def test_the_fixture_set_is_complete() -> None:
    assert sorted(p.name for p in FIXTURES) == sorted(f"{m}.{e}.json" for m in MESSAGES for e in ENCODINGS)


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
def test_every_fixture_parses_to_the_message_protobuf_wrote(path: Path) -> None:
    name = path.name.split(".")[0]
    message = TrainingJob.parse(json.loads(path.read_text(encoding="utf-8")))
    assert message == EXPECTED[name]
    # the types are the schema's, not whatever the JSON held
    res = message.training_job_resource_config
    assert type(res.instance_count) is int and type(res.volume_size_in_gb) is int
    assert type(res.distributed_protocol) is DistributedProtocol
    assert type(message.algorithm_specification.input_mode) is InputMode
    assert type(message.algorithm_specification.metric_definitions) is tuple


@pytest.mark.parametrize("name", MESSAGES)
def test_all_four_encodings_parse_to_one_value(name: str) -> None:
    values = {encoding: TrainingJob.parse(load(name, encoding)) for encoding in ENCODINGS}
    assert all(value == values["omitted"] for value in values.values()), values


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("name", MESSAGES)
def test_serializes_back_to_protobufs_own_json(name: str, encoding: str) -> None:
    message = TrainingJob.parse(load(name, encoding))
    assert message.to_proto3_json() == load(name, "omitted")
    assert message.to_proto3_json(including_defaults=True) == load(name, "included")


@pytest.mark.parametrize("name", MESSAGES)
def test_round_trip_through_text(name: str) -> None:
    message = EXPECTED[name]
    for including_defaults in (False, True):
        text = json.dumps(message.to_proto3_json(including_defaults=including_defaults))
        assert TrainingJob.parse(json.loads(text)) == message


def test_written_json_uses_camel_case_int64_strings_and_enum_names() -> None:
    message = TrainingJob(
        AlgorithmSpecification(input_mode=InputMode.PIPE, algorithm_name=AlgorithmName.XGBOOST,
                               metric_definitions=(MetricDefinition("a", "(x)"), MetricDefinition("b", "(y)"))),
        TrainingJobResourceConfig(instance_count=3, instance_type="ml.c5.xlarge", volume_size_in_gb=-7,
                                  distributed_protocol=DistributedProtocol.MPI),
    )
    assert message.to_proto3_json() == {
        "algorithmSpecification": {
            "inputMode": "PIPE",
            "algorithmName": "XGBOOST",
            "metricDefinitions": [{"name": "a", "regex": "(x)"}, {"name": "b", "regex": "(y)"}],
        },
        "trainingJobResourceConfig": {
            "instanceCount": "3",
            "instanceType": "ml.c5.xlarge",
            "volumeSizeInGb": "-7",
            "distributedProtocol": "MPI",
        },
    }


def test_an_empty_message_writes_its_submessages_and_nothing_else() -> None:
    assert TrainingJob().to_proto3_json() == {"algorithmSpecification": {}, "trainingJobResourceConfig": {}}
    assert TrainingJob.parse({}) == TrainingJob()
    assert TrainingJob.parse(None) == TrainingJob()


# --- equivalent spellings ------------------------------------------------------------------------------------------

SPELLINGS = [
    pytest.param({"trainingJobResourceConfig": {"instanceType": "ml.m5.large", "instanceCount": "4"}},
                 id="camel-string"),
    pytest.param({"training_job_resource_config": {"instance_type": "ml.m5.large", "instance_count": 4}},
                 id="snake-number"),
    pytest.param({"training_job_resource_config": {"instance_type": "ml.m5.large", "instanceCount": "4"}},
                 id="snake-outer-camel-inner"),
    pytest.param({"trainingJobResourceConfig": {"instance_type": "ml.m5.large", "instance_count": 4.0}},
                 id="camel-outer-integral-float"),
    pytest.param({"trainingJobResourceConfig": {"instanceType": "ml.m5.large", "instanceCount": "+4"}},
                 id="signed-string"),
]


@pytest.mark.parametrize("data", SPELLINGS)
def test_snake_camel_number_and_string_spellings_are_equal(data: dict[str, Any]) -> None:
    assert TrainingJob.parse(data) == TrainingJob(training_job_resource_config=TrainingJobResourceConfig(
        instance_count=4, instance_type="ml.m5.large"))


@pytest.mark.parametrize("value", ["PIPE", 1, "1", 1.0])
def test_enum_by_name_or_number(value: Any) -> None:
    assert TrainingJob.parse(algorithm(input_mode=value)).algorithm_specification.input_mode is InputMode.PIPE
    assert TrainingJob.parse({"algorithmSpecification": {"inputMode": value}}) == TrainingJob.parse(
        algorithm(input_mode="PIPE"))


@pytest.mark.parametrize(("field", "name", "number", "member"), [
    ("algorithm_name", "XGBOOST", 1, AlgorithmName.XGBOOST),
    ("algorithm_name", "CUSTOM", 0, AlgorithmName.CUSTOM),
    ("input_content_type", "TEXT_CSV", 0, InputContentType.TEXT_CSV),
    ("input_mode", "FILE", 0, InputMode.FILE),
])
def test_every_enum_accepts_names_and_numbers(field: str, name: str, number: int, member: Any) -> None:
    by_name = TrainingJob.parse(algorithm(**{field: name}))
    by_number = TrainingJob.parse(algorithm(**{field: number}))
    assert by_name == by_number
    assert getattr(by_name.algorithm_specification, field) is member


@pytest.mark.parametrize(("value", "expected"), [
    (2**63 - 1, 2**63 - 1), (str(2**63 - 1), 2**63 - 1), (-(2**63), -(2**63)), (str(-(2**63)), -(2**63)),
    ("0", 0), ("12", 12), (-3, -3), ("-3", -3),
])
def test_int64_limits_and_forms(value: Any, expected: int) -> None:
    parsed = TrainingJob.parse(resources(volume_size_in_gb=value))
    assert parsed.training_job_resource_config.volume_size_in_gb == expected


def test_null_means_default() -> None:
    data = {"algorithm_specification": {"input_mode": None, "algorithm_version": None, "metric_definitions": None},
            "training_job_resource_config": {"instance_count": None, "instance_type": "ml.m5.large"}}
    assert TrainingJob.parse(data) == EXPECTED["defaults"]


def test_parse_does_not_modify_its_input() -> None:
    data = load("xgboost", "included")
    before = copy.deepcopy(data)
    TrainingJob.parse(data)
    assert data == before


# --- errors --------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["two", 2.5, True, "", "1e3", "0x10", [1], {"a": 1}, "2.0"])
def test_a_bad_int64_names_its_field_path(value: Any) -> None:
    problems = problems_of(resources(instance_count=value))
    assert len(problems) == 1
    path, message = problems[0]
    assert path == f"{RES}.instance_count"
    assert "must be an integer" in message


@pytest.mark.parametrize("value", [2**63, str(2**63), -(2**63) - 1, str(-(2**63) - 1), 1e19])
def test_int64_overflow(value: Any) -> None:
    assert problems_of(resources(volume_size_in_gb=value)) == [(f"{RES}.volume_size_in_gb", "does not fit in an int64")]


@pytest.mark.parametrize("value", ["²", "①", "-³"])
def test_non_decimal_digit_characters_are_an_input_error(value: str) -> None:
    assert problems_of(resources(instance_count=value)) == [
        (f"{RES}.instance_count", "must be an integer (a JSON number or a decimal string), not a string")]


@pytest.mark.parametrize("value", [5, b"ml.m5.large", True, ["ml.m5.large"], 1.5])
def test_a_bad_string_field(value: Any) -> None:
    problems = problems_of({"training_job_resource_config": {"instance_type": value}})
    assert [p for p, _ in problems] == [f"{RES}.instance_type"]
    assert problems[0][1].startswith("must be a string, not ")


@pytest.mark.parametrize(("field", "value"), [
    ("input_mode", 2), ("input_mode", -1), ("input_mode", "2"), ("input_mode", "pipe"), ("input_mode", "Pipe"),
    ("input_mode", True), ("input_mode", 0.5), ("input_mode", [1]),
    ("algorithm_name", "XGBoost"), ("algorithm_name", 7), ("input_content_type", 1),
    ("input_content_type", "TEXT_JSON"),
])
def test_out_of_range_and_unknown_enums(field: str, value: Any) -> None:
    problems = problems_of(algorithm(**{field: value}))
    assert [p for p, _ in problems] == [f"{ALGO}.{field}"]
    assert f"{value!r} is not a" in problems[0][1]


def test_enum_error_lists_the_allowed_values() -> None:
    [(_, message)] = problems_of(resources(distributed_protocol="HOROVOD"))
    assert "UNSPECIFIED (0)" in message and "MPI (1)" in message


@pytest.mark.parametrize(("data", "path", "hint"), [
    (resources(instanceCont=1), f"{RES}.instanceCont", "instanceCount"),
    (resources(instance_cout=1), f"{RES}.instance_cout", "instance_count"),
    ({"algorithmSpecfication": {}}, "training_job.algorithmSpecfication", "algorithmSpecification"),
    ({"algorithm_specification": {"metric_definitions": [{"name": "a", "regex": "(a)"}, {"nam": "b"}]}},
     f"{ALGO}.metric_definitions[1].nam", "name"),
    (resources(flux_capacitor=1), f"{RES}.flux_capacitor", None),
])
def test_unknown_fields_are_named_with_a_hint(data: dict[str, Any], path: str, hint: str | None) -> None:
    assert problems_of(data) == [(path, "unknown field" + (f" (did you mean '{hint}'?)" if hint else ""))]


def test_ignore_unknown_skips_unknown_fields_at_every_level() -> None:
    data = load("xgboost", "omitted")
    data["futureField"] = {"x": 1}
    data["algorithmSpecification"]["enableSageMakerMetricsTimeSeries"] = True
    data["algorithmSpecification"]["metricDefinitions"][0]["unit"] = "Seconds"
    data["trainingJobResourceConfig"]["instanceGroups"] = [{"name": "a"}]
    assert TrainingJob.parse(data, ignore_unknown=True) == EXPECTED["xgboost"]
    paths = {p for p, _ in problems_of(data)}
    assert paths == {"training_job.futureField", f"{ALGO}.enableSageMakerMetricsTimeSeries",
                     f"{ALGO}.metric_definitions[0].unit", f"{RES}.instanceGroups"}


def test_ignore_unknown_still_reports_bad_known_fields() -> None:
    problems = problems_of({"x": 1, **resources(instance_count="many")}, ignore_unknown=True)
    assert [p for p, _ in problems] == [f"{RES}.instance_count"]


@pytest.mark.parametrize(("data", "path"), [
    (resources(instance_count=1, instanceCount="2"), f"{RES}.instanceCount"),
    (resources(instanceCount="2", instance_count=2), f"{RES}.instance_count"),
    ({"algorithm_specification": {}, "algorithmSpecification": {}}, "training_job.algorithmSpecification"),
    (algorithm(metric_definitions=[], metricDefinitions=[]), f"{ALGO}.metricDefinitions"),
])
def test_a_field_given_twice_is_an_error(data: dict[str, Any], path: str) -> None:
    [(got_path, message)] = problems_of(data)
    assert got_path == path
    assert "given twice" in message


def test_a_field_given_twice_is_an_error_even_when_the_first_is_null() -> None:
    [(path, message)] = problems_of(resources(instance_count=None, instanceCount="2"))
    assert path == f"{RES}.instanceCount" and "given twice" in message


@pytest.mark.parametrize(("data", "path", "message"), [
    ([], "training_job", "must be a map, not a list"),
    ("x", "training_job", "must be a map, not a string"),
    ({"algorithm_specification": 3}, ALGO, "must be a map, not an integer"),
    (algorithm(metric_definitions={"name": "a"}), f"{ALGO}.metric_definitions", "must be a list, not a map"),
    (algorithm(metric_definitions=[{"name": "a", "regex": "(a)"}, "b"]), f"{ALGO}.metric_definitions[1]",
     "must be a map, not a string"),
    ({1: {}}, "training_job", "has a key that is not a string: 1"),
])
def test_structure_errors(data: Any, path: str, message: str) -> None:
    assert problems_of(data) == [(path, message)]


def test_every_problem_is_reported_at_once() -> None:
    data = {
        "algorithmSpecification": {"inputMode": "STREAM", "algorithmName": 9, "metricDefinitions": [{"name": 1}]},
        "trainingJobResourceConfig": {"instanceCount": "x", "volumeSizeInGb": str(2**64), "instanceTyp": "a"},
        "extra": 1,
    }
    paths = [p for p, _ in problems_of(data)]
    assert sorted(paths) == sorted([
        f"{ALGO}.input_mode", f"{ALGO}.algorithm_name", f"{ALGO}.metric_definitions[0].name",
        f"{RES}.instance_count", f"{RES}.volume_size_in_gb", f"{RES}.instanceTyp", "training_job.extra",
    ])


def test_the_path_prefix_is_the_callers() -> None:
    assert problems_of(resources(instance_count="x"), path="tasks[3].training_job") == [
        ("tasks[3].training_job.training_job_resource_config.instance_count",
         "must be an integer (a JSON number or a decimal string), not a string")]


def test_the_error_is_a_value_error_with_one_line_per_problem() -> None:
    with pytest.raises(ValueError) as info:
        TrainingJob.parse({"a": 1, "b": 2})
    assert str(info.value).splitlines() == ["training_job.a: unknown field", "training_job.b: unknown field"]
