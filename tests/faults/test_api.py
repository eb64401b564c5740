"""Faults on the plugin's own calls, through the Python API, against a local SageMaker (issue 6, part 1).

Jobs here have a real lifecycle (a local SageMaker with time_scale 20: about 1.2 s from create to Completed), so a
stop really stops a running job, a quota really frees when a job ends and AWS's answers (ResourceInUse for a name
taken, ValidationException "Requested resource not found.") are the server's own. Faults are injected first on
`before-send.sagemaker` of the plugin's own client (`Injector`), so botocore's parsing and the plugin's retry policy
run end to end; a fault that "loses" a response first delivers the request to the server for real.

The server's clock (server_clock.ManualClock) follows the wall clock, but a test holds it still from a create to
the abort that must find that job running: a loaded machine cannot let the job end first.

Every case checks, against the server (a plain boto3 client that sees no fault): exactly one job per execution
attempt, the phase the job really ended in, nothing left running after an abort, and that an error outlasting the
retries reaches the caller as TransientError or AccessDenied (never another exception, never retried forever).

The status tracker (handlers/tracker.py) may serve `get` from ListTrainingJobs sweeps; its sweeps are turned off here
(`tracking.sweep_interval_seconds: 0`) so that every `get` is a DescribeTrainingJob the faults can reach, and the
process's shared trackers are cleared around each test so that the faulted client is the one that asks.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import botocore.exceptions as bce
import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.httpsession import URLLib3Session

from aws_faults import AWS_NOT_FOUND, STOPPED_BY_TAG, Fault, answer, aws_error, raising, seconds_retried
from handlers.client import SageMakerClient
from handlers.errors import AccessDenied, TransientError
from local_sagemaker import FailureRule, LocalSageMaker, LocalSettings
from local_sagemaker.testing import LocalClients
from plugin import Phase, ResourceMeta, TrainingJobPlugin, load_task
from plugin.config import Config
from plugin_setup import TINY_BACKOFF, fresh_task, make_config
from server_clock import ManualClock
from trackers import clear_trackers

pytestmark = pytest.mark.timeout(60)

INSTANCE_TYPE = "ml.m5.xlarge"
QUOTA_TYPE = "ml.m4.xlarge"  # the server lets jobs hold one instance of it at once; only the quota tests use it
ATTEMPTS = 8  # the retry policy's attempts per call (config default)
#: `short_deadline`'s retry deadline: a `get` follows its job, so its reads give up only there, not after its cap
FOLLOW_DEADLINE = 1.0
#: `short_deadline`'s attempt cap: low, so that a loaded machine still makes more attempts than it before the deadline
#: (under `-n 4` on a busy machine, seven attempts filled the second: too few to pass a cap of 8)
SHORT_ATTEMPTS = 3
# tests/conftest.py runs this module's local SageMaker (`server`, and `aws` on it) with LOCAL_SETTINGS.
LOCAL_SETTINGS = LocalSettings(
    execution="simulate",
    time_scale=20,
    timeline={"Starting": 1, "Downloading": 1, "Training": 20, "Uploading": 1},  # ~1.2 s, ~1 s of it Training
    failures=(FailureRule(r".*-fltfail-.*", "Training", "AlgorithmError: loss became NaN (injected)"),),
    instances={QUOTA_TYPE: 1},
)
# the server's own refusal for QUOTA_TYPE (aws_faults.AWS_QUOTA quotes another limit)
AWS_QUOTA = ("The account-level service limit 'ml.m4.xlarge for training job usage' is 1 Instances, with current "
             "utilization of 1 Instances and a request delta of 1 Instances.")


# --- the server, the truth, the plugin (server, server_clock, aws and session: tests/conftest.py) ------------------


@pytest.fixture(autouse=True)
def _clock_runs_after_each_test(server_clock: ManualClock) -> Iterator[None]:
    """A test that failed while it held the server's clock leaves it running for the next."""
    yield
    server_clock.run()


