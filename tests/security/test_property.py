"""Property tests over the parsers and the renderer: any input either gives a value that is right, or an InputError.

- `plugin.jobs.render.check(task, config)`: a Rendered whose request passes the project's service-model validation and
  botocore's own `validate_parameters`, or InputError; never another exception.
- `TrainingJob.parse`: a TrainingJob that survives a round trip through proto3 JSON, or InputError.
- `parse_config`: a Config, or InputError.

Inputs are generated at and around every field of the task file, the TrainingJob message and config.yaml: valid
tasks with a few fields replaced, renamed (snake_case <-> camelCase, typos), duplicated or deleted, and wholly random
JSON-like documents (plus the scalars YAML's safe loader makes: dates, bytes). Enums come by name, number, string
number or garbage; int64 as numbers, strings or garbage; hyperparameters of every type.

Inputs that once crashed are kept out of the generated inputs and pinned by their own tests instead, each asserting
an InputError (in test_bad_inputs.py and at the end of this file): `~user` paths, integers too large for a float
or a string, and regular expressions nested deeper than the recursion limit.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Callable
from typing import Any, TypeVar

import boto3
import botocore.validate
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from handlers.errors import InputError, Problem
from handlers.service_model import enum_values, validate_request
from plugin.config import Config, parse_config
from plugin.jobs.pipeline import Rendered
from plugin.jobs.requests import check
from plugin.message import AlgorithmName, DistributedProtocol, InputContentType, InputMode, TrainingJob, camel

SETTINGS = settings(max_examples=200, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
BIG = 2**200  # integers beyond about 10**308 are a known crash (float conversion); 2**200 is plenty beyond int64

# --- values ----------------------------------------------------------------------------------------------------------


def _defang(text: str) -> str:
    """`~name` local paths are a known crash (expanduser of an unknown user): keep `~` and `~/...`, defang the rest."""
    if text.startswith("~") and text != "~" and not text.startswith("~/"):
        return "_" + text
    return text


TEXT = st.text(max_size=30).map(_defang)
_ODD = (["", " ", "\n", "\x00", "\u202e", "\u200b", "é" * 300, "x" * 3000, "null", "true", "1",
                            "-1", "0x10", "1e3", "NaN", "s3://", "s3:///", "s3://b", "https://b/k", "gs://b/k",
                            "file:///etc/passwd", "../../../../etc/passwd", "/", ".", "~", "~/", "\\", "%s%n",
                            "${HOME}", "{{x}}", "'; DROP TABLE jobs; --", "ml.m5.xlarge ", "ML.M5.XLARGE"])
ODD_TEXT = st.sampled_from(range(len(_ODD))).map(_ODD.__getitem__)  # a short repr in hypothesis' reports
STRINGS = st.one_of(TEXT, ODD_TEXT)
INTEGERS = st.one_of(st.integers(-3, 3), st.integers(-BIG, BIG),
                     st.sampled_from([2**31 - 1, 2**31, 2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**64, 10**20]))
FLOATS = st.floats(allow_nan=True, allow_infinity=True, min_value=None, max_value=None)
# Local input paths longer than the OS allows are a known crash (ENAMETOOLONG): where a value may land in a channel's
# source (anything, in `inputs`), strings stay short; the long ones go to the fields that have a length limit.
_SHORT_ODD = [text for text in _ODD if len(text.encode()) < 200]
SHORT_STRINGS = st.one_of(TEXT, st.sampled_from(_SHORT_ODD))
SCALARS = st.one_of(st.none(), st.booleans(), INTEGERS, FLOATS, SHORT_STRINGS)
YAML_SCALARS = st.one_of(st.dates(), st.datetimes(), st.binary(max_size=6))  # what yaml.safe_load also makes
KEYS = st.one_of(TEXT, st.integers(-2, 2), st.none(), st.booleans(), st.floats(allow_nan=False))
ANY = st.recursive(
    st.one_of(SCALARS, YAML_SCALARS),
    lambda children: st.one_of(st.lists(children, max_size=3), st.dictionaries(TEXT, children, max_size=3),
                               st.dictionaries(KEYS, children, max_size=2)),
    max_leaves=8,
)


def around(*valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly a right value, sometimes anything."""
    return st.one_of(*valid, *valid, *valid, ANY)


