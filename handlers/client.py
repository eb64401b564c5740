"""The boto3 client the plugin talks to SageMaker through: each call is acquire -> send -> decide.

Acquire: every attempt, retries included, first takes a token from a rate limiter (writes and reads apart,
handlers/ratelimit.py), so a burst of tasks queues on our side instead of being throttled by SageMaker. Send: one
request; botocore's own retries are switched off so that ours are the only ones (stacking botocore's 3 attempts under
our 8 would make 24 requests and hide the real attempt count). Decide: handlers/retry.py says what is retried, how
long to wait and whether the retry budget pays; a call gives up after `retry.attempts`, except a read made through
`following()` (a job known to exist is being followed), which keeps trying until `retry.deadline_seconds`; a local
SageMaker that refuses the connection gets one quick retry (handlers/loopback.py).

Errors leave as `handlers.errors` classes (handlers/classify.py), with the operation and AWS's own message, never
credentials.
"""

from __future__ import annotations

import collections
import copy
import dataclasses
import functools
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import boto3
import botocore.exceptions as bce
from botocore import xform_name
from botocore.client import BaseClient
from botocore.config import Config

from handlers import local_credentials, loopback, paging, retry, telemetry
from handlers.classify import attempt_failure, classify, local_refusal
from handlers.errors import AwsError
from handlers.ratelimit import RateLimits, TokenBucket
from handlers.retry import Decision, Patience, RetryBudget, RetrySettings

log = logging.getLogger(__name__)

SERVICES = ("sagemaker", "logs", "s3", "cloudwatch", "sqs", "events")
#: services outside SageMaker's control plane: not paced by the rate limiters (S3 uploads, the job events' queue)
UNPACED = ("s3", "sqs", "events")
#: operations that only read, paced by the read bucket; every other SageMaker or logs operation is a write
READ_PREFIXES = ("Describe", "List", "Get", "Search", "Filter", "BatchDescribe", "BatchGet")


def is_read(operation: str) -> bool:
    """The operation only reads: paced by the read bucket, and patient when it follows a job."""
    return operation.startswith(READ_PREFIXES)


@dataclass(frozen=True)
class ClientSettings:
    """Where and how to reach SageMaker. Credentials come from boto3's chain (a local SageMaker: its own key pair)."""

    region: str = "us-east-1"
    endpoint_url: str | None = None  # the local SageMaker; None = real AWS
    profile: str | None = None  # boto3 profile
    local_credentials: bool = False  # True for the local SageMaker: its own key pair (handlers/local_credentials.py)
    retry: RetrySettings = field(default_factory=RetrySettings)
    rate_limits: RateLimits = field(default_factory=RateLimits)
    connect_timeout: float = 10
    read_timeout: float = 60


#: what `call` turns into `handlers.errors` classes; anything else (a bug) propagates as it is
_AWS_FAILURES: tuple[type[Exception], ...] = (bce.BotoCoreError, bce.ClientError, *retry.NETWORK_ERRORS)


# --- the client -----------------------------------------------------------------------------------------------------


