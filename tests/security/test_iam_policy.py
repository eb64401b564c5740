"""docs/iam-policy.json is the least-privilege policy the plugin needs, and covers every AWS operation it performs.

- The policy itself: well formed, no wildcard actions, `Resource: "*"` only where AWS has no resource
  (ListTrainingJobs, ListHyperParameterTuningJobs), iam:PassRole limited to SageMaker, S3 only for the local
  backend's upload bucket and for the abort marks of queued jobs (handlers/abort_marks.py: written, and listed by
  their exact key, nothing else).
- Static: every `SageMakerClient.call(service, operation)` in the plugin's source is allowed by the policy, and every
  action of the policy is needed by one of them. `events setup` / `teardown` (plugin/cli/events.py) are an
  administrator's calls, once: docs/iam-events-setup-policy.json covers exactly those, the same way.
- Dynamic: a workload of every command and plugin method against the local SageMaker, with each operation the plugin
  performs recorded (SageMakerClient.call is the only door to AWS: tests' own boto3 clients are not recorded).
- Suite-wide (opt-in): with SAGEMAKER_PLUGIN_RECORD_OPS=<file>, tests/conftest.py records every operation the plugin
  performs during the whole test session, its Python subprocesses included (tests/support/record_ops.py, on
  botocore's `before-call` event), and fails the session if one is not allowed here (`uncovered`).
"""

from __future__ import annotations

import ast
import fnmatch
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from handlers import job_kinds

ROOT = Path(__file__).resolve().parents[2]
POLICY_PATH = ROOT / "docs" / "iam-policy.json"
SETUP_POLICY_PATH = ROOT / "docs" / "iam-events-setup-policy.json"
SETUP_SOURCE = ROOT / "plugin" / "cli" / "events.py"  # its calls are the setup policy's, not the connector's
RECORD_ENV = "SAGEMAKER_PLUGIN_RECORD_OPS"

ACCOUNT, REGION = "123456789012", "us-east-1"
JOB_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-job/project-domain-name-n0-0"
TUNING_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:hyper-parameter-tuning-job/project-domain-name-n0-0"
TUNING_OPERATIONS = ("CreateHyperParameterTuningJob", "DescribeHyperParameterTuningJob",
                     "StopHyperParameterTuningJob", "ListTrainingJobsForHyperParameterTuningJob")
NO_RESOURCE = ("ListTrainingJobs", "ListHyperParameterTuningJobs")  # list operations: AWS has no resource for them
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/SageMakerTrainingRole"
GROUP_ARN = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/sagemaker/TrainingJobs"
STREAM_ARN = f"{GROUP_ARN}:log-stream:project-domain-name-n0-0/algo-1-1700000000"
BUCKET_ARN = "arn:aws:s3:::sagemaker-plugin-local"
OBJECT_ARN = f"{BUCKET_ARN}/outputs/project-domain-name-n0-0/input/train/train.csv"
TO_SAGEMAKER = {"iam:PassedToService": "sagemaker.amazonaws.com"}
OUTPUT_BUCKET_ARN = "arn:aws:s3:::team-models"
MARK_KEY = "outputs/project-domain-name-n0-0/sagemaker-plugin-aborted-0123456789abcdef.json"
MARK_ARN = f"{OUTPUT_BUCKET_ARN}/{MARK_KEY}"
QUEUE_ARN = f"arn:aws:sqs:{REGION}:{ACCOUNT}:sagemaker-plugin-job-events"  # `events setup`'s default name
RULE_ARN = f"arn:aws:events:{REGION}:{ACCOUNT}:rule/sagemaker-plugin-job-events"

# --- the policy as AWS evaluates it (the subset it uses: Allow statements, Action/Resource lists, StringEquals and
# --- StringLike conditions) -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Need:
    """One IAM authorization an operation needs: an action on a resource, with the request's condition keys."""

    action: str
    resource: str
    context: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.action} on {self.resource}" + (f" with {self.context}" if self.context else "")


