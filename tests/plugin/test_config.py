"""config.yaml: defaults, the repository's file, every key, unknown keys, types, search order, `local`."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from handlers.errors import InputError
from handlers.local import FailureRule
from handlers.ratelimit import RateLimits
from handlers.retry import RetrySettings
from plugin.config import (
    Config,
    Defaults,
    LocalConfig,
    Security,
    load_config,
    parse_config,
)

ROOT = Path(__file__).resolve().parents[2]
REPO_CONFIG = ROOT / "config.yaml"

# The documented keys (docs/config.md), as a tree; None marks a leaf (its value may be a map of user data, like tags).
SPEC_KEYS: dict[str, Any] = {
    "backend": None,
    "region": None,
    "role_arn": None,
    "output_prefix": None,
    "defaults": {"volume_size_in_gb": None, "max_runtime_seconds": None},
    "tags": None,
    "security": {"subnets": None, "security_group_ids": None, "enable_network_isolation": None,
                 "enable_inter_container_traffic_encryption": None, "volume_kms_key_id": None,
                 "output_kms_key_id": None},
    "mpi": {"custom_mpi_options": None},
    "prebuilt_algorithms": None,
    "retry": {"attempts": None, "backoff_seconds": None, "max_backoff_seconds": None, "deadline_seconds": None},
    "rate_limits": {"create_per_second": None, "read_per_second": None},
    "tracking": {"sweep_interval_seconds": None, "not_found_grace_seconds": None, "events": None},
    "limits": {"resource_wait_seconds": None},
    "local": {"endpoint_url": None, "execution": None, "timeline": None, "time_scale": None, "failures": None,
              "data_dir": None, "event_faults": None, "quotas": {"requests_per_second": None, "instances": None}},
}


def problems_of(data: Any) -> list[tuple[str, str]]:
    with pytest.raises(InputError) as info:
        parse_config(data)
    return [(p.path, p.message) for p in info.value.problems]


def paths_of(data: Any) -> list[str]:
    return [p for p, _ in problems_of(data)]


def without_source(config: Config) -> Config:
    return dataclasses.replace(config, source=Config().source)


# --- defaults ------------------------------------------------------------------------------------------------------

def test_built_in_defaults() -> None:
    c = Config()
    assert (c.backend, c.region, c.role_arn, c.output_prefix) == ("local", "us-east-1", None, None)
    assert c.defaults == Defaults(volume_size_in_gb=30, max_runtime_seconds=86400)
    assert dict(c.tags) == {}
    assert c.security == Security((), (), None, None, None, None)
    assert c.mpi_custom_options is None
    assert dict(c.prebuilt_algorithms) == {}
    assert c.retry == RetrySettings(attempts=8, backoff_seconds=0.5, max_backoff_seconds=20.0, deadline_seconds=300.0)
    assert c.rate_limits == RateLimits(create_per_second=1.0, read_per_second=10.0)
    assert (c.tracking.sweep_interval_seconds, c.tracking.not_found_grace_seconds) == (10.0, 60.0)
    assert c.limits.resource_wait_seconds == 3600.0
    assert c.local.endpoint_url is None
    assert dict(c.local.timeline) == {"Starting": 1.0, "Downloading": 1.0, "Training": 2.0, "Uploading": 1.0}
    assert c.local.time_scale == 1.0
    assert c.local.failures == ()
    assert dict(c.local.requests_per_second) == {} and dict(c.local.instances) == {}
    assert c.source == "built-in defaults"


@pytest.mark.parametrize("data", [None, {}, {"defaults": None, "security": {}, "local": {"quotas": None}}])
def test_an_empty_config_is_the_defaults(data: Any) -> None:
    assert without_source(parse_config(data)) == Config()


def test_the_repository_config_parses_and_equals_the_built_in_defaults() -> None:
    config = load_config(REPO_CONFIG)
    assert config.source == str(REPO_CONFIG)
    assert without_source(config) == Config()


def _key_tree(data: Any, spec: dict[str, Any], prefix: str = "") -> list[str]:
    missing = []
    for key, sub in spec.items():
        path = f"{prefix}{key}"
        if not isinstance(data, dict) or key not in data:
            missing.append(path)
        elif sub is not None:
            missing += _key_tree(data[key], sub, path + ".")
    return missing


def _leaves(data: dict[str, Any], spec: dict[str, Any], prefix: str = "") -> list[str]:
    extra = []
    for key, value in data.items():
        path = f"{prefix}{key}"
        if key not in spec:
            extra.append(path)
        elif spec[key] is not None:
            extra += _leaves(value, spec[key], path + ".")
    return extra


def test_the_repository_config_holds_every_key_of_spec_8_and_no_other() -> None:
    data = yaml.safe_load(REPO_CONFIG.read_text(encoding="utf-8"))
    assert _key_tree(data, SPEC_KEYS) == []
    assert _leaves(data, SPEC_KEYS) == []


def test_every_setting_in_the_repository_config_is_commented() -> None:
    lines = REPO_CONFIG.read_text(encoding="utf-8").splitlines()
    uncommented = []
    for index, line in enumerate(lines):
        match = re.match(r"^\s*([A-Za-z_]+):\s*(.*)$", line)
        if not match or not match.group(2) or match.group(2).startswith("#"):
            continue  # not a key, or a section header whose children carry the comments
        previous = lines[index - 1].strip() if index else ""
        if "#" not in match.group(2) and not previous.startswith("#"):
            uncommented.append(match.group(1))
    assert uncommented == []


def test_spec_example_of_a_full_config_parses() -> None:
    text = """
