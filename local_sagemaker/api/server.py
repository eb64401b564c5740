"""LocalSageMaker: moto's server on loopback, wrapped so SageMaker training jobs behave as on AWS.

The WSGI wrapper around moto's app does, per request: count it by operation (from `X-Amz-Target`), throttle it over
the configured rate, then, holding one lock, advance the jobs' clock and hand the request to moto with this server's
engine in context (see patch.py). One lock because moto's backends are not thread-safe and the jobs write to S3 and
CloudWatch Logs while other requests may read them.

moto keeps its backends per process, not per server: two LocalSageMaker running at once in one process share jobs,
buckets and logs (each engine keeps the wake-ups and instance counts of the jobs it created). `start()` therefore
resets moto's state by default (`reset=False` keeps it); run one at a time, as tests do.

Only its own clients get in (access.py): loopback Host headers, no web pages, and every request signed with the key
pair it makes when it starts (`credentials`), which it registers for this process's clients
(handlers/local_credentials.py) and hands to the jobs (`Engine.client_env`).
Each job has a page for people, `/~jobs/<name>?token=...` (job_page.py), answered before anything reaches moto.
moto's own paths (`/moto-api...`, `/favicon.ico`, `/latest/meta-data/`) are never routed to: on this endpoint they are
S3's paths of buckets named so (moto-api, favicon.ico, latest), which must hold objects like any other bucket.

With a data folder (`data_dir`), it keeps its local S3 there (persistence.py) and its jobs, tuning jobs, logs and
metric series (local_sagemaker/store/), loaded back at its next start; several servers may share one folder.
"""

from __future__ import annotations

import contextlib
import json
import shlex
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import BaseWSGIServer, make_server

from handlers import local_credentials
from handlers.client import ClientSettings, SageMakerClient
from handlers.local import LOCAL_ACCOUNT_ID, PLACEHOLDER_ROLE_ARN, LocalSettings
from handlers.local_credentials import LocalCredentials
from handlers.local_job_links import page_url
from handlers.ratelimit import RateLimits
from handlers.retry import RetrySettings
from local_sagemaker.access import Gate, generate_credentials, loopback_host
from local_sagemaker.api import events, iam, patch
from local_sagemaker.api.engine import Engine
from local_sagemaker.pages.job_page import JobPages

StartResponse = Callable[..., Any]

__all__ = [
    "LOCAL_ACCOUNT_ID", "PLACEHOLDER_ROLE_ARN", "REMOTE_WARNING", "LocalSageMaker", "export_lines", "main", "serve",
]


class TokenBucket:
    """`rate` requests per second on average, bursts of max(1, rate)."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate)
        self._tokens = self.capacity
        self._clock = clock
        self._last = clock()

    def take(self) -> bool:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


def operation_of(target: str) -> tuple[str, str]:
    """("sagemaker", "CreateTrainingJob") from `SageMaker.CreateTrainingJob`; ("logs", ...) from `Logs_20140328.X`."""
    prefix, _, operation = target.partition(".")
    return prefix.split("_", 1)[0].lower(), operation


class _Counters:
    """Requests received and throttled per (service, operation), and the rate limits; thread-safe."""

    def __init__(self, rates: dict[str, float], clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._buckets = {operation: TokenBucket(rate, clock) for operation, rate in rates.items()}
        self.received: dict[tuple[str, str], int] = {}
        self.throttled: dict[tuple[str, str], int] = {}

    def admit(self, service: str, operation: str) -> bool:
        """Counts the request; False when its operation is over its rate."""
        key = (service, operation)
        with self._lock:
            self.received[key] = self.received.get(key, 0) + 1
            bucket = self._buckets.get(operation)
            if bucket is None or bucket.take():
                return True
            self.throttled[key] = self.throttled.get(key, 0) + 1
            return False

    def snapshot(self, table: dict[tuple[str, str], int], service: str) -> dict[str, int]:
        with self._lock:
            return {operation: count for (svc, operation), count in table.items() if svc == service}

    def clear(self) -> None:
        with self._lock:
            self.received.clear()
            self.throttled.clear()


class _RequestHandler(MotoRequestHandler):
    """moto's handler without the access log on stderr (a benchmark makes thousands of requests)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class _Dispatcher(DomainDispatcherApplication):
    """moto's app without its path-chosen backends (its administration API, instance metadata): every request goes
    to the service its signature names, so a bucket called `moto-api` or `latest` is S3's like any other. The server
    resets moto in-process (`_App.reset`), never over HTTP."""

    def get_backend_for_host(self, host: str | None) -> Any:
        if host in _PATH_CHOSEN:
            return None  # moto then infers the service from the request, as for any other path
        return super().get_backend_for_host(host)


_PATH_CHOSEN = ("moto_api", "instance_metadata")


