"""The boto3 client the plugin talks to SageMaker through: one retry policy, client-side rate limits, classified errors.

botocore's own retries are switched off (one attempt per botocore call) so that the one policy (handlers/retry.py:
backoff, giving up, the retry budget) is the only one: stacking botocore's 3 attempts under our 8 would make 24
requests and hide the real attempt count. What is retried is read from botocore's retry data. A call gives up after
`retry.attempts`, except a read made through `following()` (a job known to exist is being followed), which keeps
trying until `retry.deadline_seconds`. Every attempt, retries included, first takes a token from a rate limiter
(writes and reads apart), so a burst of tasks queues on our side instead of being throttled by SageMaker.

Errors leave as `handlers.errors` classes (`classify`), with the operation and AWS's own message, never credentials.
"""

from __future__ import annotations

import builtins
import collections
import copy
import functools
import ipaddress
import logging
import re
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import boto3
import botocore.exceptions as bce
import urllib3.exceptions
from botocore import xform_name
from botocore.client import BaseClient
from botocore.config import Config

from handlers import local_credentials, paging, telemetry
from handlers.errors import AccessDenied, AwsError, InvalidRequest, NameInUse, NotFound, ResourceLimit, TransientError
from handlers.ratelimit import RateLimits as RateLimits  # where callers have always found it
from handlers.ratelimit import TokenBucket
from handlers.retry import Patience, RetryBudget
from handlers.retry import RetrySettings as RetrySettings  # where callers have always found it

log = logging.getLogger(__name__)

SERVICES = ("sagemaker", "logs", "s3", "cloudwatch")
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


# --- what is retried ------------------------------------------------------------------------------------------------


def _botocore_retry_tables() -> tuple[frozenset[str], frozenset[str], frozenset[int]]:
    """Throttling codes, transient codes and transient HTTP statuses as botocore's standard retry mode knows them.

    They are private attributes of botocore.retries.standard; should a release rename them, botocore's legacy retry
    data (botocore/data/_retry.json, the error codes and statuses its policies retry) stands in: never a hand copy.
    """
    from botocore.retries import standard

    throttled = getattr(standard.ThrottledRetryableChecker, "_THROTTLED_ERROR_CODES", None)
    transient = getattr(standard.TransientRetryableChecker, "_TRANSIENT_ERROR_CODES", None)
    statuses = getattr(standard.TransientRetryableChecker, "_TRANSIENT_STATUS_CODES", None)
    if throttled and transient and statuses:
        return frozenset(throttled), frozenset(transient), frozenset(statuses)
    return _legacy_retry_data()  # pragma: no cover - depends on botocore internals


def _legacy_retry_data() -> tuple[frozenset[str], frozenset[str], frozenset[int]]:
    import botocore.loaders

    definitions = botocore.loaders.create_loader().load_data("_retry")["definitions"].values()
    responses = [d["applies_when"]["response"] for d in definitions if "response" in d.get("applies_when", {})]
    codes = frozenset(str(r["service_error_code"]) for r in responses if "service_error_code" in r)
    statuses = frozenset(int(r["http_status_code"]) for r in responses
                         if "service_error_code" not in r and int(r["http_status_code"]) >= 500)
    return codes, frozenset(), statuses


THROTTLING_CODES, TRANSIENT_CODES, TRANSIENT_STATUSES = _botocore_retry_tables()
THROTTLING_STATUS = 429
#: network faults: botocore's connection and HTTP client errors (connect/read timeouts, closed connections, endpoint
#: unreachable), and the urllib3/socket errors that can escape botocore while a response body is read
NETWORK_ERRORS: tuple[type[Exception], ...] = (
    bce.ConnectionError,
    bce.HTTPClientError,
    urllib3.exceptions.ProtocolError,
    urllib3.exceptions.ReadTimeoutError,
    builtins.ConnectionError,
)
#: what `call` turns into `handlers.errors` classes; anything else (a bug) propagates as it is
_AWS_FAILURES: tuple[type[Exception], ...] = (bce.BotoCoreError, bce.ClientError, *NETWORK_ERRORS)


