"""The tables and pieces that make the local SageMaker answer as AWS does (defaults.py, log_filter.py, the metric
sink of MetricExtractor), checked against botocore's service model where it has the answer."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.model import ListShape, Shape, StructureShape

from handlers.service_model import operation_model, validate_request
from local_sagemaker.api.log_filter import Pattern
from local_sagemaker.defaults import DESCRIBE, UNSET, documented_default, list_default, with_unset
from local_sagemaker.errors import invalid
from local_sagemaker.logs import LogLine, MetricExtractor


def test_the_describe_table_names_every_member_of_the_model_and_no_other() -> None:
    """A newer botocore that adds a member fails here until someone decides what the local SageMaker returns for it."""
    shape = operation_model("DescribeTrainingJob").output_shape
    assert shape is not None
    assert set(DESCRIBE) == set(shape.members)
    assert {member.source for member in DESCRIBE.values()} <= {"request", "job", "absent"}
    request_members = set(operation_model("CreateTrainingJob").input_shape.members)  # type: ignore[union-attr]
    assert {name for name, member in DESCRIBE.items() if member.source == "request"} <= request_members


def _shape_at(path: str) -> Shape:
    shape: Shape = operation_model("DescribeTrainingJob").output_shape  # type: ignore[assignment]
    for part in path.split("."):
        if part.endswith("[]"):
            assert isinstance(shape, StructureShape)
            listed = shape.members[part[:-2]]
            assert isinstance(listed, ListShape)
            shape = listed.member
        else:
            assert isinstance(shape, StructureShape), path
            shape = shape.members[part]
    return shape


@pytest.mark.parametrize("path", sorted(UNSET))
def test_every_unset_value_is_one_the_model_allows_at_its_path(path: str) -> None:
    shape, value = _shape_at(path), UNSET[path].value
    if shape.type_name == "string":
        enum = getattr(shape, "enum", None) or []
        assert isinstance(value, str) and (not enum or value in enum)
    elif shape.type_name == "boolean":
        assert isinstance(value, bool)
    else:
        assert isinstance(value, int) and value >= shape.metadata.get("min", 0)
    assert UNSET[path].source


def test_with_unset_fills_only_gaps_and_never_invents_parents() -> None:
    request: dict[str, Any] = {
        "OutputDataConfig": {"S3OutputPath": "s3://b/o", "CompressionType": "NONE"},
        "InputDataConfig": [{"ChannelName": "a", "DataSource": {"S3DataSource": {"S3Uri": "s3://b/a"}}},
                            {"ChannelName": "b", "CompressionType": "Gzip"}],
    }
    filled = with_unset(request)
    assert filled["OutputDataConfig"] == {"S3OutputPath": "s3://b/o", "CompressionType": "NONE", "KmsKeyId": ""}
    assert filled["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3DataDistributionType"] == "FullyReplicated"
    assert filled["InputDataConfig"][1] == {"ChannelName": "b", "CompressionType": "Gzip", "RecordWrapperType": "None"}
    assert "StoppingCondition" not in filled and "ResourceConfig" not in filled  # parents are never invented
    assert filled["EnableNetworkIsolation"] is False
    assert "KmsKeyId" not in request["OutputDataConfig"]  # the request itself is left alone


def test_list_defaults_come_from_the_models_documentation() -> None:
    assert documented_default("ListTrainingJobs", "SortBy") == "CreationTime"
    assert documented_default("ListTrainingJobs", "SortOrder") == "Ascending"
    assert documented_default("ListTrainingJobs", "MaxResults") is None  # undocumented: the table's 10
    assert [list_default(m) for m in ("SortBy", "SortOrder", "MaxResults")] == ["CreationTime", "Ascending", 10]


# --- AWS's constraint texts ------------------------------------------------------------------------------------------

def _message(request_changes: dict[str, Any]) -> str:
    request = {"TrainingJobName": "ok", "RoleArn": "arn:aws:iam::123456789012:role/r",
               "OutputDataConfig": {"S3OutputPath": "s3://b/o"}, **request_changes}
    problems = validate_request("CreateTrainingJob", request)
    return invalid(problems, request).message


def test_a_bad_list_item_is_reported_at_the_list_with_every_constraint_of_its_items() -> None:
    message = _message({"VpcConfig": {"SecurityGroupIds": ["sg 1"], "Subnets": ["subnet-1"]}})
    assert message == (
        "1 validation error detected: Value '[sg 1]' at 'vpcConfig.securityGroupIds' failed to satisfy constraint: "
        "Member must satisfy constraint: [Member must have length less than or equal to 32, Member must have length "
        "greater than or equal to 0, Member must satisfy regular expression pattern: [-0-9a-zA-Z]+]")


def test_a_bad_map_key_is_reported_at_the_map() -> None:
    message = _message({"Environment": {"1bad": "v"}})
    assert message == ("1 validation error detected: Value '{1bad=v}' at 'environment' failed to satisfy constraint: "
                       "Map keys must satisfy constraint: [Member must have length less than or equal to 512, Member "
                       "must have length greater than or equal to 0, Member must satisfy regular expression pattern: "
                       "[a-zA-Z_][a-zA-Z0-9_]*]")


def test_a_missing_required_member_or_a_null_one_is_member_must_not_be_null() -> None:
    assert _message({"RoleArn": None}) == ("1 validation error detected: Value null at 'roleArn' failed to satisfy "
                                           "constraint: Member must not be null")


# --- FilterLogEvents patterns ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("pattern", "message", "matches"), [
    ("", "anything", True),
    ("ERROR", "an ERROR here", True),
    ("ERROR", "an error here", False),  # terms are case-sensitive
    ("ERROR timeout", "ERROR: timeout", True),
    ("ERROR timeout", "ERROR: fine", False),
    ('"Training seconds"', "Training seconds: 10", True),
    ('"Training seconds"', "seconds of Training", False),
    ("?ERROR ?WARN", "WARN: disk", True),
    ("?ERROR ?WARN", "INFO: ok", False),
    ("INFO -debug", "INFO debug detail", False),
    ("INFO -debug", "INFO detail", True),
    ("%rmse:[0-9.]+%", "[1]#011train-rmse:0.5", True),
    ("%rmse:[0-9.]+%", "[1]#011train-auc:0.5", False),
])
def test_filter_patterns_match_as_cloudwatch_documents(pattern: str, message: str, matches: bool) -> None:
    assert Pattern.parse(pattern).matches(message) is matches


# --- the metric sink --------------------------------------------------------------------------------------------------

def test_metric_extractor_publishes_every_value_with_its_host_and_time() -> None:
    published: list[tuple[str, int, float, int]] = []
    extractor = MetricExtractor([{"Name": "loss", "Regex": r"loss=([0-9.]+)"}],
                                publish=lambda *point: published.append(point))
    extractor.feed(LogLine(1, 1000, "loss=0.9"))
    extractor.feed(LogLine(2, 1500, "loss=0.8"))
    extractor.feed(LogLine(1, 2000, "no metric"))
    extractor.feed(LogLine(1, 3000, "loss=0.5"))
    assert published == [("loss", 1, 0.9, 1000), ("loss", 2, 0.8, 1500), ("loss", 1, 0.5, 3000)]
    assert [(m["MetricName"], m["Value"]) for m in extractor.final()] == [("loss", 0.5)]


# --- the account's own buckets ----------------------------------------------------------------------------------------

def test_the_local_s3_holds_the_plugins_default_output_bucket_from_the_start_and_after_a_reset() -> None:
    """SageMaker never creates buckets, so the plugin's default local output bucket must already be there."""
    from handlers.local import DEFAULT_BUCKETS, LOCAL_OUTPUT_PREFIX
    from local_sagemaker import LocalSageMaker, LocalSettings
    from local_sagemaker.testing import LocalClients
    from server_reset import reset_state

    assert LOCAL_OUTPUT_PREFIX.split("/")[2] in DEFAULT_BUCKETS
    with LocalSageMaker(LocalSettings(buckets=[*DEFAULT_BUCKETS, "team-models"])) as server:
        aws = LocalClients(server.url)
        assert {b["Name"] for b in aws.s3.list_buckets()["Buckets"]} == {*DEFAULT_BUCKETS, "team-models"}
        aws.s3.delete_bucket(Bucket="team-models")
        reset_state(server)  # what moto's /moto-api/reset did (that path is closed to everyone)
        assert {b["Name"] for b in aws.s3.list_buckets()["Buckets"]} == {*DEFAULT_BUCKETS, "team-models"}
