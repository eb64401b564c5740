"""Who gets in: only the local SageMaker's own clients, since it runs code that arrives in requests.

`Gate` wraps the served WSGI app and, before anything reaches moto:
- refuses a Host header that names anything but a loopback address or `localhost` (DNS rebinding: a web page whose
  name an attacker re-points at 127.0.0.1 would otherwise be talking to us as a "same-origin" server);
- refuses cross-origin preflights and any request a web page sends (it carries `Origin`; boto3 never does), and
  drops the CORS headers moto adds to every answer, so no browser ever lets a page read an answer;
- closes every unsigned path (moto's own `/moto-api/`, its reset, state dump and dashboard, is not even routed to:
  server.py's dispatcher sends those paths to S3, where they name a bucket);
- verifies the AWS Signature Version 4 of every request, in the Authorization header or a presigned URL's query,
  against this server's own key pair: botocore's signer recomputes it from the request as received. S3 also takes
  Signature Version 2, as AWS's S3 still does, because boto3 presigns S3 URLs with it by default.
Refusals are AWS's answers for the same mistakes (unknown access key, signature mismatch, expired URL...), in the
protocol of the service asked (JSON, CBOR, query XML, S3's XML), so SDKs report them as they would on AWS.
"""

from __future__ import annotations

import base64
import calendar
import datetime
import email.utils
import hashlib
import hmac
import io
import json
import secrets
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit
from xml.sax.saxutils import escape

from botocore.auth import HmacV1Auth, S3SigV4Auth, S3SigV4QueryAuth, SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest, HTTPHeaders
from botocore.credentials import Credentials

from handlers.local_credentials import LocalCredentials
from handlers.loopback import is_loopback_host

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

ALGORITHM = "AWS4-HMAC-SHA256"
SIGV4_TIME = "%Y%m%dT%H%M%SZ"
MAX_SKEW_SECONDS = 15 * 60  # AWS's allowance between a signed request's time and its own clock
MAX_PRESIGN_SECONDS = 7 * 24 * 3600
_KEY_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"  # AWS access key ids: AKIA + 16 base32 characters


def generate_credentials() -> LocalCredentials:
    """A random key pair in AWS's format: an AKIA... access key id and a 40-character secret."""
    key_id = "AKIA" + "".join(secrets.choice(_KEY_ALPHABET) for _ in range(16))
    return LocalCredentials(key_id, base64.b64encode(secrets.token_bytes(30)).decode())