INT64ISH = around(st.integers(0, 100), INTEGERS, st.integers(-BIG, BIG).map(str),
                  st.sampled_from(["1e3", "0x10", " 1", "1 ", "1.0", "+5", "-0", "", "٣", "１", "1_000", "NaN",
                                   "Infinity", "99999999999999999999", "-9223372036854775809",
                                   "123456789012345678901"]),
                  st.sampled_from([1.0, 2.5, -0.0, float("inf"), float("nan"), True, False]))


def enum(kind: type) -> st.SearchStrategy[Any]:
    names = list(kind.__members__)
    values = [member.value for member in kind]  # type: ignore[attr-defined]
    return around(st.sampled_from(names), st.sampled_from(values), st.sampled_from([str(v) for v in values]),
                  st.sampled_from([n.lower() for n in names] + [n.title() for n in names] + [" " + names[0], "-1",
                                                                                              "2", 99, -1, 2**63]))


INSTANCE_TYPES = enum_values("CreateTrainingJob", "ResourceConfig.InstanceType")
INSTANCE_TYPE = around(st.sampled_from(["ml.m5.xlarge", "ml.p3.16xlarge", "ml.g5.2xlarge", "ml.c5.2xlarge"]),
                       st.sampled_from(INSTANCE_TYPES), st.sampled_from(["ml.fake.huge", "m5.xlarge", "local"]))
S3_URI = around(st.sampled_from(["s3://bucket/data/train/", "s3://b/k", "s3://bucket/outputs",
                                 "https://bucket.s3.amazonaws.com/k"]),
                st.builds(lambda k: f"s3://bucket/{k}", TEXT), STRINGS)
SOURCE = around(st.sampled_from(["s3://bucket/data/train/", "s3://b/k", "https://bucket.s3.amazonaws.com/k", "."]),
                st.builds(lambda k: f"s3://bucket/{k}", TEXT), SHORT_STRINGS)
REGEX = around(st.sampled_from(["loss=([0-9\\.]+)", "rmse:([0-9.]+)", "(x)", "no-group", "(", "[", "(?P<", "\\p{L}",
                                "(?<=a+)(b)", "a{4294967296}", "(a)" * 200, "a**", ".*"]), STRINGS)
IMAGE = around(st.sampled_from(["123456789012.dkr.ecr.us-east-1.amazonaws.com/team/trainer:1.0", "a/b:1", "trainer",
                                "img@sha256:" + "0" * 64]), STRINGS)
ROLE = around(st.sampled_from(["arn:aws:iam::123456789012:role/R", "arn:aws-cn:iam::123456789012:role/x/y",
                               "arn:aws:iam::1234:role/R"]), STRINGS)
NAME = around(st.sampled_from(["job-1", "a", "A" * 63, "A" * 64, "-a", "a--b"]),
              st.from_regex(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,20}", fullmatch=True), STRINGS)
HP_VALUE = st.one_of(st.booleans(), INTEGERS, FLOATS, STRINGS, ANY, st.sampled_from(["reg:squarederror", "x" * 2501]))
STRING_MAP = around(st.dictionaries(TEXT, st.one_of(STRINGS, st.integers(), st.booleans()), max_size=4),
                    st.dictionaries(st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True),
                                    st.text(max_size=10), max_size=3))
STRING_LIST = around(st.lists(st.one_of(STRINGS, st.integers(), st.booleans()), max_size=4),
                     st.lists(st.text(max_size=8), min_size=1, max_size=3))

