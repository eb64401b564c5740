"""The local SageMaker's page per job: `GET /~jobs/<name>?token=T` (HTML) and `GET /~jobs/<name>/data?token=T` (JSON).

The page shows the job's status and secondary status transitions, its hosts' log lines as they come and one chart
per metric, a line per host; it polls its JSON every second until the job has ended. It is self-contained
(handlers/data/curves.html: inline script and styles, a Content-Security-Policy that allows nothing but this origin).

Who gets in: a page request must name a loopback Host (DNS rebinding), come from no other origin, and carry the
token of handlers/local_job_links.py (derived from the server's secret key); anything else gets 403 and nothing about
the job. No CORS headers are ever sent, so no other site's script can read an answer. The data is read through the
server's own API with its own key pair, by the same code the command line uses (metric_series, log_cursor).

The pages share the endpoint with the local S3: their path (handlers/local_job_links.py's PAGE_PREFIX) begins with a
segment no bucket name can be, and a request whose Host names a bucket (virtual-hosted style, where the whole path is
a key) always goes to S3.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, unquote

from handlers.client import SageMakerClient
from handlers.curves_html import json_for_script, render
from handlers.errors import AwsError, InputError, NotFound
from handlers.local_job_links import PAGE_PREFIX, data_url, page_token
from handlers.log_cursor import read_page
from handlers.metric_series import MetricReader, host_names
from local_sagemaker.access import loopback_host

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

_PATH = re.compile("^" + re.escape(PAGE_PREFIX) + r"(?P<name>[^/]+?)(?P<data>/data)?/?$")
_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
POLL_MS = 1000
LOG_LINES = 2000
_HEADERS = [
    ("Cache-Control", "no-store"),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),  # the token never leaves in a Referer
    ("Cross-Origin-Resource-Policy", "same-origin"),
]


class JobPages:
    """WSGI middleware: answers the pages' paths itself, hands everything else to `app`."""

    def __init__(self, app: WSGIApp, client: Callable[[], SageMakerClient], secret_access_key: str,
                 any_host: bool = False) -> None:
        self.app = app
        self.client = client  # the server's own client of itself
        self.token = page_token(secret_access_key)
        self.any_host = any_host

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = str(environ.get("PATH_INFO") or "")
        if not path.startswith(PAGE_PREFIX) or _virtual_hosted(environ):
            return self.app(environ, start_response)
        status, content_type, body = self._answer(environ, path)
        headers = [("Content-Type", content_type), ("Content-Length", str(len(body))), *_HEADERS]
        start_response(status, headers)
        return [body] if environ.get("REQUEST_METHOD") != "HEAD" else [b""]

    def _answer(self, environ: dict[str, Any], path: str) -> tuple[str, str, bytes]:
        if not self.any_host and not loopback_host(str(environ.get("HTTP_HOST") or "")):
            return _text("403 Forbidden", "This page is served to loopback addresses only.")
        origin = environ.get("HTTP_ORIGIN")
        if origin is not None and origin.split("://", 1)[-1] != environ.get("HTTP_HOST"):
            return _text("403 Forbidden", "Requests from other origins are refused.")
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return _text("405 Method Not Allowed", "Only GET.")
        query = parse_qs(str(environ.get("QUERY_STRING") or ""))
        # bytes: compare_digest refuses a str with non-ASCII characters (a TypeError, once an HTTP 500)
        given = (query.get("token") or [""])[0].encode("utf-8", "surrogatepass")
        if not hmac.compare_digest(given, self.token.encode()):
            return _text("403 Forbidden", "This page needs the token of its link: `sagemaker-plugin status JOB_NAME` "
                         "prints the link.")
        match = _PATH.match(path)
        name = unquote(match.group("name")) if match else ""
        if not _NAME.match(name):
            return _text("404 Not Found", f"No such page: {PAGE_PREFIX}<training job name>.")
        client = self.client()
        wants_data = match is not None and bool(match.group("data"))
        try:
            description = client.describe_training_job(name)
            state = self.data(client, description, (query.get("logs") or [""])[0] if wants_data else None)
        except NotFound:
            return _text("404 Not Found", f"No training job named {name!r} on this local SageMaker.")
        except InputError as error:
            return _text("400 Bad Request", str(error))
        except AwsError as error:
            return _text("503 Service Unavailable", f"The job cannot be read now: {error}")
        if wants_data:
            return "200 OK", "application/json", json_for_script(state).encode()  # safe even if sniffed as HTML
        page = render(state, f"{name} — {description.get('TrainingJobStatus', '')}",
                      live_data_url=data_url(name, self.token), interval_ms=POLL_MS)
        return "200 OK", "text/html; charset=utf-8", page.encode()

    @staticmethod
    def data(client: SageMakerClient, description: dict[str, Any], logs_token: str | None) -> dict[str, Any]:
        """The job, its metrics and (with a token, "" for the start) its next log lines."""
        name = str(description.get("TrainingJobName", ""))
        transitions = [{"status": t.get("Status"), "message": t.get("StatusMessage", ""),
                        "start": _iso(t.get("StartTime")), "end": _iso(t.get("EndTime"))}
                       for t in description.get("SecondaryStatusTransitions") or []]
        job = {"name": name, "status": description.get("TrainingJobStatus"),
               "secondary_status": description.get("SecondaryStatus"),
               "failure_reason": description.get("FailureReason", ""), "transitions": transitions}
        metrics = MetricReader(client).read(description, source="auto").as_dict()
        if logs_token is None:
            return {"job": job, "metrics": metrics, "logs": {"token": "", "lines": []}}
        page = read_page(client, name, logs_token, LOG_LINES, hosts=len(host_names(description)))
        lines = [{"t": line.timestamp, "host": line.host, "message": line.message} for line in page.lines]
        return {"job": job, "metrics": metrics, "logs": {"token": page.token, "lines": lines}}


@dataclass(frozen=True)
class _HostOnly:
    """What moto's S3 reads of a request to tell path-style from virtual-hosted style: its Host header."""

    headers: dict[str, str]
    url: str


def _virtual_hosted(environ: dict[str, Any]) -> bool:
    """Whether moto's S3 takes the Host for a bucket's name (`bucket.host:port`): the path is then that bucket's key.
    Never for a loopback address or `localhost`; possible for a name the server is reached by with --allow-remote."""
    host = str(environ.get("HTTP_HOST") or "")
    if loopback_host(host):
        return False
    from moto.s3.responses import S3Response

    return bool(S3Response.subdomain_based_buckets(_HostOnly({"host": host}, f"http://{host}/")))


def _iso(moment: Any) -> str | None:
    return moment.isoformat() if isinstance(moment, datetime) else None


def _text(status: str, message: str) -> tuple[str, str, bytes]:
    return status, "text/plain; charset=utf-8", (message + "\n").encode()
