"""Command-line commands that talk to SageMaker: run, status, stop, logs, list, local serve."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any, TextIO

from handlers.errors import InputError, Problem
from handlers.hosts import host_count
from handlers.job_kinds import TUNING
from handlers.logs import LogTailer
from handlers.polling import poll_until
from handlers.status import Phase, phase_of
from plugin import embedded
from plugin.cli import job_list
from plugin.cli.common import (
    Interrupted,
    attempt_for_run,
    create_for_run,
    job_command,
    meta_after_interrupt,
    model_notes,
    no_such_job,
    signals_ignored,
    signals_interrupt,
    with_region,
)
from plugin.cli.exit_codes import EXIT_INTERRUPTED, EXIT_JOB_FAILED, EXIT_OK
from plugin.cli.metrics import metrics_after_run, show_after_run
from plugin.cli.tuning import run_tuning, tuning_status
from plugin.config import Config
from plugin.embedded import sagemaker_endpoint
from plugin.jobs.attempts import FLAG as ATTEMPT_FLAG
from plugin.jobs.create_queue import describe_or_none
from plugin.jobs.requests import check
from plugin.jobs.resource import Resource, unmatched_metric_definitions
from plugin.jobs.training_job import TrainingJobPlugin
from plugin.meta import ResourceMeta
from plugin.registry import registry
from plugin.task import BUILTIN_TASK

STOP_WAIT_SECONDS = 300.0
CREATE_GRACE_SECONDS = 5.0  # interrupted during the create: how long to look for a job it may have made


def add_commands(commands: Any, common: Callable[[argparse.ArgumentParser], None],
                 command_parser: Callable[..., argparse.ArgumentParser]) -> None:
    job_name_help = "the training job's name (TrainingJobName)"
    p = command_parser(commands, "run", "create a training job and follow it to the end")
    common(p)
    p.add_argument("task_file", metavar="TASK_FILE", help="the task, YAML or JSON (docs/task-file.md)")
    p.add_argument("--backend", choices=("local", "aws"), help="where to run (default: from config)")
    p.add_argument("--no-logs", action="store_true", help="do not show the hosts' CloudWatch logs")
    p.add_argument("--json", action="store_true", help="progress on stderr; stdout's last line is one JSON object")
    p.add_argument("--poll", type=float, default=None, metavar="SECONDS", help="seconds between status polls")
    p.add_argument(ATTEMPT_FLAG, action="store_true",
                   help="run an edited task again: when its job name (derived from `execution`) is taken by another "
                   "version of the task, take the next free execution.retry_attempt (this task's own job is "
                   "adopted as always); a name given by job_name is changed by hand")
    p.set_defaults(handler=cmd_run)

    p = command_parser(commands, "status", "show a training job's phase, status history and outputs")
    common(p)
    p.add_argument("job_name", metavar="JOB_NAME", help=job_name_help)
    p.add_argument("--json", action="store_true", help="one JSON object: phase, message, outputs, log links, status")
    p.set_defaults(handler=cmd_status)

    p = command_parser(commands, "stop", "stop a training job (marking it aborted)")
    common(p)
    p.add_argument("job_name", metavar="JOB_NAME", help=job_name_help)
    p.set_defaults(handler=cmd_stop)

    p = command_parser(commands, "logs", "print a training job's logs, every host merged in time order")
    common(p)
    p.add_argument("job_name", metavar="JOB_NAME", help=job_name_help)
    p.add_argument("--follow", "-f", action="store_true", help="keep following until the job ends")
    p.set_defaults(handler=cmd_logs)

    local = command_parser(commands, "local", "the local SageMaker")
    local_commands = local.add_subparsers(dest="local_command", required=True, metavar="COMMAND")
    p = command_parser(local_commands, "serve", "serve a local SageMaker on 127.0.0.1 until interrupted")
    common(p)
    p.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    p.add_argument("--host", default="127.0.0.1", help="address to serve on (default: 127.0.0.1, loopback only)")
    p.add_argument("--allow-remote", action="store_true",
                   help="allow a --host other machines can reach: whoever reaches it with its keys runs code here")
    p.set_defaults(handler=cmd_serve)
    p = command_parser(local_commands, "reset", "delete what the local SageMaker keeps in its data folder (its S3, "
                       "jobs, logs and metrics), after asking")
    common(p)
    p.add_argument("--yes", "-y", action="store_true", help="do not ask (needed without a terminal)")
    p.set_defaults(handler=cmd_reset)


# --- the local SageMaker, when the backend needs one (plugin/embedded.py starts it) -------------------------------


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
    config = with_region(config, args)
    task, rendered = check(args.task_file, config)  # every read and render problem at once, before anything starts
    for line in rendered.warning_lines():
        print(line, file=sys.stderr)
    if rendered.kind == TUNING:  # a tuning job: its own table of trials
        return run_tuning(args, config, task, rendered, _poll_seconds(args, config))
    out = sys.stderr if args.json else sys.stdout
    progress = Progress(out, live=out.isatty())
    embedded = config.backend == "local" and not config.endpoint_url()
    with sagemaker_endpoint(config) as config:
        plugin: TrainingJobPlugin = registry.get(task.task_type, config)
        rendered = attempt_for_run(plugin, task, rendered, args, progress.line)  # before the signals: nothing made
        with signals_interrupt():
            meta: ResourceMeta | None = None
            try:
                meta, line = create_for_run(plugin, task, rendered, config, args)
                progress.line(line)
                resource, description = follow(plugin, meta, progress, logs=not args.no_logs,
                                               poll=_poll_seconds(args, config))
                metrics = metrics_after_run(plugin.client(meta.region, meta.endpoint_url).following(),
                                            meta.job_name)
            except Interrupted as interrupt:
                progress.close()
                meta = meta_after_interrupt(meta, rendered, config)
                print(f"{interrupt}: stopping training job {meta.job_name} ...", file=sys.stderr, flush=True)
                with signals_ignored():
                    resource = stop_and_wait(plugin, meta,
                                             grace_seconds=None if meta.job_arn else CREATE_GRACE_SECONDS)
                report(resource, meta, progress, as_json=args.json, clock=_clock_note(config))
                return EXIT_INTERRUPTED
    model = str(resource.outputs.get("model") or "")
    created = _epoch((description or {}).get("CreationTime")) or None
    notes = model_notes(model, config, embedded, created) if model and config.backend == "local" else []
    report(resource, meta, progress, as_json=args.json, clock=_clock_note(config), model_notes=notes)
    # the table always; the charts only for a person watching a terminal who asked for the logs
    show_after_run(metrics, progress.out, charts=not args.no_logs and progress.out.isatty())
    if resource.phase == Phase.SUCCEEDED and description is not None:
        warn_unmatched_metrics(description)
    return EXIT_OK if resource.phase == Phase.SUCCEEDED else EXIT_JOB_FAILED


def warn_unmatched_metrics(description: dict[str, Any]) -> None:
    """A metric definition whose regex never matched a log line is dropped silently by SageMaker: say so."""
    job = description.get("TrainingJobName", "JOB_NAME")
    for name, pattern in unmatched_metric_definitions(description):
        print(f"warning: metric {name!r} never matched a log line (regex {pattern!r}), so the job has no value for "
              f"it: check the regex against the logs (`sagemaker-plugin logs {job}`)", file=sys.stderr)


def _poll_seconds(args: argparse.Namespace, config: Config) -> float:
    if args.poll is not None:
        return max(0.05, float(args.poll))
    if config.backend == "local":
        return max(0.1, min(1.0, 1.0 / config.local.time_scale))
    return 5.0


def follow(plugin: TrainingJobPlugin, meta: ResourceMeta, progress: Progress, logs: bool, poll: float
           ) -> tuple[Resource, dict[str, Any] | None]:
    """Poll until the job ends: phase changes, secondary status transitions with their times, and the logs.

    Returns the final resource and the description it came from. Its reads ride out a storm until the retry deadline
    (the job exists: only the watching could fail)."""
    client = plugin.client(meta.region, meta.endpoint_url).following()
    tailer = LogTailer(client, meta.job_name) if logs else None
    seen_phase: Phase | None = None
    seen_transitions = 0
    held: list[tuple[float, str]] = []  # transitions after the log lines the tailer holds back, held as long

    def look() -> tuple[Resource, dict[str, Any] | None]:
        nonlocal seen_phase, seen_transitions, held
        resource, description = plugin.get_with_description(meta, fresh=True, following=True)
        # Status transitions and log lines, merged in time order so the story reads as it happened.
        events, held = held, []
        if description is not None:
            transitions = description.get("SecondaryStatusTransitions") or []
            events += [(_epoch(t.get("StartTime")), _transition_line(t)) for t in transitions[seen_transitions:]]
            seen_transitions = len(transitions)
            if tailer is not None:
                tailer.hosts = host_count(description)
                lines = tailer.drain() if resource.phase.is_terminal else tailer.poll()
                events += [(line.timestamp / 1000, f"[{line.host}] {line.message}") for line in lines]
                cut = None if resource.phase.is_terminal else tailer.held_after
                events, held = ([e for e in events if cut is None or e[0] <= cut],
                                [e for e in events if cut is not None and e[0] > cut])
        for _, text in sorted(events, key=lambda event: event[0]):
            progress.line(text)
        if resource.phase != seen_phase:  # after what explains it
            seen_phase = resource.phase
            progress.line(f"phase {resource.phase.name}" + (f": {resource.message}" if resource.message else ""))
        if resource.phase.is_terminal:
            progress.close()
        else:
            progress.status(f"{resource.phase.name} {resource.message}".strip())
        return resource, description

    return poll_until(look, lambda answer: answer[0].phase.is_terminal, poll)


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
    return poll_until(lambda: plugin.get_with_description(meta, fresh=True, following=True)[0],
                      lambda resource: resource.phase.is_terminal, 0.5, timeout)


def _clock_note(config: Config) -> str:
    """The local SageMaker's times are on its own timeline, `time_scale` times faster than the wall clock."""
    scale = config.local.time_scale
    return f" (local SageMaker time, {scale:g}x the wall clock)" if config.backend == "local" and scale != 1 else ""