# The strategy for a field, by its name in any encoding (snake_case or camelCase).
_BY_FIELD: dict[str, st.SearchStrategy[Any]] = {
    # TrainingJob message
    "input_mode": enum(InputMode), "algorithm_name": enum(AlgorithmName), "input_content_type": enum(InputContentType),
    "distributed_protocol": enum(DistributedProtocol),
    "algorithm_version": around(st.sampled_from(["1.7-1", "1.5-1", "0.90-2", "1.0-1", "latest", "9.9-9", ""])),
    "metric_definitions": around(st.lists(st.fixed_dictionaries({"name": around(TEXT), "regex": REGEX}),
                                          max_size=3)),
    "name": around(st.sampled_from(["train:loss", "rmse"]), STRINGS), "regex": REGEX,
    "instance_count": INT64ISH, "volume_size_in_gb": INT64ISH, "instance_type": INSTANCE_TYPE,
    # task file
    "task_type": around(st.sampled_from(["sagemaker_training_job_task", "sagemaker_custom_training_job_task"])),
    "output_prefix": S3_URI, "checkpoint_s3_uri": S3_URI, "job_name": NAME, "role_arn": ROLE,
    "max_runtime_seconds": INT64ISH, "max_wait_seconds": INT64ISH, "retry_attempt": INT64ISH,
    "project": NAME, "domain": NAME, "node_id": NAME,
    "image": IMAGE, "command": STRING_LIST, "args": STRING_LIST, "env": STRING_MAP, "tags": STRING_MAP,
    "static_hyperparameters": around(st.dictionaries(TEXT, HP_VALUE, max_size=4)),
    "train": SOURCE, "validation": SOURCE,
}
FIELD = {**_BY_FIELD, **{camel(k): v for k, v in _BY_FIELD.items()}}

# --- tasks: valid ones, then changed in a few places ------------------------------------------------------------------

XGBOOST: dict[str, Any] = {
    "task_type": "sagemaker_training_job_task",
    "training_job": {
        "algorithm_specification": {"algorithm_name": "XGBOOST", "algorithm_version": "1.7-1", "input_mode": "FILE",
                                    "metric_definitions": [{"name": "rmse", "regex": "rmse:([0-9.]+)"}]},
        "training_job_resource_config": {"instance_count": 1, "instance_type": "ml.m5.xlarge",
                                         "volume_size_in_gb": 10},
    },
    "inputs": {"train": "s3://bucket/data/train/", "validation": "s3://bucket/data/validation/",
               "static_hyperparameters": {"num_round": 10, "objective": "reg:squarederror", "eta": 0.3,
                                          "save_model_on_termination": True}},
    "output_prefix": "s3://bucket/outputs",
    "execution": {"project": "p", "domain": "development", "name": "f3a9c2e1b0", "node_id": "n0",
                  "retry_attempt": 0},
    "tags": {"team": "ml"},
}
CUSTOM_MPI: dict[str, Any] = {
    "task_type": "sagemaker_custom_training_job_task",
    "training_job": {
        "algorithmSpecification": {"algorithmName": "CUSTOM", "inputMode": "PIPE",
                                   "metricDefinitions": [{"name": "train:loss", "regex": "loss=([0-9\\.]+)"}]},
        "trainingJobResourceConfig": {"instanceCount": "2", "instanceType": "ml.p3.16xlarge",
                                      "volumeSizeInGb": "100", "distributedProtocol": "MPI"},
    },
    "container": {"image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/trainer:1.0",
                  "command": ["python", "-m", "trainer"], "args": ["--epochs", "3"], "env": {"LOG_LEVEL": "info"}},
    "inputs": {"train": "s3://bucket/data/train/", "static_hyperparameters": {"epochs": 3}},
    "job_name": "custom-mpi-1",
    "role_arn": "arn:aws:iam::123456789012:role/TaskRole",
    "max_runtime_seconds": 3600,
    "spot": {"max_wait_seconds": 7200, "checkpoint_s3_uri": "s3://bucket/checkpoints"},
}
CUSTOM_NUMBERS: dict[str, Any] = {
    "task_type": "sagemaker_custom_training_job_task",
    "training_job": {"algorithmSpecification": {"algorithmName": 0, "inputMode": 0},
                     "trainingJobResourceConfig": {"instanceCount": 4, "instanceType": "ml.g5.2xlarge",
                                                   "volumeSizeInGb": 50, "distributedProtocol": 0}},
    "container": {"image": "a/b:1"},
}
BASES = (XGBOOST, CUSTOM_MPI, CUSTOM_NUMBERS)
OPTIONAL_TOP = ("job_name", "role_arn", "max_runtime_seconds", "spot", "tags", "container", "execution",
                "output_prefix", "inputs")


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