@pytest.fixture(scope="module")
def train(aws: LocalClients) -> str:
    return aws.put_data("flt-api/train")


@pytest.fixture(scope="module")
def config(server: LocalSageMaker) -> Config:
    return make_config(server.url, retry={"attempts": ATTEMPTS, **TINY_BACKOFF})


@pytest.fixture(autouse=True)
def _fresh_trackers() -> Iterator[None]:
    """The status tracker is shared per process: each test's faulted client must own it."""
    clear_trackers()
    yield
    clear_trackers()


class Engine:
    """A TrainingJobPlugin on its own client, with an Injector on that client and a clock it can move forward."""

    def __init__(self, config: Config, session: boto3.Session) -> None:
        self.offset = 0.0
        self.client = SageMakerClient(config.client_settings(), session=session)
        self.plugin = TrainingJobPlugin(config, client=self.client, clock=lambda: time.time() + self.offset)
        self.faults = Injector(self.client)

    def track(self, meta: ResourceMeta, *, timeout: float = 20.0, tolerate: tuple[type[Exception], ...] = ()
              ) -> tuple[list[Phase], Any]:
        """Poll `get` until the phase is terminal: the phases seen (each change once) and the last resource."""
        seen: list[Phase] = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                resource = self.plugin.get(meta)
            except tolerate:
                pass  # an engine polls again next round
            else:
                if not seen or seen[-1] is not resource.phase:
                    seen.append(resource.phase)
                if resource.phase.is_terminal:
                    return seen, resource
            assert time.monotonic() < deadline, f"{meta.job_name} not terminal after {timeout} s; seen {seen}"
            time.sleep(0.1)


@pytest.fixture
def engine(config: Config, session: boto3.Session) -> Iterator[Engine]:
    made = Engine(config, session)
    yield made
    made.client.close()


@pytest.fixture
def short_deadline(config: Config, session: boto3.Session) -> Iterator[Engine]:
    """An engine whose calls give up after FOLLOW_DEADLINE seconds: where a fault never ends, `get` retries so long."""
    retry = dataclasses.replace(config.retry, deadline_seconds=FOLLOW_DEADLINE, attempts=SHORT_ATTEMPTS)
    made = Engine(dataclasses.replace(config, retry=retry), session)
    yield made
    made.client.close()


def task(train: str, label: str = "job", *, instance_type: str = INSTANCE_TYPE) -> dict[str, Any]:
    """A custom-image task with a unique execution identity; `label` lands in the job name."""
    return fresh_task("flt", label, train=train, instance_type=instance_type)


def identity(the_task: Mapping[str, Any]) -> str:
    return str(the_task["execution"]["name"])


def jobs_named(aws: LocalClients, identity: str) -> list[str]:
    """Every job on the server whose name contains `identity`, all pages."""
    pages = aws.sagemaker.get_paginator("list_training_jobs").paginate(NameContains=identity)
    return [summary["TrainingJobName"] for page in pages for summary in page["TrainingJobSummaries"]]


def truth(aws: LocalClients, name: str) -> tuple[str, str]:
    """(TrainingJobStatus, the phase the job really ended in), read from the server and mapped here on its own."""
    job = aws.sagemaker.describe_training_job(TrainingJobName=name)
    status, secondary = job["TrainingJobStatus"], job["SecondaryStatus"]
    if status == "Completed":
        return status, "SUCCEEDED"
    if status == "Failed":
        return status, "FAILED"
    if status == "Stopped":
        if secondary != "Stopped":
            return status, "FAILED"  # MaxRuntimeExceeded / MaxWaitTimeExceeded
        tags = {t["Key"] for t in aws.sagemaker.list_tags(ResourceArn=job["TrainingJobArn"])["Tags"]}
        return status, "ABORTED" if STOPPED_BY_TAG in tags else "FAILED"
    return status, "not ended"


