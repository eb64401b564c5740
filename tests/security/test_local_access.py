"""Nobody else gets in: the local SageMaker runs code that arrives in requests, so only its own clients may reach it.

Each way in that a web page, another user's process or a DNS-rebinding attacker would try is refused with AWS's own
answer, and no job is made (checked afterwards with the right key pair); the right key pair works for every service the
server answers (SageMaker, S3 with presigned URLs, CloudWatch Logs and metrics); clients of a server started elsewhere
get a clear error without its keys; and the Python API starts its own local SageMaker, gone when the process exits.
"""

from __future__ import annotations

import base64
import datetime
import http.client
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from werkzeug.test import EnvironBuilder

from handlers import local_credentials
from handlers.local_credentials import LocalCredentials
from local_sagemaker import LocalSageMaker, LocalSettings
from local_sagemaker.access import generate_credentials, loopback_host, verify
from local_sagemaker.testing import CUSTOM_IMAGE, LocalClients, unique_name

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(sys.executable).with_name("sagemaker-plugin")
#: The module's `server` and `aws` (tests/conftest.py): these tests are about who gets in, so jobs play the timeline.
LOCAL_SETTINGS = LocalSettings(execution="simulate", time_scale=50)
EVIL = "https://evil.example.com"
UNKNOWN_TOKEN = "The security token included in the request is invalid."
MISMATCH = ("The request signature we calculated does not match the signature you provided. Check your AWS Secret "
            "Access Key and signing method. Consult the service documentation for details.")


# --- helpers ----------------------------------------------------------------------------------------------------------