def needs(service: str, operation: str) -> list[Need]:
    """What `service:operation`, as the plugin calls it, needs from IAM."""
    if service == "sagemaker":
        if operation in NO_RESOURCE:
            return [Need(f"sagemaker:{operation}", "*")]
        arn = TUNING_ARN if operation in TUNING_OPERATIONS else JOB_ARN
        found = [Need(f"sagemaker:{operation}", arn)]
        if operation in ("CreateTrainingJob", "CreateHyperParameterTuningJob"):  # passes the role, tags the job
            found += [Need("iam:PassRole", ROLE_ARN, TO_SAGEMAKER), Need("sagemaker:AddTags", arn)]
        if operation in ("AddTags", "ListTags"):  # training jobs' and tuning jobs'
            found += [Need(f"sagemaker:{operation}", TUNING_ARN)]
        return found
    if service == "logs":
        if operation == "GetLogEvents":
            return [Need("logs:GetLogEvents", STREAM_ARN)]
        return [Need(f"logs:{operation}", GROUP_ARN), Need(f"logs:{operation}", f"{GROUP_ARN}:*")]
    if service == "s3":
        return {
            "HeadBucket": [Need("s3:ListBucket", BUCKET_ARN)],
            "CreateBucket": [Need("s3:CreateBucket", BUCKET_ARN)],
            "PutObject": [Need("s3:PutObject", OBJECT_ARN), Need("s3:PutObject", MARK_ARN)],  # uploads, marks
            "ListObjectsV2": [Need("s3:ListBucket", OUTPUT_BUCKET_ARN, {"s3:prefix": MARK_KEY})],
        }.get(operation, [Need(f"s3:{operation}", BUCKET_ARN)])
    if service == "sqs":  # a batch operation is authorized by its single message's action
        return [Need(f"sqs:{operation.removesuffix('Batch')}", QUEUE_ARN)]
    if service == "events":
        return [Need(f"events:{operation}", RULE_ARN)]
    return [Need(f"{service}:{operation}", "*")]