class _App:
    """The WSGI app served: counting, throttling and the jobs' clock around moto's own app."""

    def __init__(self, engine: Engine, counters: _Counters) -> None:
        self.engine = engine
        self.counters = counters
        self.moto = _Dispatcher(create_backend_app)
        self.lock = engine.lock  # the jobs' runners take it too

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if target:
            service, operation = operation_of(target)
            if not self.counters.admit(service, operation):
                return _throttled(start_response)
        if target == "AmazonSQS.ReceiveMessage":  # a long poll waits without the lock (api/events.py)
            return events.long_poll(self._serve, environ, start_response, self.engine.events)
        return self._serve(environ, start_response)

    def _serve(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        with self.lock:
            self.engine.run_due()
            with patch.serving(self.engine):
                result = self.moto(environ, start_response)
                try:
                    body = list(result)
                finally:
                    close = getattr(result, "close", None)
                    if close is not None:
                        close()
        return body

    def reset(self) -> None:
        """moto's state and the jobs' forgotten, as moto's own /moto-api/reset would (that path is closed)."""
        from moto.moto_api._internal.models import moto_api_backend

        with self.lock:
            moto_api_backend.reset()
            self.engine.clear()
            iam.seed()


def _throttled(start_response: StartResponse) -> list[bytes]:
    body = json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"}).encode()
    start_response(
        "400 Bad Request",
        [
            ("Content-Type", "application/x-amz-json-1.1"),
            ("Content-Length", str(len(body))),
            ("x-amzn-RequestId", str(uuid.uuid4())),
        ],
    )
    return [body]


class LocalSageMaker:
    """A local SageMaker (with S3 and CloudWatch Logs) on `host:port`; port 0 picks a free one.

    `host` must be a loopback address unless `allow_remote` (anyone who can reach it with its key pair can run code
    as this user). `credentials` are made at random unless given (a restart that keeps its clients). `clock` (seconds,
    like time.time) drives the simulated jobs' timelines and the request-rate buckets: tests pass a fake one so that
    nothing they check depends on how fast a loaded machine answers. `data_dir`: the folder that keeps its local S3,
    jobs, logs and metrics across restarts (None: it forgets everything when it stops); `start()` raises
    store.StoreError when the folder's records cannot be used, store.FolderInUse while the folder is being reset.
    """

    def __init__(
        self,
        settings: LocalSettings | None = None,
        port: int = 0,
        host: str = "127.0.0.1",
        *,
        reset: bool = True,
        credentials: LocalCredentials | None = None,
        allow_remote: bool = False,
        clock: Callable[[], float] | None = None,
        data_dir: Path | None = None,
    ) -> None:
        if not allow_remote and not loopback_host(host):
            raise ValueError(f"the local SageMaker serves on a loopback address unless remote access is allowed "
                             f"explicitly, not on {host!r}")
        self.settings = settings or LocalSettings()
        self.host = host
        self.port = port
        self.reset = reset
        self.allow_remote = allow_remote
        self.credentials = credentials or generate_credentials()
        self.data_dir = data_dir
        self.engine = Engine(self.settings) if clock is None else Engine(self.settings, clock)
        self._counters = _Counters(dict(self.settings.requests_per_second), clock or time.monotonic)
        self._app: _App | None = None
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._url: str | None = None
        self._client: SageMakerClient | None = None
        self._client_lock = threading.Lock()
        self._kept = contextlib.ExitStack()  # the data folder's S3 mirror and records, closed after the jobs

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("LocalSageMaker is not started")
        return self._url

    def start(self) -> str:
        """Serves in a background thread; returns the endpoint URL once it answers."""
        if self._server is not None:
            return self.url
        patch.install()
        app = self._app = _App(self.engine, self._counters)
        gate = Gate(app, self.credentials, any_host=self.allow_remote)
        # the pages for people answer first (their own token: a browser cannot sign), everything else meets the gate
        pages = JobPages(gate, self.client, self.credentials.secret_access_key, any_host=self.allow_remote)
        server = make_server(self.host, self.port, pages, threaded=True, request_handler=_RequestHandler)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="local-sagemaker", daemon=True
        )
        self._thread.start()
        host = self.host if ":" not in self.host else f"[{self.host}]"
        self._url = f"http://{host}:{server.server_port}"
        self.engine.client_env = {**self.engine.client_env, "AWS_ENDPOINT_URL": self._url}
        try:
            if self.reset:
                app.reset()
            else:
                iam.seed()
            if self.data_dir is not None:
                self._keep(self.data_dir, self._url)
            self.engine.client_env = self.client_env()
            local_credentials.register(self._url, self.credentials)
        except BaseException:
            self.stop()
            raise
        return self._url

    def _keep(self, data_dir: Path, url: str) -> None:
        """The local S3 and the records loaded from `data_dir` (once reset: a reset empties moto) and kept there."""
        from local_sagemaker.persistence import mirrored
        from local_sagemaker.store import Records

        records = Records(data_dir, self.engine)
        self._kept.callback(records.close)
        self._kept.enter_context(mirrored(data_dir))  # closed first: its last sync while the records close after
        records.open(url)
        self.engine.records = records

    def client_env(self, region: str = "us-east-1") -> dict[str, str]:
        """The environment that points boto3 at this server with its key pair (for jobs, and other processes)."""
        return {"AWS_ENDPOINT_URL": self.url, **self.credentials.env(), "AWS_DEFAULT_REGION": region,
                "AWS_REGION": region}

    def client(self) -> SageMakerClient:
        """This server's own client of itself (its job pages read through it): its URL and key pair, unpaced, a few
        quick retries; closed when the server stops."""
        with self._client_lock:
            if self._client is None:
                self._client = SageMakerClient(ClientSettings(
                    endpoint_url=self.url, local_credentials=True, rate_limits=RateLimits(0, 0),
                    retry=RetrySettings(attempts=3, backoff_seconds=0.05, deadline_seconds=10)))
            return self._client

    def page_url(self, job_name: str) -> str:
        """The job's page for people (status, logs, metric curves), with its token."""
        return page_url(self.url, job_name, self.credentials.secret_access_key)

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if self._url is not None:
            local_credentials.unregister(self._url, self.credentials)
        with self._client_lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=10)
        self.engine.shutdown()  # every job's processes die with the server
        self.engine.records = None
        self._kept.close()  # then its running jobs are Failed in the records, and the folder let go

    def call_counts(self, service: str = "sagemaker") -> dict[str, int]:
        """Requests received per operation of `service` ("sagemaker", "logs", ...), throttled ones included."""
        return self._counters.snapshot(self._counters.received, service)

    def throttled_counts(self, service: str = "sagemaker") -> dict[str, int]:
        """Requests answered with ThrottlingException, per operation."""
        return self._counters.snapshot(self._counters.throttled, service)

    def reset_counts(self) -> None:
        self._counters.clear()

    def __enter__(self) -> LocalSageMaker:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()