backend: aws
region: eu-west-1
role_arn: arn:aws:iam::123456789012:role/SageMakerRole
output_prefix: s3://bucket/models/
defaults: {volume_size_in_gb: 100, max_runtime_seconds: 7200}
tags: {team: ml, cost: 42}
security:
  subnets: [subnet-1, subnet-2]
  security_group_ids: [sg-1]
  enable_network_isolation: true
  enable_inter_container_traffic_encryption: false
  volume_kms_key_id: key-v
  output_kms_key_id: key-o
mpi: {custom_mpi_options: "-x NCCL_DEBUG=INFO"}
prebuilt_algorithms: {xgboost: {"9.9-9": {us-east-1: 123456789012.dkr.ecr.us-east-1.amazonaws.com/my-xgboost:9.9-9}}}
retry: {attempts: 3, backoff_seconds: 0.1, max_backoff_seconds: 2, deadline_seconds: 30}
rate_limits: {create_per_second: 0, read_per_second: 2.5}
tracking: {sweep_interval_seconds: 5, not_found_grace_seconds: 10}
limits: {resource_wait_seconds: 60}
local:
  endpoint_url: http://127.0.0.1:4566
  timeline: {Training: 4}
  time_scale: 10
  failures:
    - {name_pattern: "nightly-.*", at: Training, reason: "AlgorithmError: loss became NaN"}
  quotas:
    requests_per_second: {CreateTrainingJob: 1, DescribeTrainingJob: 10}
    instances: {ml.p3.2xlarge: 0}
