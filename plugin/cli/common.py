"""What the job commands share: signals, `run`'s create, and finding the job a command names.

Below every other command module (app -> jobs -> tuning, metrics -> common), so that none imports another back.
"""

from __future__ import annotations

import argparse
import contextlib
import shlex
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from types import FrameType
from typing import Any

from handlers.errors import InputError, Problem
from handlers.job_kinds import TRAINING
from handlers.polling import poll_until
from handlers.service_model import validate_request
from plugin.config import Config
from plugin.embedded import data_dir, kept_path, sagemaker_endpoint
from plugin.jobs.attempts import FLAG as ATTEMPT_FLAG
from plugin.jobs.attempts import NameTaken, next_attempt
from plugin.jobs.pipeline import Rendered
from plugin.jobs.resource import PAGE_WHILE_RUNNING, page_link
from plugin.jobs.training_job import TrainingJobPlugin
from plugin.meta import ResourceMeta
from plugin.registry import registry
from plugin.task import BUILTIN_TASK, Task


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM during a command: stop the job, then exit 130."""


def model_notes(model_uri: str, config: Config, embedded: bool, created: float | None,
                wait_seconds: float = 3.0) -> list[str]:
    """Where a local job's model is kept on disk, and how to fetch it from a running local SageMaker.

    `created`: when the job was created (epoch seconds; None: unknown). The file is named only if it was written
    since: a served local SageMaker may keep its data in another folder than this config's, where a file of the same
    bucket and key is then an earlier job's model, not this one's."""
    bucket, _, key = model_uri.removeprefix("s3://").partition("/")
    if not model_uri.startswith("s3://") or not key:
        return []

    def this_jobs() -> Path | None:
        path = kept_path(config, bucket, key)  # asked each time: the local S3's index names the file once it is kept
        try:  # a second's slack for file systems that keep whole seconds; a job's model is written well after
            fresh = created is not None and path.is_file() and path.stat().st_mtime >= created - 1.0
        except OSError:
            return None
        return path if fresh else None

    # A local SageMaker served from this data folder keeps the model there within a second or so.
    path = poll_until(this_jobs, bool, 0.2, wait_seconds if not embedded and data_dir(config).is_dir() else 0)
    notes = []
    if path:
        notes.append(f"model file {path}")
    if embedded:
        notes.append("  (kept on disk: every later local SageMaker, e.g. `sagemaker-plugin local serve`, serves it "
                     "again at the s3:// URI above)")
    else:
        notes.append(f"  fetch it: boto3.client(\"s3\", endpoint_url=\"{config.endpoint_url()}\")"
                     f".download_file(\"{bucket}\", \"{key}\", \"model.tar.gz\")")
    return notes


def with_region(config: Config, args: argparse.Namespace) -> Config:
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


def attempt_for_run(plugin: TrainingJobPlugin, task: Task, rendered: Rendered, args: argparse.Namespace,
                    say: Callable[[str], None]) -> Rendered:
    """The request `run` creates: with --new-attempt, that of the next attempt whose job name is free (or this
    task's own job), said when it is not the task's own attempt."""
    if not args.new_attempt:
        return rendered
    attempt, found = next_attempt(plugin, task, rendered)
    first = task.execution.retry_attempt if task.execution is not None else attempt
    if attempt != first:
        taken = f"attempt {first} holds" if attempt == first + 1 else f"attempts {first} to {attempt - 1} hold"
        say(f"{ATTEMPT_FLAG}: running as execution.retry_attempt {attempt} ({taken} other versions of this task)")
    return found


def run_command_line(args: argparse.Namespace) -> str:
    """`run`'s command line as given, but for the flags that change only what it shows."""
    words = ["sagemaker-plugin", "run", args.task_file]
    for flag, value in (("--config", args.config), ("--region", args.region), ("--backend", args.backend)):
        if value:
            words += [flag, value]
    return shlex.join(words)


def create_for_run(plugin: TrainingJobPlugin, task: Task, rendered: Rendered, config: Config,
                   args: argparse.Namespace) -> tuple[ResourceMeta, str]:
    """`run`'s create, and the lines that say where the job is (and that it was adopted, when it was; on a local
    SageMaker of the command's own, where its page is while the command runs)."""
    try:
        meta = plugin.create_rendered(rendered)
    except NameTaken as taken:
        raise taken.for_run(task, run_command_line(args)) from None
    where = config.endpoint_url() or f"AWS {config.region}"
    adopted = " (adopted: this task's job already existed)" if meta.adopted else ""
    lines = [f"{plugin.kind.noun} {meta.job_name} on {where}{adopted}"]
    if meta.endpoint_url and plugin.kind == TRAINING and config.local.embedded:
        lines.append(f"{PAGE_WHILE_RUNNING}: {page_link(meta.job_name, meta.endpoint_url).uri}")
    return meta, "\n".join(lines)


def meta_after_interrupt(meta: ResourceMeta | None, rendered: Rendered, config: Config) -> ResourceMeta:
    """The job to stop on Ctrl-C; interrupted during the create, the one it may have made all the same."""
    if meta is not None:
        return meta
    return ResourceMeta(job_name=rendered.job_name, region=rendered.region, created_at=time.time(),
                        endpoint_url=config.endpoint_url())


def check_job_name(job_name: str) -> None:
    """A name SageMaker would refuse is bad input (exit 2), checked against the service model before any call."""
    problems = validate_request("DescribeTrainingJob", {"TrainingJobName": job_name}, explain=True)
    if problems:  # as `render` reports a task's job_name
        raise InputError([Problem("JOB_NAME", problem.message) for problem in problems])


def meta_for(config: Config, job_name: str) -> ResourceMeta:
    return ResourceMeta(job_name=job_name, region=config.region, created_at=0.0, endpoint_url=config.endpoint_url())


def where_jobs_are(config: Config) -> str:
    """Where a command looked for a job, as a person can look again."""
    if config.backend == "local" and config.local.embedded:
        return (f"the data folder {data_dir(config)} of a local SageMaker of this command's own; a job of a running "
                "`sagemaker-plugin local serve` is reached with the `export ...` lines it printed")
    return config.endpoint_url() or f"AWS {config.region}"


def no_such_job(job_name: str, config: Config) -> InputError:
    return InputError(Problem("JOB_NAME", f"no training job named {job_name!r} in {config.region} "
                              f"({where_jobs_are(config)})"))


@contextlib.contextmanager
def job_command(args: argparse.Namespace, config: Config) -> Iterator[tuple[Config, TrainingJobPlugin, ResourceMeta]]:
    """What every command on one named job starts with: the name checked, the region applied, a SageMaker to ask.

    With the local backend and none named, a local SageMaker of the command's own, on the data folder that keeps the
    jobs of every earlier one (those of an ended `run` among them)."""
    check_job_name(args.job_name)
    with sagemaker_endpoint(with_region(config, args)) as config:
        plugin: TrainingJobPlugin = registry.get(BUILTIN_TASK, config)
        yield config, plugin, meta_for(config, args.job_name)