def report(resource: Resource, meta: ResourceMeta, progress: Progress, as_json: bool, clock: str = "",
           model_notes: Sequence[str] = ()) -> None:
    """The end of `run`: the outcome, and links that still lead somewhere once the command has exited."""
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
            for note in model_notes:
                print(note, file=out)
    for link in resource.log_links:
        print(f"{link.name}: {link.uri}", file=out)
    out.flush()
    if as_json:
        print(json.dumps({"phase": resource.phase.name, "message": resource.message, "job_name": meta.job_name,
                          "outputs": dict(outputs), "log_links": [{"name": x.name, "uri": x.uri}
                                                                  for x in resource.log_links]}), flush=True)


# --- status, stop, logs, local serve ----------------------------------------------------------------------------------


def _describe(plugin: TrainingJobPlugin, job_name: str, config: Config, wait: bool = False) -> dict[str, Any]:
    """DescribeTrainingJob; with `wait`, a job about to be created is waited for (the not-found grace period)."""
    client = plugin.client()
    description = poll_until(lambda: describe_or_none(client, job_name), lambda found: found is not None, 1.0,
                             config.tracking.not_found_grace_seconds if wait else 0)
    if description is None:
        raise no_such_job(job_name, config)
    return description


def cmd_status(args: argparse.Namespace, config: Config) -> int:
    with job_command(args, config) as (config, plugin, meta):
        return _status(args, config, plugin, meta)


