"""Command-line commands that talk to SageMaker: run, status, stop, logs, local serve (SPEC 7)."""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime
from types import FrameType
from typing import Any, TextIO

from handlers.errors import InputError, NotFound, Problem
from handlers.logs import LogTailer
from handlers.status import Phase, phase_of
from plugin.cli_metrics import metrics_after_run, show_after_run
from plugin.config import Config
from plugin.meta import ResourceMeta
from plugin.render import check
from plugin.resource import Resource
from plugin.training_job import TrainingJobPlugin

EXIT_OK, EXIT_JOB_FAILED, EXIT_INTERRUPTED = 0, 1, 130
STOP_WAIT_SECONDS = 300.0
CREATE_GRACE_SECONDS = 5.0  # interrupted during the create: how long to look for a job it may have made


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM during a command: stop the job, then exit 130."""


def add_commands(commands: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    p = commands.add_parser("run", help="create a training job and follow it to the end")
    common(p)
    p.add_argument("task_file", metavar="TASK_FILE")
    p.add_argument("--backend", choices=("local", "aws"), help="where to run (default: from config)")
    p.add_argument("--no-logs", action="store_true", help="do not show the hosts' CloudWatch logs")
    p.add_argument("--json", action="store_true", help="progress on stderr; stdout's last line is one JSON object")
    p.add_argument("--poll", type=float, default=None, metavar="SECONDS", help="seconds between status polls")
    p.set_defaults(handler=cmd_run)

    p = commands.add_parser("status", help="show a training job's phase, status history and outputs")
    common(p)
    p.add_argument("job_name", metavar="JOB_NAME")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_status)

    p = commands.add_parser("stop", help="stop a training job (marking it aborted)")
    common(p)
    p.add_argument("job_name", metavar="JOB_NAME")
    p.set_defaults(handler=cmd_stop)

    p = commands.add_parser("logs", help="print a training job's logs, every host merged in time order")
    common(p)
    p.add_argument("job_name", metavar="JOB_NAME")
    p.add_argument("--follow", "-f", action="store_true", help="keep following until the job ends")
    p.set_defaults(handler=cmd_logs)

    local = commands.add_parser("local", help="the local SageMaker")
    local_commands = local.add_subparsers(dest="local_command", required=True, metavar="COMMAND")
    p = local_commands.add_parser("serve", help="serve a local SageMaker on 127.0.0.1 until interrupted")
    common(p)
    p.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    p.set_defaults(handler=cmd_serve)


# --- the local SageMaker, when the backend needs one ------------------------------------------------------------------

def local_settings(config: Config) -> Any:
    from local_sagemaker import FailureRule, LocalSettings

    local = config.local
    return LocalSettings(
        timeline=dict(local.timeline),
        time_scale=local.time_scale,
        failures=tuple(FailureRule(f.name_pattern, f.at, f.reason) for f in local.failures),
        requests_per_second=dict(local.requests_per_second),
        instances=dict(local.instances),
    )


@contextlib.contextmanager
def sagemaker_endpoint(config: Config) -> Iterator[Config]:
    """The config, with a running local SageMaker's endpoint when the local backend has none configured."""
    if config.backend != "local" or config.endpoint_url():
        yield config
        return
    from local_sagemaker import LocalSageMaker

    with LocalSageMaker(local_settings(config)) as server:
        yield replace(config, local=replace(config.local, endpoint_url=server.url))


def _require_endpoint(config: Config) -> None:
    if config.backend == "local" and not config.endpoint_url():
        raise InputError(Problem("local.endpoint_url", "this command needs a running local SageMaker: start one with "
                                 "`sagemaker-plugin local serve` and set local.endpoint_url or "
                                 "$SAGEMAKER_PLUGIN_ENDPOINT_URL"))


