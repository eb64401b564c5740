"""The local SageMaker's page per job (`/~jobs/<name>?token=...`): who gets it, what its JSON says, and what a browser
shows while the job runs (headless Chromium: the charts drawn, the logs growing, no script error); that no bucket's
objects are shadowed by a page or by moto's own paths; that hostile text in a job renders as text; and that no
malformed token makes the server fail.
"""

from __future__ import annotations

import http.client
import json
import logging
import re
import socket
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest

pytest.importorskip("moto")

import browser
from handlers.local_job_links import PAGE_PREFIX
from local_sagemaker import FailureRule, LocalSageMaker, LocalSettings
from local_sagemaker.testing import LocalClients, unique_name

#: text that ends a <script> element early, opens an HTML comment or runs a script when a page mishandles it
HOSTILE = "a <!-- b </script> c <script>alert(1)</script> d --> e & f \u2028 g"
# a browser sees the job train for 20 s; a job named hostile-... fails in Training with HOSTILE for its reason
LOCAL_SETTINGS = LocalSettings(execution="simulate", timeline={"Training": 20.0},
                               failures=(FailureRule(name_pattern="hostile-.*", at="Training", reason=HOSTILE),))
#: how often a test asks for a job it waits on: its phases last seconds, and each DescribeTrainingJob costs both this
#: process and the server CPU (the default, 20 ms, keeps a core busy for nothing)
POLL = 0.5


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
    aws.wait(running, until=lambda job: job["SecondaryStatus"] == "Training", timeout=60, interval=POLL)
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
    aws.wait(running, until=lambda job: job["SecondaryStatus"] == "Training", timeout=60, interval=POLL)
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
    aws.wait(running, timeout=120, interval=POLL)
    dom, errors = browser.dump_dom(server.page_url(running), budget_ms=4000)
    body: dict[str, Any] = browser.body_data(dom)
    assert errors == [] and body.get("ended") == "true" and int(body["polls"]) <= 3
    assert ">Completed<" in browser.without_scripts(dom)