def loopback_host(host: str) -> bool:
    """True for `localhost`, 127.0.0.0/8 or [::1], with or without a port."""
    host = host.strip().lower()
    if host.startswith("["):
        name, _, rest = host[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else rest
    elif host.count(":") == 1:
        name, _, port = host.partition(":")
    elif ":" in host:
        return False  # a bare IPv6 address is not a valid Host
    else:
        name, port = host, ""
    if port and not port.isdigit():
        return False
    return is_loopback_host(name)


# --- AWS's answers ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    """Why a request is refused: the code for JSON/CBOR services, for query services and for S3, and the words."""

    json_code: str
    query_code: str
    s3_code: str
    message: str
    status: int = 403
    json_status: int = 400
    s3_message: str = ""
    s3_extra: tuple[tuple[str, str], ...] = ()


_MISMATCH = ("The request signature we calculated does not match the signature you provided. Check your AWS Secret "
             "Access Key and signing method. Consult the service documentation for details.")


def unknown_key(key_id: str) -> Refusal:
    return Refusal("UnrecognizedClientException", "InvalidClientTokenId", "InvalidAccessKeyId",
                   "The security token included in the request is invalid.",
                   s3_message="The AWS Access Key Id you provided does not exist in our records.",
                   s3_extra=(("AWSAccessKeyId", key_id),))


def bad_signature(key_id: str) -> Refusal:
    return Refusal("InvalidSignatureException", "SignatureDoesNotMatch", "SignatureDoesNotMatch", _MISMATCH,
                   s3_message="The request signature we calculated does not match the signature you provided. "
                              "Check your key and signing method.",
                   s3_extra=(("AWSAccessKeyId", key_id),))


MISSING = Refusal("MissingAuthenticationTokenException", "MissingAuthenticationToken", "AccessDenied",
                  "Missing Authentication Token", s3_message="Access Denied")


def malformed(detail: str) -> Refusal:
    return Refusal("IncompleteSignatureException", "IncompleteSignature", "AuthorizationHeaderMalformed", detail,
                   status=400)


def skewed(signed: str, now: float) -> Refusal:
    stamp = time.strftime(SIGV4_TIME, time.gmtime(now))
    edge = time.strftime(SIGV4_TIME, time.gmtime(now - MAX_SKEW_SECONDS))
    return Refusal("InvalidSignatureException", "SignatureDoesNotMatch", "RequestTimeTooSkewed",
                   f"Signature expired: {signed} is now earlier than {edge} ({stamp} - 15 min.)",
                   s3_message="The difference between the request time and the current time is too large.")


EXPIRED = Refusal("InvalidSignatureException", "SignatureDoesNotMatch", "AccessDenied", "Signature expired",
                  s3_message="Request has expired")
PAYLOAD_MISMATCH = Refusal("InvalidSignatureException", "SignatureDoesNotMatch", "XAmzContentSHA256Mismatch", _MISMATCH,
                           status=400,
                           s3_message="The provided 'x-amz-content-sha256' header does not match what was computed.")


def denied(message: str) -> Refusal:
    return Refusal("AccessDeniedException", "AccessDenied", "AccessDenied", message)


def protocol_of(environ: dict[str, Any]) -> str:
    """"cbor", "json", "query" or "s3": how the caller's SDK reads an error."""
    if environ.get("HTTP_SMITHY_PROTOCOL", "").lower() == "rpc-v2-cbor":
        return "cbor"
    content_type = environ.get("CONTENT_TYPE", "")
    if environ.get("HTTP_X_AMZ_TARGET") or content_type.startswith("application/x-amz-json"):
        return "json"
    if content_type.startswith("application/x-www-form-urlencoded") and environ.get("REQUEST_METHOD") == "POST":
        return "query"
    return "s3"


def answer(refusal: Refusal, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
    """The refusal as AWS words it for the service the request is for."""
    request_id = str(uuid.uuid4())
    protocol = protocol_of(environ)
    status = refusal.status
    if protocol in ("json", "cbor"):
        status = refusal.json_status if refusal.status == 403 else refusal.status
        fields = {"__type": refusal.json_code, "message": refusal.message}
        if protocol == "json":
            body = json.dumps(fields).encode()
            headers = [("Content-Type", "application/x-amz-json-1.1")]
        else:
            body = _cbor_text_map(fields)
            headers = [("Content-Type", "application/cbor"), ("Smithy-Protocol", "rpc-v2-cbor")]
    elif protocol == "query":
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<ErrorResponse><Error><Type>Sender</Type>'
                f"<Code>{refusal.query_code}</Code><Message>{escape(refusal.message)}</Message></Error>"
                f"<RequestId>{request_id}</RequestId></ErrorResponse>").encode()
        headers = [("Content-Type", "text/xml")]
    else:
        extra = "".join(f"<{name}>{escape(value)}</{name}>" for name, value in refusal.s3_extra)
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{refusal.s3_code}</Code>'
                f"<Message>{escape(refusal.s3_message or refusal.message)}</Message>{extra}"
                f"<RequestId>{request_id}</RequestId><HostId>{request_id}</HostId></Error>").encode()
        headers = [("Content-Type", "application/xml")]
    start_response(f"{status} {_REASONS.get(status, 'Error')}",
                   [*headers, ("Content-Length", str(len(body))), ("x-amzn-RequestId", request_id)])
    return [body]


_REASONS = {400: "Bad Request", 403: "Forbidden"}


def _cbor_text_map(fields: dict[str, str]) -> bytes:
    """A CBOR map of text strings (RFC 8949 major types 5 and 3): all an rpc-v2-cbor error body needs."""

    def head(major: int, length: int) -> bytes:
        if length < 24:
            return bytes([major << 5 | length])
        for extra, size in ((24, 1), (25, 2), (26, 4)):
            if length < 256**size:
                return bytes([major << 5 | extra]) + length.to_bytes(size, "big")
        raise ValueError("too long")

    out = bytearray(head(5, len(fields)))
    for key, value in fields.items():
        for text in (key, value):
            data = text.encode()
            out += head(3, len(data)) + data
    return bytes(out)


# --- Signature Version 4 ----------------------------------------------------------------------------------------------


class _SignedHeadersOnly:
    """A botocore signer that canonicalizes exactly the headers the client said it signed, as received."""

    signed: HTTPHeaders

    def headers_to_sign(self, request: AWSRequest) -> HTTPHeaders:
        return self.signed


class _BodyHashed:
    """The payload hash of the body as received (botocore's own would first re-prepare the whole request)."""

    def payload(self, request: AWSRequest) -> str:
        return hashlib.sha256(request.data or b"").hexdigest()