def wait_status(aws: LocalClients, name: str, statuses: tuple[str, ...], timeout: float = 10.0) -> None:
    aws.wait(name, until=lambda job: job["TrainingJobStatus"] in statuses, timeout=timeout)


# --- faults ---------------------------------------------------------------------------------------------------------


def delivered_then(lose: Fault) -> Fault:
    """The request reaches the server (a create makes its job), then the answer is lost as `lose` says."""

    def fault(request: AWSPreparedRequest) -> AWSResponse:
        http = URLLib3Session()
        try:
            http.send(request).content  # noqa: B018 - read the whole answer, then drop it
        finally:
            http.close()
        return lose(request)

    return fault


def connection_reset(url: str) -> BaseException:
    return bce.ConnectionClosedError(endpoint_url=url)  # what botocore raises for a reset (urllib3 ProtocolError)


def read_timeout(url: str) -> BaseException:
    return bce.ReadTimeoutError(endpoint_url=url)


THROTTLED = aws_error("ThrottlingException", "Rate exceeded")
HTTP_500 = answer(500, b"<html><body><h1>500 Internal Server Error</h1></body></html>", "text/html")
HTTP_503 = aws_error("ServiceUnavailable", "Service Unavailable", 503)
RESET = raising(connection_reset)
TIMEOUT = raising(read_timeout)
TRANSIENT: dict[str, Fault] = {
    "throttling": THROTTLED,
    "http-500": HTTP_500,
    "http-503": HTTP_503,
    "connection-reset": RESET,
    "read-timeout": TIMEOUT,
}
NOT_FOUND = aws_error("ValidationException", AWS_NOT_FOUND)

#: which fault (or None) the n-th attempt (1-based) of an operation gets
Plan = Callable[[int], "Fault | None"]


def always(fault: Fault) -> Plan:
    return lambda n: fault


def first(count: int, fault: Fault) -> Plan:
    return lambda n: fault if n <= count else None


def storm(fault: Fault, run: int = 3, calls: int = 10) -> Plan:
    """`run` faulted attempts, then one through, for `calls` calls: 75% of the attempts fail, none past the retries.
    Then it passes: a storm that never ends is what the client's retry budget is for (it stops retrying once the
    retries cost more than the successes earn back; tests/handlers/test_retry.py), and how many calls a job's life
    takes depends on the machine's load."""
    return lambda n: fault if n % (run + 1) and n < calls * (run + 1) else None


class Injector:
    """First on `before-send.sagemaker` of one client: plays each operation's plan, counts attempts and faults."""

    def __init__(self, client: SageMakerClient) -> None:
        self._lock = threading.Lock()
        self.plans: dict[str, Plan] = {}
        self.attempts: collections.Counter[str] = collections.Counter()
        self.faulted: collections.Counter[str] = collections.Counter()
        events: Any = client.sagemaker.meta.events
        events.register_first("before-send.sagemaker", self)

    def set(self, operation: str, plan: Plan) -> None:
        with self._lock:
            self.plans[operation] = plan
            self.attempts[operation] = 0

    def clear(self, operation: str | None = None) -> None:
        with self._lock:
            if operation is None:
                self.plans.clear()
            else:
                self.plans.pop(operation, None)

    def __call__(self, request: AWSPreparedRequest, **_: Any) -> AWSResponse | None:
        target = request.headers.get("X-Amz-Target", b"")
        operation = (target.decode() if isinstance(target, bytes) else target).rpartition(".")[2]
        with self._lock:
            self.attempts[operation] += 1
            plan = self.plans.get(operation)
            fault = plan(self.attempts[operation]) if plan is not None else None
            if fault is not None:
                self.faulted[operation] += 1
        return fault(request) if fault is not None else None


# --- 1. transient faults, on each call the plugin makes --------------------------------------------------------------

OPERATIONS = ("CreateTrainingJob", "DescribeTrainingJob", "StopTrainingJob", "ListTags")