def _with_region(config: Config, args: argparse.Namespace) -> Config:
    changes: dict[str, Any] = {}
    if getattr(args, "region", None):
        changes["region"] = args.region
    if getattr(args, "backend", None):
        changes["backend"] = args.backend
    return replace(config, **changes) if changes else config


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def _signals_handled_by(handler: Callable[[int, FrameType | None], None]) -> Iterator[None]:
    """SIGINT and SIGTERM go to `handler` inside the block (Python handles signals in the main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def signals_interrupt() -> contextlib.AbstractContextManager[None]:
    """SIGINT and SIGTERM raise Interrupted in the main thread, so that `run` can stop its job before exiting."""

    def handler(signum: int, frame: FrameType | None) -> None:
        # One interrupt is enough: a second one arriving before the stop begins must not cut it short.
        for sig in STOP_SIGNALS:
            signal.signal(sig, _ignore)
        raise Interrupted(signal.Signals(signum).name)

    return _signals_handled_by(handler)


def _ignore(signum: int, frame: FrameType | None) -> None:
    """A Python handler that does nothing (not SIG_IGN: a signal already pending then makes CPython print an error)."""


def signals_ignored() -> contextlib.AbstractContextManager[None]:
    """While stopping a job after an interrupt, a second Ctrl-C must not leave it running."""
    return _signals_handled_by(_ignore)


# --- run ----------------------------------------------------------------------------------------------------------

class Progress:
    """Human progress: plain lines, plus a live elapsed clock when writing to a terminal."""

    def __init__(self, out: TextIO, live: bool) -> None:
        self.out = out
        self.live = live
        self.start = time.monotonic()
        self._status = ""
        self._drawn = False

    def line(self, text: str) -> None:
        self._clear()
        print(text, file=self.out, flush=True)
        self._draw()

    def status(self, text: str) -> None:
        self._status = text
        self._draw()

    def close(self) -> None:
        self._clear()

    def elapsed(self) -> str:
        seconds = int(time.monotonic() - self.start)
        return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"

    def _draw(self) -> None:
        if self.live and self._status:
            self.out.write(f"\r\x1b[2K[{self.elapsed()}] {self._status}")
            self.out.flush()
            self._drawn = True

    def _clear(self) -> None:
        if self._drawn:
            self.out.write("\r\x1b[2K")
            self.out.flush()
            self._drawn = False


def cmd_run(args: argparse.Namespace, config: Config) -> int:
    config = _with_region(config, args)
    _, rendered = check(args.task_file, config)  # every read and render problem at once, before anything starts
    out = sys.stderr if args.json else sys.stdout
    progress = Progress(out, live=out.isatty())
    with sagemaker_endpoint(config) as config, signals_interrupt():
        plugin = TrainingJobPlugin(config)
        where = config.endpoint_url() or f"AWS {config.region}"
        meta: ResourceMeta | None = None
        try:
            meta = plugin.create_rendered(rendered)
            adopted = " (adopted: this task's job already existed)" if meta.adopted else ""
            progress.line(f"training job {meta.job_name} on {where}{adopted}")
            resource = follow(plugin, meta, progress, logs=not args.no_logs, poll=_poll_seconds(args, config))
            metrics = metrics_after_run(plugin.client(meta.region, meta.endpoint_url), meta.job_name)
        except Interrupted as interrupt:
            progress.close()
            if meta is None:  # interrupted during the create: it may have reached SageMaker all the same
                meta = ResourceMeta(job_name=rendered.job_name, region=rendered.region, created_at=time.time(),
                                    endpoint_url=config.endpoint_url())
            print(f"{interrupt}: stopping training job {meta.job_name} ...", file=sys.stderr, flush=True)
            with signals_ignored():
                resource = stop_and_wait(plugin, meta, grace_seconds=None if meta.job_arn else CREATE_GRACE_SECONDS)
            report(resource, meta, progress, as_json=args.json, clock=_clock_note(config))
            return EXIT_INTERRUPTED
    report(resource, meta, progress, as_json=args.json, clock=_clock_note(config))
    # the table always; the charts only for a person watching a terminal who asked for the logs
    show_after_run(metrics, progress.out, charts=not args.no_logs and progress.out.isatty())
    return EXIT_OK if resource.phase == Phase.SUCCEEDED else EXIT_JOB_FAILED


def _poll_seconds(args: argparse.Namespace, config: Config) -> float:
    if args.poll is not None:
        return max(0.05, float(args.poll))
    if config.backend == "local":
        return max(0.1, min(1.0, 1.0 / config.local.time_scale))
    return 5.0


def follow(plugin: TrainingJobPlugin, meta: ResourceMeta, progress: Progress, logs: bool, poll: float) -> Resource:
    """Poll until the job ends: phase changes, secondary status transitions with their times, and the logs."""
    client = plugin.client(meta.region, meta.endpoint_url)
    tailer = LogTailer(client, meta.job_name) if logs else None
    seen_phase: Phase | None = None
    seen_transitions = 0
    while True:
        resource, description = plugin.get_with_description(meta, fresh=True)
        # Status transitions and log lines, merged in time order so the story reads as it happened.
        events: list[tuple[float, str]] = []
        if description is not None:
            transitions = description.get("SecondaryStatusTransitions") or []
            events += [(_epoch(t.get("StartTime")), _transition_line(t)) for t in transitions[seen_transitions:]]
            seen_transitions = len(transitions)
            if tailer is not None:
                tailer.hosts = int((description.get("ResourceConfig") or {}).get("InstanceCount") or 1)
                lines = tailer.drain() if resource.phase.is_terminal else tailer.poll()
                events += [(line.timestamp / 1000, f"[{line.host}] {line.message}") for line in lines]
        for _, text in sorted(events, key=lambda event: event[0]):
            progress.line(text)
        if resource.phase != seen_phase:  # after what explains it
            seen_phase = resource.phase
            progress.line(f"phase {resource.phase.name}" + (f": {resource.message}" if resource.message else ""))
        if resource.phase.is_terminal:
            progress.close()
            return resource
        progress.status(f"{resource.phase.name} {resource.message}".strip())
        time.sleep(poll)


def _epoch(moment: Any) -> float:
    return float(moment.timestamp()) if isinstance(moment, datetime) else 0.0


def _transition_line(transition: dict[str, Any]) -> str:
    start = transition.get("StartTime")
    stamp = start.strftime("%H:%M:%S") if isinstance(start, datetime) else ""
    end = transition.get("EndTime")
    both = isinstance(end, datetime) and isinstance(start, datetime)
    took = f" ({(end - start).total_seconds():.1f} s)" if both else ""  # type: ignore[operator]
    return f"  {stamp} {transition.get('Status', '')}{took}: {transition.get('StatusMessage', '')}"


def stop_and_wait(plugin: TrainingJobPlugin, meta: ResourceMeta, timeout: float = STOP_WAIT_SECONDS,
                  grace_seconds: float | None = None) -> Resource:
    """Stop the job and wait (bounded) until SageMaker says it stopped: nothing is left running or billing."""
    plugin.delete(meta, grace_seconds=grace_seconds)
    deadline = time.monotonic() + timeout
    while True:
        resource, _ = plugin.get_with_description(meta, fresh=True)
        if resource.phase.is_terminal or time.monotonic() > deadline:
            return resource
        time.sleep(0.5)


def _clock_note(config: Config) -> str:
    """The local SageMaker's times are on its own timeline, `time_scale` times faster than the wall clock."""
    scale = config.local.time_scale
    return f" (local SageMaker time, {scale:g}x the wall clock)" if config.backend == "local" and scale != 1 else ""


