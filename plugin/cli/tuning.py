"""`run` of a tuning task: create the tuning job, follow its trials in a table, stop it all on Ctrl-C."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from handlers.errors import NotFound
from handlers.polling import poll_until
from handlers.service_model import validate_request
from handlers.status import Phase
from plugin.cli.common import (
    Interrupted,
    attempt_for_run,
    create_for_run,
    meta_after_interrupt,
    model_notes,
    signals_ignored,
    signals_interrupt,
)
from plugin.cli.exit_codes import EXIT_INTERRUPTED, EXIT_JOB_FAILED, EXIT_OK
from plugin.config import Config
from plugin.embedded import sagemaker_endpoint
from plugin.jobs.pipeline import Rendered
from plugin.jobs.resource import Resource
from plugin.jobs.tuning_job import TuningJobPlugin, trials
from plugin.meta import ResourceMeta
from plugin.registry import registry
from plugin.task import TUNING_TASK, Task

STOP_WAIT_SECONDS = 300.0
COLUMNS = ("", "trial", "hyperparameters", "status", "objective")


def trial_rows(listed: Sequence[dict[str, Any]], best: str) -> list[tuple[str, ...]]:
    """One row per trial, in the order they started; the best so far marked `*`."""
    rows: list[tuple[str, ...]] = []
    for trial in sorted(listed, key=lambda t: str(t["name"])):
        hyperparameters = ", ".join(f"{k}={_short_number(v)}" for k, v in sorted(trial["hyperparameters"].items()))
        objective = "" if trial["objective"] is None else f"{trial['objective']:g}"
        rows.append(("*" if trial["name"] == best else "", str(trial["name"]), hyperparameters,
                     str(trial["status"]), objective))
    return rows


def table(rows: Sequence[tuple[str, ...]]) -> list[str]:
    """The rows under a header, each column as wide as its widest cell."""
    everything = [COLUMNS, *rows]
    widths = [max(len(row[i]) for row in everything) for i in range(len(COLUMNS))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
            for row in everything]


def _short_number(text: str) -> str:
    try:
        value = float(text)
    except ValueError:
        return text
    return text if value.is_integer() and "." not in text else f"{value:.4g}"


class TrialTable:
    """The trials, redrawn in place on a terminal; elsewhere one line per trial whose status or objective changed."""

    def __init__(self, out: TextIO, live: bool) -> None:
        self.out = out
        self.live = live
        self._drawn = 0
        self._said: dict[str, tuple[str, ...]] = {}

    def show(self, rows: Sequence[tuple[str, ...]], status: str) -> None:
        if self.live:
            lines = [*table(rows), status]
            if self._drawn:
                self.out.write(f"\x1b[{self._drawn}F\x1b[J")  # back to the table's first line, clear below
            self.out.write("\n".join(lines) + "\n")
            self.out.flush()
            self._drawn = len(lines)
            return
        for row in rows:
            said = row[3:]
            if self._said.get(row[1]) != said:
                self._said[row[1]] = said
                objective = f" objective {row[4]}" if row[4] else ""
                print(f"trial {row[1]} {row[3]}{objective} ({row[2]})", file=self.out, flush=True)

    def final(self, rows: Sequence[tuple[str, ...]]) -> None:
        """The whole table once more, at the end (plain output gets it too)."""
        if self.live and self._drawn:
            self.out.write(f"\x1b[{self._drawn}F\x1b[J")
            self._drawn = 0
        for line in table(rows):
            print(line, file=self.out)
        self.out.flush()


def run_tuning(args: argparse.Namespace, config: Config, task: Task, rendered: Rendered, poll: float) -> int:
    out = sys.stderr if args.json else sys.stdout
    view = TrialTable(out, live=out.isatty())
    embedded = config.backend == "local" and not config.endpoint_url()

    def say(line: str) -> None:
        print(line, file=out, flush=True)

    with sagemaker_endpoint(config) as config:
        plugin: TuningJobPlugin = registry.get(task.task_type, config)
        rendered = attempt_for_run(plugin, task, rendered, args, say)  # before the signals: nothing made yet
        with signals_interrupt():
            meta: ResourceMeta | None = None
            try:
                meta, line = create_for_run(plugin, task, rendered, config, args)
                say(line)
                resource = follow(plugin, meta, view, poll)
            except Interrupted as interrupt:
                meta = meta_after_interrupt(meta, rendered, config)
                print(f"{interrupt}: stopping tuning job {meta.job_name} and its running trials ...",
                      file=sys.stderr, flush=True)
                with signals_ignored():
                    plugin.delete(meta, grace_seconds=None if meta.job_arn else 5.0)
                    resource = poll_until(lambda: plugin.get(meta), lambda r: r.phase.is_terminal, 0.5,
                                          STOP_WAIT_SECONDS)
                    listed = _trials(plugin, meta)
                view.final(trial_rows(listed, _best(resource)))
                report(resource, meta, out, args.json)
                return EXIT_INTERRUPTED
        listed = resource.outputs.get("trials") or _trials(plugin, meta)
        view.final(trial_rows(listed, _best(resource)))
    model = str(resource.outputs.get("model") or "")
    notes = model_notes(model, config, embedded, meta.created_at) if model and config.backend == "local" else []
    report(resource, meta, out, args.json, notes)
    return EXIT_OK if resource.phase == Phase.SUCCEEDED else EXIT_JOB_FAILED


def follow(plugin: TuningJobPlugin, meta: ResourceMeta, view: TrialTable, poll: float) -> Resource:
    seen: list[Phase] = []

    def look() -> Resource:
        resource, description = plugin.get_with_description(meta, following=True)
        if description is not None and not (resource.phase.is_terminal and view.live):  # plain: the last changes too
            best = str((description.get("BestTrainingJob") or {}).get("TrainingJobName", ""))
            view.show(trial_rows(_trials(plugin, meta), best), f"{resource.phase.name}: {resource.message}")
        if not seen or seen[-1] != resource.phase:  # after the trials' changes that led to it
            seen.append(resource.phase)
            if not view.live:
                print(f"phase {resource.phase.name}: {resource.message}", file=view.out, flush=True)
        return resource

    return poll_until(look, lambda resource: resource.phase.is_terminal, poll)


def _trials(plugin: TuningJobPlugin, meta: ResourceMeta) -> list[dict[str, Any]]:
    try:
        return trials(plugin.client(meta.region, meta.endpoint_url), meta.job_name)
    except NotFound:
        return []


def _best(resource: Resource) -> str:
    return str(resource.outputs.get("best_training_job_name") or "")


def report(resource: Resource, meta: ResourceMeta, out: TextIO, as_json: bool, notes: Sequence[str] = ()) -> None:
    print(f"{meta.job_name}: {resource.phase.name}" + (f" ({resource.message})" if resource.message else ""),
          file=out)
    outputs = resource.outputs
    if outputs.get("best_training_job_name"):
        objective = outputs.get("objective") or {}
        print(f"best trial: {outputs['best_training_job_name']} ({objective.get('metric_name')} "
              f"{objective.get('value')})", file=out)
        hyperparameters = outputs.get("best_hyperparameters") or {}
        print("best hyperparameters: " + ", ".join(f"{k}={v}" for k, v in sorted(hyperparameters.items())),
              file=out)
        print(f"model: {outputs.get('model')}", file=out)
        for note in notes:  # where the local SageMaker keeps it on disk
            print(note, file=out)
    for link in resource.log_links:
        print(f"{link.name}: {link.uri}", file=out)
    out.flush()
    if as_json:
        print(json.dumps({"job_name": meta.job_name, **resource.as_dict()}), flush=True)


def tuning_status(args: argparse.Namespace, config: Config, meta: ResourceMeta) -> int | None:
    """`status` of a tuning job: its phase, its trials and, once it succeeded, the best; None if there is none."""
    if validate_request("DescribeHyperParameterTuningJob", {"HyperParameterTuningJobName": meta.job_name}):
        return None  # a training job's name too long (or otherwise unfit) for a tuning job: SageMaker would refuse it
    plugin: TuningJobPlugin = registry.get(TUNING_TASK, config)
    resource, description = plugin.get_with_description(meta)
    if description is None:
        return None
    listed = resource.outputs.get("trials") or _trials(plugin, meta)
    best = str((description.get("BestTrainingJob") or {}).get("TrainingJobName", ""))
    if args.json:
        print(json.dumps({"job_name": meta.job_name, **resource.as_dict(), "trials": listed,
                          "status": description.get("HyperParameterTuningJobStatus")}, default=str))
        return EXIT_OK
    print(f"{meta.job_name}: {resource.phase.name}" + (f" ({resource.message})" if resource.message else ""))
    print(f"status {description.get('HyperParameterTuningJobStatus')} (hyperparameter tuning job)")
    for line in table(trial_rows(listed, best)):
        print(line)
    report(resource, meta, sys.stdout, False)
    return EXIT_OK