def _error_fields(error: bce.ClientError) -> tuple[str, str, int | None]:
    response: Mapping[str, Any] = error.response or {}
    err = response.get("Error") or {}
    status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
    return str(err.get("Code") or ""), str(err.get("Message") or ""), status if isinstance(status, int) else None


def is_retryable(error: BaseException) -> bool:
    """Throttling, transient codes, HTTP 429/500/502/503/504 and network faults; never a request SageMaker refused."""
    if isinstance(error, bce.ClientError):
        code, _, status = _error_fields(error)
        return (
            code in THROTTLING_CODES
            or code in TRANSIENT_CODES
            or status == THROTTLING_STATUS
            or status in TRANSIENT_STATUSES
        )
    return isinstance(error, NETWORK_ERRORS)


def _refused(error: BaseException) -> bool:
    """A connection refused (nothing listens there), as opposed to a timeout or a reset."""
    seen: set[int] = set()
    cause: BaseException | None = error
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, ConnectionRefusedError):
            return True
        seen.add(id(cause))
        inner = cause.kwargs.get("error") if isinstance(cause, bce.BotoCoreError) else None
        cause = inner if isinstance(inner, BaseException) else (cause.__cause__ or cause.__context__)
    return False


def is_loopback(url: str | None) -> bool:
    """The endpoint is on this machine (127.0.0.0/8, ::1, localhost)."""
    return is_loopback_host(urllib.parse.urlsplit(url or "").hostname or "")


def is_loopback_host(name: str) -> bool:
    """A host name or address of this machine: localhost, 127.0.0.0/8, ::1."""
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


#: a refused connection to a loopback endpoint means nothing listens there: one quick retry (a server that is just
#: starting), then give up, rather than back off for half a minute
LOOPBACK_REFUSED_ATTEMPTS = 2
LOOPBACK_REFUSED_SLEEP_SECONDS = 0.25


def _why(error: BaseException | None, endpoint_url: str | None) -> str:
    """What went wrong with an attempt, in a few words, for the line that says it is retried."""
    if isinstance(error, bce.ClientError):
        code, message, status = _error_fields(error)
        return redact(_tidy(f"{code or status}: {message}" if message else str(code or status)))
    if error is not None and _refused(error):
        return f"connection refused by {endpoint_url or 'the endpoint'}"
    if isinstance(error, bce.EndpointConnectionError):
        return f"could not connect to {error.kwargs.get('endpoint_url') or endpoint_url or 'the endpoint'}"
    if isinstance(error, (bce.ReadTimeoutError, urllib3.exceptions.ReadTimeoutError)):
        return "no answer in time (read timeout)"
    return redact(_tidy(f"{type(error).__name__}: {error}"))


# --- classification -------------------------------------------------------------------------------------------------

_NOT_FOUND = re.compile(r"not found|does not exist|could not find|cannot find", re.IGNORECASE)
_NOT_FOUND_CODES = frozenset({"ResourceNotFound", "ResourceNotFoundException", "NoSuchKey", "NoSuchBucket"})
_EXPIRED_CODES = frozenset({"ExpiredToken", "ExpiredTokenException", "TokenRefreshRequired"})
_REJECTED_CREDENTIAL_CODES = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "InvalidSignatureException",
        "IncompleteSignature",
        "IncompleteSignatureException",
        "MissingAuthenticationToken",
        "MissingAuthenticationTokenException",
        "AuthFailure",
        "RequestExpired",
        "RequestTimeTooSkewed",
    }
)
_CREDENTIAL_ERROR_NAMES = (
    "NoCredentialsError",
    "PartialCredentialsError",
    "CredentialRetrievalError",
    "UnknownCredentialError",
    "ProfileNotFound",
    "ConfigNotFound",
    "ConfigParseError",
    "InfiniteLoopConfigError",
    "MetadataRetrievalError",
    "NoAuthTokenError",
    "RefreshWithMFAUnsupportedError",
    "SSOError",
    "SSOTokenLoadError",
    "TokenRetrievalError",
    "UnauthorizedSSOTokenError",
    "PendingAuthorizationExpiredError",
    "LoginAuthorizationCodeError",
    "LoginTokenLoadError",
)
#: botocore's errors about loading credentials (those this botocore has)
_CREDENTIAL_ERRORS: tuple[type[Exception], ...] = tuple(
    cls for cls in (getattr(bce, name, None) for name in _CREDENTIAL_ERROR_NAMES) if isinstance(cls, type)
)
_CONFIGURE = (
    "configure them with `aws configure`, environment variables (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) "
    "or a profile (AWS_PROFILE)"
)
_ACCESS_KEY_ID = re.compile(r"\b(AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}\b")
_SECRET_VALUE = re.compile(
    r"(?i)(aws_secret_access_key|secret_?access_?key|aws_session_token|session_?token|security_?token"
    r"|x-amz-security-token|signature|credential)"
    r"(\"?\s*[=:]\s*\"?)([^\s,;&\"'}]+)"
)
_MESSAGE_LIMIT = 1000