def serve(
    settings: LocalSettings | None = None,
    port: int = 0,
    host: str = "127.0.0.1",
    ready: Callable[[LocalSageMaker], None] | None = None,
    *,
    allow_remote: bool = False,
    data_dir: Path | None = None,
) -> None:
    """Runs a LocalSageMaker until SIGINT or SIGTERM, then stops it cleanly; `ready(server)` is called once it answers
    (its `url` and `credentials` are then known)."""
    stopping = threading.Event()
    with _signals_set(stopping), LocalSageMaker(settings, port=port, host=host, allow_remote=allow_remote,
                                                data_dir=data_dir) as server:
        if ready is not None:
            ready(server)
        while not stopping.wait(0.5):
            pass


def export_lines(server: LocalSageMaker) -> list[str]:
    """Shell lines that point another shell's boto3 (and the plugin) at `server`: `eval` them there."""
    variables = {"AWS_ENDPOINT_URL": server.url, **server.credentials.env(),
                 "SAGEMAKER_PLUGIN_ENDPOINT_URL": server.url}
    return [f"export {name}={shlex.quote(value)}" for name, value in variables.items()]


REMOTE_WARNING = (
    "WARNING: serving on {host}, not on loopback: anyone who can reach this port and holds the key pair printed here "
    "can run any command on this machine as this user (training jobs run the commands their requests name), and "
    "requests travel unencrypted over plain HTTP, where the network can read and replay them. Use it only on a "
    "network you trust."
)


@contextlib.contextmanager
def _signals_set(event: threading.Event) -> Iterator[None]:
    """SIGINT and SIGTERM set `event` while inside (only the main thread may install handlers)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        event.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def main(argv: list[str] | None = None) -> int:
    """`python -m local_sagemaker [--port N] [--host H] [--time-scale X]`: serve until interrupted."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="local_sagemaker", description="A local SageMaker, S3 and CloudWatch Logs.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--allow-remote", action="store_true", help="allow a --host that is not a loopback address")
    parser.add_argument("--time-scale", type=float, default=1.0)
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="keep the local S3, jobs, logs and metrics in this folder across restarts")
    args = parser.parse_args(argv)
    if not args.allow_remote and not loopback_host(args.host):
        parser.error(f"--host {args.host} is not a loopback address: add --allow-remote if you mean it")

    def ready(server: LocalSageMaker) -> None:
        if args.allow_remote and not loopback_host(args.host):
            print(REMOTE_WARNING.format(host=args.host), file=sys.stderr, flush=True)
        print(server.url, flush=True)
        for line in export_lines(server):
            print(line, flush=True)

    serve(LocalSettings(time_scale=args.time_scale), args.port, args.host, ready=ready, allow_remote=args.allow_remote,
          data_dir=args.data_dir)
    return 0