# --- no bucket is shadowed ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("bucket", "keys"), [
    ("jobs", ["a.txt", "page-1/data", "~jobs/x"]),
    ("moto-api", ["reset", "data.json"]),  # moto's own administration paths
    ("latest", ["meta-data/iam/security-credentials/", "api/token"]),  # moto's instance metadata paths
    ("favicon.ico", ["x"]),
])
def test_a_bucket_named_like_a_page_holds_objects(server: LocalSageMaker, aws: LocalClients, running: str,
                                                  bucket: str, keys: list[str]) -> None:
    aws.s3.create_bucket(Bucket=bucket)
    for key in keys:
        aws.s3.put_object(Bucket=bucket, Key=key, Body=f"{bucket}/{key}".encode())
    for key in keys:
        assert aws.s3.get_object(Bucket=bucket, Key=key)["Body"].read() == f"{bucket}/{key}".encode()
    assert sorted(o["Key"] for o in aws.s3.list_objects_v2(Bucket=bucket)["Contents"]) == sorted(keys)
    assert aws.s3.head_bucket(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 200
    # a training job reads and writes such a bucket as any other
    assert bucket in [b["Name"] for b in aws.s3.list_buckets()["Buckets"]]
    # the pages still answer, at their own address
    url = server.page_url(running)
    assert urlsplit(url).path == f"{PAGE_PREFIX}{running}"
    status, headers, body = request(url)
    assert status == 200 and headers["content-type"].startswith("text/html") and running.encode() in body


# --- hostile text in a job -----------------------------------------------------------------------------------------


def initial_state(page: str) -> Any:
    """The JSON the page's script starts from: all of the <script id="initial"> element's text, as a browser ends it
    (at the first `</script`), parsed as the page's script parses it."""
    start = page.index('<script id="initial" type="application/json">') + len(
        '<script id="initial" type="application/json">')
    return json.loads(page[start:page.index("</script", start)])


def test_hostile_text_in_a_failed_job_is_its_pages_text(server: LocalSageMaker, aws: LocalClients) -> None:
    name = unique_name("hostile")
    aws.sagemaker.create_training_job(**aws.training_request(name))
    job = aws.wait(name, timeout=120, interval=POLL)
    assert job["TrainingJobStatus"] == "Failed" and HOSTILE in job["FailureReason"]
    status, _, body = request(server.page_url(name))
    assert status == 200
    page = body.decode()
    state = initial_state(page)
    assert state["job"]["failure_reason"] == job["FailureReason"]
    assert "<!--" not in page[page.index('id="initial"'):page.index("</script", page.index('id="initial"'))]
    # the log lines, from the page's JSON address, carry the text as it was written
    data = json.loads(request(server.page_url(name).replace("?token=", "/data?token=") + "&logs=")[2])
    assert any(HOSTILE in line["message"] for line in data["logs"]["lines"])
    if browser.find() is None:
        return  # the JSON above is what the script reads; a browser, where installed, shows it
    dom, errors = browser.dump_dom(server.page_url(name), budget_ms=3000)
    assert errors == [], errors
    shown = browser.without_scripts(dom)
    assert "errors" not in browser.body_data(dom)
    assert "&lt;!-- b &lt;/script&gt; c &lt;script&gt;alert(1)&lt;/script&gt;" in shown


# --- malformed tokens ----------------------------------------------------------------------------------------------

MALFORMED_TOKENS = [
    "", "é", "tökén", "\u202e" + "0" * 31, "🙂" * 8, "a" * 40_000, "%ff%fe%fd", "%", "%%", "%zz", "%00" * 32,
    "%C3%A9" * 16, "\x00", "token&token=", "+" * 32, "%E2%80%AE",
]


def raw_get(url: str, target: bytes) -> tuple[int, bytes]:
    """GET with a request target of any bytes (http.client would refuse non-ASCII), on a fresh connection."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname or "", parts.port or 80), timeout=30) as connection:
        connection.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: " + parts.netloc.encode()
                           + b"\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    return int(answer.split(b" ", 2)[1]), answer


def test_a_malformed_page_token_is_refused_without_a_server_error(server: LocalSageMaker, running: str,
                                                                  caplog: pytest.LogCaptureFixture,
                                                                  capfd: pytest.CaptureFixture[str]) -> None:
    caplog.set_level(logging.INFO)
    path = urlsplit(server.page_url(running)).path
    targets = [f"{path}?token={token}".encode() for token in MALFORMED_TOKENS]
    targets += [f"{path}/data?token={token}&logs=".encode() for token in MALFORMED_TOKENS]
    targets += [path.encode() + b"?token=\xff\xfe\xc3", path.encode() + b"?token=\xc3\xa9" * 16,
                path.encode() + b"?to\xffken=x", path.encode() + b"?token"]
    answers = {target: raw_get(server.url, target) for target in targets}
    assert {target: status for target, (status, _) in answers.items() if status != 403} == {}
    assert all(running.encode() not in body.split(b"\r\n\r\n", 1)[1] for _, body in answers.values())
    errors = [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]
    assert errors == [] and "Traceback" not in capfd.readouterr().err


def test_a_malformed_log_token_is_a_bad_request_without_a_server_error(server: LocalSageMaker, running: str,
                                                                       aws: LocalClients,
                                                                       caplog: pytest.LogCaptureFixture,
                                                                       capfd: pytest.CaptureFixture[str]) -> None:
    import base64

    def token(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    aws.wait(running, until=lambda job: bool(aws.log_messages(running)), timeout=60, interval=POLL)
    stream = next(iter(aws.log_messages(running)))
    caplog.set_level(logging.INFO)
    data_url = server.page_url(running).replace("?token=", "/data?token=")
    bad = ["é", "%ff", "not-a-token", token(b"[" * 20_000), token(b'{"a": 1}'), token(b"\xff\xfe"),
           token(json.dumps({stream: "f/zzz"}).encode()),
           token(json.dumps({"another-job/algo-1-1": ""}).encode())]
    statuses = {value: request(f"{data_url}&logs={quote(value, safe='')}")[0] for value in bad}
    assert statuses == dict.fromkeys(bad, 400)
    errors = [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]
    assert errors == [] and "Traceback" not in capfd.readouterr().err


def test_a_virtual_hosted_key_under_the_pages_path_is_the_buckets(server: LocalSageMaker, aws: LocalClients) -> None:
    """moto reads a Host that is not a loopback address or `localhost` as `<bucket>.<host>` (a server reached by name
    with --allow-remote): the whole path is then a key, and a key beginning `~jobs/` is the bucket's, not a page."""
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    aws.s3.create_bucket(Bucket="pages")
    aws.s3.put_object(Bucket="pages", Key=f"{PAGE_PREFIX[1:]}some-job", Body=b"the bucket's own")
    with LocalSageMaker(LOCAL_SETTINGS, reset=False, allow_remote=True, credentials=server.credentials) as remote:
        host = f"pages.machine.example:{urlsplit(remote.url).port}"
        signed = AWSRequest(method="GET", url=f"http://{host}{PAGE_PREFIX}some-job",
                            headers={"x-amz-content-sha256": "UNSIGNED-PAYLOAD"})
        keys = server.credentials
        S3SigV4Auth(Credentials(keys.access_key_id, keys.secret_access_key), "s3", "us-east-1").add_auth(signed)
        status, _, body = request(f"{remote.url}{PAGE_PREFIX}some-job", headers={"Host": host, **signed.headers})
    assert (status, body) == (200, b"the bucket's own")