#: operations whose storm is followed by an abort (quick to end); DescribeTrainingJob's is tracked to SUCCEEDED
ABORTING = ("CreateTrainingJob", "StopTrainingJob", "ListTags")


def run_to_the_end(engine: Engine, clock: ManualClock, train: str, operation: str
                   ) -> tuple[dict[str, Any], str, Any]:
    """The lifecycle that goes through `operation`: create and track to SUCCEEDED (Describe all along its life), or
    create, delete and track to ABORTED (StopTrainingJob, and ListTags, which tells a job the plugin stopped from one
    stopped by anyone else)."""
    the_task = task(train)
    if operation in ABORTING:
        with clock.held():
            meta = engine.plugin.create(load_task(the_task))
            engine.plugin.delete(meta)
    else:
        meta = engine.plugin.create(load_task(the_task))
    _, resource = engine.track(meta)
    return the_task, meta.job_name, resource


@pytest.mark.parametrize("fault", TRANSIENT.values(), ids=TRANSIENT.keys())
@pytest.mark.parametrize("operation", OPERATIONS)
def test_a_storm_of_transient_faults_is_ridden_out(engine: Engine, aws: LocalClients, server_clock: ManualClock,
                                                   train: str, operation: str, fault: Fault) -> None:
    """Three of every four attempts of `operation` fail: every call still succeeds within its retries."""
    engine.faults.set(operation, storm(fault))

    the_task, name, resource = run_to_the_end(engine, server_clock, train, operation)

    assert engine.faults.faulted[operation] >= 3, "the storm never hit"
    assert jobs_named(aws, identity(the_task)) == [name]
    expected = "ABORTED" if operation in ABORTING else "SUCCEEDED"
    assert resource.phase.name == expected
    assert truth(aws, name)[1] == expected
    if expected == "SUCCEEDED":
        assert resource.outputs["training_job_name"] == name
        assert resource.outputs["model"].endswith(f"/{name}/output/model.tar.gz")


def assert_gave_up(error: TransientError, operation: str, attempts: int = ATTEMPTS) -> None:
    assert error.operation == operation
    assert str(error).startswith(f"{operation} failed after {attempts} attempts"), str(error)


def assert_followed_until_the_deadline(engine: Engine, error: TransientError, operation: str) -> None:
    """`get` follows a job that exists (on `short_deadline`): it gave up at the deadline, past the attempt cap."""
    assert error.operation == operation
    assert str(error).startswith(f"{operation} failed after "), str(error)
    assert engine.faults.attempts[operation] > SHORT_ATTEMPTS, engine.faults.attempts
    assert seconds_retried(str(error)) >= FOLLOW_DEADLINE - 0.05


@pytest.mark.parametrize("fault", TRANSIENT.values(), ids=TRANSIENT.keys())
def test_create_faults_that_outlast_the_retries_are_transient_and_make_no_job(engine: Engine, aws: LocalClients,
                                                                              server_clock: ManualClock, train: str,
                                                                              fault: Fault) -> None:
    the_task = task(train)
    engine.faults.set("CreateTrainingJob", always(fault))
    with pytest.raises(TransientError) as caught:
        engine.plugin.create(load_task(the_task))
    assert_gave_up(caught.value, "CreateTrainingJob")
    assert engine.faults.attempts["CreateTrainingJob"] == ATTEMPTS
    assert jobs_named(aws, identity(the_task)) == []

    engine.faults.clear()  # the engine creates again, later: one job
    with server_clock.held():
        meta = engine.plugin.create(load_task(the_task))
        assert jobs_named(aws, identity(the_task)) == [meta.job_name]
        engine.plugin.delete(meta)
    assert engine.track(meta)[1].phase is Phase.ABORTED


#: For a fault that outlasts the retries on a running job's operation: the plugin's calls that then fail, the first
#: having retried it. An abort while describe fails cannot even see the job: it says so, it does not pretend.
FAILING_CALLS = {"DescribeTrainingJob": ("get", "delete"), "StopTrainingJob": ("delete",)}


