"""Lines written within one millisecond come back in the order they were written, by every reader, page after page:
CloudWatch Logs' GetLogEvents and FilterLogEvents on the local SageMaker, handlers/log_cursor.py's pages (Flyte's
GetTaskLogs, the job page) and handlers/logs.py's LogTailer (`sagemaker-plugin logs`).

The lines of each host are written in batches, as a job's runner flushes them, all at one millisecond, their text
in the reverse of their written order: any reader that orders them by text (or by anything but their position)
shows them reordered.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import pytest

pytest.importorskip("moto")

from handlers.local import LOCAL_ACCOUNT_ID
from handlers.log_cursor import read_page
from handlers.logs import LOG_GROUP, LogTailer
from local_sagemaker import LocalSageMaker, LocalSettings, storage
from local_sagemaker.logs import LogLine
from local_sagemaker.testing import LocalClients, unique_name

LOCAL_SETTINGS = LocalSettings(execution="simulate")
LINES = 400  # per host
PAGE = 37  # a page size that divides nothing


def written(host: int) -> list[str]:
    return [f"{LINES - index:04d} host {host} line {index}" for index in range(LINES)]


@pytest.fixture(scope="module")
def job(server: LocalSageMaker) -> str:
    """A job name whose two hosts' streams hold LINES lines each, all at one millisecond."""
    name = unique_name("order")
    moment = int(time.time() * 1000)
    for host in (1, 2):
        lines = [LogLine(host, moment, text) for text in written(host)]
        for start in range(0, LINES, 50):  # flushed in batches, as a runner does
            with server.engine.lock:
                storage.put_lines(LOCAL_ACCOUNT_ID, "us-east-1", f"{name}/algo-{host}-{moment // 1000}",
                                  lines[start:start + 50])
    return name


def of_host(pairs: Iterable[tuple[str, str]], host: str) -> list[str]:
    return [message for who, message in pairs if who == host]


def check(pairs: list[tuple[str, str]]) -> None:
    """Each host's lines, all of them, in their written order."""
    assert len(pairs) == 2 * LINES
    for host in (1, 2):
        assert of_host(pairs, f"algo-{host}") == written(host)


def paged(call: Callable[[str | None], tuple[list[tuple[str, str]], str | None]]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    token: str | None = None
    for _ in range(10 * LINES):
        got, token = call(token)
        out += got
        if token is None:
            return out
    raise AssertionError("the pages never ended")


def test_get_log_events_pages_keep_the_written_order(aws: LocalClients, job: str) -> None:
    pairs: list[tuple[str, str]] = []
    for stream in aws.logs.describe_log_streams(logGroupName=LOG_GROUP, logStreamNamePrefix=job + "/")["logStreams"]:
        host = stream["logStreamName"].split("/")[1].rsplit("-", 1)[0]

        def page(token: str | None, name: str = stream["logStreamName"], host: str = host) -> tuple[
                list[tuple[str, str]], str | None]:
            params: dict[str, Any] = {"logGroupName": LOG_GROUP, "logStreamName": name, "startFromHead": True,
                                      "limit": PAGE, **({"nextToken": token} if token else {})}
            answer = aws.logs.get_log_events(**params)
            following = answer["nextForwardToken"]
            return [(host, e["message"]) for e in answer["events"]], None if following == token else following

        pairs += paged(page)
    check(pairs)


def test_filter_log_events_pages_keep_the_written_order(aws: LocalClients, job: str) -> None:
    def page(token: str | None) -> tuple[list[tuple[str, str]], str | None]:
        params: dict[str, Any] = {"logGroupName": LOG_GROUP, "logStreamNamePrefix": job + "/", "limit": PAGE,
                                  **({"nextToken": token} if token else {})}
        answer = aws.logs.filter_log_events(**params)
        return ([(e["logStreamName"].split("/")[1].rsplit("-", 1)[0], e["message"]) for e in answer["events"]],
                answer.get("nextToken"))

    check(paged(page))


def test_log_pages_keep_the_written_order(server: LocalSageMaker, job: str) -> None:
    """The pages of Flyte's GetTaskLogs and of the job page."""
    client = server.client()

    def page(token: str | None) -> tuple[list[tuple[str, str]], str | None]:
        answer = read_page(client, job, token or "", PAGE, hosts=2)
        return [(line.host, line.message) for line in answer.lines], answer.token if answer.lines else None

    pairs = paged(page)
    check(pairs)
    assert len(read_page(client, job, "", PAGE, hosts=2).lines) == PAGE  # it did page


def test_the_tailer_keeps_the_written_order(server: LocalSageMaker, job: str) -> None:
    """`sagemaker-plugin logs` and `run`'s log lines."""
    check([(line.host, line.message) for line in LogTailer(server.client(), job, hosts=2).drain()])