def report(resource: Resource, meta: ResourceMeta, progress: Progress, as_json: bool, clock: str = "") -> None:
    out = progress.out
    print(f"{meta.job_name}: {resource.phase.name}" + (f" ({resource.message})" if resource.message else ""),
          file=out)
    outputs = resource.outputs
    if outputs:
        training, billable = outputs.get("training_seconds"), outputs.get("billable_seconds")
        if training is not None:
            savings = ""
            if billable is not None and training:
                saved = 1 - billable / training
                savings = f", spot savings {saved:.0%}" if saved > 0 else ""
            print(f"training seconds {training}, billable seconds {billable}{savings}{clock}", file=out)
        for name, value in sorted((outputs.get("metrics") or {}).items()):
            print(f"metric {name} = {value}", file=out)
        if outputs.get("model"):
            print(f"model {outputs['model']}", file=out)
    for link in resource.log_links:
        print(f"{link.name}: {link.uri}", file=out)
    out.flush()
    if as_json:
        print(json.dumps({"phase": resource.phase.name, "message": resource.message, "job_name": meta.job_name,
                          "outputs": dict(outputs), "log_links": [{"name": x.name, "uri": x.uri}
                                                                  for x in resource.log_links]}), flush=True)


# --- status, stop, logs, local serve ----------------------------------------------------------------------------------

def _meta_for(config: Config, job_name: str) -> ResourceMeta:
    return ResourceMeta(job_name=job_name, region=config.region, created_at=0.0, endpoint_url=config.endpoint_url())