# AWS's validation messages quote the offending value: for the container environment, that may be a secret.
_ENVIRONMENT_VALUE = re.compile(r"Value '.*?' at 'environment", re.DOTALL)


def redact(text: str) -> str:
    """Mask anything that looks like an access key id or a secret/token value, whatever produced the text."""
    text = _ACCESS_KEY_ID.sub(lambda m: m.group(1) + "*" * 16, text)
    text = _ENVIRONMENT_VALUE.sub("Value '****' at 'environment", text)
    return _SECRET_VALUE.sub(lambda m: m.group(1) + m.group(2) + "****", text)


def _tidy(text: str) -> str:
    """One line, bounded: a 5xx can bring a whole HTML page as its message."""
    text = " ".join(text.split())
    return text if len(text) <= _MESSAGE_LIMIT else text[: _MESSAGE_LIMIT - 1] + "…"


def classify(
    error: BaseException,
    operation: str,
    *,
    service: str = "sagemaker",
    attempts: int = 1,
    elapsed: float | None = None,
) -> AwsError:
    """The `handlers.errors` class for an error boto3 raised during `operation`, with a message a person can act on.

    `attempts` and `elapsed` (seconds, sleeps included) say how long the retry policy tried before giving up; they
    appear in a TransientError's message. A ValidationException means "not found" only for an operation on an
    existing resource (Describe, Stop, AddTags...): AWS answers a missing training job with ValidationException
    "Requested resource not found." and moto with "Could not find training job '...'"; for a Create it is always
    InvalidRequest. The message never carries credentials (`redact`).
    """
    if isinstance(error, AwsError):
        return error
    code = type(error).__name__
    make: type[AwsError]
    if isinstance(error, bce.ClientError):
        code, message, status = _error_fields(error)
        make, text = _classify_answer(error, code, _tidy(message), status, operation, service)
        if make is TransientError:
            text = f"{operation} {_gave_up(attempts, elapsed)} ({text})"
        else:
            text = f"{operation}: {text}"
    elif isinstance(error, _CREDENTIAL_ERRORS):
        make = AccessDenied
        if isinstance(error, bce.NoCredentialsError):
            text = f"{operation}: AWS credentials were not found: {_CONFIGURE} ({error})"
        elif isinstance(error, bce.ProfileNotFound):
            text = f"{operation}: {error}: create it with `aws configure --profile NAME`, or choose another profile"
        else:
            text = f"{operation}: AWS credentials could not be loaded ({error}): {_CONFIGURE}"
    elif isinstance(error, bce.EndpointConnectionError):
        make = TransientError
        url = str(error.kwargs.get("endpoint_url", ""))
        if _refused(error) and is_loopback(url):
            advice = ("check that the local SageMaker is running: nothing listens on that port (start one with "
                      "`sagemaker-plugin local serve`, or leave local.endpoint_url and $SAGEMAKER_PLUGIN_ENDPOINT_URL "
                      "unset and `run` starts its own)")
        else:
            advice = "check the network and the region, or that the local SageMaker is running"
        text = f"{operation} {_gave_up(attempts, elapsed)}: could not connect to the endpoint {url}: {advice} ({error})"
    elif isinstance(error, NETWORK_ERRORS):
        make = TransientError
        text = f"{operation} {_gave_up(attempts, elapsed)}: network error ({code}: {error})"
    elif isinstance(error, bce.ParamValidationError):
        make = InvalidRequest
        text = f"{operation}: the request does not fit the API ({error})"
    else:
        make = AwsError
        text = f"{operation} failed ({code}: {error})"
    return make(redact(_tidy(text)), code=code, operation=operation)