def _value_for(path: tuple[Any, ...]) -> st.SearchStrategy[Any]:
    last = path[-1] if path else None
    return FIELD.get(last, ANY) if isinstance(last, str) else ANY


@st.composite
def changed_task(draw: st.DrawFn) -> dict[str, Any]:
    """A valid task with 0-3 changes: a value replaced, a field removed, renamed, duplicated, or added."""
    task = copy.deepcopy(draw(st.sampled_from(BASES)))
    for _ in range(draw(st.integers(0, 3))):
        paths = _paths(task) + [(key,) for key in OPTIONAL_TOP if key not in task]
        path = draw(st.sampled_from(paths))
        parent: Any = task
        for part in path[:-1]:
            parent = parent[part]
        key = path[-1]
        action = draw(st.sampled_from(["set", "set", "set", "delete", "rename", "duplicate", "add"]))
        if isinstance(parent, list):
            if action == "delete":
                del parent[key]
            else:
                parent[key] = draw(_value_for(path))
        elif action == "set" or key not in parent:
            parent[key] = draw(_value_for(path))
        elif action == "delete":
            del parent[key]
        elif action == "rename" and isinstance(key, str):
            other = draw(st.sampled_from([camel(key), key.lower(), key + "s", key[:-1], key.upper()]))
            parent[other] = parent.pop(key)
        elif action == "duplicate" and isinstance(key, str) and camel(key) != key:
            parent[camel(key)] = draw(st.one_of(st.just(parent[key]), _value_for(path)))
        elif isinstance(parent, dict):
            parent[draw(TEXT)] = draw(ANY)
    return task


TASK_KEYS = ("task_type", "training_job", "inputs", "output_prefix", "container", "execution", "job_name",
             "role_arn", "max_runtime_seconds", "spot", "tags")
MESSAGE_KEYS = ("algorithm_specification", "training_job_resource_config", "input_mode", "algorithm_name",
                "algorithm_version", "metric_definitions", "input_content_type", "instance_count", "instance_type",
                "volume_size_in_gb", "distributed_protocol")