"""
    c = parse_config(yaml.safe_load(text), source="x.yaml")
    assert (c.backend, c.region, c.role_arn) == ("aws", "eu-west-1", "arn:aws:iam::123456789012:role/SageMakerRole")
    assert c.output_prefix == "s3://bucket/models/"
    assert c.defaults == Defaults(100, 7200)
    assert dict(c.tags) == {"team": "ml", "cost": "42"}
    assert c.security == Security(("subnet-1", "subnet-2"), ("sg-1",), True, False, "key-v", "key-o")
    assert c.mpi_custom_options == "-x NCCL_DEBUG=INFO"
    assert c.prebuilt_algorithms == {
        "xgboost": {"9.9-9": {"us-east-1": "123456789012.dkr.ecr.us-east-1.amazonaws.com/my-xgboost:9.9-9"}}}
    assert c.retry == RetrySettings(3, 0.1, 2.0, 30.0)
    assert c.rate_limits == RateLimits(0.0, 2.5)
    assert (c.tracking.sweep_interval_seconds, c.tracking.not_found_grace_seconds) == (5.0, 10.0)
    assert c.limits.resource_wait_seconds == 60.0
    assert c.local == LocalConfig(
        endpoint_url="http://127.0.0.1:4566",
        timeline={"Starting": 1.0, "Downloading": 1.0, "Training": 4.0, "Uploading": 1.0},
        time_scale=10.0,
        failures=(FailureRule("nightly-.*", "Training", "AlgorithmError: loss became NaN"),),
        requests_per_second={"CreateTrainingJob": 1.0, "DescribeTrainingJob": 10.0},
        instances={"ml.p3.2xlarge": 0},
    )
    assert c.source == "x.yaml"


# --- unknown keys and wrong types ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("data", "path", "hint"), [
    ({"regoin": "us-east-1"}, "regoin", "region"),
    ({"profile": "default"}, "profile", None),
    ({"aws_access_key_id": "AKIA..."}, "aws_access_key_id", None),
    ({"defaults": {"volume_size": 10}}, "defaults.volume_size", "volume_size_in_gb"),
    ({"defaults": {"max_runtime_second": 10}}, "defaults.max_runtime_second", "max_runtime_seconds"),
    ({"security": {"subnet": ["s"]}}, "security.subnet", "subnets"),
    ({"mpi": {"options": "x"}}, "mpi.options", None),
    ({"retry": {"attempt": 3}}, "retry.attempt", "attempts"),
    ({"rate_limits": {"create_per_sec": 1}}, "rate_limits.create_per_sec", "create_per_second"),
    ({"tracking": {"sweep_interval": 1}}, "tracking.sweep_interval", "sweep_interval_seconds"),
    ({"limits": {"resource_wait": 1}}, "limits.resource_wait", "resource_wait_seconds"),
    ({"local": {"endpoint": "http://x"}}, "local.endpoint", "endpoint_url"),
    ({"local": {"quotas": {"instance": {}}}}, "local.quotas.instance", "instances"),
    ({"local": {"failures": [{"name_pattern": "x", "after": "Training"}]}}, "local.failures[0].after", None),
])
def test_unknown_keys_at_every_level_are_named(data: dict[str, Any], path: str, hint: str | None) -> None:
    assert problems_of(data) == [(path, "unknown field" + (f" (did you mean '{hint}'?)" if hint else ""))]


@pytest.mark.parametrize(("data", "path", "message"), [
    ({"backend": "gcp"}, "backend", "must be one of local, aws, not 'gcp'"),
    ({"backend": 1}, "backend", "must be a string, not an integer"),
    ({"region": 5}, "region", "must be a string, not an integer"),
    ({"role_arn": ["a"]}, "role_arn", "must be a string, not a list"),
    ({"output_prefix": True}, "output_prefix", "must be a string, not a boolean"),
    ({"defaults": 5}, "defaults", "must be a map, not an integer"),
    ({"defaults": {"volume_size_in_gb": "big"}}, "defaults.volume_size_in_gb",
     "must be an integer, not a string 'big'"),
    ({"defaults": {"volume_size_in_gb": 0}}, "defaults.volume_size_in_gb", "must be at least 1, not 0"),
    ({"defaults": {"max_runtime_seconds": 1.5}}, "defaults.max_runtime_seconds",
     "must be an integer, not a number 1.5"),
    ({"tags": ["a"]}, "tags", "must be a map, not a list"),
    ({"tags": {"a": None}}, "tags.a", "must be a string, not null"),
    ({"security": "none"}, "security", "must be a map, not a string"),
    ({"security": {"subnets": ["subnet-1"], "security_group_ids": "sg-1"}}, "security.security_group_ids",
     "must be a list of strings, not a string"),
    ({"security": {"enable_network_isolation": "yes"}}, "security.enable_network_isolation",
     "must be true or false, not a string 'yes'"),
    ({"security": {"volume_kms_key_id": 3}}, "security.volume_kms_key_id", "must be a string, not an integer"),
    ({"mpi": {"custom_mpi_options": ["-x"]}}, "mpi.custom_mpi_options", "must be a string, not a list"),
    ({"prebuilt_algorithms": []}, "prebuilt_algorithms", "must be a map, not a list"),
    ({"prebuilt_algorithms": {"xgboost": {"9.9-9": {"us-east-1": ""}}}}, "prebuilt_algorithms.xgboost.9.9-9.us-east-1",
     "must be an image URI string"),
    ({"retry": {"attempts": 0}}, "retry.attempts", "must be at least 1, not 0"),
    ({"retry": {"backoff_seconds": "x"}}, "retry.backoff_seconds", "must be a number, not a string 'x'"),
    ({"retry": {"deadline_seconds": -1}}, "retry.deadline_seconds", "must be at least 0, not -1"),
    ({"rate_limits": {"read_per_second": True}}, "rate_limits.read_per_second", "must be a number, not a boolean True"),
    ({"rate_limits": {"create_per_second": float("nan")}}, "rate_limits.create_per_second",
     "must be a number, not a number nan"),
    ({"tracking": {"not_found_grace_seconds": -0.5}}, "tracking.not_found_grace_seconds",
     "must be at least 0, not -0.5"),
    ({"limits": {"resource_wait_seconds": "1h"}}, "limits.resource_wait_seconds",
     "must be a number, not a string '1h'"),
    ({"local": {"time_scale": 0}}, "local.time_scale", "must be at least 0.001, not 0"),
    ({"local": {"endpoint_url": 4566}}, "local.endpoint_url", "must be a string, not an integer"),
])
def test_wrong_types_and_ranges(data: dict[str, Any], path: str, message: str) -> None:
    problems = problems_of(data)
    if path.startswith("security.s"):  # the list read as empty leaves the other half of the VPC config alone
        assert problems == [(path, message), ("security", "subnets and security_group_ids go together: a VPC "
                                                          "config needs both")]
    else:
        assert problems == [(path, message)]


def test_a_config_that_is_not_a_map() -> None:
    assert problems_of(["backend", "aws"]) == [("", "the config must be a map of settings")]


def test_every_config_problem_is_reported_at_once() -> None:
    assert sorted(paths_of({"backend": "x", "bogus": 1, "retry": {"attempts": -1}, "local": {"time_scale": "fast"}})) \
        == ["backend", "bogus", "local.time_scale", "retry.attempts"]


@pytest.mark.parametrize("security", [
    {"subnets": ["subnet-1"]},
    {"security_group_ids": ["sg-1"]},
    {"subnets": ["subnet-1"], "security_group_ids": []},
])
def test_subnets_and_security_groups_go_together(security: dict[str, Any]) -> None:
    assert problems_of({"security": security}) == [
        ("security", "subnets and security_group_ids go together: a VPC config needs both")]


def test_a_list_of_numbers_is_read_as_text_where_strings_are_wanted() -> None:
    c = parse_config({"tags": {"n": 1, "b": True, "f": 0.5}, "security": {"subnets": ["s"], "security_group_ids": [7]}})
    assert dict(c.tags) == {"n": "1", "b": "true", "f": "0.5"}
    assert c.security.security_group_ids == ("7",)


# --- search order --------------------------------------------------------------------------------------------------

def write(path: Path, region: str) -> Path:
    path.write_text(f"region: {region}\n", encoding="utf-8")
    return path


def test_search_explicit_path_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    explicit = write(tmp_path / "explicit.yaml", "eu-west-1")
    monkeypatch.setenv("SAGEMAKER_PLUGIN_CONFIG", str(write(tmp_path / "env.yaml", "eu-west-2")))
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "config.yaml", "eu-west-3")
    config = load_config(explicit)
    assert (config.region, config.source) == ("eu-west-1", str(explicit))
    assert load_config(str(explicit)).region == "eu-west-1"


def test_search_environment_second(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = write(tmp_path / "env.yaml", "eu-west-2")
    monkeypatch.setenv("SAGEMAKER_PLUGIN_CONFIG", str(env))
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "config.yaml", "eu-west-3")
    config = load_config()
    assert (config.region, config.source) == ("eu-west-2", str(env))


def test_search_cwd_config_yaml_third(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "config.yaml", "eu-west-3")
    assert load_config().region == "eu-west-3"
    monkeypatch.setenv("SAGEMAKER_PLUGIN_CONFIG", "")  # set but empty: as if unset
    assert load_config().region == "eu-west-3"


def test_search_defaults_last(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.yml").write_text("region: eu-west-3\n", encoding="utf-8")  # not the name searched for
    (tmp_path / "config.yaml").mkdir()  # a folder is not a file
    assert load_config() == Config()


def test_a_missing_explicit_or_environment_config_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "config.yaml", "eu-west-3")
    with pytest.raises(InputError, match="no such config file"):
        load_config(tmp_path / "nope.yaml")
    monkeypatch.setenv("SAGEMAKER_PLUGIN_CONFIG", str(tmp_path / "gone.yaml"))
    with pytest.raises(InputError, match=r"gone\.yaml: no such config file"):
        load_config()


def test_a_bad_config_file_names_the_key(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("retry:\n  atempts: 3\n", encoding="utf-8")
    with pytest.raises(InputError) as info:
        load_config(path)
    assert [(p.path, p.message) for p in info.value.problems] == [
        ("retry.atempts", "unknown field (did you mean 'attempts'?)")]


def test_a_comment_only_config_file_is_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("# nothing set\n", encoding="utf-8")
    assert without_source(load_config(path)) == Config()


# --- local -------------------------------------------------------------------------------------------------------

def test_local_timeline_overrides_merge_with_the_defaults() -> None:
    c = parse_config({"local": {"timeline": {"Training": 0.5, "Uploading": 0}}})
    assert dict(c.local.timeline) == {"Starting": 1.0, "Downloading": 1.0, "Training": 0.5, "Uploading": 0.0}


@pytest.mark.parametrize(("timeline", "path", "message"), [
    ({"Completed": 1}, "local.timeline.Completed", "unknown secondary status; use Starting, Downloading, Training, "
                                                   "Uploading"),
    ({"Training": -1}, "local.timeline.Training", "must be at least 0, not -1"),
    ({"Training": "2s"}, "local.timeline.Training", "must be a number, not a string '2s'"),
    ([1, 2], "local.timeline", "must be a map, not a list"),
])
def test_local_timeline_errors(timeline: Any, path: str, message: str) -> None:
    assert problems_of({"local": {"timeline": timeline}}) == [(path, message)]


def test_local_failures_with_defaults() -> None:
    c = parse_config({"local": {"failures": [{"name_pattern": "nightly-.*"}, {"at": "Downloading", "reason": "r"}]}})
    assert c.local.failures == (
        FailureRule("nightly-.*", "Training", "AlgorithmError: injected failure"),
        FailureRule(".*", "Downloading", "r"),
    )


@pytest.mark.parametrize(("failures", "path", "start"), [
    ([{"name_pattern": "("}], "local.failures[0].name_pattern", "is not a valid regular expression"),
    ([{"at": "Completed"}], "local.failures[0].at", "must be one of Starting, Downloading, Training, Uploading"),
    ([{}, {"at": 3}], "local.failures[1].at", "must be a string, not an integer"),
    ({"name_pattern": "x"}, "local.failures", "must be a list, not a map"),
    (["x"], "local.failures[0]", "must be a map, not a string"),
    ([{"reason": ""}], "local.failures[0]", "failure rule '.*': 'reason' must not be empty"),  # the rule's own check
])
def test_local_failures_errors(failures: Any, path: str, start: str) -> None:
    [(got_path, message)] = problems_of({"local": {"failures": failures}})
    assert got_path == path
    assert message.startswith(start)


def test_local_quotas() -> None:
    c = parse_config({"local": {"quotas": {"requests_per_second": {"CreateTrainingJob": 1, "DescribeTrainingJob": 2.5},
                                           "instances": {"ml.p3.2xlarge": 0, "ml.m5.xlarge": "4"}}}})
    assert dict(c.local.requests_per_second) == {"CreateTrainingJob": 1.0, "DescribeTrainingJob": 2.5}
    assert dict(c.local.instances) == {"ml.p3.2xlarge": 0, "ml.m5.xlarge": 4}


@pytest.mark.parametrize(("quotas", "path", "message"), [
    ({"requests_per_second": {"CreateTrainingJob": -1}}, "local.quotas.requests_per_second.CreateTrainingJob",
     "must be at least 0, not -1"),
    ({"requests_per_second": [1]}, "local.quotas.requests_per_second", "must be a map, not a list"),
    ({"instances": {"ml.p3.2xlarge": 1.5}}, "local.quotas.instances.ml.p3.2xlarge",
     "must be an integer, not a number 1.5"),
    ({"instances": {"ml.p3.2xlarge": -2}}, "local.quotas.instances.ml.p3.2xlarge", "must be at least 0, not -2"),
    ("none", "local.quotas", "must be a map, not a string"),
])
def test_local_quota_errors(quotas: Any, path: str, message: str) -> None:
    problems = problems_of({"local": {"quotas": quotas}})
    assert (path, message) in problems
    assert {p for p, _ in problems} == {path}


# --- job events (docs/events.md) ------------------------------------------------------------------------------------

QUEUE_URL = "https://sqs.eu-west-1.amazonaws.com/123456789012/sagemaker-plugin-job-events"


def test_tracking_events_are_read_with_their_defaults() -> None:
    from handlers.tracker_events import EventSettings

    assert Config().tracking.events is None
    events = parse_config({"tracking": {"events": {"queue_url": QUEUE_URL}}}).tracking.events
    assert events == EventSettings(QUEUE_URL, sweep_interval_seconds=300.0, max_silence_seconds=900.0)
    events = parse_config({"tracking": {"events": {"queue_url": "http://127.0.0.1:5000/123456789012/q",
                                                   "sweep_interval_seconds": 60, "max_silence_seconds": 120}}})
    assert (events.tracking.events.sweep_interval_seconds, events.tracking.events.max_silence_seconds) == (60, 120)


@pytest.mark.parametrize(("events", "path", "words"), [
    ({}, "tracking.events.queue_url", "is required"),
    ({"queue_url": "sqs://queue"}, "tracking.events.queue_url", "must be an SQS queue URL"),
    ({"queue_url": "https://sqs.eu-west-1.amazonaws.com/only-a-name"}, "tracking.events.queue_url", "SQS queue URL"),
    ({"queue_url": QUEUE_URL, "sweep_interval_seconds": 0}, "tracking.events.sweep_interval_seconds", "at least 1"),
    ({"queue_url": QUEUE_URL, "max_silence_seconds": "long"}, "tracking.events.max_silence_seconds", "number"),
    ({"queue_url": QUEUE_URL, "wait_seconds": 5}, "tracking.events.wait_seconds", "unknown"),
])
def test_bad_tracking_events_name_the_field(events: dict[str, Any], path: str, words: str) -> None:
    found = problems_of({"tracking": {"events": events}})
    assert [p for p, _ in found] == [path] and words.lower() in found[0][1].lower()


def test_local_event_faults_are_read_and_checked() -> None:
    from handlers.local import EventFault

    local = parse_config({"local": {"event_faults": [
        {"name_pattern": "flaky-.*", "fault": "delay", "status": "Training", "delay_seconds": 2},
        {"fault": "drop", "status": "Stopped"}, {"fault": "duplicate"}]}}).local
    assert local.event_faults == (EventFault("flaky-.*", "delay", "Training", 2.0), EventFault(".*", "drop", "Stopped"),
                                  EventFault(".*", "duplicate"))
    assert local.event_fault_for("flaky-1", "Training") == local.event_faults[0]
    assert local.event_fault_for("flaky-1", "Uploading") == local.event_faults[2]
    assert paths_of({"local": {"event_faults": [{"fault": "explode", "status": "Trainin", "name_pattern": "(",
                                                 "delay_seconds": -1}]}}) == [
        "local.event_faults[0].name_pattern", "local.event_faults[0].fault", "local.event_faults[0].status",
        "local.event_faults[0].delay_seconds"]