def _classify_answer(
    error: bce.ClientError, code: str, message: str, status: int | None, operation: str, service: str
) -> tuple[type[AwsError], str]:
    """The class for an error AWS answered, and what to tell a person, AWS's own words last."""
    said = f"AWS said {code}: {message}" if code and message else f"AWS said {code or message}"
    if code == "ValidationException":
        if _NOT_FOUND.search(message) and not operation.startswith("Create"):
            return NotFound, f"{_what(operation)} does not exist ({said})"
        return InvalidRequest, f"the request was rejected as invalid ({said})"
    if code in _NOT_FOUND_CODES:
        return NotFound, f"{_what(operation)} does not exist ({said})"
    if code in ("ResourceInUse", "ResourceInUseException"):
        return NameInUse, (
            f"the name is already taken, possibly by an earlier attempt of this same call whose response was lost "
            f"({said})"
        )
    if code == "ResourceLimitExceeded":
        return ResourceLimit, (
            f"an account quota is full; it clears when other jobs end, or ask AWS for a quota increase ({said})"
        )
    if code.startswith("AccessDenied"):
        also = " and iam:PassRole on the job's role" if operation == "CreateTrainingJob" else ""
        return AccessDenied, (
            f"the AWS identity in use is not allowed to do this: grant it {service}:{operation}{also}, "
            f"or use another profile ({said})"
        )
    if code in _EXPIRED_CODES or code.startswith("ExpiredToken"):
        return AccessDenied, (
            f"the AWS credentials have expired: refresh them (e.g. `aws sso login`, or new temporary credentials) "
            f"({said})"
        )
    if code in _REJECTED_CREDENTIAL_CODES:
        return AccessDenied, (
            f"AWS did not accept the credentials in use (unknown access key, wrong secret, or a wrong system clock): "
            f"check them with `aws sts get-caller-identity`, or {_CONFIGURE} ({said})"
        )
    if code in ("403", "Forbidden"):  # S3 answers HEAD requests with a bare status
        return AccessDenied, f"the AWS identity in use is not allowed to do this, or the resource is another's ({said})"
    if code in ("404", "NotFound") or status == 404:
        return NotFound, f"{_what(operation)} does not exist ({said})"
    if is_retryable(error):
        return TransientError, said
    if status is not None and 400 <= status < 500:
        return InvalidRequest, f"the request was refused ({said})"
    return AwsError, f"failed ({said})"


def _local_refusal(operation: str, endpoint_url: str | None, said: str) -> str:
    """A local SageMaker refused the key pair: it takes only its own, made when it started."""
    return (f"{operation}: the local SageMaker at {endpoint_url} did not accept the credentials in use: it accepts "
            f"only the key pair it made when it started. In this shell, run the `export AWS_ACCESS_KEY_ID=...` and "
            f"`export AWS_SECRET_ACCESS_KEY=...` lines `sagemaker-plugin local serve` printed (or leave "
            f"local.endpoint_url and $SAGEMAKER_PLUGIN_ENDPOINT_URL unset to use a local SageMaker started for you) "
            f"[{said}]")


def _what(operation: str) -> str:
    return "the training job" if operation.endswith("TrainingJob") else "the resource"