def _status(args: argparse.Namespace, config: Config, plugin: TrainingJobPlugin, meta: ResourceMeta) -> int:
    resource, description = plugin.get_with_description(meta, fresh=True)
    if description is None:
        shown = tuning_status(args, config, meta)  # the name may be a tuning job's
        if shown is not None:
            return shown
        raise no_such_job(args.job_name, config)
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
    with job_command(args, config) as (config, plugin, meta):
        return _stop(args, config, plugin, meta)


def _stop(args: argparse.Namespace, config: Config, plugin: TrainingJobPlugin, meta: ResourceMeta) -> int:
    before = _describe(plugin, args.job_name, config)
    plugin.delete(meta)
    status = phase_of(before).phase
    if before.get("TrainingJobStatus") == "InProgress":
        print(f"{args.job_name}: stopping")
    else:
        print(f"{args.job_name}: already {before.get('TrainingJobStatus')} ({status.name}); nothing to stop")
    return EXIT_OK


def cmd_logs(args: argparse.Namespace, config: Config) -> int:
    with job_command(args, config) as (config, plugin, _):
        return _logs(args, config, plugin)


def _logs(args: argparse.Namespace, config: Config, plugin: TrainingJobPlugin) -> int:
    client = plugin.client().following() if args.follow else plugin.client()  # no --follow: a person waits
    description = _describe(plugin, args.job_name, config, wait=args.follow)
    tailer = LogTailer(client, args.job_name, hosts=host_count(description))
    with signals_interrupt():
        try:
            def look() -> bool:
                """Print the new lines; True once there will be no more (without --follow: all there is now)."""
                ended = not args.follow or phase_of(client.describe_training_job(args.job_name)).phase.is_terminal
                for line in tailer.drain() if ended else tailer.poll():
                    print(f"[{line.host}] {line.message}", flush=True)
                return ended

            poll_until(look, bool, 1.0)
            return EXIT_OK
        except Interrupted:
            print("interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED


def cmd_reset(args: argparse.Namespace, config: Config) -> int:
    folder = embedded.data_dir(config)
    kept = embedded.kept_entries(config)
    if not kept:
        print(f"{folder}: nothing kept, nothing to delete")
        return EXIT_OK
    embedded.reset(config, check_only=True)  # refused before asking while a local SageMaker uses the folder
    if not args.yes:
        if not sys.stdin.isatty():
            raise InputError(Problem("--yes", "not a terminal, so nobody can answer: pass --yes to delete what "
                                     f"{folder} keeps"))
        try:
            answer = input(f"delete the local SageMaker's S3, jobs, logs and metrics kept in {folder}? [y/N] ")
        except EOFError:  # Ctrl-D: no
            answer = ""
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing deleted")
            return EXIT_OK
    removed = embedded.reset(config)
    print(f"{folder}: deleted {', '.join(path.name for path in removed) or 'nothing'}")
    return EXIT_OK


def cmd_serve(args: argparse.Namespace, config: Config) -> int:
    if not 0 <= args.port <= 65535:
        raise InputError(Problem("--port", f"must be a port number 0-65535, not {args.port}"))
    remote = not embedded.loopback(args.host)
    if remote and not args.allow_remote:
        raise InputError(Problem("--host", f"{args.host} is not a loopback address: other machines could reach the "
                                 "local SageMaker, which runs the commands its requests name; add --allow-remote if "
                                 "you mean it"))

    def ready(server: Any) -> None:
        if remote:
            print(embedded.remote_warning(args.host), file=sys.stderr, flush=True)
        print(f"local SageMaker serving at {server.url}", flush=True)
        print("# it accepts only requests signed with its own key pair: to use it from another shell, run these "
              "lines there", flush=True)
        for line in embedded.export_lines(server):
            print(line, flush=True)

    try:
        embedded.serve(config, port=args.port, host=args.host, allow_remote=args.allow_remote, ready=ready)
    except OSError as error:
        raise InputError(Problem("--port", f"cannot serve on {args.host}:{args.port}: {error.strerror or error}")) \
            from None
    return EXIT_OK


# --- list -----------------------------------------------------------------------------------------------------------

class _ModelHelp(argparse.RawDescriptionHelpFormatter):
    """Help whose `{statuses}` are read from botocore's model only when help is shown (loading it costs ~0.2 s)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = super()._get_help_string(action)
        if text is None or "{statuses}" not in text:
            return text
        return text.replace("{statuses}", f"{', '.join(job_list.TRAINING_JOBS.statuses())}; with --tuning "
                                          f"{', '.join(job_list.TUNING_JOBS.statuses())}")


def add_list_command(commands: Any, common: Callable[[argparse.ArgumentParser], None],
                     command_parser: Callable[..., argparse.ArgumentParser]) -> None:
    p = command_parser(commands, "list", "list the recent jobs of the backend, newest first",
                       "List the recent training jobs (or tuning jobs) of the backend, newest first: name, status, "
                       "created, duration.")
    p.formatter_class = _ModelHelp
    common(p)
    p.add_argument("--backend", choices=("local", "aws"), help="whose jobs (default: from config)")
    p.add_argument("--status", metavar="S", help="only jobs in this status (ListTrainingJobs' StatusEquals: "
                   "{statuses})")
    p.add_argument("--name-contains", metavar="T", help="only jobs whose name contains T")
    p.add_argument("--since", metavar="WHEN", help="only jobs created after WHEN: a duration back from now "
                   "(30m, 2h, 7d, 1w) or a date or time (2024-05-01, 2024-05-01T12:00Z)")
    p.add_argument("--max", type=int, default=job_list.DEFAULT_MAX, metavar="N", help=f"at most N jobs (default: "
                   f"{job_list.DEFAULT_MAX})")
    p.add_argument("--tuning", action="store_true", help="hyperparameter tuning jobs instead of training jobs")
    p.add_argument("--json", action="store_true", help="one JSON object per line: name, kind, status, created, "
                   "ended, duration_seconds, arn")
    p.set_defaults(handler=cmd_list)


def cmd_list(args: argparse.Namespace, config: Config) -> int:
    query = job_list.Query(tuning=args.tuning, status=args.status, name_contains=args.name_contains,
                           since=args.since, max_items=args.max)
    now = datetime.now(timezone.utc)
    job_list.request(query, now)  # bad flags first: exit 2 even with no SageMaker to ask
    with sagemaker_endpoint(with_region(config, args)) as config:
        rows, more = job_list.jobs(registry.get(BUILTIN_TASK, config).client(), query, now)
    noun = query.listing.kind.noun
    if args.json:
        for row in rows:
            print(json.dumps(row.as_dict(noun, now)))
        return EXIT_OK
    if not rows:
        print(f"no {noun}s" + (" match" if args.status or args.name_contains or args.since else ""))
        return EXIT_OK
    for line in job_list.table(rows, now):
        print(line)
    if more:
        print(f"(the newest {len(rows)}; --max N shows more)")
    return EXIT_OK