@pytest.mark.parametrize("operation", FAILING_CALLS)
@pytest.mark.parametrize("fault", TRANSIENT.values(), ids=TRANSIENT.keys())
def test_running_job_faults_that_outlast_the_retries_are_transient_and_the_next_delete_stops(
        short_deadline: Engine, aws: LocalClients, server_clock: ManualClock, train: str, fault: Fault,
        operation: str) -> None:
    engine = short_deadline
    the_task = task(train)
    with server_clock.held():
        meta = engine.plugin.create(load_task(the_task))
        engine.faults.set(operation, always(fault))
        first_call, *then = FAILING_CALLS[operation]
        with pytest.raises(TransientError) as caught:
            getattr(engine.plugin, first_call)(meta)
        if first_call == "get":
            assert_followed_until_the_deadline(engine, caught.value, operation)
        else:
            assert_gave_up(caught.value, operation, SHORT_ATTEMPTS)
        for call in then:
            with pytest.raises(TransientError):
                getattr(engine.plugin, call)(meta)
        assert truth(aws, meta.job_name)[0] == "InProgress"  # not stopped, and the caller knows it

        engine.faults.clear()  # the engine asks again, later: its abort is retried until it is acknowledged
        engine.plugin.delete(meta)
    assert engine.track(meta)[1].phase is Phase.ABORTED
    assert truth(aws, meta.job_name) == ("Stopped", "ABORTED")
    assert jobs_named(aws, identity(the_task)) == [meta.job_name]


@pytest.mark.parametrize("fault", TRANSIENT.values(), ids=TRANSIENT.keys())
def test_list_tags_faults_that_outlast_the_retries_are_transient(short_deadline: Engine, aws: LocalClients,
                                                                 server_clock: ManualClock, train: str,
                                                                 fault: Fault) -> None:
    """A stopped job's phase needs its tags (ABORTED or stopped by someone else): no guess when they cannot be read."""
    engine = short_deadline
    the_task = task(train)
    with server_clock.held():
        meta = engine.plugin.create(load_task(the_task))
        engine.plugin.delete(meta)
    wait_status(aws, meta.job_name, ("Stopped",))
    engine.faults.set("ListTags", always(fault))
    with pytest.raises(TransientError) as caught:
        engine.plugin.get(meta)
    assert_followed_until_the_deadline(engine, caught.value, "ListTags")

    engine.faults.clear()
    assert engine.plugin.get(meta).phase is Phase.ABORTED
    assert jobs_named(aws, identity(the_task)) == [meta.job_name]


# --- 2. a create whose response is lost after the job was made ------------------------------------------------------

LOST: dict[str, Fault] = {
    "reset": delivered_then(RESET),
    "http-500": delivered_then(HTTP_500),
    "read-timeout": delivered_then(TIMEOUT),
}


@pytest.mark.parametrize("lost", LOST.values(), ids=LOST.keys())
def test_a_create_whose_response_was_lost_adopts_the_job_it_made(engine: Engine, aws: LocalClients,
                                                                 server_clock: ManualClock, train: str,
                                                                 lost: Fault) -> None:
    the_task = task(train)
    engine.faults.set("CreateTrainingJob", first(1, lost))

    with server_clock.held():
        meta = engine.plugin.create(load_task(the_task))  # the retry meets ResourceInUse and adopts

        assert engine.faults.attempts["CreateTrainingJob"] == 2
        assert jobs_named(aws, identity(the_task)) == [meta.job_name]
        assert meta.job_arn == aws.sagemaker.describe_training_job(TrainingJobName=meta.job_name)["TrainingJobArn"]
        engine.plugin.delete(meta)  # the adopted job is the engine's own: it stops it
    assert engine.track(meta)[1].phase is Phase.ABORTED
    assert truth(aws, meta.job_name) == ("Stopped", "ABORTED")