class _HeaderSigner(_SignedHeadersOnly, _BodyHashed, SigV4Auth):  # type: ignore[misc]
    pass


class _S3HeaderSigner(_SignedHeadersOnly, S3SigV4Auth):  # type: ignore[misc]
    pass


class _QuerySigner(_SignedHeadersOnly, _BodyHashed, SigV4QueryAuth):  # type: ignore[misc]
    pass


class _S3QuerySigner(_SignedHeadersOnly, S3SigV4QueryAuth):  # type: ignore[misc]
    pass


@dataclass(frozen=True)
class _Signature:
    key_id: str
    date: str  # YYYYMMDD of the credential scope
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str
    timestamp: str  # YYYYMMDDTHHMMSSZ
    expires: int | None  # presigned URLs only


@dataclass(frozen=True)
class _SignatureV2:
    """S3's older HMAC-SHA1 signature: `AWS key:signature`, or a presigned URL's AWSAccessKeyId/Signature/Expires."""

    key_id: str
    signature: str
    date: str  # the Date header, or the URL's Expires (epoch seconds)
    presigned: bool


class _SignerV2(HmacV1Auth):  # type: ignore[misc]
    """botocore's S3 v2 signer with the request's own date (or expiry) instead of the clock's."""

    def __init__(self, credentials: Credentials, date: str) -> None:
        super().__init__(credentials)
        self._date = date

    def _get_date(self) -> str:
        return self._date


def _header_value(environ: dict[str, Any], name: str) -> str | None:
    key = name.upper().replace("-", "_")
    value = environ.get(key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else f"HTTP_{key}")
    return None if value is None else str(value)


def _scope(credential: str) -> tuple[str, str, str, str] | None:
    parts = credential.split("/")
    if len(parts) != 5 or parts[4] != "aws4_request":
        return None
    return parts[0], parts[1], parts[2], parts[3]


def _parse(environ: dict[str, Any], query: list[tuple[str, str]]) -> _Signature | _SignatureV2 | Refusal:
    """The request's signature, or why there is none to verify."""
    authorization = environ.get("HTTP_AUTHORIZATION", "")
    params = dict(query)
    s3 = protocol_of(environ) == "s3"
    if authorization:
        scheme, _, rest = authorization.strip().partition(" ")
        if scheme == "AWS" and s3 and ":" in rest:
            key_id, _, signature = rest.strip().rpartition(":")
            return _SignatureV2(key_id, signature, _header_value(environ, "date") or "", presigned=False)
        if scheme != ALGORITHM:
            return malformed("The authorization mechanism you have provided is not supported. Please use "
                             f"{ALGORITHM}.")
        fields = dict(part.strip().partition("=")[::2] for part in rest.split(","))
        missing = [name for name in ("Credential", "SignedHeaders", "Signature") if not fields.get(name)]
        if missing:
            return malformed(" ".join(f"Authorization header requires '{name}' parameter." for name in missing))
        timestamp = _header_value(environ, "x-amz-date") or _date_header(environ)
        if not timestamp:
            return malformed("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
        credential, signed, signature = fields["Credential"], fields["SignedHeaders"], fields["Signature"]
        expires = None
    elif "X-Amz-Signature" in params or "X-Amz-Credential" in params:
        missing = [name for name in ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires",
                                     "X-Amz-SignedHeaders", "X-Amz-Signature") if not params.get(name)]
        if missing:
            return malformed(f"Query-string authentication requires the {', '.join(missing)} parameter(s).")
        if params["X-Amz-Algorithm"] != ALGORITHM:
            return malformed(f"X-Amz-Algorithm only supports \"{ALGORITHM}\".")
        if not params["X-Amz-Expires"].isdigit() or not 1 <= int(params["X-Amz-Expires"]) <= MAX_PRESIGN_SECONDS:
            return malformed("X-Amz-Expires must be a whole number of seconds from 1 to 604800.")
        credential, signed, signature = params["X-Amz-Credential"], params["X-Amz-SignedHeaders"], \
            params["X-Amz-Signature"]
        timestamp, expires = params["X-Amz-Date"], int(params["X-Amz-Expires"])
    elif s3 and params.get("AWSAccessKeyId") and params.get("Signature") and params.get("Expires", "").isdigit():
        return _SignatureV2(params["AWSAccessKeyId"], params["Signature"], params["Expires"], presigned=True)
    elif "AWSAccessKeyId" in params or "Signature" in params:
        return malformed(f"The authorization mechanism you have provided is not supported. Please use {ALGORITHM}.")
    else:
        return MISSING
    scope = _scope(credential)
    if scope is None:
        return malformed(f"Credential should be scoped to a valid region and service: '{credential}'.")
    headers = tuple(name.strip().lower() for name in signed.split(";") if name.strip())
    if "host" not in headers:
        return malformed("'Host' must be a signed header.")
    return _Signature(scope[0], scope[1], scope[2], scope[3], headers, signature.lower(), timestamp, expires)