def _no_such_job(job_name: str, config: Config) -> InputError:
    where = config.endpoint_url() or f"AWS {config.region}"
    return InputError(Problem("JOB_NAME", f"no training job named {job_name!r} in {config.region} ({where})"))


def _describe(plugin: TrainingJobPlugin, job_name: str, config: Config, wait: bool = False) -> dict[str, Any]:
    """DescribeTrainingJob; with `wait`, a job about to be created is waited for (the not-found grace period)."""
    deadline = time.monotonic() + (config.tracking.not_found_grace_seconds if wait else 0)
    while True:
        try:
            return plugin.client().describe_training_job(job_name)
        except NotFound:
            if time.monotonic() >= deadline:
                raise _no_such_job(job_name, config) from None
            time.sleep(1.0)


def cmd_status(args: argparse.Namespace, config: Config) -> int:
    config = _with_region(config, args)
    _require_endpoint(config)
    plugin = TrainingJobPlugin(config)
    meta = _meta_for(config, args.job_name)
    resource, description = plugin.get_with_description(meta, fresh=True)
    if description is None:
        raise _no_such_job(args.job_name, config)
    if args.json:
        body = resource.as_dict()
        body.update(job_name=args.job_name, status=description.get("TrainingJobStatus"),
                    secondary_status=description.get("SecondaryStatus"))
        print(json.dumps(body, default=str))
        return EXIT_OK
    print(f"{args.job_name}: {resource.phase.name}" + (f" ({resource.message})" if resource.message else ""))
    print(f"status {description.get('TrainingJobStatus')} / {description.get('SecondaryStatus')}")
    for transition in description.get("SecondaryStatusTransitions") or []:
        print(_transition_line(transition))
    for name, value in sorted((resource.outputs.get("metrics") or {}).items()):
        print(f"metric {name} = {value}")
    if resource.outputs.get("model"):
        print(f"model {resource.outputs['model']}")
    for link in resource.log_links:
        print(f"{link.name}: {link.uri}")
    return EXIT_OK


def cmd_stop(args: argparse.Namespace, config: Config) -> int:
    config = _with_region(config, args)
    _require_endpoint(config)
    plugin = TrainingJobPlugin(config)
    meta = _meta_for(config, args.job_name)
    before = _describe(plugin, args.job_name, config)
    plugin.delete(meta)
    status = phase_of(before).phase
    if before.get("TrainingJobStatus") == "InProgress":
        print(f"{args.job_name}: stopping")
    else:
        print(f"{args.job_name}: already {before.get('TrainingJobStatus')} ({status.name}); nothing to stop")
    return EXIT_OK


def cmd_logs(args: argparse.Namespace, config: Config) -> int:
    config = _with_region(config, args)
    _require_endpoint(config)
    plugin = TrainingJobPlugin(config)
    client = plugin.client()
    description = _describe(plugin, args.job_name, config, wait=args.follow)
    hosts = int((description.get("ResourceConfig") or {}).get("InstanceCount") or 1)
    tailer = LogTailer(client, args.job_name, hosts=hosts)
    with signals_interrupt():
        try:
            while True:
                for line in tailer.poll():
                    print(f"[{line.host}] {line.message}", flush=True)
                if not args.follow:
                    return EXIT_OK
                if phase_of(client.describe_training_job(args.job_name)).phase.is_terminal:
                    for line in tailer.drain():
                        print(f"[{line.host}] {line.message}", flush=True)
                    return EXIT_OK
                time.sleep(1.0)
        except Interrupted:
            return EXIT_OK


def cmd_serve(args: argparse.Namespace, config: Config) -> int:
    from local_sagemaker import serve

    if not 0 <= args.port <= 65535:
        raise InputError(Problem("--port", f"must be a port number 0-65535, not {args.port}"))

    def ready(url: str) -> None:
        print(f"local SageMaker serving at {url}", flush=True)
        print(f"  export SAGEMAKER_PLUGIN_ENDPOINT_URL={url}", flush=True)

    try:
        serve(local_settings(config), port=args.port, host="127.0.0.1", ready=ready)
    except OSError as error:
        raise InputError(Problem("--port", f"cannot serve on 127.0.0.1:{args.port}: {error.strerror or error}")) \
            from None
    return EXIT_OK