def test_a_create_made_but_unanswered_until_the_retries_ran_out_is_adopted_by_the_next_create(
        engine: Engine, aws: LocalClients, train: str) -> None:
    """The job was made on the first attempt, every later attempt was reset: TransientError, and the job exists.
    The engine creates again (same task, same execution identity): it adopts that job, it does not make another."""
    the_task = task(train)
    engine.faults.set("CreateTrainingJob", lambda n: LOST["reset"] if n == 1 else RESET)
    with pytest.raises(TransientError) as caught:
        engine.plugin.create(load_task(the_task))
    assert_gave_up(caught.value, "CreateTrainingJob")
    [name] = jobs_named(aws, identity(the_task))

    engine.faults.clear()
    meta = engine.plugin.create(load_task(the_task))

    assert meta.job_name == name
    assert jobs_named(aws, identity(the_task)) == [name]
    assert engine.track(meta)[1].phase is Phase.SUCCEEDED


def test_a_lost_create_response_while_the_job_is_not_yet_visible_is_adopted(engine: Engine, aws: LocalClients,
                                                                            train: str) -> None:
    the_task = task(train)
    engine.faults.set("CreateTrainingJob", first(1, LOST["reset"]))
    engine.faults.set("DescribeTrainingJob", first(3, NOT_FOUND))

    try:
        meta = engine.plugin.create(load_task(the_task))
    except TransientError:  # acceptable too: the engine retries a transient error
        meta = engine.plugin.create(load_task(the_task))

    assert jobs_named(aws, identity(the_task)) == [meta.job_name]
    assert engine.track(meta)[1].phase is Phase.SUCCEEDED


# --- 3. ResourceLimitExceeded that clears later ---------------------------------------------------------------------


def test_a_create_over_the_instance_quota_waits_and_runs_once_the_quota_frees(engine: Engine, aws: LocalClients,
                                                                              server_clock: ManualClock,
                                                                              train: str) -> None:
    """The server holds one ml.m4.xlarge: B waits for resources while A runs; A is aborted; B is made, once."""
    task_a, task_b = task(train, "quota", instance_type=QUOTA_TYPE), task(train, "quota", instance_type=QUOTA_TYPE)
    with server_clock.held():  # A runs, holding the instance, until it is aborted
        meta_a = engine.plugin.create(load_task(task_a))
        meta_b = engine.plugin.create(load_task(task_b))
        assert meta_b.queued
        assert AWS_QUOTA in meta_b.queued_message

        waiting = engine.plugin.get(meta_b)
        assert waiting.phase is Phase.WAITING_FOR_RESOURCES
        assert AWS_QUOTA in waiting.message
        assert jobs_named(aws, identity(task_b)) == []

        engine.plugin.delete(meta_a)
    assert engine.track(meta_a)[1].phase is Phase.ABORTED
    engine.offset += 120  # past any queue backoff, well within limits.resource_wait_seconds
    seen, resource = engine.track(meta_b)

    assert seen[0] in (Phase.QUEUED, Phase.INITIALIZING)
    assert resource.phase is Phase.SUCCEEDED
    assert jobs_named(aws, identity(task_a)) == [meta_a.job_name]
    assert jobs_named(aws, identity(task_b)) == [meta_b.job_name]
    assert truth(aws, meta_b.job_name)[1] == "SUCCEEDED"


def test_injected_resource_limit_that_clears_later_creates_once(engine: Engine, aws: LocalClients, train: str) -> None:
    the_task = task(train)
    engine.faults.set("CreateTrainingJob", first(3, aws_error("ResourceLimitExceeded", AWS_QUOTA)))
    meta = engine.plugin.create(load_task(the_task))
    assert meta.queued
    phases = []
    for _ in range(3):
        engine.offset += 120  # each retried create comes after its backoff
        phases.append(engine.plugin.get(meta).phase)
    _, resource = engine.track(meta)

    assert phases[:2] == [Phase.WAITING_FOR_RESOURCES] * 2
    assert resource.phase is Phase.SUCCEEDED
    assert engine.faults.attempts["CreateTrainingJob"] == 4  # refused three times (never retried in the client)
    assert jobs_named(aws, identity(the_task)) == [meta.job_name]


