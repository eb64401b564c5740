"""The lines a local Flyte run prints about its job: one per change, whole, kept, to stderr by default."""

from __future__ import annotations

import io

import pytest

from plugin.jobs.progress_lines import ProgressLines, job_label


class Terminal(io.StringIO):
    """A stream that says it is a terminal: the lines must not change for it."""

    def isatty(self) -> bool:
        return True


def test_one_line_per_change_of_phase_or_message_and_per_new_link() -> None:
    out = io.StringIO()
    lines = ProgressLines(job_label("training job", "job-1"), out)
    page = ("Job page", "http://127.0.0.1:5000/~jobs/job-1?key=k")
    assert lines.show("QUEUED") == ["training job job-1: QUEUED"]
    assert lines.show("QUEUED") == []
    assert lines.show("RUNNING", "Starting", [page]) == ["training job job-1: RUNNING: Starting",
                                                         f"training job job-1: Job page: {page[1]}"]
    assert lines.show("RUNNING", "Starting", [page]) == []
    assert lines.show("RUNNING", "Training", [page]) == ["training job job-1: RUNNING: Training"]
    logs = ("Logs", "command: sagemaker-plugin logs job-1")
    assert lines.show("RUNNING", "Training", [logs]) == [f"training job job-1: Logs: {logs[1]}"]
    assert lines.show("SUCCEEDED", "", [page, logs]) == ["training job job-1: SUCCEEDED"]
    assert out.getvalue().splitlines() == [
        "training job job-1: QUEUED", "training job job-1: RUNNING: Starting",
        f"training job job-1: Job page: {page[1]}", "training job job-1: RUNNING: Training",
        f"training job job-1: Logs: {logs[1]}", "training job job-1: SUCCEEDED"]


@pytest.mark.parametrize("stream", [io.StringIO, Terminal])
def test_long_messages_and_links_are_printed_whole_and_never_wiped(stream: type[io.StringIO],
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    out = stream()
    message = "FAILED: " + "the algorithm said something long " * 20
    link = "https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1#logsV2:" + "x" * 900
    ProgressLines("training job j", out).show("FAILED", message, [("CloudWatch", link)])
    assert out.getvalue() == f"training job j: FAILED: {message}\ntraining job j: CloudWatch: {link}\n"
    assert "\r" not in out.getvalue() and "\x1b" not in out.getvalue()


def test_stop_lines_name_the_job(capsys: pytest.CaptureFixture[str]) -> None:
    lines = ProgressLines(job_label("tuning job", "tune-7"))  # stderr, looked up when printing
    lines.stopping()
    lines.stopped()
    lines.stopped(confirmed=False)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        "interrupted: stopping tuning job tune-7 ...", "tuning job tune-7 was stopped",
        "tuning job tune-7 was asked to stop but had not stopped yet when this run ended; its phase shows whether "
        "it did"]
