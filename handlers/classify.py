"""What a failed AWS call tells a person: the `handlers.errors` class for whatever boto3 raised (`classify`), a few
words for a retried attempt (`attempt_failure`), and never a credential (`redact`, applied to every message).
"""

from __future__ import annotations

import re

import botocore.exceptions as bce
import urllib3.exceptions

from handlers.errors import AccessDenied, AwsError, InvalidRequest, NameInUse, NotFound, ResourceLimit, TransientError
from handlers.loopback import is_loopback, refused
from handlers.retry import NETWORK_ERRORS, error_fields, is_retryable


def attempt_failure(error: BaseException | None, endpoint_url: str | None) -> str:
    """What went wrong with an attempt, in a few words, for the line that says it is retried."""
    if isinstance(error, bce.ClientError):
        code, message, status = error_fields(error)
        return redact(_tidy(f"{code or status}: {message}" if message else str(code or status)))
    if error is not None and refused(error):
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
        code, message, status = error_fields(error)
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
        if refused(error) and is_loopback(url):
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


def local_refusal(failure: AwsError, operation: str, endpoint_url: str | None) -> AwsError:
    """`failure` of a call to a local SageMaker, which takes only the key pair it made when it started: a refusal
    of the credentials says so and how to use its own."""
    if failure.code not in _REJECTED_CREDENTIAL_CODES:
        return failure
    return AccessDenied(_local_refusal(operation, endpoint_url, str(failure)), code=failure.code, operation=operation)


def _local_refusal(operation: str, endpoint_url: str | None, said: str) -> str:
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