# --- 4. expired or refused credentials ------------------------------------------------------------------------------

CREDENTIALS: dict[str, tuple[Fault, tuple[str, ...]]] = {
    "expired-token-400": (aws_error("ExpiredTokenException", "The security token included in the request is expired"),
                          ("credentials have expired", "refresh them")),
    "access-denied-403": (aws_error("AccessDeniedException", "User: arn:aws:sts::123456789012:assumed-role/ci/x is "
                                    "not authorized to perform this action", 403),
                          ("not allowed to do this", "grant it sagemaker:")),
    "bare-403": (answer(403, b"<html><body>Forbidden</body></html>", "text/html"), ("not allowed to do this",)),
}


@pytest.mark.parametrize("fault, advice", CREDENTIALS.values(), ids=CREDENTIALS.keys())
@pytest.mark.parametrize("operation", ["CreateTrainingJob", "DescribeTrainingJob", "StopTrainingJob"])
def test_refused_credentials_are_access_denied_at_once_and_nothing_is_lost(engine: Engine, aws: LocalClients,
                                                                           server_clock: ManualClock, train: str,
                                                                           operation: str, fault: Fault,
                                                                           advice: tuple[str, ...]) -> None:
    the_task = task(train)
    server_clock.hold()  # the job runs until the engine's abort, below
    meta = None if operation == "CreateTrainingJob" else engine.plugin.create(load_task(the_task))
    engine.faults.set(operation, always(fault))

    with pytest.raises(AccessDenied) as caught:
        if meta is None:
            engine.plugin.create(load_task(the_task))
        elif operation == "DescribeTrainingJob":
            engine.plugin.get(meta)
        else:
            engine.plugin.delete(meta)

    assert caught.value.operation == operation
    assert engine.faults.attempts[operation] == 1, "credentials refused are not retried"
    for words in advice:
        assert words in str(caught.value)
    expected_jobs = [] if meta is None else [meta.job_name]
    assert jobs_named(aws, identity(the_task)) == expected_jobs
    if meta is not None:
        assert truth(aws, meta.job_name)[0] == "InProgress"  # a refused stop stopped nothing, and said so

    engine.faults.clear()  # credentials refreshed: the engine carries on
    meta = meta or engine.plugin.create(load_task(the_task))
    engine.plugin.delete(meta)
    server_clock.run()
    assert engine.track(meta)[1].phase is Phase.ABORTED
    assert jobs_named(aws, identity(the_task)) == [meta.job_name]


# --- 5. DescribeTrainingJob not finding a just-created job for a while -----------------------------------------------


def hidden_from_lists(name: Callable[[], str | None]) -> Fault:
    """ListTrainingJobs as the server answers it, minus the job `name()`: not yet visible to List either."""

    def fault(request: AWSPreparedRequest) -> AWSResponse:
        http = URLLib3Session()
        try:
            response = http.send(request)
            body = json.loads(response.content)
        finally:
            http.close()
        body["TrainingJobSummaries"] = [s for s in body.get("TrainingJobSummaries", [])
                                        if s["TrainingJobName"] != name()]
        return answer(response.status_code, body)(request)

    return fault


def test_a_job_describe_cannot_see_yet_is_queued_then_reports_its_real_phases(engine: Engine, aws: LocalClients,
                                                                              train: str) -> None:
    the_task = task(train)
    engine.faults.set("DescribeTrainingJob", first(4, NOT_FOUND))
    created: list[str] = []
    engine.faults.set("ListTrainingJobs", lambda n: hidden_from_lists(lambda: created[0] if created else None)
                      if engine.faults.faulted["DescribeTrainingJob"] < 4 else None)
    meta = engine.plugin.create(load_task(the_task))
    created.append(meta.job_name)

    seen, resource = engine.track(meta)

    assert seen[0] is Phase.QUEUED
    assert resource.phase is Phase.SUCCEEDED
    assert Phase.FAILED not in seen
    assert engine.faults.faulted["DescribeTrainingJob"] == 4
    assert jobs_named(aws, identity(the_task)) == [meta.job_name]


