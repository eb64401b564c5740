"""Secrets stay secret: AWS credentials, session tokens and `container.env` values never reach error messages, logs,
`status` output or `render` output (unless `render --show-secrets`); YAML is loaded safely.

Credentials are recognizable values set in the environment, where boto3's chain finds them. To see what the plugin
does with what AWS says, a fake AWS answers in place of botocore's HTTP layer (`URLLib3Session.send`): it echoes
back what the request carried (the Authorization header with the access key id, the session token header), as AWS
error messages and proxies do, and the output must still not show any of it.
"""

from __future__ import annotations

import ast
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import botocore.exceptions as bce
import botocore.httpsession
import pytest
import urllib3.exceptions
import yaml
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from hypothesis import given, settings
from hypothesis import strategies as st

from aws_faults import response
from handlers.classify import classify, redact
from handlers.client import SageMakerClient
from handlers.errors import AccessDenied, AwsError, TransientError
from plugin import yamlfile
from plugin.cli import MASK, main

ROOT = Path(__file__).resolve().parents[2]
ACCESS_KEY_ID = "AKIAQWERTYSECRET1234"
SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRETVALUE1"
SESSION_TOKEN = "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQDSESSIONTOKEN6d1e+abc="
ENV = {"DB_PASSWORD": "hunter2-env-secret-9d2f", "API_TOKEN": "tok-5a7e-env-secret-4411"}
CREDENTIALS = (ACCESS_KEY_ID, SECRET_ACCESS_KEY, SESSION_TOKEN)
SECRETS = (*CREDENTIALS, *ENV.values())
SIGNATURE = "Signature="
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/team/trainer:1.0"


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            for piece in (secret, secret[:12], secret[-12:]):
                assert piece not in text, f"{piece!r} leaked in:\n{text}"


def task_text(**changes: Any) -> str:
    task: dict[str, Any] = {
        "task_type": "sagemaker_custom_training_job_task",
        "training_job": {"training_job_resource_config": {"instance_type": "ml.m5.xlarge", "instance_count": 1}},
        "container": {"image": IMAGE, "command": ["python", "train.py"], "env": dict(ENV)},
        "inputs": {"train": "s3://bucket/data/train/"},
        "output_prefix": "s3://bucket/outputs",
        "execution": {"project": "sec", "domain": "development", "name": "secrets", "node_id": "n0",
                      "retry_attempt": 0},
    }
    task.update(changes)
    return json.dumps(task)


@pytest.fixture
def task_file(tmp_path: Path) -> Path:
    path = tmp_path / "task.yaml"
    path.write_text(task_text(), encoding="utf-8")
    return path