def _listed(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def load_policy(path: Path = POLICY_PATH) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def allows(policy: dict[str, Any], need: Need) -> bool:
    for statement in policy["Statement"]:
        if statement.get("Effect") != "Allow":
            continue
        if not any(fnmatch.fnmatch(need.action.lower(), a.lower()) for a in _listed(statement["Action"])):
            continue
        if not any(pattern == "*" or fnmatch.fnmatchcase(need.resource, pattern)
                   for pattern in _listed(statement["Resource"])):
            continue
        if all(_holds(operator, need.context.get(key), _listed(value))
               for operator, keys in statement.get("Condition", {}).items() for key, value in keys.items()):
            return True
    return False


def _holds(operator: str, actual: str | None, allowed: list[str]) -> bool:
    if actual is None:
        return False  # a key the request does not carry fails the condition
    if operator == "StringEquals":
        return actual in allowed
    if operator == "StringLike":
        return any(fnmatch.fnmatchcase(actual, pattern) for pattern in allowed)
    raise AssertionError(f"condition operator {operator} is not modelled here")


def uncovered(operations: Iterable[str], policy: dict[str, Any] | None = None) -> list[str]:
    """The `service:Operation` names whose needs the policy does not allow, each with what is missing. Without a
    policy: the connector's, but for `events setup`'s operations, which the setup policy must allow."""
    setup = set(operations_in_source(setup=True)) if policy is None else set()
    missing = []
    for name in sorted(set(operations)):
        service, _, operation = name.partition(":")
        judge = policy if policy is not None else load_policy(SETUP_POLICY_PATH if name in setup else POLICY_PATH)
        lacking = [str(n) for n in needs(service, operation) if not allows(judge, n)]
        if lacking:
            missing.append(f"{name}: {'; '.join(lacking)}")
    return missing


# --- the policy on its own -------------------------------------------------------------------------------------------

EXPECTED_ACTIONS = {
    "sagemaker:CreateTrainingJob", "sagemaker:DescribeTrainingJob", "sagemaker:ListTrainingJobs",
    "sagemaker:StopTrainingJob", "sagemaker:AddTags", "sagemaker:ListTags", "iam:PassRole",
    "sagemaker:CreateHyperParameterTuningJob", "sagemaker:DescribeHyperParameterTuningJob",
    "sagemaker:StopHyperParameterTuningJob", "sagemaker:ListTrainingJobsForHyperParameterTuningJob",
    "sagemaker:ListHyperParameterTuningJobs", "logs:DescribeLogStreams", "logs:GetLogEvents",
    "logs:FilterLogEvents", "s3:PutObject", "s3:ListBucket", "s3:CreateBucket", "cloudwatch:GetMetricData",
    "sqs:ReceiveMessage", "sqs:DeleteMessage",
}
IAM_ONLY_ACTIONS = {"iam:PassRole", "s3:ListBucket"}  # IAM actions that are not API operations


def _actions(policy: dict[str, Any]) -> list[str]:
    return [a for s in policy["Statement"] for a in _listed(s["Action"])]


def test_the_policy_is_well_formed() -> None:
    policy = load_policy()
    assert set(policy) == {"Version", "Statement"} and policy["Version"] == "2012-10-17"
    sids = [s.get("Sid") for s in policy["Statement"]]
    assert all(sids) and len(set(sids)) == len(sids)
    for statement in policy["Statement"]:
        assert set(statement) <= {"Sid", "Effect", "Action", "Resource", "Condition"}, statement
        assert statement["Effect"] == "Allow"
        assert set(statement.get("Condition", {})) <= {"StringEquals", "StringLike"}


def test_the_policy_grants_exactly_what_the_plugin_needs() -> None:
    for statement in load_policy()["Statement"]:
        listed = _listed(statement["Action"])
        assert len(listed) == len(set(listed)), statement
    actions = _actions(load_policy())
    assert set(actions) == EXPECTED_ACTIONS
    assert not [a for a in actions if "*" in a or "?" in a]


def test_every_action_is_a_real_one() -> None:
    from handlers.service_model import service_model

    for action in EXPECTED_ACTIONS - IAM_ONLY_ACTIONS:
        service, _, operation = action.partition(":")
        assert operation in service_model(service).operation_names, action


# Any bucket (a job's output may be in any), for abort marks only: objects so named, a listing of such a prefix.
ANY_BUCKET_FOR_MARKS_ONLY = [
    ({"s3:PutObject"}, ["arn:aws:s3:::*/*sagemaker-plugin-aborted-*.json"], {}),
    ({"s3:ListBucket"}, ["arn:aws:s3:::*"], {"StringLike": {"s3:prefix": "*sagemaker-plugin-aborted-*.json"}}),
]


def test_resources_are_as_narrow_as_aws_allows() -> None:
    for statement in load_policy()["Statement"]:
        resources = _listed(statement["Resource"])
        actions = set(_listed(statement["Action"]))
        if "*" in resources:  # the only ones without a resource type
            assert actions in ({f"sagemaker:{o}" for o in NO_RESOURCE}, {"cloudwatch:GetMetricData"}), statement
        for action in actions:
            if action.startswith("s3:") and not all(r.startswith("arn:aws:s3:::sagemaker-plugin-local")
                                                    for r in resources):
                assert (actions, resources, statement.get("Condition", {})) in ANY_BUCKET_FOR_MARKS_ONLY, statement
                continue
            prefix = {"sagemaker": ("arn:aws:sagemaker:*:*:training-job/",
                                    "arn:aws:sagemaker:*:*:hyper-parameter-tuning-job/"), "iam": "arn:aws:iam::*:role/",
                      "cloudwatch": "*",
                      "logs": "arn:aws:logs:*:*:log-group:/aws/sagemaker/TrainingJobs",
                      "s3": "arn:aws:s3:::sagemaker-plugin-local",
                      "sqs": "arn:aws:sqs:*:*:sagemaker-plugin-job-events"}[action.partition(":")[0]]
            assert all(r == "*" or r.startswith(prefix) for r in resources), (action, resources)


def test_pass_role_is_limited_to_sagemaker() -> None:
    policy = load_policy()
    [statement] = [s for s in policy["Statement"] if "iam:PassRole" in _listed(s["Action"])]
    assert statement["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}
    assert allows(policy, Need("iam:PassRole", ROLE_ARN, TO_SAGEMAKER))
    assert not allows(policy, Need("iam:PassRole", ROLE_ARN, {"iam:PassedToService": "ec2.amazonaws.com"}))
    assert not allows(policy, Need("iam:PassRole", f"arn:aws:iam::{ACCOUNT}:role/Admin", TO_SAGEMAKER))


@pytest.mark.parametrize("need", [
    Need("sagemaker:DeleteModel", JOB_ARN),
    Need("sagemaker:CreateTrainingJob", "arn:aws:sagemaker:us-east-1:1:model/x"),
    Need("sagemaker:StopTrainingJob", "*"), Need("logs:GetLogEvents", "arn:aws:logs:us-east-1:1:log-group:/other:*"),
    Need("s3:PutObject", "arn:aws:s3:::customer-data/secret.csv"), Need("s3:GetObject", OBJECT_ARN),
    Need("s3:DeleteBucket", BUCKET_ARN), Need("iam:CreateRole", "*"),
    Need("s3:GetObject", MARK_ARN), Need("s3:DeleteObject", MARK_ARN),
    Need("s3:PutObject", f"{OUTPUT_BUCKET_ARN}/outputs/job/output/model.tar.gz"),
    Need("s3:ListBucket", OUTPUT_BUCKET_ARN), Need("s3:ListBucket", OUTPUT_BUCKET_ARN, {"s3:prefix": "outputs/"}),
], ids=str)
def test_the_policy_denies_the_rest(need: Need) -> None:
    assert not allows(load_policy(), need)


# --- static: every operation in the plugin's source ------------------------------------------------------------------

SOURCES = ("handlers", "plugin")


#: the client methods that send an operation named by their first two arguments
CALLERS = ("call", "pages")


def operations_in_source(setup: bool = False) -> dict[str, list[str]]:
    """`service:Operation` -> where, for every `<x>.call("service", "Operation", ...)` in the plugin's packages (or
    `<x>.pages(...)`: each page is one call); `setup`: those of `events setup` / `teardown` instead."""
    found: dict[str, list[str]] = {}
    for package in SOURCES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if (path == SETUP_SOURCE) != setup:
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in CALLERS \
                        and len(node.args) >= 2 and all(isinstance(a, ast.Constant) and isinstance(a.value, str)
                                                        for a in node.args[:2]):
                    service, operation = (a.value for a in node.args[:2])  # type: ignore[attr-defined]
                    found.setdefault(f"{service}:{operation}", []).append(f"{path.relative_to(ROOT)}:{node.lineno}")
    for kind in job_kinds.KINDS if not setup else ():  # what the plugins call through a job kind's data
        for operation in (kind.create_operation, kind.describe_operation, kind.stop_operation):
            found.setdefault(f"sagemaker:{operation}", []).append(f"handlers/job_kinds.py ({kind.noun})")
    return found


def test_every_operation_in_the_source_is_allowed() -> None:
    operations = operations_in_source()
    assert {"sagemaker:CreateTrainingJob", "sagemaker:DescribeTrainingJob", "s3:PutObject",
            "logs:GetLogEvents"} <= set(operations)
    assert uncovered(operations) == [], operations


def test_every_action_of_the_policy_is_needed() -> None:
    needed = {n.action for name in operations_in_source() for n in needs(*name.split(":"))}
    assert set(_actions(load_policy())) <= needed


def test_the_events_setup_policy_covers_exactly_what_setup_and_teardown_call() -> None:
    operations = operations_in_source(setup=True)
    assert {"sqs:CreateQueue", "events:PutRule", "events:PutTargets", "sqs:DeleteQueue"} <= set(operations)
    setup_policy = load_policy(SETUP_POLICY_PATH)
    assert uncovered(operations, setup_policy) == []
    needed = {n.action for name in operations for n in needs(*name.split(":"))}
    assert set(_actions(setup_policy)) == needed
    for statement in setup_policy["Statement"]:  # its queue and its rule, nothing else
        assert _listed(statement["Resource"]) in (["arn:aws:sqs:*:*:sagemaker-plugin-job-events"],
                                                  ["arn:aws:events:*:*:rule/sagemaker-plugin-job-events"])
    assert not {a for a in _actions(setup_policy)} & set(_actions(load_policy()))  # the connector needs none


# --- dynamic: record what the plugin does against the local SageMaker -------------------------------------------------


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    from handlers.client import SageMakerClient

    calls: list[str] = []
    original = SageMakerClient.call

    def call(self: SageMakerClient, service: str, operation: str, **params: Any) -> dict[str, Any]:
        calls.append(f"{service}:{operation}")
        return original(self, service, operation, **params)

    monkeypatch.setattr(SageMakerClient, "call", call)
    return calls


@pytest.fixture(scope="module")
def local_sagemaker() -> Iterator[str]:
    from local_sagemaker import LocalSageMaker, LocalSettings

    # No bucket at the start (the local S3 otherwise holds the default output bucket): the workload's uploads of local
    # inputs then create it, so the policy's s3:CreateBucket is exercised too.
    with LocalSageMaker(LocalSettings(execution="simulate", time_scale=10, instances={FULL_TYPE: 0},
                                      buckets=())) as server:
        yield server.url


FULL_TYPE = "ml.m4.xlarge"  # the local SageMaker's quota for it is 0: a create of it is refused, the task queued


def _task(tmp_path: Path, name: str, instance_type: str = "ml.m5.xlarge") -> Path:
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    (data / "train.csv").write_text("1,0.5\n0,0.25\n", encoding="utf-8")
    path = tmp_path / f"{name}.yaml"
    path.write_text(json.dumps({
        "task_type": "sagemaker_custom_training_job_task",
        "training_job": {"training_job_resource_config": {"instance_type": instance_type},
                         "algorithm_specification": {"metric_definitions": [{"name": "train:loss",
                                                                             "regex": "loss=([0-9.]+)"}]}},
        "container": {"image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/trainer:1.0"},
        "inputs": {"train": "data"},
        "execution": {"project": "iam", "domain": "development", "name": name, "node_id": "n0", "retry_attempt": 0},
    }), encoding="utf-8")
    return path


def test_every_operation_of_a_full_workload_is_allowed(recorded: list[str], local_sagemaker: str, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    from plugin import Phase, TrainingJobPlugin, load_task
    from plugin.cli import main
    from plugin.config import parse_config

    monkeypatch.delenv("SAGEMAKER_PLUGIN_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("SAGEMAKER_PLUGIN_CONFIG", raising=False)
    stamp = str(time.time_ns())[-9:]
    # Outputs in a bucket that does not exist yet: the upload of the local inputs creates it (the local S3 starts with
    # the default output bucket only, as SageMaker creates none).
    settings = {"backend": "local", "local": {"endpoint_url": local_sagemaker},
                "output_prefix": f"s3://iam-workload-{stamp}/outputs",
                "retry": {"attempts": 3, "backoff_seconds": 0.01}, "tracking": {"not_found_grace_seconds": 30},
                "rate_limits": {"create_per_second": 0, "read_per_second": 0}}
    config_file = tmp_path / "config.yaml"
    config_file.write_text(json.dumps(settings), encoding="utf-8")
    config = parse_config(settings)

    # run: uploads (HeadBucket, CreateBucket, PutObject), create, follow with logs
    assert main(["run", "--config", str(config_file), "--poll", "0.05", str(_task(tmp_path, f"ran-{stamp}"))]) == 0
    # create, then abort: describe, tag, stop; get until Stopped (ListTags tells who stopped it); create again: adopt
    plugin = TrainingJobPlugin(config)
    task = load_task(_task(tmp_path, f"aborted-{stamp}"))
    meta = plugin.create(task)
    plugin.delete(meta)
    deadline = time.monotonic() + 30
    while (resource := plugin.get(meta)).phase != Phase.ABORTED and time.monotonic() < deadline:
        time.sleep(0.05)
    assert resource.phase == Phase.ABORTED
    assert plugin.create(task).job_name == meta.job_name
    # a task queued for quota, then aborted: the abort mark is looked for, then written (handlers/abort_marks.py)
    queued = plugin.create(load_task(_task(tmp_path, f"queued-{stamp}", FULL_TYPE)))
    assert queued.queued and plugin.get(queued).phase == Phase.WAITING_FOR_RESOURCES
    plugin.delete(queued)
    assert TrainingJobPlugin(config).get(queued).phase == Phase.ABORTED
    # the commands that read or stop a job by name, and the listing the tracker sweeps with
    for command in ("status", "logs", "stop"):
        assert main([command, "--config", str(config_file), meta.job_name]) == 0
    # the metric series, from CloudWatch metrics and from the log lines
    for source in ("cloudwatch", "logs"):
        ran = f"iam-development-ran-{stamp}-n0-0"
        assert main(["metrics", "--config", str(config_file), "--source", source, ran]) == 0
    plugin.client().list_training_jobs(MaxResults=10, NameContains=stamp)
    # the listings of `list`
    for flags in ([], ["--tuning"]):
        assert main(["list", "--config", str(config_file), "--name-contains", stamp, *flags]) == 0
    capsys.readouterr()

    expected = {"s3:HeadBucket", "s3:CreateBucket", "s3:PutObject", "s3:ListObjectsV2", "sagemaker:CreateTrainingJob",
                "sagemaker:DescribeTrainingJob", "sagemaker:AddTags", "sagemaker:StopTrainingJob",
                "sagemaker:ListTags", "sagemaker:ListTrainingJobs", "logs:DescribeLogStreams", "logs:GetLogEvents",
                "cloudwatch:GetMetricData", "logs:FilterLogEvents", "sagemaker:ListHyperParameterTuningJobs"}
    assert set(recorded) == expected
    assert uncovered(recorded) == []


def test_every_operation_of_the_events_path_is_allowed(recorded: list[str], local_sagemaker: str) -> None:
    """`events setup`, then jobs followed by their events: the setup's calls by the setup policy, the listener's by
    the connector's, and by the statement `events setup` prints for the connector's role."""
    from handlers.client import SageMakerClient
    from local_sagemaker.testing import LocalClients
    from plugin import Phase, TrainingJobPlugin
    from plugin.cli.events import connector_statement, setup, teardown
    from plugin.config import parse_config
    from plugin.meta import ResourceMeta
    from trackers import clear_trackers

    settings = {"backend": "local", "local": {"endpoint_url": local_sagemaker, "time_scale": 10},
                "rate_limits": {"create_per_second": 0, "read_per_second": 0}}
    admin = SageMakerClient(parse_config(settings).client_settings())
    made = setup(admin)
    setup_calls = set(recorded)
    aws = LocalClients(local_sagemaker)
    stamp = str(time.time_ns())[-9:]
    aws.sagemaker.create_training_job(**aws.training_request(f"iam-events-{stamp}"))
    clear_trackers()
    plugin = TrainingJobPlugin(parse_config({**settings, "tracking": {"events": {"queue_url": made.queue_url}}}))
    meta = ResourceMeta(job_name=f"iam-events-{stamp}", region=REGION, created_at=time.time(),
                        endpoint_url=local_sagemaker)
    deadline = time.monotonic() + 60
    listener = plugin._tracker(plugin.client()).listener
    while plugin.get(meta).phase != Phase.SUCCEEDED or not listener.received:  # the job may end before a receive
        assert time.monotonic() < deadline
        time.sleep(0.05)
    while "sqs:DeleteMessageBatch" not in recorded:  # the deleting thread gathers for up to a second
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert listener.active
    clear_trackers()
    listened = {name for name in recorded if name.startswith("sqs:")} - setup_calls
    teardown(admin, "sagemaker-plugin-job-events")
    assert listened == {"sqs:ReceiveMessage", "sqs:DeleteMessageBatch"}
    assert uncovered(recorded) == []
    printed = {"Version": "2012-10-17", "Statement": [connector_statement(made.queue_arn)]}
    assert uncovered(listened, printed) == []


# --- suite-wide recording (tests/conftest.py, tests/support/record_ops.py) -------------------------------------------


def test_the_suite_recorder_is_opt_in() -> None:
    """Without SAGEMAKER_PLUGIN_RECORD_OPS, botocore has no recorder (nothing slows other tests)."""
    import record_ops

    assert (record_ops.installed() is not None) == bool(os.environ.get(RECORD_ENV))


def test_the_suite_recording_so_far_is_allowed() -> None:
    """When the suite is recorded, what it did up to this test (the session's end checks the rest, conftest.py)."""
    path = os.environ.get(RECORD_ENV)
    if not path or not Path(path).exists():
        pytest.skip(f"{RECORD_ENV} is not set: the suite is not being recorded")
    assert uncovered(Path(path).read_text(encoding="utf-8").split()) == []


def test_subprocesses_record_their_operations(tmp_path: Path, local_sagemaker: str) -> None:
    import record_ops

    record = tmp_path / "ops.txt"
    config = tmp_path / "config.yaml"
    config.write_text(json.dumps({"backend": "local", "local": {"endpoint_url": local_sagemaker},
                                  "retry": {"attempts": 1}}), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAGEMAKER_PLUGIN_")}
    env = record_ops.subprocess_env({**env, RECORD_ENV: str(record)})
    from handlers import local_credentials

    env.update(local_credentials.for_endpoint(local_sagemaker).env())  # the local SageMaker takes its own pair only
    done = subprocess.run([sys.executable, "-m", "plugin.cli", "status", "--config", str(config), "no-such-job"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert done.returncode == 2, done.stderr  # no such job: the user's input
    # not a training job: perhaps a tuning job's name (`status` shows either)
    assert record.read_text(encoding="utf-8").split() == ["sagemaker:DescribeTrainingJob",
                                                          "sagemaker:DescribeHyperParameterTuningJob"]