def test_an_abort_while_describe_cannot_see_the_job_yet_still_stops_it(engine: Engine, aws: LocalClients,
                                                                       server_clock: ManualClock, train: str) -> None:
    the_task = task(train)
    with server_clock.held():
        meta = engine.plugin.create(load_task(the_task))
        assert meta.job_arn
        engine.faults.set("DescribeTrainingJob", first(2, NOT_FOUND))

        engine.plugin.delete(meta)
    _, resource = engine.track(meta)

    assert jobs_named(aws, identity(the_task)) == [meta.job_name]
    assert truth(aws, meta.job_name) == ("Stopped", "ABORTED")
    assert resource.phase is Phase.ABORTED


# --- 6. a mixed storm, many jobs, a few threads -----------------------------------------------------------------------


def test_many_jobs_through_a_random_storm_on_every_call(engine: Engine, aws: LocalClients,
                                                       server_clock: ManualClock, train: str) -> None:
    """Ten jobs created and tracked from three threads while about half of all attempts of every operation fail in
    every way at once (throttles, 500s, 503s, resets before and after delivery, read timeouts). Errors that outlast
    the retries are what the engine sees as TransientError and tries again; it aborts three jobs (while the server's
    clock is held: they are still running then); one job fails on its own. Each job ends once, in the phase it
    really ended in."""
    rng = random.Random(20240606)
    menu = [THROTTLED] * 6 + [HTTP_500, HTTP_503, RESET, TIMEOUT, delivered_then(RESET), delivered_then(HTTP_500)]
    lock = threading.Lock()

    def chaos(n: int) -> Fault | None:
        with lock:
            return rng.choice(menu) if rng.random() < 0.5 else None

    for operation in (*OPERATIONS, "ListTrainingJobs", "AddTags"):
        engine.faults.set(operation, chaos)
    tasks = [task(train, "fltfail" if i == 0 else "storm") for i in range(10)]
    aborted = {1, 4, 7}
    transient = collections.Counter[str]()

    def start(i: int) -> ResourceMeta:
        while True:  # the engine retries a create that outlasted the retries: same task, same identity
            try:
                meta = engine.plugin.create(load_task(tasks[i]))
                break
            except TransientError as error:
                with lock:
                    transient[error.operation] += 1
        if i in aborted:
            while True:
                try:
                    engine.plugin.delete(meta)
                    break
                except TransientError as error:
                    with lock:
                        transient[error.operation] += 1
        return meta

    def run(meta: ResourceMeta) -> tuple[str, str]:
        _, resource = engine.track(meta, timeout=40, tolerate=(TransientError,))
        return meta.job_name, resource.phase.name

    with ThreadPoolExecutor(3) as pool:
        with server_clock.held():
            metas = list(pool.map(start, range(len(tasks))))
        results = list(pool.map(run, metas))

    engine.faults.clear()
    # the storm raged: about half of the attempts faulted (how many attempts there are depends on how fast the
    # machine tracks the jobs: a loaded machine polls less)
    faulted = sum(engine.faults.faulted.values())
    attempts = sum(engine.faults.attempts[operation] for operation in (*OPERATIONS, "ListTrainingJobs", "AddTags"))
    assert faulted > 30 and faulted > 0.35 * attempts, (engine.faults.faulted, engine.faults.attempts)
    for i, (name, phase) in enumerate(results):
        assert jobs_named(aws, identity(tasks[i])) == [name], i
        status, real = truth(aws, name)
        expected = "ABORTED" if i in aborted else "FAILED" if i == 0 else "SUCCEEDED"
        assert (phase, real) == (expected, expected), (i, name, status)