def _gave_up(attempts: int, elapsed: float | None) -> str:
    tries = f"{attempts} attempt" + ("" if attempts == 1 else "s")
    return f"failed after {tries}" + ("" if elapsed is None else f" over {elapsed:.1f} s")


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
        if service == "s3":
            return None
        return self.read_bucket if is_read(operation) else self.write_bucket

    def patience_of(self, service: str, operation: str) -> Patience:
        """How long a failing call retries: a read of the job (its status, logs, metrics) through `following()` until
        the deadline; a write, or S3 (local inputs, abort marks: a later `get` looks again), to the attempt cap."""
        return self.patience if is_read(operation) and service != "s3" else Patience.ATTEMPTS

    def call(self, service: str, operation: str, **params: Any) -> dict[str, Any]:
        """Call `operation` (e.g. "DescribeTrainingJob") of `service`: rate-limited, retried, errors classified.

        Each attempt takes a token from the write or read bucket, then sends one request; `attempts[operation]`
        counts them. Retryable failures (`is_retryable`) are retried as `settings.retry` says (handlers/retry.py),
        until the attempt cap (a read of `following()`: until the deadline) and while the client's retry budget can
        pay for it (a read of `following()` then waits longer instead); then, or for any other failure, the error is
        raised as classified by `classify`.
        """
        client = self._client(service)
        if operation not in client.meta.service_model.operation_names:
            raise ValueError(f"{service} has no operation {operation!r}")
        method: Callable[..., dict[str, Any]] = getattr(client, xform_name(operation))
        bucket = self.bucket_for(service, operation)
        patience = self.patience_of(service, operation)
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
                throttled += isinstance(error, bce.ClientError) and _error_fields(error)[0] in THROTTLING_CODES
                sleep, retry_cost = self._retry_after(error, operation, tries, start, patience)
                if sleep is None:
                    raise self._failure(error, service, operation, tries, start, throttled, retry_cost) from error
                self._sleep(sleep)
                continue
            self.budget.succeeded(retry_cost)
            telemetry.call_finished(service, operation, "ok", tries, throttled)
            return result

    def _retry_after(self, error: BaseException, operation: str, tries: int, start: float, patience: Patience
                     ) -> tuple[float | None, int]:
        """The seconds to sleep before the next attempt (None: give up) and what the budget was paid for it (-1: it
        could not pay; 0: a patient read retried unpaid, after a longer wait). A refused loopback connection has no
        server behind it: one quick retry, then give up, however patient the call."""
        if not is_retryable(error):
            return None, 0
        policy = self.settings.retry
        attempts, sleep = policy.attempts, policy.delay(tries)
        if _refused(error) and is_loopback(self.endpoint_url):  # nothing listens there
            attempts = min(attempts, LOOPBACK_REFUSED_ATTEMPTS)
            if tries >= attempts:
                return None, 0
            patience, sleep = Patience.ATTEMPTS, LOOPBACK_REFUSED_SLEEP_SECONDS
        elapsed = self._clock() - start
        if policy.gives_up(tries, elapsed + sleep, patience):
            return None, 0
        cost = self.budget.spend(timeout=isinstance(error, (bce.ReadTimeoutError, bce.ConnectTimeoutError)))
        if not cost and patience is Patience.ATTEMPTS:
            return None, -1
        if not cost:
            sleep = max(sleep, policy.unpaid_delay())
            if policy.gives_up(tries, elapsed + sleep, patience):
                return None, 0
        until = f"of {attempts}" if patience is Patience.ATTEMPTS else f"until {policy.deadline_seconds:g} s"
        log.info("retrying %s in %.1f s: %s (attempt %d %s)", operation, sleep, _why(error, self.endpoint_url),
                 tries + 1, until)
        return sleep, cost

    def _failure(self, error: BaseException, service: str, operation: str, tries: int, start: float, throttled: int,
                 retry_cost: int) -> AwsError:
        """The classified error a call raises once it gives up (and its telemetry)."""
        failure = classify(error, operation, service=service, attempts=tries, elapsed=self._clock() - start)
        if self.settings.local_credentials and failure.code in _REJECTED_CREDENTIAL_CODES:
            failure = AccessDenied(_local_refusal(operation, self.settings.endpoint_url, str(failure)),
                                   code=failure.code, operation=operation)
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