def _date_header(environ: dict[str, Any]) -> str | None:
    raw = _header_value(environ, "date")
    if not raw:
        return None
    try:
        moment = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return moment.astimezone(datetime.timezone.utc).strftime(SIGV4_TIME)


def _epoch(timestamp: str) -> float | None:
    """Seconds since the epoch of a YYYYMMDDTHHMMSSZ time (sliced: strptime costs more than the whole check)."""
    if len(timestamp) != 16 or timestamp[8] != "T" or timestamp[15] != "Z" or not (
            timestamp[:8] + timestamp[9:15]).isdigit():
        return None
    try:
        return float(calendar.timegm(datetime.datetime(
            int(timestamp[:4]), int(timestamp[4:6]), int(timestamp[6:8]), int(timestamp[9:11]), int(timestamp[11:13]),
            int(timestamp[13:15])).timetuple()))
    except ValueError:
        return None


def read_body(environ: dict[str, Any]) -> bytes:
    """The whole request body, put back so that the app behind reads it too (chunked uploads de-chunked)."""
    stream = environ.get("wsgi.input")
    length = environ.get("CONTENT_LENGTH") or ""
    if stream is None:
        body = b""
    elif length.isdigit():
        body = stream.read(int(length)) if int(length) else b""
    elif environ.get("wsgi.input_terminated"):
        body = stream.read()
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        environ.pop("wsgi.input_terminated", None)
        environ["CONTENT_LENGTH"] = str(len(body))
    else:
        body = b""
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def _raw_target(environ: dict[str, Any]) -> tuple[str, str]:
    """The path and query exactly as the client sent them (the signature covers their encoding)."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if not raw:
        return environ.get("PATH_INFO", "/"), environ.get("QUERY_STRING", "")
    if not raw.startswith("/"):  # absolute form, as sent through a proxy
        parts = urlsplit(raw)
        return parts.path or "/", parts.query
    path, _, query = raw.partition("?")
    return path, query


def verify(environ: dict[str, Any], credentials: LocalCredentials, now: float | None = None) -> Refusal | None:
    """None when the request is signed with `credentials`, else AWS's refusal. Reads (and puts back) the body."""
    path, query = _raw_target(environ)
    pairs = parse_qsl(query, keep_blank_values=True)
    parsed = _parse(environ, pairs)
    if isinstance(parsed, Refusal):
        return parsed
    if not hmac.compare_digest(parsed.key_id.encode(), credentials.access_key_id.encode()):
        return unknown_key(parsed.key_id)
    now = time.time() if now is None else now
    if isinstance(parsed, _SignatureV2):
        return _verify_v2(environ, parsed, path, query, credentials, now)
    moment = _epoch(parsed.timestamp)
    if moment is None:
        return malformed(f"Invalid date: {parsed.timestamp!r} (expected {SIGV4_TIME}).")
    if parsed.expires is not None:
        if now > moment + parsed.expires:
            return EXPIRED
    elif abs(now - moment) > MAX_SKEW_SECONDS:
        return skewed(parsed.timestamp, now)
    body = read_body(environ)
    s3 = parsed.service == "s3"
    headers = HTTPHeaders()
    for name in parsed.signed_headers:
        value = _header_value(environ, name)
        if value is None:
            return bad_signature(parsed.key_id)
        headers[name] = value
    content_sha = headers.get("x-amz-content-sha256")
    if content_sha and len(content_sha) == 64 and not hmac.compare_digest(
            content_sha.lower(), hashlib.sha256(body).hexdigest()):
        return PAYLOAD_MISMATCH
    signer_class: Any
    if parsed.expires is None:
        signer_class = _S3HeaderSigner if s3 else _HeaderSigner
        canonical_query = query
    else:
        signer_class = _S3QuerySigner if s3 else _QuerySigner
        canonical_query = "&".join(pair for pair in query.split("&") if not pair.startswith("X-Amz-Signature="))
    host = environ.get("HTTP_HOST", "")
    url = f"http://{host}{path}" + (f"?{canonical_query}" if canonical_query else "")
    request = AWSRequest(method=environ.get("REQUEST_METHOD", "GET"), url=url, headers=dict(headers.items()),
                         data=body)
    request.context["timestamp"] = parsed.timestamp
    signer = signer_class(Credentials(credentials.access_key_id, credentials.secret_access_key), parsed.service,
                          parsed.region)
    signer.signed = headers
    if parsed.date != parsed.timestamp[:8]:
        return bad_signature(parsed.key_id)
    string_to_sign = signer.string_to_sign(request, signer.canonical_request(request))
    expected = signer.signature(string_to_sign, request)
    if not hmac.compare_digest(expected.encode(), parsed.signature.encode()):
        return bad_signature(parsed.key_id)
    return None


