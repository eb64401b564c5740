"""The abort of a task still waiting for resources holds in every process (handlers/abort_marks.py).

A create refused with ResourceLimitExceeded leaves a queued meta; any process holding it retries the create from get.
delete records the abort as an S3 object beside the job's output, before it looks for the job; a process that makes
the job looks for the mark after the create (and once more the first time it sees the job), so one of the two always
sees the other, whatever the order, and nothing runs after an abort.

Several processes are played by several plugins, each with its own client and memory, against one local SageMaker
with a real lifecycle (stop really stops). Faults are injected first on the `before-send` events of one plugin's
client: ResourceLimitExceeded on its creates, a Describe that cannot see a job yet, S3 refusing access.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSResponse

from aws_faults import AWS_NOT_FOUND, STOPPED_BY_TAG, Fault, answer, aws_error
from handlers import abort_marks
from handlers.client import SageMakerClient
from handlers.errors import AccessDenied, TransientError
from handlers.job_kinds import KINDS, TRAINING, TUNING, JobKind
from handlers.service_model import operation_model
from local_sagemaker import LocalSageMaker, LocalSettings
from local_sagemaker.testing import LocalClients
from plugin import Phase, ResourceMeta, TrainingJobPlugin, load_task
from plugin.config import Config
from plugin.jobs.tuning_job import TuningJobPlugin
from plugin.task import TUNING_TASK
from plugin_setup import fresh_task, make_config
from server_clock import ManualClock

pytestmark = pytest.mark.timeout(60)

# tests/conftest.py runs this module's local SageMaker (`server`, and `aws` on it) with LOCAL_SETTINGS.
LOCAL_SETTINGS = LocalSettings(execution="simulate", time_scale=20,
                               timeline={"Starting": 1, "Downloading": 1, "Training": 40, "Uploading": 1})
AWS_QUOTA = ("The account-level service limit 'ml.m5.xlarge for training job usage' is 0 Instances, with current "
             "utilization of 0 Instances and a request delta of 1 Instances.")

QUOTA = aws_error("ResourceLimitExceeded", AWS_QUOTA)
NOT_FOUND = aws_error("ValidationException", AWS_NOT_FOUND)
S3_INTERNAL_ERROR = answer(500, b"<Error><Code>InternalError</Code><Message>We encountered an internal error. "
                                b"Please try again.</Message></Error>", "application/xml")
S3_ACCESS_DENIED = answer(403, b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>AccessDenied</Code>"
                               b"<Message>Access Denied</Message></Error>", "application/xml")


# --- the server, the processes (server, aws and session: tests/conftest.py) ------------------------------------------


@pytest.fixture(scope="module")
def train(aws: LocalClients) -> str:
    return aws.put_data("plg-marks/train")


@pytest.fixture(scope="module")
def config(server: LocalSageMaker) -> Config:
    return make_config(server.url)


class Process:
    """One engine process: a plugin with its own client and memory; faults by `<service>.<Operation>`."""

    def __init__(self, config: Config, session: boto3.Session, tuning: bool = False) -> None:
        self.client = SageMakerClient(config.client_settings(), session=session)
        self.plugin = (TuningJobPlugin if tuning else TrainingJobPlugin)(config, client=self.client)
        self.faults: dict[str, Fault] = {}
        self.sent: list[str] = []
        for service in ("sagemaker", "s3"):
            events: Any = getattr(self.client, service).meta.events
            events.register_first(f"before-send.{service}", self._send)

    def _send(self, request: AWSPreparedRequest, event_name: str, **_: Any) -> AWSResponse | None:
        name = event_name.removeprefix("before-send.")
        self.sent.append(name)
        fault = self.faults.get(name)
        return fault(request) if fault else None

    def count(self, name: str) -> int:
        return self.sent.count(name)

    def track(self, meta: ResourceMeta, timeout: float = 20.0) -> Phase:
        deadline = time.monotonic() + timeout
        while True:
            phase = self.plugin.get(meta).phase
            if phase.is_terminal:
                return phase
            assert time.monotonic() < deadline, f"{meta.job_name} still {phase.name} after {timeout} s"
            time.sleep(0.03)


@pytest.fixture
def process(config: Config, session: boto3.Session) -> Iterator[Callable[..., Process]]:
    """A new engine process: `process()` runs training tasks, `process(tuning=True)` tuning tasks."""
    made: list[Process] = []

    def new(tuning: bool = False) -> Process:
        made.append(Process(config, session, tuning))
        return made[-1]

    yield new
    for each in made:
        each.client.close()


def task(train: str) -> dict[str, Any]:
    return fresh_task("plg", "marks", train=train, output_prefix="s3://plg-marks-output/models/")


def queued(first: Process, train: str) -> ResourceMeta:
    first.faults["sagemaker.CreateTrainingJob"] = QUOTA
    meta = first.plugin.create(load_task(task(train)))
    assert meta.queued
    del first.faults["sagemaker.CreateTrainingJob"]
    return meta


def jobs(aws: LocalClients, name: str) -> list[str]:
    found = aws.sagemaker.list_training_jobs(NameContains=name)["TrainingJobSummaries"]
    return [s["TrainingJobName"] for s in found if s["TrainingJobName"] == name]


def ended_as(aws: LocalClients, name: str) -> tuple[str, bool]:
    """(TrainingJobStatus once ended, whether the plugin's stopped-by tag is on it)."""
    job = aws.wait(name, until=lambda j: j["TrainingJobStatus"] in ("Completed", "Failed", "Stopped"), timeout=20)
    tags = {t["Key"] for t in aws.sagemaker.list_tags(ResourceArn=job["TrainingJobArn"])["Tags"]}
    return job["TrainingJobStatus"], STOPPED_BY_TAG in tags


def marks_of(aws: LocalClients, meta: ResourceMeta) -> list[str]:
    assert meta.queued_request is not None
    mark = abort_marks.mark_for(meta.queued_request, meta.fingerprint, meta.created_at)
    listed = aws.s3.list_objects_v2(Bucket=mark.bucket, Prefix=f"models/{meta.job_name}/{abort_marks.MARK_PREFIX}")
    return [item["Key"] for item in listed.get("Contents", ())]


# --- where a mark goes -----------------------------------------------------------------------------------------------


def request(output: str, name: str = "job-1") -> dict[str, Any]:
    return {"TrainingJobName": name, "OutputDataConfig": {"S3OutputPath": output}}


@pytest.mark.parametrize(("output", "key"), [
    ("s3://bucket/models/", "models/job-1/"), ("s3://bucket/models", "models/job-1/"),
    ("s3://bucket/a/b//", "a/b/job-1/"), ("s3://bucket", "job-1/"), ("s3://bucket/", "job-1/"),
])
def test_the_mark_sits_in_the_jobs_own_output_folder(output: str, key: str) -> None:
    mark = abort_marks.mark_for(request(output), "f" * 16, 1.5)
    assert mark.bucket == "bucket"
    assert mark.key.startswith(key + abort_marks.MARK_PREFIX) and mark.key.endswith(".json")
    assert mark.uri == f"s3://bucket/{mark.key}"


@pytest.mark.parametrize("kind", KINDS, ids=lambda kind: kind.noun)
def test_each_job_kind_names_members_and_operations_of_the_service_model(kind: JobKind) -> None:
    describe = operation_model(kind.describe_operation)
    assert list(describe.input_shape.required_members) == [kind.name_member]
    assert {kind.arn_member, kind.status_member} <= set(describe.output_shape.members)
    assert list(operation_model(kind.stop_operation).input_shape.members) == [kind.name_member]
    create = operation_model(describe.name.replace("Describe", "Create", 1)).input_shape.members
    holder = create[kind.definition_member].members if kind.definition_member else create
    assert kind.name_member in create and "OutputDataConfig" in holder


def test_a_tuning_jobs_mark_sits_in_its_trials_output_folder_under_its_own_name() -> None:
    tuning_request = {"HyperParameterTuningJobName": "tune-1",
                      "TrainingJobDefinition": {"OutputDataConfig": {"S3OutputPath": "s3://bucket/models/",
                                                                     "KmsKeyId": "alias/k"}}}
    mark = abort_marks.mark_for(tuning_request, "f" * 16, 1.5, TUNING)
    assert (mark.bucket, mark.kms_key_id) == ("bucket", "alias/k")
    assert mark.key.startswith("models/tune-1/" + abort_marks.MARK_PREFIX)
    assert mark == abort_marks.mark_for(tuning_request, "f" * 16, 1.5, TUNING)


def test_a_mark_is_encrypted_with_the_jobs_output_key_if_it_has_one(process: Callable[[], Process],
                                                                    aws: LocalClients) -> None:
    key_arn = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    with_key = request(f"s3://plg-marks-kms-{time.time_ns()}/m")
    with_key["OutputDataConfig"]["KmsKeyId"] = key_arn
    mark = abort_marks.mark_for(with_key, "a", 1.0)
    assert mark.kms_key_id == key_arn and abort_marks.mark_for(request("s3://b/m"), "a", 1.0).kms_key_id == ""

    abort_marks.write(process().client, mark, {"job_name": "job-1"}, create_bucket=True)

    head = aws.s3.head_object(Bucket=mark.bucket, Key=mark.key)
    assert (head["ServerSideEncryption"], head["SSEKMSKeyId"]) == ("aws:kms", key_arn)


def test_each_execution_attempt_has_its_own_mark() -> None:
    keys = {abort_marks.mark_for(request("s3://b/m"), fingerprint, created_at).key
            for fingerprint in ("a", "b") for created_at in (1.0, 1.5, 2.0)}
    assert len(keys) == 6
    assert abort_marks.mark_for(request("s3://b/m"), "a", 1.0) == abort_marks.mark_for(request("s3://b/m"), "a", 1.0)


def test_a_mark_is_found_only_once_written_and_only_under_its_own_key(process: Callable[[], Process]) -> None:
    client = process().client
    mark = abort_marks.mark_for(request(f"s3://plg-marks-{time.time_ns()}/m"), "a", 1.0)
    assert not abort_marks.is_marked(client, mark)  # the bucket does not even exist: no mark

    abort_marks.write(client, mark, {"job_name": "job-1"}, create_bucket=True)

    assert abort_marks.is_marked(client, mark)
    assert abort_marks.is_marked(client, mark)  # writing is idempotent, and so is looking
    abort_marks.write(client, mark, {"job_name": "job-1"}, create_bucket=True)
    other = abort_marks.mark_for(request(mark.uri.rsplit("/m/", 1)[0] + "/m"), "a", 1.25)
    assert other.bucket == mark.bucket and not abort_marks.is_marked(client, other)
    shorter = abort_marks.AbortMark(mark.bucket, mark.key[:-5])  # a prefix of a mark's key is not that mark
    assert not abort_marks.is_marked(client, shorter)


# --- the abort holds in other processes ------------------------------------------------------------------------------


def test_delete_of_a_queued_task_records_the_abort_and_another_process_never_makes_the_job(
        process: Callable[[], Process], aws: LocalClients, train: str) -> None:
    first, second = process(), process()
    meta = queued(first, train)

    first.plugin.delete(meta)

    [key] = marks_of(aws, meta)
    assert key.startswith(f"models/{meta.job_name}/{abort_marks.MARK_PREFIX}")
    body = json.loads(aws.s3.get_object(Bucket="plg-marks-output", Key=key)["Body"].read())
    assert body["job_name"] == meta.job_name and body["fingerprint"] == meta.fingerprint
    resource = second.plugin.get(ResourceMeta.decode(meta.encode()))
    assert resource.phase is Phase.ABORTED
    assert "never created" in resource.message
    assert second.count("sagemaker.CreateTrainingJob") == 0
    assert jobs(aws, meta.job_name) == []
    assert first.plugin.get(meta).phase is Phase.ABORTED


def test_a_delete_racing_the_create_in_another_process_still_stops_the_job(
        process: Callable[[], Process], aws: LocalClients, train: str, server_clock: ManualClock) -> None:
    """The creator makes the job; the delete runs before the creator looks for a mark, and cannot see the job yet."""
    server_clock.hold()  # the job runs until it is stopped
    first, second = process(), process()
    meta = queued(first, train)
    first.faults["sagemaker.DescribeTrainingJob"] = NOT_FOUND  # the new job is not visible to the deleter yet

    def delete_elsewhere(**_: Any) -> None:
        first.plugin.delete(meta, grace_seconds=0)

    events: Any = second.client.sagemaker.meta.events
    events.register("after-call.sagemaker.CreateTrainingJob", delete_elsewhere)

    assert second.plugin.get(meta).phase is Phase.QUEUED

    assert first.count("sagemaker.DescribeTrainingJob") >= 1 and first.count("sagemaker.StopTrainingJob") == 0
    assert jobs(aws, meta.job_name) == [meta.job_name]
    server_clock.run()
    assert ended_as(aws, meta.job_name) == ("Stopped", True)
    assert second.track(meta) is Phase.ABORTED


@pytest.mark.parametrize("tuning", [False, True], ids=["training", "tuning"])
def test_a_job_made_from_the_queue_by_a_process_that_died_is_stopped_by_the_next_one_to_see_it(
        process: Callable[..., Process], aws: LocalClients, train: str, server_clock: ManualClock,
        tuning: bool) -> None:
    kind = TUNING if tuning else TRAINING
    first, maker, third = process(tuning), process(tuning), process(tuning)
    with server_clock.held():  # the job runs until the third process sees it
        meta = (queued_tuning if tuning else queued)(first, train)
        assert maker.plugin.get(meta).phase is Phase.QUEUED  # made; no mark yet; then the maker dies
        first.faults[f"sagemaker.{kind.describe_operation}"] = NOT_FOUND
        first.plugin.delete(meta, grace_seconds=0)  # marks, but misses the job
        assert first.count(f"sagemaker.{kind.stop_operation}") == 0
        third.plugin.get(meta)
        assert third.count(f"sagemaker.{kind.stop_operation}") == 1

    assert third.track(meta) is Phase.ABORTED

    ended = tuning_ended_as(aws, meta.job_name)[:2] if tuning else ended_as(aws, meta.job_name)
    assert ended == ("Stopped", True)
    assert third.count("s3.ListObjectsV2") == 1


def test_a_look_for_the_mark_that_fails_is_made_again_on_the_next_get(
        process: Callable[[], Process], aws: LocalClients, train: str, server_clock: ManualClock) -> None:
    server_clock.hold()  # the job runs until the third process sees it
    first, maker, third = process(), process(), process()
    meta = queued(first, train)
    assert maker.plugin.get(meta).phase is Phase.QUEUED
    first.faults["sagemaker.DescribeTrainingJob"] = NOT_FOUND
    first.plugin.delete(meta, grace_seconds=0)
    third.faults["s3.ListObjectsV2"] = S3_INTERNAL_ERROR

    with pytest.raises(TransientError):
        third.plugin.get(meta)
    del third.faults["s3.ListObjectsV2"]
    third.plugin.get(meta)
    server_clock.run()

    assert third.track(meta) is Phase.ABORTED
    assert ended_as(aws, meta.job_name) == ("Stopped", True)


def test_a_job_made_from_the_queue_and_never_aborted_runs_to_the_end_with_one_look_for_a_mark(
        process: Callable[[], Process], aws: LocalClients, train: str) -> None:
    first, second = process(), process()
    meta = queued(first, train)

    assert first.track(meta) is Phase.SUCCEEDED
    assert second.track(meta) is Phase.SUCCEEDED

    assert jobs(aws, meta.job_name) == [meta.job_name]
    assert marks_of(aws, meta) == []
    assert first.count("s3.ListObjectsV2") == 2  # before and after its create
    assert second.count("s3.ListObjectsV2") <= 1  # once, if it saw the job running


def test_an_earlier_attempts_mark_does_not_abort_a_new_attempt_under_the_same_name(
        process: Callable[[], Process], aws: LocalClients, train: str) -> None:
    first, second = process(), process()
    the_task = task(train)
    first.faults["sagemaker.CreateTrainingJob"] = QUOTA
    old = first.plugin.create(load_task(the_task))
    first.plugin.delete(old)
    time.sleep(0.01)
    new = second.plugin.create(load_task(the_task))  # the same execution identity, run again: a new attempt
    assert new.job_name == old.job_name and not new.queued

    assert second.track(new) is Phase.SUCCEEDED
    assert len(marks_of(aws, old)) == 1


def test_without_leave_to_look_for_marks_a_queued_task_still_runs_and_says_why(
        process: Callable[[], Process], aws: LocalClients, train: str, caplog: pytest.LogCaptureFixture) -> None:
    first = process()
    meta = queued(first, train)
    first.faults["s3.ListObjectsV2"] = S3_ACCESS_DENIED

    with caplog.at_level(logging.WARNING, logger="plugin.jobs.training_job"):
        assert first.track(meta) is Phase.SUCCEEDED

    assert jobs(aws, meta.job_name) == [meta.job_name]
    warned = [r.getMessage() for r in caplog.records if "abort mark" in r.getMessage() and r.levelno == logging.WARNING]
    assert len(warned) == 1, "said once, not at every retry"
    assert "s3:ListBucket" in warned[0] and meta.job_name in warned[0]
    assert first.count("s3.ListObjectsV2") >= 2


def test_a_delete_that_cannot_record_the_abort_says_so_and_this_process_still_never_makes_the_job(
        process: Callable[[], Process], aws: LocalClients, train: str) -> None:
    first = process()
    meta = queued(first, train)
    first.faults["s3.PutObject"] = S3_ACCESS_DENIED

    with pytest.raises(AccessDenied) as raised:
        first.plugin.delete(meta)

    message = str(raised.value)
    assert meta.job_name in message and "s3://plg-marks-output/models/" in message and "s3:PutObject" in message
    assert first.plugin.get(meta).phase is Phase.ABORTED
    assert jobs(aws, meta.job_name) == []


# --- an abort without leave to tag the job ---------------------------------------------------------------------------

SAGEMAKER_ACCESS_DENIED = aws_error(
    "AccessDeniedException", "User: arn:aws:sts::123456789012:assumed-role/connector/x is not authorized to perform: "
    "sagemaker:AddTags on resource: arn:aws:sagemaker:us-east-1:123456789012:training-job/x")


def test_without_leave_to_tag_a_delete_still_stops_the_job(
        process: Callable[[], Process], aws: LocalClients, train: str, caplog: pytest.LogCaptureFixture,
        server_clock: ManualClock) -> None:
    first, other = process(), process()
    with server_clock.held():  # the job runs until the delete
        meta = first.plugin.create(load_task(task(train)))
        first.faults["sagemaker.AddTags"] = SAGEMAKER_ACCESS_DENIED

        with caplog.at_level(logging.WARNING, logger="plugin.jobs.training_job"):
            first.plugin.delete(meta)

    assert first.count("sagemaker.StopTrainingJob") == 1
    assert ended_as(aws, meta.job_name) == ("Stopped", False)
    assert first.track(meta) is Phase.ABORTED  # this process knows it stopped it
    assert other.track(meta) is Phase.FAILED  # another reads a job stopped by someone: that is all SageMaker says
    warned = [r.getMessage() for r in caplog.records if "sagemaker:AddTags" in r.getMessage()]
    assert warned and meta.job_name in warned[0]


# --- a tuning job queued on quota: the same marks, beside its trials' output ------------------------------------------


def tuning_task(train: str) -> dict[str, Any]:
    """A tuning of the custom task above: two trials, one at a time, each running until the server clock lets it."""
    trial = task(train)
    trial["training_job"]["algorithm_specification"]["metric_definitions"] = [{"name": "loss",
                                                                               "regex": "loss=([0-9.]+)"}]
    return {
        "task_type": TUNING_TASK,
        "hyperparameter_tuning_job": {"training_job": trial.pop("training_job"), "max_number_of_training_jobs": 2,
                                      "max_parallel_training_jobs": 1},
        "tuning_config": {"hyperparameter_ranges": {"parameter_range_map": {
            "lr": {"continuous_parameter_range": {"min_value": 0.1, "max_value": 0.5}}}},
            "tuning_objective": {"metric_name": "loss"}},
        **{key: value for key, value in trial.items() if key != "task_type"},
    }


def queued_tuning(first: Process, train: str) -> ResourceMeta:
    first.faults["sagemaker.CreateHyperParameterTuningJob"] = QUOTA
    meta = first.plugin.create(tuning_task(train))
    assert meta.queued and first.plugin.get(meta).phase is Phase.WAITING_FOR_RESOURCES
    del first.faults["sagemaker.CreateHyperParameterTuningJob"]
    return meta


def tuning_jobs(aws: LocalClients, name: str) -> list[str]:
    found = aws.sagemaker.list_hyper_parameter_tuning_jobs(NameContains=name)["HyperParameterTuningJobSummaries"]
    return [s["HyperParameterTuningJobName"] for s in found if s["HyperParameterTuningJobName"] == name]


def tuning_ended_as(aws: LocalClients, name: str) -> tuple[str, bool, list[str]]:
    """(status once ended, whether the plugin's stopped-by tag is on it, its trials' statuses)."""
    deadline = time.monotonic() + 20
    while True:
        job = aws.sagemaker.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
        if job["HyperParameterTuningJobStatus"] in ("Completed", "Failed", "Stopped"):
            break
        assert time.monotonic() < deadline, job["HyperParameterTuningJobStatus"]
        time.sleep(0.05)
    tags = {t["Key"] for t in aws.sagemaker.list_tags(ResourceArn=job["HyperParameterTuningJobArn"])["Tags"]}
    trials = aws.sagemaker.list_training_jobs_for_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
    return (job["HyperParameterTuningJobStatus"], STOPPED_BY_TAG in tags,
            [t["TrainingJobStatus"] for t in trials["TrainingJobSummaries"]])


def test_a_queued_tuning_jobs_abort_is_marked_beside_its_trials_output_and_holds_in_another_process(
        process: Callable[..., Process], aws: LocalClients, train: str) -> None:
    first, second = process(tuning=True), process(tuning=True)
    meta = queued_tuning(first, train)

    first.plugin.delete(meta)

    assert meta.queued_request is not None
    mark = abort_marks.mark_for(meta.queued_request, meta.fingerprint, meta.created_at, TUNING)
    assert mark.bucket == "plg-marks-output" and mark.key.startswith(f"models/{meta.job_name}/")
    assert abort_marks.is_marked(first.client, mark)
    body = json.loads(aws.s3.get_object(Bucket=mark.bucket, Key=mark.key)["Body"].read())
    assert body["job_name"] == meta.job_name and body["fingerprint"] == meta.fingerprint
    resource = second.plugin.get(ResourceMeta.decode(meta.encode()))  # another process, or this one restarted
    assert resource.phase is Phase.ABORTED and "tuning job was never created" in resource.message
    assert second.count("sagemaker.CreateHyperParameterTuningJob") == 0
    assert tuning_jobs(aws, meta.job_name) == []
    assert first.plugin.get(meta).phase is Phase.ABORTED


def test_a_delete_racing_a_queued_tuning_create_in_another_process_stops_the_job_and_its_trials(
        process: Callable[..., Process], aws: LocalClients, train: str, server_clock: ManualClock) -> None:
    server_clock.hold()  # the trials run until they are stopped
    first, second = process(tuning=True), process(tuning=True)
    meta = queued_tuning(first, train)
    first.faults["sagemaker.DescribeHyperParameterTuningJob"] = NOT_FOUND  # the new job is not visible to the deleter

    def delete_elsewhere(**_: Any) -> None:
        first.plugin.delete(meta, grace_seconds=0)

    events: Any = second.client.sagemaker.meta.events
    events.register("after-call.sagemaker.CreateHyperParameterTuningJob", delete_elsewhere)

    assert second.plugin.get(meta).phase is Phase.QUEUED

    assert first.count("sagemaker.StopHyperParameterTuningJob") == 0
    assert second.count("sagemaker.StopHyperParameterTuningJob") == 1
    server_clock.run()
    status, tagged, trials = tuning_ended_as(aws, meta.job_name)
    assert (status, tagged) == ("Stopped", True) and set(trials) <= {"Stopped"}
    assert second.track(meta) is Phase.ABORTED