def _document(keys: tuple[str, ...], nested: Callable[[str], st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    names = st.sampled_from([*keys, *(camel(k) for k in keys)])
    return st.dictionaries(st.one_of(names, names, TEXT), st.deferred(lambda: st.one_of(ANY, names.flatmap(nested))),
                           max_size=6)


def _nested(key: str) -> st.SearchStrategy[Any]:
    if key in FIELD:
        return FIELD[key]
    if key in ("training_job", "algorithm_specification", "training_job_resource_config", "trainingJob",
               "algorithmSpecification", "trainingJobResourceConfig"):
        return RANDOM_MESSAGE
    return ANY


RANDOM_MESSAGE = st.deferred(lambda: _document(MESSAGE_KEYS, _nested))
RANDOM_TASK = st.one_of(_document(TASK_KEYS, _nested), st.dictionaries(KEYS, ANY, max_size=3))  # task dicts
TASKS = st.one_of(changed_task(), changed_task(), RANDOM_TASK)


# --- what a right answer is -------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _botocore_shape() -> Any:
    client = boto3.client("sagemaker", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    return client.meta.service_model.operation_model("CreateTrainingJob").input_shape


def assert_input_error(error: InputError) -> None:
    assert error.problems, "an InputError without problems"
    for problem in error.problems:
        assert isinstance(problem, Problem)
        assert isinstance(problem.path, str) and isinstance(problem.message, str) and problem.message
        assert len(problem.message) < 4000, problem.message[:200]
    str(error)  # the message can be built (and printed)


T = TypeVar("T")


def made_or_refused(make: Callable[[], T], made: str) -> T | None:
    """What `make` returns, or None once its InputError has passed assert_input_error; each outcome is an event."""
    try:
        value = make()
    except InputError as error:
        event("refused")
        assert_input_error(error)
        return None
    event(made)
    return value


def assert_renders_or_refuses(task: Any, config: Config) -> None:
    checked = made_or_refused(lambda: check(task, config), "rendered")
    if checked is None:
        return
    rendered = checked[1]
    assert isinstance(rendered, Rendered)
    request = rendered.request
    assert validate_request("CreateTrainingJob", request) == []
    botocore.validate.validate_parameters(request, _botocore_shape())
    json.dumps(request)


AWS_CONFIG = Config(backend="aws", role_arn="arn:aws:iam::123456789012:role/Config",
                    output_prefix="s3://config-bucket/outputs")


@SETTINGS
@given(task=TASKS)
def test_check_renders_a_valid_request_or_raises_input_error(task: Any) -> None:
    assert_renders_or_refuses(task, Config())


@SETTINGS
@given(task=changed_task())
def test_check_with_the_aws_backend(task: Any) -> None:
    assert_renders_or_refuses(task, AWS_CONFIG)


def test_the_valid_bases_render() -> None:
    """The generator starts from tasks that render, so that both outcomes are exercised."""
    for base in BASES:
        _, rendered = check(copy.deepcopy(base), Config())
        assert validate_request("CreateTrainingJob", rendered.request) == []


@SETTINGS
@given(message=st.one_of(RANDOM_MESSAGE, changed_task().map(lambda t: t.get("training_job")), ANY))
def test_training_job_parse_gives_a_message_or_input_error(message: Any) -> None:
    parsed = made_or_refused(lambda: TrainingJob.parse(message), "parsed")
    if parsed is None:
        return
    assert isinstance(parsed, TrainingJob)
    for including_defaults in (False, True):
        encoded = parsed.to_proto3_json(including_defaults=including_defaults)
        assert TrainingJob.parse(json.loads(json.dumps(encoded))) == parsed


# --- config ----------------------------------------------------------------------------------------------------------

NUMBER = around(st.integers(0, 100), st.floats(0, 1000), INTEGERS, FLOATS, st.integers(-BIG, BIG).map(str))
CONFIG_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "backend": around(st.sampled_from(["local", "aws", "AWS", "mars"])),
    "region": around(st.sampled_from(["us-east-1", "eu-west-1", "cn-north-1", "mars-1", "US-EAST-1"])),
    "role_arn": ROLE, "output_prefix": S3_URI, "tags": STRING_MAP,
    "defaults": around(st.fixed_dictionaries({}, optional={"volume_size_in_gb": NUMBER,
                                                           "max_runtime_seconds": NUMBER})),
    "security": around(st.fixed_dictionaries({}, optional={
        "subnets": STRING_LIST, "security_group_ids": STRING_LIST, "enable_network_isolation": around(st.booleans()),
        "enable_inter_container_traffic_encryption": around(st.booleans()), "volume_kms_key_id": STRINGS,
        "output_kms_key_id": STRINGS})),
    "mpi": around(st.fixed_dictionaries({}, optional={"custom_mpi_options": STRINGS})),
    "prebuilt_algorithms": around(st.dictionaries(TEXT, around(st.dictionaries(
        st.one_of(TEXT, st.floats(), st.integers()), around(st.dictionaries(TEXT, around(IMAGE), max_size=2)),
        max_size=2)), max_size=2)),
    "retry": around(st.fixed_dictionaries({}, optional={k: NUMBER for k in (
        "attempts", "backoff_seconds", "max_backoff_seconds", "deadline_seconds")})),
    "rate_limits": around(st.fixed_dictionaries({}, optional={"create_per_second": NUMBER,
                                                              "read_per_second": NUMBER})),
    "tracking": around(st.fixed_dictionaries({}, optional={"sweep_interval_seconds": NUMBER,
                                                           "not_found_grace_seconds": NUMBER})),
    "limits": around(st.fixed_dictionaries({}, optional={"resource_wait_seconds": NUMBER})),
    "local": around(st.fixed_dictionaries({}, optional={
        "endpoint_url": around(st.sampled_from(["http://127.0.0.1:4566"]), STRINGS),
        "timeline": around(st.dictionaries(st.one_of(st.sampled_from(["Starting", "Downloading", "Training",
                                                                      "Uploading"]), TEXT), NUMBER, max_size=3)),
        "time_scale": NUMBER,
        "failures": around(st.lists(around(st.fixed_dictionaries({}, optional={
            "name_pattern": around(st.sampled_from([".*", "job-.*", "(", "[", "a{2,1}"]), TEXT),
            "at": around(st.sampled_from(["Starting", "Training", "Done"])), "reason": STRINGS})), max_size=2)),
        "quotas": around(st.fixed_dictionaries({}, optional={
            "requests_per_second": around(st.dictionaries(st.one_of(st.sampled_from(
                ["CreateTrainingJob", "DescribeTrainingJob", "PutObject", "GetLogEvents", "Nope"]), TEXT), NUMBER,
                max_size=3)),
            "instances": around(st.dictionaries(st.one_of(st.sampled_from(INSTANCE_TYPES), TEXT), NUMBER,
                                                max_size=2))})),
    })),
}
CONFIGS = st.one_of(st.fixed_dictionaries({}, optional=CONFIG_FIELDS),
                    st.fixed_dictionaries({}, optional=CONFIG_FIELDS).flatmap(
                        lambda d: st.dictionaries(TEXT, ANY, max_size=2).map(lambda extra: {**extra, **d})),
                    ANY)


@SETTINGS
@given(data=CONFIGS)
def test_parse_config_gives_a_config_or_input_error(data: Any) -> None:
    config = made_or_refused(lambda: parse_config(data), "parsed")
    assert config is None or isinstance(config, Config)


@SETTINGS
@given(data=st.fixed_dictionaries({}, optional=CONFIG_FIELDS), task=changed_task())
def test_check_with_any_config_that_parses(data: Any, task: Any) -> None:
    try:
        config = parse_config(data)
    except InputError:
        return
    assert_renders_or_refuses(task, config)


# --- inputs that once crashed, which the generators leave out: each must be refused with an InputError ----------------

CRASHES = [
    pytest.param(lambda: check({**copy.deepcopy(XGBOOST), "max_runtime_seconds": 16**5000}, Config()),
                 id="render-int-too-long-for-str"),
    pytest.param(lambda: TrainingJob.parse({"algorithmSpecification": {"inputMode": 16**5000}}),
                 id="parse-enum-int-too-long-for-repr"),
    pytest.param(lambda: parse_config({"retry": {"backoff_seconds": 10**400}}), id="config-number-too-large"),
    pytest.param(lambda: parse_config({"local": {"failures": [{"name_pattern": "a{4294967296}"}]}}),
                 id="config-pattern-overflow"),
    pytest.param(lambda: parse_config({"local": {"failures": [{"name_pattern": "(" * 3000 + ")" * 3000}]}}),
                 id="config-pattern-recursion"),
    pytest.param(lambda: check(_with_metric_regex("(" * 1000 + "x" + ")" * 1000), Config()),
                 id="metric-regex-recursion"),
]


def _with_metric_regex(regex: str) -> dict[str, Any]:
    task = copy.deepcopy(CUSTOM_MPI)  # a custom task's regexes are checked; XGBoost's are never sent
    task["training_job"]["algorithmSpecification"]["metricDefinitions"] = [{"name": "m", "regex": regex}]
    return task


@pytest.mark.parametrize("crash", CRASHES)
def test_known_crashes_raise_input_error(crash: Callable[[], Any]) -> None:
    with pytest.raises(InputError):
        crash()