def _verify_v2(environ: dict[str, Any], parsed: _SignatureV2, path: str, query: str, credentials: LocalCredentials,
               now: float) -> Refusal | None:
    if parsed.presigned:
        if now > int(parsed.date):
            return EXPIRED
    else:
        try:
            moment = email.utils.parsedate_to_datetime(parsed.date).timestamp()
        except (TypeError, ValueError):
            return malformed("AWS authentication requires a valid Date or x-amz-date header")
        if abs(now - moment) > MAX_SKEW_SECONDS:
            return skewed(time.strftime(SIGV4_TIME, time.gmtime(moment)), now)
    read_body(environ)
    headers = HTTPHeaders()
    for name in ("content-md5", "content-type"):
        value = _header_value(environ, name)
        if value is not None:
            headers[name] = value
    for key, value in environ.items():
        if key.startswith("HTTP_X_AMZ_"):
            headers[key[5:].lower().replace("_", "-")] = str(value)
    if parsed.presigned:  # botocore moves these headers into a presigned URL's query
        for key, value in parse_qsl(query, keep_blank_values=True):
            lower = key.lower()
            if lower.startswith("x-amz-") or lower in ("content-md5", "content-type"):
                headers[lower] = value
    signer = _SignerV2(Credentials(credentials.access_key_id, credentials.secret_access_key), parsed.date)
    url = urlsplit(f"http://{environ.get('HTTP_HOST', '')}{path}" + (f"?{query}" if query else ""))
    canonical = signer.canonical_string(environ.get("REQUEST_METHOD", "GET"), url, headers)  # type: ignore[arg-type]
    expected = signer.sign_string(canonical)
    if not hmac.compare_digest(expected.encode(), parsed.signature.encode()):
        return bad_signature(parsed.key_id)
    return None


# --- the gate ---------------------------------------------------------------------------------------------------------


class Gate:
    """The WSGI app in front of `app`: host, origin and signature checks, and no CORS headers out."""

    def __init__(self, app: WSGIApp, credentials: LocalCredentials, *, any_host: bool = False,
                 clock: Callable[[], float] = time.time) -> None:
        self.app = app
        self.credentials = credentials
        self.any_host = any_host  # a non-loopback bind (--allow-remote): clients name the machine as they reach it
        self._clock = clock

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        refusal = self.refusal(environ)
        if refusal is not None:
            return answer(refusal, environ, start_response)
        if environ.get("REQUEST_METHOD") == "OPTIONS" and (
                environ.get("HTTP_ORIGIN") or environ.get("HTTP_ACCESS_CONTROL_REQUEST_METHOD")):
            return _preflight_refused(start_response)

        def without_cors(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            kept = [(name, value) for name, value in headers if not name.lower().startswith("access-control-")]
            return start_response(status, kept, exc_info) if exc_info is not None else start_response(status, kept)

        return self.app(environ, without_cors)

    def refusal(self, environ: dict[str, Any]) -> Refusal | None:
        host = environ.get("HTTP_HOST", "")
        if not self.any_host and not loopback_host(host):
            return denied(f"This local SageMaker answers only requests addressed to a loopback host (127.0.0.1, "
                          f"[::1] or localhost), not {host!r}.")
        if environ.get("REQUEST_METHOD") == "OPTIONS" and (
                environ.get("HTTP_ORIGIN") or environ.get("HTTP_ACCESS_CONTROL_REQUEST_METHOD")):
            return None  # answered without a body by __call__
        if environ.get("HTTP_ORIGIN"):
            return denied("This local SageMaker does not answer requests made by web pages (cross-origin).")
        return verify(environ, self.credentials, self._clock())


def _preflight_refused(start_response: StartResponse) -> list[bytes]:
    body = b"Cross-origin requests are not allowed.\n"
    start_response("403 Forbidden", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