def send(url: str, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> tuple[int, dict[str, str],
                                                                                                 bytes]:
    """One raw HTTP request to the server, headers exactly as given (Host too, when given)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    try:
        connection.putrequest(method, path, skip_host="Host" in headers, skip_accept_encoding=True)
        for name, value in {**headers, "Content-Length": str(len(body))}.items():
            connection.putheader(name, value)
        connection.endheaders(body or None)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def create_request(aws: LocalClients, name: str) -> dict[str, Any]:
    return aws.training_request(name, image=CUSTOM_IMAGE, channels={"train": "s3://local-sagemaker-data/x/"})


def signed(url: str, credentials: LocalCredentials, target: str, payload: dict[str, Any], *,
           host: str | None = None, service: str = "sagemaker") -> tuple[dict[str, str], bytes]:
    """Headers and body of a JSON-protocol request signed as botocore signs it, for `host` (default: the URL's)."""
    body = json.dumps(payload).encode()
    where = f"http://{host}/" if host else url + "/"
    request = AWSRequest(method="POST", url=where, data=body, headers={
        "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": target})
    SigV4Auth(Credentials(credentials.access_key_id, credentials.secret_access_key), service, "us-east-1") \
        .add_auth(request)
    headers = dict(request.headers.items())
    headers["Host"] = host or urlsplit(url).netloc
    return headers, body


def no_job(aws: LocalClients, name: str) -> bool:
    """Seen with the right key pair: no job by that name exists."""
    try:
        aws.sagemaker.describe_training_job(TrainingJobName=name)
    except ClientError as error:
        return error.response["Error"]["Message"] == "Requested resource not found."
    return False


def error_of(call: Any) -> tuple[str, str, int]:
    with pytest.raises(ClientError) as caught:
        call()
    error = caught.value.response
    return error["Error"]["Code"], error["Error"]["Message"], error["ResponseMetadata"]["HTTPStatusCode"]


def cors_headers(headers: dict[str, str]) -> list[str]:
    return [name for name in headers if name.startswith("access-control-")]


@pytest.fixture
def stranger() -> LocalCredentials:
    """Another key pair in AWS's format: any other local SageMaker's, or a real AWS key's."""
    return generate_credentials()


# --- browsers -------------------------------------------------------------------------------------------------------


def test_a_cross_origin_preflight_is_refused_without_any_cors_header(server: LocalSageMaker) -> None:
    status, headers, _ = send(server.url, "OPTIONS", "/", {
        "Host": urlsplit(server.url).netloc, "Origin": EVIL, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type,x-amz-target"})
    assert status == 403
    assert cors_headers(headers) == []


def test_a_request_from_a_web_page_is_refused_even_when_signed(server: LocalSageMaker, aws: LocalClients) -> None:
    """A page's fetch carries Origin; with no CORS header in the answer the browser would not even show it."""
    name = unique_name("browser")
    headers, body = signed(server.url, server.credentials, "SageMaker.CreateTrainingJob", create_request(aws, name))
    status, answer, data = send(server.url, "POST", "/", {**headers, "Origin": EVIL}, body)
    assert status == 400 and json.loads(data)["__type"] == "AccessDeniedException"
    assert cors_headers(answer) == []
    # a page's "simple" request (no preflight): text/plain, no custom headers, no signature
    status, answer, _ = send(server.url, "POST", "/", {"Host": urlsplit(server.url).netloc, "Origin": EVIL,
                                                       "Content-Type": "text/plain"}, body)
    assert status == 403 and cors_headers(answer) == []
    assert no_job(aws, name)


def test_answers_to_its_own_clients_carry_no_cors_header_either(server: LocalSageMaker) -> None:
    headers, body = signed(server.url, server.credentials, "SageMaker.ListTrainingJobs", {})
    status, answer, _ = send(server.url, "POST", "/", headers, body)
    assert status == 200
    assert cors_headers(answer) == []


# --- DNS rebinding ------------------------------------------------------------------------------------------------


def test_a_host_header_naming_another_machine_is_refused(server: LocalSageMaker, aws: LocalClients) -> None:
    """A page on evil.example.com whose name now resolves to 127.0.0.1 sends its own Host, even signed correctly."""
    name = unique_name("rebind")
    port = urlsplit(server.url).port
    for host in (f"evil.example.com:{port}", "evil.example.com", f"192.168.1.20:{port}", f"127.0.0.1.evil.com:{port}"):
        headers, body = signed(server.url, server.credentials, "SageMaker.CreateTrainingJob",
                               create_request(aws, name), host=host)
        status, _, data = send(server.url, "POST", "/", headers, body)
        assert status == 400, host
        refusal = json.loads(data)
        assert refusal["__type"] == "AccessDeniedException"
        assert "loopback" in refusal["message"]
    assert no_job(aws, name)


def test_loopback_names_work_through_any_port(server: LocalSageMaker, aws: LocalClients) -> None:
    """localhost and other loopback addresses (a proxy on loopback, another port) are the server's own clients."""
    for host in ("localhost:8080", "127.0.0.2:9", "[::1]:4566", "localhost"):
        name = unique_name("loop")
        headers, body = signed(server.url, server.credentials, "SageMaker.CreateTrainingJob",
                               create_request(aws, name), host=host)
        status, _, data = send(server.url, "POST", "/", headers, body)
        assert status == 200, (host, data)
        assert aws.sagemaker.describe_training_job(TrainingJobName=name)["TrainingJobName"] == name


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1:5000", True), ("127.255.0.9", True), ("localhost:1", True), ("LOCALHOST", True), ("[::1]:80", True),
    ("[::1]", True), ("evil.example.com", False), ("localhost.evil.com:80", False), ("0.0.0.0:80", False),
    ("10.0.0.1:80", False), ("[::2]:80", False), ("::1", False), ("127.0.0.1:x", False), ("", False),
])
def test_which_hosts_are_loopback(host: str, loopback: bool) -> None:
    assert loopback_host(host) is loopback


def test_only_an_explicit_flag_serves_beyond_loopback() -> None:
    with pytest.raises(ValueError, match="loopback"):
        LocalSageMaker(host="0.0.0.0")
    assert LocalSageMaker(host="0.0.0.0", allow_remote=True).allow_remote  # built, not started


# --- credentials ------------------------------------------------------------------------------------------------------


def test_an_unsigned_request_is_refused(server: LocalSageMaker, aws: LocalClients) -> None:
    name = unique_name("unsigned")
    body = json.dumps(create_request(aws, name)).encode()
    status, _, data = send(server.url, "POST", "/", {
        "Host": urlsplit(server.url).netloc, "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": "SageMaker.CreateTrainingJob"}, body)
    assert status == 400
    assert json.loads(data) == {"__type": "MissingAuthenticationTokenException",
                                "message": "Missing Authentication Token"}
    assert no_job(aws, name)


def test_another_key_is_refused_by_every_service(server: LocalSageMaker, aws: LocalClients,
                                                 stranger: LocalCredentials) -> None:
    other = LocalClients(server.url, credentials=stranger)
    name = unique_name("stranger")
    assert error_of(lambda: other.sagemaker.create_training_job(**create_request(aws, name))) == (
        "UnrecognizedClientException", UNKNOWN_TOKEN, 400)
    assert error_of(lambda: other.logs.describe_log_groups()) == ("UnrecognizedClientException", UNKNOWN_TOKEN, 400)
    assert error_of(lambda: other.client("cloudwatch").list_metrics()) == (
        "UnrecognizedClientException", UNKNOWN_TOKEN, 400)
    assert error_of(lambda: other.s3.list_buckets()) == (
        "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.", 403)
    assert no_job(aws, name)


def test_the_right_key_with_a_wrong_secret_is_refused(server: LocalSageMaker, aws: LocalClients) -> None:
    guess = LocalClients(server.url, credentials=LocalCredentials(server.credentials.access_key_id, "guessed"))
    name = unique_name("guess")
    assert error_of(lambda: guess.sagemaker.create_training_job(**create_request(aws, name))) == (
        "InvalidSignatureException", MISMATCH, 400)
    code, message, status = error_of(lambda: guess.s3.list_buckets())
    assert (code, status) == ("SignatureDoesNotMatch", 403)
    assert message.startswith("The request signature we calculated does not match")
    assert no_job(aws, name)


def test_a_tampered_request_is_refused(server: LocalSageMaker, aws: LocalClients) -> None:
    """Signed with the right key pair, then changed on the way: the body, or the signature itself."""
    name, forged = unique_name("signed"), unique_name("forged")
    headers, body = signed(server.url, server.credentials, "SageMaker.CreateTrainingJob", create_request(aws, name))
    status, _, data = send(server.url, "POST", "/", headers, body.replace(name.encode(), forged.encode()))
    assert (status, json.loads(data)) == (400, {"__type": "InvalidSignatureException", "message": MISMATCH})
    signature = re.search(r"Signature=([0-9a-f]{64})", headers["Authorization"])
    assert signature is not None
    flipped = signature.group(1)[:-1] + ("0" if signature.group(1)[-1] != "0" else "1")
    bad = {**headers, "Authorization": headers["Authorization"].replace(signature.group(1), flipped)}
    status, _, data = send(server.url, "POST", "/", bad, body)
    assert (status, json.loads(data)["__type"]) == (400, "InvalidSignatureException")
    # a signed header changed (here the operation: a describe signed, a create sent)
    headers, body = signed(server.url, server.credentials, "SageMaker.DescribeTrainingJob", create_request(aws, name))
    status, _, data = send(server.url, "POST", "/", {**headers, "X-Amz-Target": "SageMaker.CreateTrainingJob"}, body)
    assert (status, json.loads(data)["__type"]) == (400, "InvalidSignatureException")
    assert no_job(aws, name) and no_job(aws, forged)
    # and the untouched request goes through
    headers, body = signed(server.url, server.credentials, "SageMaker.CreateTrainingJob", create_request(aws, name))
    assert send(server.url, "POST", "/", headers, body)[0] == 200


def test_a_replayed_request_from_long_ago_is_refused() -> None:
    """The signature's time must be within 15 minutes of the server's clock, as on AWS."""
    keys = generate_credentials()
    request = AWSRequest(method="POST", url="http://127.0.0.1:4566/", data=b"{}", headers={
        "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "SageMaker.ListTrainingJobs"})
    SigV4Auth(Credentials(keys.access_key_id, keys.secret_access_key), "sagemaker", "us-east-1").add_auth(request)

    def environ() -> dict[str, Any]:
        headers = dict(request.headers.items())
        return EnvironBuilder(method="POST", path="/", base_url="http://127.0.0.1:4566", headers=headers,
                              data=bytes(request.body)).get_environ()

    assert verify(environ(), keys) is None
    late = verify(environ(), keys, now=time.time() + 16 * 60)
    assert late is not None and late.json_code == "InvalidSignatureException"
    assert late.message.startswith("Signature expired: ")
    assert verify(environ(), generate_credentials()) is not None


def test_motos_admin_api_is_closed_to_everyone(server: LocalSageMaker, aws: LocalClients) -> None:
    name = unique_name("kept")
    aws.sagemaker.create_training_job(**create_request(aws, name))
    host = {"Host": urlsplit(server.url).netloc}
    for method, path in (("POST", "/moto-api/reset"), ("GET", "/moto-api/data.json"), ("GET", "/moto-api/"),
                         ("GET", "/latest/meta-data/iam/security-credentials/")):
        assert send(server.url, method, path, host)[0] == 403, path
    # with the server's own key pair too: only the server resets itself (tests: server_reset.reset_state); signed, these
    # paths are S3's, of a bucket named moto-api (none here), never moto's administration API
    keys = server.credentials
    answers = {}
    for method, path in (("POST", "/moto-api/reset"), ("GET", "/moto-api/data.json")):
        request = AWSRequest(method=method, url=server.url + path, data=b"")
        SigV4Auth(Credentials(keys.access_key_id, keys.secret_access_key), "s3", "us-east-1").add_auth(request)
        answers[path] = send(server.url, method, path, {**host, **dict(request.headers.items())})
    assert answers["/moto-api/reset"][0] != 200
    status, _, body = answers["/moto-api/data.json"]
    assert status == 404 and b"<Code>NoSuchBucket</Code>" in body
    assert aws.sagemaker.describe_training_job(TrainingJobName=name)["TrainingJobName"] == name


# --- the right key pair works everywhere --------------------------------------------------------------------------


def test_the_right_key_works_for_sagemaker_s3_logs_and_metrics(aws: LocalClients) -> None:
    name = unique_name("right")
    aws.sagemaker.create_training_job(**aws.training_request(name))
    assert aws.wait(name)["TrainingJobStatus"] == "Completed"
    assert any(aws.log_messages(name).values())
    model = aws.sagemaker.describe_training_job(TrainingJobName=name)["ModelArtifacts"]["S3ModelArtifacts"]
    bucket, key = model[len("s3://"):].split("/", 1)
    assert aws.s3.head_object(Bucket=bucket, Key=key)["ContentLength"] > 0
    aws.client("cloudwatch").put_metric_data(Namespace="local-access", MetricData=[{"MetricName": "m", "Value": 1.0}])
    assert [m["MetricName"] for m in aws.client("cloudwatch").list_metrics(Namespace="local-access")["Metrics"]] \
        == ["m"]


@pytest.mark.parametrize("signature_version", [None, "s3v4"], ids=["boto3-default", "s3v4"])
def test_presigned_urls_work_and_expire(server: LocalSageMaker, aws: LocalClients,
                                        signature_version: str | None) -> None:
    """boto3 presigns S3 URLs (Signature Version 2 by default, or 4): whoever holds one may use it, until it expires."""
    s3 = aws.client("s3", **({"signature_version": signature_version} if signature_version else {}))
    bucket, key = "local-sagemaker-data", f"presigned/{unique_name('k')}/a b+c~é.csv"
    aws.put_data("presigned")
    s3.put_object(Bucket=bucket, Key=key, Body=b"1,2,3\n")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=60)
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.read() == b"1,2,3\n"
    parts = urlsplit(url)
    put = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": key + ".new"}, ExpiresIn=60)
    put_parts = urlsplit(put)
    status, _, _ = send(server.url, "PUT", f"{put_parts.path}?{put_parts.query}", {"Host": put_parts.netloc},
                        b"4,5,6\n")
    assert status == 200
    assert aws.s3.get_object(Bucket=bucket, Key=key + ".new")["Body"].read() == b"4,5,6\n"
    # another object under the same signature: refused
    other = f"{parts.path}x?{parts.query}"
    status, _, data = send(server.url, "GET", other, {"Host": parts.netloc})
    assert status == 403 and b"<Code>SignatureDoesNotMatch</Code>" in data
    # an expired URL: refused as S3 refuses it
    old = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=1)
    time.sleep(2.1)
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(old, timeout=10)
    assert caught.value.code == 403
    assert b"<Code>AccessDenied</Code><Message>Request has expired</Message>" in caught.value.read()


def test_s3_without_a_signature_is_access_denied(server: LocalSageMaker, aws: LocalClients) -> None:
    aws.put_data("anonymous")
    status, _, data = send(server.url, "GET", "/local-sagemaker-data/anonymous/part-0.csv",
                           {"Host": urlsplit(server.url).netloc})
    assert status == 403 and b"<Code>AccessDenied</Code><Message>Access Denied</Message>" in data


def test_a_cbor_client_reads_the_refusal_as_aws_error(server: LocalSageMaker, stranger: LocalCredentials) -> None:
    """CloudWatch metrics speak rpc-v2-cbor in this botocore: the refusal is encoded so that botocore parses it."""
    code, message, _ = error_of(lambda: LocalClients(server.url, credentials=stranger).client("cloudwatch")
                                .get_metric_data(MetricDataQueries=[], StartTime=datetime.datetime(2026, 1, 1),
                                                 EndTime=datetime.datetime(2026, 1, 2)))
    assert (code, message) == ("UnrecognizedClientException", UNKNOWN_TOKEN)


# --- how clients get the key pair ---------------------------------------------------------------------------------


def test_a_key_pair_is_new_at_each_start_in_awss_format() -> None:
    pairs = {generate_credentials() for _ in range(20)}
    assert len(pairs) == 20
    for pair in pairs:
        assert re.fullmatch(r"AKIA[A-Z2-7]{16}", pair.access_key_id)
        assert len(base64.b64decode(pair.secret_access_key)) == 30
        assert pair.secret_access_key not in repr(pair)


def test_this_processs_clients_and_its_jobs_get_the_key_pair(server: LocalSageMaker) -> None:
    assert local_credentials.for_endpoint(server.url) == server.credentials
    assert local_credentials.for_endpoint(server.url + "/") == server.credentials
    env = server.engine.client_env
    assert env["AWS_ENDPOINT_URL"] == server.url
    assert (env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]) == (
        server.credentials.access_key_id, server.credentials.secret_access_key)


def test_a_stopped_server_forgets_its_key_pair(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    with LocalSageMaker(LocalSettings(), reset=False) as other:
        url = other.url
        assert local_credentials.for_endpoint(url) == other.credentials
    assert local_credentials.for_endpoint(url) == local_credentials.DUMMY


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SAGEMAKER_PLUGIN_"))}
    env.update(AWS_EC2_METADATA_DISABLED="true", AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull,
               **extra)
    return env


@pytest.mark.parametrize("keys", ["none", "another"])
def test_commands_without_the_servers_keys_say_to_export_them(server: LocalSageMaker, tmp_path: Path,
                                                              keys: str) -> None:
    extra = {} if keys == "none" else generate_credentials().env()
    env = cli_env(SAGEMAKER_PLUGIN_ENDPOINT_URL=server.url, **extra)
    for command in (["status", "some-job"], ["stop", "some-job"], ["logs", "some-job"]):
        done = subprocess.run([str(SCRIPT), *command], capture_output=True, text=True, cwd=tmp_path, env=env,
                              timeout=60)
        assert done.returncode == 3, (command, done.stderr)
        assert "Traceback" not in done.stderr
        assert f"the local SageMaker at {server.url} did not accept the credentials" in done.stderr
        assert "export AWS_ACCESS_KEY_ID=" in done.stderr and "sagemaker-plugin local serve" in done.stderr


def test_commands_with_the_servers_keys_in_the_environment_work(server: LocalSageMaker, aws: LocalClients,
                                                                tmp_path: Path) -> None:
    name = unique_name("exported")
    aws.sagemaker.create_training_job(**aws.training_request(name))
    aws.wait(name)
    env = cli_env(SAGEMAKER_PLUGIN_ENDPOINT_URL=server.url, **server.credentials.env())
    done = subprocess.run([str(SCRIPT), "status", name], capture_output=True, text=True, cwd=tmp_path, env=env,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{name}: SUCCEEDED")


def test_local_serve_refuses_a_non_loopback_host_without_the_flag(tmp_path: Path) -> None:
    done = subprocess.run([str(SCRIPT), "local", "serve", "--host", "0.0.0.0"], capture_output=True, text=True,
                          cwd=tmp_path, env=cli_env(), timeout=60)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "--host: 0.0.0.0 is not a loopback address" in done.stderr and "--allow-remote" in done.stderr


# --- the Python API starts its own ------------------------------------------------------------------------------------

API_SCRIPT = """
import json, sys, time
from plugin import registry
from plugin.config import parse_config

config = parse_config({"backend": "local", "local": {"time_scale": 20}})
task = {"task_type": "sagemaker_custom_training_job_task",
        "training_job": {"algorithm_specification": {"algorithm_name": "CUSTOM"},
                         "training_job_resource_config": {"instance_type": "ml.m5.xlarge", "instance_count": 1}},
        "container": {"image": %(image)r, "command": [sys.executable, "-c", "print('trained')"]},
        "inputs": {"train": "train.csv"}}
plugin = registry.get(task["task_type"], config=config)
meta = plugin.create(task)
while not (resource := plugin.get(meta)).phase.is_terminal:
    time.sleep(0.1)
again = registry.get(task["task_type"], config=config).client()  # a second plugin: the same server
print(json.dumps({"phase": resource.phase.name, "endpoint": meta.endpoint_url, "again": again.endpoint_url}))
"""


def test_the_python_api_starts_a_local_sagemaker_once_and_it_ends_with_the_process(tmp_path: Path) -> None:
    (tmp_path / "train.csv").write_text("1,2,3\n")
    done = subprocess.run([sys.executable, "-c", API_SCRIPT % {"image": CUSTOM_IMAGE}], capture_output=True,
                          text=True, cwd=tmp_path, env=cli_env(PYTHONPATH=str(ROOT)), timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["phase"] == "SUCCEEDED"
    assert result["endpoint"] == result["again"]
    endpoint = urlsplit(result["endpoint"])
    assert endpoint.hostname == "127.0.0.1"
    with pytest.raises(OSError), socket.create_connection((endpoint.hostname, endpoint.port or 80), timeout=2):
        pass  # stopped at exit


def test_local_serve_beyond_loopback_warns_why_it_is_dangerous(monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """With --allow-remote: the warning, then the same lines (the server is faked: tests bind loopback only)."""
    from plugin import embedded
    from plugin.cli import main

    class Fake:
        url = "http://192.0.2.10:4566"
        credentials = generate_credentials()

    served: list[tuple[str, bool]] = []

    def fake_serve(config: Any, port: int, host: str, *, allow_remote: bool, ready: Any) -> None:
        served.append((host, allow_remote))
        ready(Fake())

    monkeypatch.setattr(embedded, "serve", fake_serve)
    assert main(["local", "serve", "--host", "192.0.2.10", "--port", "4566", "--allow-remote"]) == 0
    out, err = capsys.readouterr()
    assert served == [("192.0.2.10", True)]
    assert err.startswith("WARNING: serving on 192.0.2.10, not on loopback: anyone who can reach this port")
    assert "run any command on this machine" in err
    assert f"export AWS_ACCESS_KEY_ID={Fake.credentials.access_key_id}" in out.splitlines()