class SageMakerClient:
    """boto3 clients for SageMaker, CloudWatch Logs and metrics, and S3 behind one retry policy, rate limits and
    error classes.

    `session` (else a new one for `settings.profile`) supplies credentials through boto3's chain; with
    `settings.local_credentials` the clients sign with the local SageMaker's own key pair instead (this process's
    server at the endpoint, else $AWS_ACCESS_KEY_ID/$AWS_SECRET_ACCESS_KEY) and the profile is ignored. `sleep` and
    `clock` serve the backoff, the deadline and the rate limiters, so tests can run without waiting. Retries of all
    its calls draw on one `budget` (handlers/retry.py).
    Thread-safe: boto3 clients are, and the counters and lazily built clients are guarded by a lock.
    """

    def __init__(
        self,
        settings: ClientSettings,
        *,
        session: boto3.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.region = settings.region
        self._sleep = sleep
        self._clock = clock
        self._lock = threading.Lock()
        try:
            self._session = (
                session
                if session is not None
                else boto3.Session(
                    profile_name=None if settings.local_credentials else settings.profile, region_name=settings.region
                )
            )
        except bce.BotoCoreError as error:  # a profile that does not exist fails here, before any call
            raise classify(error, "CreateSession") from error
        self.partition = _partition(self._session, settings.region)
        self._config = Config(
            region_name=settings.region,
            retries={"total_max_attempts": 1, "mode": "standard"},
            connect_timeout=settings.connect_timeout,
            read_timeout=settings.read_timeout,
            user_agent_extra="sagemaker-plugin",
            s3={"addressing_style": "path"} if settings.endpoint_url else None,
        )
        self.write_bucket = TokenBucket(settings.rate_limits.create_per_second, clock=clock, sleep=sleep)
        self.read_bucket = TokenBucket(settings.rate_limits.read_per_second, clock=clock, sleep=sleep)
        #: attempts made per operation, retries included (one per HTTP request sent, or tried to send)
        self.attempts: collections.Counter[str] = collections.Counter()
        self.budget = RetryBudget()
        #: how long its reads retry: ATTEMPTS, or DEADLINE on the view `following()` returns (writes: ATTEMPTS always)
        self.patience = Patience.ATTEMPTS
        self._clients: dict[str, BaseClient] = {}
        #: the local SageMaker's key pair these clients sign with (None: boto3's chain, for AWS)
        self.local_keys = (
            local_credentials.for_endpoint(settings.endpoint_url) if settings.local_credentials else None
        )
        self._client("sagemaker")

    def following(self) -> SageMakerClient:
        """This client for following a job known to exist (a status tracker, `run` watching its job, an engine's
        `get`): its reads of the job keep retrying until `retry.deadline_seconds` instead of stopping at
        `retry.attempts`, as a storm of throttles must not end the watch of a healthy job (`patience_of`). A view:
        the connections, rate limits, retry budget and counters are this client's, so followers share one budget."""
        if self.patience is Patience.DEADLINE:
            return self
        view = copy.copy(self)
        view.patience = Patience.DEADLINE
        return view

    @property
    def sagemaker(self) -> BaseClient:
        """The raw boto3 client (botocore retries off); its event system is where tests inject faults."""
        return self._client("sagemaker")

    @property
    def logs(self) -> BaseClient:
        """CloudWatch Logs: the jobs' log streams."""
        return self._client("logs")

    @property
    def s3(self) -> BaseClient:
        """S3: uploads of local inputs, and the abort marks of queued creates."""
        return self._client("s3")

    @property
    def endpoint_url(self) -> str | None:
        return self.settings.endpoint_url

    def _client(self, service: str) -> BaseClient:
        if service not in SERVICES:
            raise ValueError(f"unknown service {service!r}; expected one of {', '.join(SERVICES)}")
        with self._lock:
            client = self._clients.get(service)
            if client is None:
                extra: dict[str, Any] = {}
                keys = self.local_keys
                if keys is not None:
                    extra = {"aws_access_key_id": keys.access_key_id, "aws_secret_access_key": keys.secret_access_key}
                make_client: Callable[..., BaseClient] = self._session.client  # typed per literal service name
                try:
                    client = make_client(
                        service,
                        region_name=self.settings.region,
                        endpoint_url=self.settings.endpoint_url,
                        config=self._config,
                        **extra,
                    )
                except bce.BotoCoreError as error:
                    raise classify(error, "CreateClient", service=service) from error
                self._clients[service] = client
            return client

    def bucket_for(self, service: str, operation: str) -> TokenBucket | None:
        """Reads and writes are paced apart; S3 (uploads of local inputs) is not SageMaker's control plane."""
        if service in UNPACED:
            return None
        return self.read_bucket if is_read(operation) else self.write_bucket

    def patience_of(self, service: str, operation: str) -> Patience:
        """How long a failing call retries: a read of the job (its status, logs, metrics) through `following()` until
        the deadline; a write, or S3 (local inputs, abort marks: a later `get` looks again), to the attempt cap."""
        return self.patience if is_read(operation) and service != "s3" else Patience.ATTEMPTS

    def call(self, service: str, operation: str, **params: Any) -> dict[str, Any]:
        """Call `operation` (e.g. "DescribeTrainingJob") of `service`: acquire a token of the write or read bucket,
        send one request (`attempts[operation]` counts them), decide on a failure (`decide`): sleep and go again, or
        raise the error classified (handlers/classify.py)."""
        client = self._client(service)
        if operation not in client.meta.service_model.operation_names:
            raise ValueError(f"{service} has no operation {operation!r}")
        method: Callable[..., dict[str, Any]] = getattr(client, xform_name(operation))
        bucket = self.bucket_for(service, operation)
        patience = self.patience_of(service, operation)
        checker = retry.standard_checker()
        start = self._clock()
        tries = throttled = retry_cost = 0
        while True:
            if bucket is not None:
                bucket.acquire()
            tries += 1
            with self._lock:
                self.attempts[operation] += 1
            try:
                result = method(**params)
            except _AWS_FAILURES as error:
                throttled += checker.is_throttle(error)
                decision = self.decide(error, operation, tries, self._clock() - start, patience)
                retry_cost = decision.cost
                if decision.sleep is None:
                    raise self._failure(error, service, operation, tries, start, throttled, retry_cost) from error
                self._sleep(decision.sleep)
                continue
            self.budget.succeeded(retry_cost)
            telemetry.call_finished(service, operation, "ok", tries, throttled)
            return result

    def decide(self, error: BaseException, operation: str, tries: int, elapsed: float, patience: Patience
               ) -> Decision:
        """After a failed attempt: retry (after `Decision.sleep`) or give up, as handlers/retry.py's checker, backoff
        and budget say. A refused loopback connection has no server behind it: one quick retry, then give up,
        however patient the call (handlers/loopback.py)."""
        if not retry.standard_checker().is_retryable(error):
            return retry.GIVE_UP
        policy, sleep = self.settings.retry, None
        if loopback.nothing_listens(error, self.endpoint_url):
            policy = dataclasses.replace(policy, attempts=min(policy.attempts, loopback.REFUSED_ATTEMPTS))
            patience, sleep = Patience.ATTEMPTS, loopback.REFUSED_SLEEP_SECONDS
        decision = retry.decide(policy, self.budget, tries, elapsed, patience,
                                timeout=isinstance(error, retry.TIMEOUT_ERRORS), sleep=sleep)
        if decision.sleep is not None:
            until = f"of {policy.attempts}" if patience is Patience.ATTEMPTS else f"until {policy.deadline_seconds:g} s"
            log.info("retrying %s in %.1f s: %s (attempt %d %s)", operation, decision.sleep,
                     attempt_failure(error, self.endpoint_url), tries + 1, until)
        return decision

    def _failure(self, error: BaseException, service: str, operation: str, tries: int, start: float, throttled: int,
                 retry_cost: int) -> AwsError:
        """The classified error a call raises once it gives up (and its telemetry)."""
        failure = classify(error, operation, service=service, attempts=tries, elapsed=self._clock() - start)
        if self.settings.local_credentials:
            failure = local_refusal(failure, operation, self.settings.endpoint_url)
        if retry_cost < 0:
            failure = type(failure)(f"{failure}; not retried: so many calls of this client failed lately that its "
                                    f"retry budget is spent (it refills as calls succeed)",
                                    code=failure.code, operation=operation)
        telemetry.call_finished(service, operation, type(failure).__name__, tries, throttled)
        return failure

    # --- what the plugin uses ---------------------------------------------------------------------------------------

    def create_training_job(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """CreateTrainingJob; returns the response ({"TrainingJobArn": ...}).

        A create is retried like any call. If SageMaker made the job but the response was lost (reset, timeout, 5xx),
        the retry meets ResourceInUse and this raises NameInUse: the caller must then describe the job and adopt it
        when its tags carry this task's fingerprint (it is an earlier attempt of this very call), else fail.
        """
        return self.call("sagemaker", "CreateTrainingJob", **request)

    def describe_training_job(self, name: str) -> dict[str, Any]:
        """DescribeTrainingJob; a missing job raises NotFound."""
        return self.call("sagemaker", "DescribeTrainingJob", TrainingJobName=name)

    def list_training_jobs(self, **kwargs: Any) -> dict[str, Any]:
        """One page of ListTrainingJobs (`pages` walks them all)."""
        return self.call("sagemaker", "ListTrainingJobs", **kwargs)

    def stop_training_job(self, name: str) -> None:
        self.call("sagemaker", "StopTrainingJob", TrainingJobName=name)

    def add_tags(self, arn: str, tags: Sequence[Mapping[str, str]]) -> None:
        """AddTags with [{"Key": ..., "Value": ...}]."""
        self.call("sagemaker", "AddTags", ResourceArn=arn, Tags=[dict(t) for t in tags])

    def list_tags(self, arn: str) -> list[dict[str, str]]:
        """Every tag of a resource, all pages."""
        pages = self.pages("sagemaker", "ListTags", {"ResourceArn": arn})
        return [tag for page in pages for tag in page.get("Tags", [])]

    def pages(self, service: str, operation: str, params: Mapping[str, Any], max_pages: int | None = None
              ) -> Iterator[dict[str, Any]]:
        """Each page of the list `operation` answers for `params` (handlers/paging.py), each page one `call`."""
        return paging.pages(functools.partial(self.call, service, operation), operation, params, service=service,
                            max_pages=max_pages)

    def close(self) -> None:
        """Close the HTTP connection pools of the clients built so far (a later call opens new ones)."""
        with self._lock:
            clients = list(self._clients.values())
        for client in clients:
            client.close()

    def __enter__(self) -> SageMakerClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        where = self.settings.endpoint_url or f"AWS {self.partition}"
        following = ", following" if self.patience is Patience.DEADLINE else ""
        return f"SageMakerClient({self.region}, {where}{following})"


def _partition(session: boto3.Session, region: str) -> str:
    """aws, aws-cn, aws-us-gov... from botocore's partition data; a region it does not know is taken as aws."""
    try:
        return str(session.get_partition_for_region(region))
    except bce.UnknownRegionError:
        return "aws"
