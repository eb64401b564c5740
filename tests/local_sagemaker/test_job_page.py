"""The local SageMaker's page per job (`/jobs/<name>?token=...`): who gets it, what its JSON says, and what a browser
shows while the job runs (headless Chromium: the charts drawn, the logs growing, no script error).
"""

from __future__ import annotations

import http.client
import json
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

pytest.importorskip("moto")

import browser
from local_sagemaker import LocalSageMaker, LocalSettings
from local_sagemaker.testing import LocalClients, unique_name

# a browser sees the job train for 20 s
LOCAL_SETTINGS = LocalSettings(execution="simulate", timeline={"Training": 20.0})


def request(url: str, method: str = "GET", headers: dict[str, str] | None = None) -> tuple[int, dict[str, str],
                                                                                           bytes]:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
    try:
        connection.request(method, f"{parts.path}?{parts.query}" if parts.query else parts.path,
                           headers=headers or {})
        answer = connection.getresponse()
        return answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read()
    finally:
        connection.close()


@pytest.fixture(scope="module")
def running(aws: LocalClients) -> str:
    """A two-host XGBoost job of 60 rounds, created now (it trains for 20 s)."""
    name = unique_name("page")
    aws.sagemaker.create_training_job(**aws.training_request(
        name, channels={"train": aws.put_data(f"{name}/train"), "validation": aws.put_data(f"{name}/validation")},
        hyperparameters={"num_round": "60"}, instance_count=2))
    return name


def test_the_page_needs_its_token_a_loopback_host_and_no_other_origin(server: LocalSageMaker, running: str) -> None:
    url = server.page_url(running)
    status, headers, body = request(url)
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert "access-control-allow-origin" not in headers and headers["referrer-policy"] == "no-referrer"
    assert running.encode() in body
    bare = url.split("?")[0]
    refused = [request(bare), request(bare + "?token=" + "0" * 32),
               request(url, headers={"Host": "evil.example:80"}),
               request(url, headers={"Origin": "http://evil.example"}),
               request(url, "POST")]
    assert [status for status, _, _ in refused] == [403, 403, 403, 403, 405]
    assert all(running.encode() not in body for _, _, body in refused)
    status, _, body = request(url.replace(running, "no-such-job"))
    assert status == 404 and b"no-such-job" in body


def test_the_pages_json_gives_status_metrics_and_log_lines_a_page_at_a_time(server: LocalSageMaker, running: str,
                                                                            aws: LocalClients) -> None:
    data_url = server.page_url(running).replace("?token=", "/data?token=")
    aws.wait(running, until=lambda job: job["SecondaryStatus"] == "Training", timeout=60)
    time.sleep(1)
    status, headers, body = request(data_url + "&logs=")
    assert status == 200 and headers["content-type"] == "application/json"
    first = json.loads(body)
    assert first["job"]["name"] == running and first["job"]["status"] == "InProgress"
    assert [t["status"] for t in first["job"]["transitions"]][:3] == ["Starting", "Downloading", "Training"]
    assert first["metrics"]["hosts"] == ["algo-1", "algo-2"]
    assert first["logs"]["lines"] and first["logs"]["token"]
    time.sleep(1)
    again = json.loads(request(f"{data_url}&logs={first['logs']['token']}")[2])
    seen = {(line["host"], line["message"]) for line in first["logs"]["lines"]}
    assert again["logs"]["lines"] and not seen & {(line["host"], line["message"]) for line in again["logs"]["lines"]}
    assert request(data_url + "&logs=not-a-token")[0] == 400


def test_a_browser_shows_the_running_job_its_charts_and_growing_logs(server: LocalSageMaker, running: str,
                                                                    aws: LocalClients, tmp_path: Path) -> None:
    browser.require()
    aws.wait(running, until=lambda job: job["SecondaryStatus"] == "Training", timeout=60)
    time.sleep(2)
    url = server.page_url(running)
    first, errors = browser.dump_dom(url, budget_ms=2500)
    assert errors == [], errors
    first_lines = lines_shown(first)
    time.sleep(3)
    second, errors = browser.dump_dom(url, budget_ms=2500)
    assert errors == [], errors
    for dom in map(browser.without_scripts, (first, second)):
        body = browser.body_data(dom)
        assert "errors" not in body, body.get("last-error")
        assert int(body.get("polls", "0")) >= 1
        assert re.findall(r'<svg [^>]*data-metric="([^"]+)"', dom) == ["train:rmse", "validation:rmse"]
        assert sorted(re.findall(r'<polyline class="series" data-host="(algo-\d)"', dom)) == [
            "algo-1", "algo-1", "algo-2", "algo-2"]
    assert 0 < first_lines < lines_shown(second)  # the logs grow as the job writes them
    assert "[algo-2] " in second and "#011train-rmse:" in second
    browser.screenshot(url, tmp_path / "page.png")


def lines_shown(dom: str) -> int:
    match = re.search(r'<pre id="logs" data-lines="(\d+)"', dom)
    return int(match[1]) if match else 0


def test_an_ended_jobs_page_stops_polling(server: LocalSageMaker, aws: LocalClients, running: str) -> None:
    browser.require()
    aws.wait(running, timeout=120)
    dom, errors = browser.dump_dom(server.page_url(running), budget_ms=4000)
    body: dict[str, Any] = browser.body_data(dom)
    assert errors == [] and body.get("ended") == "true" and int(body["polls"]) <= 3
    assert ">Completed<" in browser.without_scripts(dom)