@pytest.fixture
def local_config(tmp_path: Path) -> Path:
    path = tmp_path / "local.yaml"
    path.write_text("backend: local\nregion: us-east-1\n", encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SAGEMAKER_PLUGIN_CONFIG", raising=False)
    monkeypatch.delenv("SAGEMAKER_PLUGIN_ENDPOINT_URL", raising=False)


# --- render and validate -------------------------------------------------------------------------------------------


def test_render_masks_environment_values(task_file: Path, local_config: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", "--config", str(local_config), str(task_file)]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["Environment"] == {name: MASK for name in ENV}
    assert_no_secret(out, err)


def test_render_shows_environment_values_when_asked(task_file: Path, local_config: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", "--show-secrets", "--config", str(local_config), str(task_file)]) == 0
    assert json.loads(capsys.readouterr().out)["Environment"] == ENV


def test_validate_never_shows_environment_values(task_file: Path, local_config: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--config", str(local_config), str(task_file)]) == 0
    assert_no_secret(*capsys.readouterr())


@pytest.mark.parametrize("env", [
    {"DB_PASSWORD": ENV["DB_PASSWORD"] * 40},  # longer than SageMaker's 512
    {"DB_PASSWORD": [ENV["DB_PASSWORD"]], "API_TOKEN": {"value": ENV["API_TOKEN"]}},  # wrong types
    {"bad-name": ENV["DB_PASSWORD"], "API_TOKEN": ENV["API_TOKEN"]},  # a bad name next to a value
    {f"K{i}": ENV["API_TOKEN"] for i in range(101)},  # too many
], ids=["too-long", "wrong-types", "bad-name", "too-many"])
@pytest.mark.parametrize("command", ["validate", "render"])
def test_errors_about_the_environment_never_show_its_values(env: dict[str, Any], command: str, tmp_path: Path,
                                                            local_config: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad-env.yaml"
    path.write_text(task_text(container={"image": IMAGE, "env": env}, job_name="bad name!"), encoding="utf-8")
    assert main([command, "--config", str(local_config), str(path)]) == 2
    out, err = capsys.readouterr()
    assert "container.env" in err and "job_name" in err
    assert_no_secret(out, err)


# --- a fake AWS that echoes what it was sent -------------------------------------------------------------------------


Responder = Callable[[AWSPreparedRequest], AWSResponse]


def _header(request: AWSPreparedRequest, name: str) -> str:
    value = request.headers.get(name, b"")
    return value.decode() if isinstance(value, bytes) else str(value)


def _auth_echo(request: AWSPreparedRequest) -> str:
    return (f"Authorization={_header(request, 'Authorization')} "
            f"X-Amz-Security-Token: {_header(request, 'X-Amz-Security-Token')}")


def access_denied(request: AWSPreparedRequest) -> AWSResponse:
    return response(request, 400, {"__type": "AccessDeniedException", "message": (
        "User: arn:aws:sts::123456789012:assumed-role/dev/session is not authorized to perform: "
        f"sagemaker:DescribeTrainingJob because no identity-based policy allows it ({_auth_echo(request)})")})


def incomplete_signature(request: AWSPreparedRequest) -> AWSResponse:
    return response(request, 400, {"__type": "IncompleteSignatureException", "message": (
        f"Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. {_auth_echo(request)}")})


def invalid_token(request: AWSPreparedRequest) -> AWSResponse:
    return response(request, 400, {"__type": "UnrecognizedClientException",
                                   "message": "The security token included in the request is invalid."})


def expired_token(request: AWSPreparedRequest) -> AWSResponse:
    return response(request, 400, {"__type": "ExpiredTokenException",
                                   "message": f"The security token included in the request is expired "
                                              f"(x-amz-security-token={_header(request, 'X-Amz-Security-Token')})"})


def proxy_error_page(request: AWSPreparedRequest) -> AWSResponse:
    """A 502 from a proxy that lists the request headers it got, one `name: value` per line."""
    lines = "\n".join(f"{name}: {_header(request, name)}" for name in request.headers)
    return response(request, 502, f"<html><body><h1>502 Bad Gateway</h1><pre>{lines}</pre></body></html>".encode(),
                    content_type="text/html")


def connection_reset(request: AWSPreparedRequest) -> AWSResponse:
    raise urllib3.exceptions.ProtocolError("Connection aborted.", ConnectionResetError(104, "reset by peer"))


def endpoint_unreachable(request: AWSPreparedRequest) -> AWSResponse:
    raise bce.EndpointConnectionError(endpoint_url=request.url)


FAULTS = [access_denied, incomplete_signature, invalid_token, expired_token, proxy_error_page, connection_reset,
          endpoint_unreachable]


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Recognizable credentials where boto3's chain finds them; nothing else on the chain."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY)
    monkeypatch.setenv("AWS_SESSION_TOKEN", SESSION_TOKEN)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # should the fake below fail: a closed port


@pytest.fixture
def fake_aws(monkeypatch: pytest.MonkeyPatch, aws_credentials: None) -> Callable[[Responder], list[str]]:
    """Install a responder in place of the network; returns the list of requests it answered."""

    def install(responder: Responder) -> list[str]:
        seen: list[str] = []

        def send(self: Any, request: AWSPreparedRequest) -> AWSResponse:
            assert _header(request, "X-Amz-Security-Token") == SESSION_TOKEN  # the chain's credentials are in use
            assert ACCESS_KEY_ID in _header(request, "Authorization")
            seen.append(_header(request, "X-Amz-Target") or request.url)
            return responder(request)

        monkeypatch.setattr(botocore.httpsession.URLLib3Session, "send", send)
        return seen

    return install


@pytest.fixture
def aws_config(tmp_path: Path) -> Path:
    path = tmp_path / "aws.yaml"
    path.write_text("backend: aws\nregion: us-east-1\nrole_arn: arn:aws:iam::123456789012:role/Training\n"
                    "output_prefix: s3://bucket/outputs\nretry: {attempts: 2, backoff_seconds: 0.001, "
                    "max_backoff_seconds: 0.001}\nrate_limits: {create_per_second: 0, read_per_second: 0}\n",
                    encoding="utf-8")
    return path


def _capture_logs(caplog: pytest.LogCaptureFixture) -> None:
    """The plugin's own loggers at DEBUG, every other (botocore, urllib3) at INFO.

    botocore's DEBUG logging prints request headers and bodies; it is botocore's, off unless a user turns it on.
    """
    caplog.set_level(logging.INFO)
    for name in ("handlers", "plugin", "image_registry"):
        caplog.set_level(logging.DEBUG, logger=name)


@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: f.__name__)
def test_status_errors_never_show_credentials(fault: Responder, fake_aws: Callable[[Responder], list[str]],
                                              aws_config: Path, caplog: pytest.LogCaptureFixture,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    _capture_logs(caplog)
    seen = fake_aws(fault)
    assert main(["status", "--config", str(aws_config), "some-job"]) == 3
    out, err = capsys.readouterr()
    *retries, last = err.splitlines()
    assert seen and last.startswith("error: ")
    assert all(line.startswith("retrying DescribeTrainingJob in ") for line in retries), retries  # said as they come
    assert_no_secret(out, err, caplog.text)


@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: f.__name__)
def test_run_errors_never_show_credentials_or_environment(fault: Responder, fake_aws: Callable[[Responder], list[str]],
                                                          aws_config: Path, task_file: Path,
                                                          caplog: pytest.LogCaptureFixture,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    _capture_logs(caplog)
    seen = fake_aws(fault)
    assert main(["run", "--no-logs", "--config", str(aws_config), str(task_file)]) == 3
    out, err = capsys.readouterr()
    assert any("CreateTrainingJob" in s for s in seen)
    assert_no_secret(out, err, caplog.text)


def _validation_echo(request: AWSPreparedRequest) -> AWSResponse:
    """AWS's ValidationException quotes the value at fault: `Value '{K=V, ...}' at 'environment' failed to ...`."""
    body = json.loads(request.body or b"{}")
    shown = ", ".join(f"{k}={v}" for k, v in (body.get("Environment") or {}).items())
    return response(request, 400, {"__type": "ValidationException", "message": (
        f"1 validation error detected: Value '{{{shown}}}' at 'environment' failed to satisfy constraint: Map value "
        "must satisfy constraint: [Member must have length less than or equal to 512, Member must have length "
        "greater than or equal to 0]")})


def test_an_aws_message_quoting_the_environment_is_masked(fake_aws: Callable[[Responder], list[str]],
                                                          aws_config: Path, task_file: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    fake_aws(_validation_echo)
    assert main(["run", "--no-logs", "--config", str(aws_config), str(task_file)]) == 3
    out, err = capsys.readouterr()
    assert "at 'environment'" in err
    assert_no_secret(out, err)


@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: f.__name__)
def test_client_errors_and_retry_logs_never_show_credentials(fault: Responder,
                                                             fake_aws: Callable[[Responder], list[str]],
                                                             caplog: pytest.LogCaptureFixture) -> None:
    """The same at the client: the exception's message, its repr, and the retry log lines."""
    from handlers.client import ClientSettings
    from handlers.ratelimit import RateLimits
    from handlers.retry import RetrySettings

    _capture_logs(caplog)
    fake_aws(fault)
    client = SageMakerClient(ClientSettings(retry=RetrySettings(attempts=3, backoff_seconds=0.001),
                                            rate_limits=RateLimits(0, 0)), sleep=lambda _: None)
    with pytest.raises(AwsError) as raised:
        client.describe_training_job("some-job")
    assert_no_secret(str(raised.value), repr(raised.value), repr(client), caplog.text)
    if fault in (access_denied, invalid_token, expired_token):
        assert isinstance(raised.value, AccessDenied)
    elif fault is not incomplete_signature:  # see test_incomplete_signature_is_a_credentials_problem
        assert isinstance(raised.value, TransientError)


def test_incomplete_signature_is_a_credentials_problem() -> None:
    error = bce.ClientError({"Error": {"Code": "IncompleteSignatureException", "Message": "Authorization header "
                                       "requires 'Credential' parameter."},
                             "ResponseMetadata": {"HTTPStatusCode": 400}}, "DescribeTrainingJob")
    assert isinstance(classify(error, "DescribeTrainingJob"), AccessDenied)


# --- classify and redact on their own ---------------------------------------------------------------------------------

ECHOES = [
    f"Credential={ACCESS_KEY_ID}/20240101/us-east-1/sagemaker/aws4_request, SignedHeaders=host, Signature=0123abcd",
    f"<Error><Code>InvalidAccessKeyId</Code><AWSAccessKeyId>{ACCESS_KEY_ID}</AWSAccessKeyId></Error>",
    f"https://bucket.s3.amazonaws.com/k?X-Amz-Credential={ACCESS_KEY_ID}%2F20240101&X-Amz-Security-Token="
    f"{SESSION_TOKEN}&X-Amz-Signature=abc",
    f"aws_secret_access_key = {SECRET_ACCESS_KEY}",
    f'{{"AccessKeyId": "{ACCESS_KEY_ID}", "SecretAccessKey": "{SECRET_ACCESS_KEY}", "SessionToken": '
    f'"{SESSION_TOKEN}"}}',
    f"AWS_SESSION_TOKEN={SESSION_TOKEN} AWS_SECRET_ACCESS_KEY={SECRET_ACCESS_KEY}",
    f"x-amz-security-token: {SESSION_TOKEN}",
    f"the key '{ACCESS_KEY_ID}' is not valid",
]


@pytest.mark.parametrize("text", ECHOES)
def test_redact_masks_credentials(text: str) -> None:
    masked = redact(text)
    for secret in CREDENTIALS:
        assert secret not in masked


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(before=st.text(max_size=20), sep=st.sampled_from([" ", "=", ":", "/", "'", '"', "(", "<", ">", ",", "\n", "\t"]),
       after=st.sampled_from([" ", "/20240101", "'", '"', ")", "<", ",", "\n"]), tail=st.text(max_size=20),
       key=st.from_regex(r"(AKIA|ASIA)[A-Z0-9]{16}", fullmatch=True))
def test_redact_masks_any_access_key_id(before: str, sep: str, after: str, tail: str, key: str) -> None:
    """An access key id (20 characters) between any separators, in any text."""
    assert key not in redact(f"{before}{sep}{key}{after}{tail}")
    assert redact(f"{sep}{key}{after}").count("*" * 16) == 1


@pytest.mark.parametrize("error", [
    bce.NoCredentialsError(),
    bce.PartialCredentialsError(provider="env", cred_var="AWS_SECRET_ACCESS_KEY"),
    bce.ClientError({"Error": {"Code": "AccessDenied", "Message": f"Credential={ACCESS_KEY_ID}/x"},
                     "ResponseMetadata": {"HTTPStatusCode": 403}}, "CreateTrainingJob"),
    bce.ClientError({"Error": {"Code": "InternalError", "Message": f"token {'x-amz-security-token'}={SESSION_TOKEN}"},
                     "ResponseMetadata": {"HTTPStatusCode": 500}}, "DescribeTrainingJob"),
    bce.EndpointConnectionError(endpoint_url="https://sagemaker.us-east-1.amazonaws.com/"),
], ids=["no-credentials", "partial", "access-denied", "server-error", "endpoint"])
def test_classify_never_carries_credentials(error: Exception) -> None:
    classified = classify(error, "CreateTrainingJob", attempts=3, elapsed=1.0)
    assert_no_secret(str(classified), repr(classified))


# --- status, logs and run against a moto server: no environment values ----------------------------------------------


@pytest.fixture
def moto_config(tmp_path: Path, endpoint: str) -> Path:
    """A config file for the module's moto server (`endpoint`, tests/conftest.py)."""
    path = tmp_path / "moto.yaml"
    path.write_text(f"backend: local\nlocal: {{endpoint_url: '{endpoint}'}}\n"
                    "retry: {attempts: 2, backoff_seconds: 0.001}\n"
                    "rate_limits: {create_per_second: 0, read_per_second: 0}\n", encoding="utf-8")
    return path


@pytest.fixture
def described_with_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """AWS's DescribeTrainingJob returns the job's Environment; moto 5 leaves it out, so put it back."""
    original = SageMakerClient.call

    def call(self: SageMakerClient, service: str, operation: str, **params: Any) -> dict[str, Any]:
        result = original(self, service, operation, **params)
        if operation == "DescribeTrainingJob":
            result = {**result, "Environment": dict(ENV)}
        return result

    monkeypatch.setattr(SageMakerClient, "call", call)


def test_run_status_logs_and_stop_never_show_environment_values(tmp_path: Path, moto_config: Path,
                                                                described_with_environment: None,
                                                                caplog: pytest.LogCaptureFixture,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    _capture_logs(caplog)
    task = tmp_path / "env-task.yaml"
    name = f"sec-env-{tmp_path.name[-12:]}".replace("_", "-")
    task.write_text(task_text(job_name=name), encoding="utf-8")
    outputs: list[str] = []
    for argv in (["run", "--poll", "0.05", str(task)], ["run", "--json", "--poll", "0.05", str(task)],
                 ["status", name], ["status", "--json", name], ["logs", name], ["stop", name]):
        code = main([argv[0], "--config", str(moto_config), *argv[1:]])
        out, err = capsys.readouterr()
        assert code == 0, (argv, err)
        outputs += [out, err]
    assert "SUCCEEDED" in outputs[4]  # status saw the job
    assert json.loads(outputs[6])["job_name"] == name
    assert_no_secret(*outputs, caplog.text)


# --- YAML is loaded safely --------------------------------------------------------------------------------------------

PAYLOADS = [
    "!!python/object/apply:os.system ['touch {marker}']",
    "!!python/object/apply:subprocess.check_call [['touch', '{marker}']]",
    "!!python/object/new:subprocess.Popen [['touch', '{marker}']]",
    "!!python/object/apply:builtins.exec [\"open('{marker}', 'w').close()\"]",
    "!!python/name:os.system",
]


@pytest.mark.parametrize("payload", PAYLOADS)
@pytest.mark.parametrize("where", ["task", "config"])
def test_python_tags_are_refused_and_never_run(payload: str, where: str, tmp_path: Path, task_file: Path,
                                               local_config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    marker = tmp_path / "pwned"
    line = f"job_name: {payload.format(marker=marker)}\n" if where == "task" else \
        f"role_arn: {payload.format(marker=marker)}\n"
    target = task_file if where == "task" else local_config
    target.write_text((target.read_text(encoding="utf-8") if where == "config" else "") + line +
                      ("" if where == "config" else "task_type: sagemaker_custom_training_job_task\n"),
                      encoding="utf-8")
    code = main(["validate", "--config", str(local_config), str(task_file)])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert str(target) in err and "could not determine a constructor" in err
    assert not marker.exists()


def test_the_loader_is_a_safe_loader() -> None:
    for loader in (yamlfile._StrictLoader, yamlfile._StrictPyLoader):
        assert issubclass(loader, yaml.constructor.SafeConstructor)
        assert not issubclass(loader, yaml.constructor.FullConstructor)
    with pytest.raises(Exception, match="constructor"):
        yamlfile.parse_text("a: !!python/object/apply:os.getcwd []", "x")


UNSAFE_CALLS = {"load", "load_all", "unsafe_load", "unsafe_load_all", "full_load", "full_load_all"}
UNSAFE_LOADERS = {"Loader", "UnsafeLoader", "FullLoader"}


def test_no_module_loads_yaml_unsafely() -> None:
    """Every YAML read goes through a safe loader: no yaml.load/unsafe_load/full_load, no Loader/FullLoader."""
    found: list[str] = []
    for package in ("plugin", "handlers", "image_registry", "local_sagemaker"):
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "yaml" \
                        and node.attr in UNSAFE_CALLS | UNSAFE_LOADERS:
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno} yaml.{node.attr}")
                if isinstance(node, ast.ImportFrom) and node.module == "yaml":
                    found += [f"{path.relative_to(ROOT)}:{node.lineno} from yaml import {a.name}" for a in node.names
                              if a.name in UNSAFE_CALLS | UNSAFE_LOADERS]
    assert found == []
