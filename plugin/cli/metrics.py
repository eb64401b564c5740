"""`sagemaker-plugin metrics JOB_NAME [--json] [--plot FILE]`, and the metrics `run` shows when a job ends."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from handlers.client import SageMakerClient
from handlers.errors import AwsError, InputError, NotFound, Problem
from handlers.metric_series import SOURCES, JobMetrics, MetricReader
from plugin.cli.charts import PICTURE_SUFFIXES, table, terminal_charts, write_picture
from plugin.cli.common import job_command, where_jobs_are
from plugin.cli.exit_codes import EXIT_OK
from plugin.config import Config


def add_commands(commands: Any, common: Callable[[argparse.ArgumentParser], None],
                 command_parser: Callable[..., argparse.ArgumentParser]) -> None:
    p = command_parser(commands, "metrics", "a training job's metrics: final values, curves in the terminal, "
                       "a picture (--plot FILE.png or .html)")
    common(p)
    p.add_argument("job_name", metavar="JOB_NAME", help="the training job's name (TrainingJobName)")
    p.add_argument("--json", action="store_true", help="print the series as one JSON object instead")
    p.add_argument("--plot", metavar="FILE", help="also write a picture: FILE.png, or FILE.html (self-contained)")
    p.add_argument("--source", choices=SOURCES, default="auto",
                   help="where the points come from: CloudWatch metrics (one point per second at best), the log "
                   "lines (every value), or auto (default: the richer of the two for a job of a few minutes, "
                   "else CloudWatch)")
    p.set_defaults(handler=cmd_metrics)


def cmd_metrics(args: argparse.Namespace, config: Config) -> int:
    if args.plot:
        write_picture_check(args.plot)
    with job_command(args, config) as (config, plugin, _):
        metrics = read_metrics(plugin.client(), args.job_name, config, source=args.source)
    if args.json:
        print(json.dumps(metrics.as_dict()))
    else:
        show(metrics, sys.stdout, charts=True)
    if args.plot:
        where = write_picture(metrics, args.plot)
        print(f"picture: {where}", file=sys.stderr if args.json else sys.stdout)
    return EXIT_OK


def read_metrics(client: SageMakerClient, job_name: str, config: Config | None = None,
                 source: str = "auto") -> JobMetrics:
    try:
        description = client.describe_training_job(job_name)
    except NotFound:
        where = f" in {config.region} ({where_jobs_are(config)})" if config is not None else ""
        raise InputError(Problem("JOB_NAME", f"no training job named {job_name!r}{where}")) from None
    return MetricReader(client).read(description, source=source)


def show(metrics: JobMetrics, out: TextIO, charts: bool) -> None:
    """The table, then (with `charts`) the terminal charts, sized to the terminal, coloured on a terminal."""
    print(table(metrics), file=out)
    if charts:
        width = max(40, min(100, shutil.get_terminal_size((80, 24)).columns - 12))
        drawn = terminal_charts(metrics, width=width, color=_is_tty(out))
        if drawn:
            print(drawn, file=out)
    out.flush()


def metrics_after_run(client: SageMakerClient, job_name: str) -> JobMetrics | str:
    """The metrics `run` shows once its job has ended, or why there are none: it never fails the run."""
    try:
        return read_metrics(client, job_name)
    except (InputError, AwsError) as error:  # the job's own outcome matters more than its pictures
        return f"(metrics unavailable: {error})"


def show_after_run(metrics: JobMetrics | str | None, out: TextIO, charts: bool) -> None:
    """What `run` prints last: the table, and the charts unless told not to."""
    if isinstance(metrics, str):
        print(metrics, file=out)
    elif metrics is not None and metrics.metrics:
        show(metrics, out, charts)


def write_picture_check(path: str) -> None:
    """Refuse a bad --plot before any AWS call."""
    target = Path(path)
    if target.suffix.lower() not in PICTURE_SUFFIXES:
        raise InputError(f"must end with {' or '.join(PICTURE_SUFFIXES)}, not {target.name!r}", "--plot")
    if target.is_dir():
        raise InputError(f"{path} is a folder; give a file name ending {target.suffix}", "--plot")
    if not target.parent.is_dir():
        raise InputError(f"the folder {target.parent} does not exist", "--plot")
    if not os.access(target.parent, os.W_OK) or (target.exists() and not os.access(target, os.W_OK)):
        raise InputError(f"cannot write {path}: permission denied", "--plot")


def _is_tty(out: TextIO) -> bool:
    try:
        return out.isatty()
    except (AttributeError, ValueError):
        return False
