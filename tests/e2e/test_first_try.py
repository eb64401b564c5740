"""End to end, the command line a newcomer meets first (issue 14): --version, --help, exit codes, a dead endpoint,
Ctrl-C at any moment, bad job names, local log links, checks that would otherwise fail only on AWS.

The real console script in subprocesses, with the no-AWS helpers of cli_e2e.py (tests/support).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import cli_e2e as E
from cli_in_process import cli_here

pytestmark = pytest.mark.timeout(180)


EXIT_CODE_LINES = ("0    success", "1    run: the job ended in another phase", "2    invalid input or usage",
                   "3    an AWS or network error", "130  interrupted")


@pytest.fixture
def closed_url() -> Iterator[str]:
    with socket.socket() as sock:  # bound, never listening: connections are refused, nobody else gets the port
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture(scope="module")
def long_served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A local SageMaker whose jobs train for minutes: Ctrl-C always meets them running."""
    with E.serving(tmp_path_factory.mktemp("long"), timeline={**E.SERVED_TIMELINE, "Training": 600}) as server:
        yield server


# --- a dead local endpoint -----------------------------------------------------------------------------------------


def test_a_dead_local_endpoint_is_given_up_at_once_saying_what_is_retried(tmp_path: Path, closed_url: str) -> None:
    """The default retry policy (8 attempts, up to 20 s apart): a refused loopback connection gets one quick retry.
    status by the console script, run in process."""
    work = E.copy_examples(tmp_path / "examples")
    config = E.write_config(tmp_path / "config.yaml", local={"endpoint_url": closed_url})
    for args in (["status", "some-job"], ["run", work / "xgboost.yaml"]):
        result = (E.cli if args[0] == "status" else cli_here)([*args, "--config", config], work, timeout=60)
        assert result.returncode == 3, result.stderr
        E.assert_no_traceback(result.stderr)
        lines = result.stderr.splitlines()
        assert re.fullmatch(rf"retrying \w+ in 0\.\d s: connection refused by {closed_url} \(attempt 2 of 2\)",
                            lines[0]), lines
        said = re.search(r"failed after 2 attempts over (\d+\.\d) s: could not connect to the endpoint", lines[-1])
        assert said, lines[-1]
        assert float(said.group(1)) < 2.0  # the call's own time, sleeps included: not half a minute of backoff
        assert "nothing listens on that port" in lines[-1] and "sagemaker-plugin local serve" in lines[-1]


# --- --version, --help ----------------------------------------------------------------------------------------------


def test_version(tmp_path: Path) -> None:
    from importlib.metadata import version

    result = cli_here(["--version"], tmp_path)
    assert (result.returncode, result.stdout, result.stderr) == (0, f"sagemaker-plugin {version('sagemaker-plugin')}\n",
                                                                 "")


COMMANDS = [[], ["validate"], ["render"], ["images"], ["run"], ["status"], ["stop"], ["logs"], ["local", "serve"]]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "top")
def test_help_lists_the_exit_codes(command: list[str], tmp_path: Path) -> None:
    """The console script's own top-level help; each command's help in process (the same parser)."""
    result = (cli_here if command else E.cli)([*command, "--help"], tmp_path)
    assert result.returncode == 0 and result.stderr == ""
    for line in EXIT_CODE_LINES:
        assert line in result.stdout, (line, result.stdout)


def test_help_describes_every_argument() -> None:
    from plugin.cli import build_parser

    def walk(parser: Any, path: str) -> Iterator[tuple[str, Any]]:
        for action in parser._actions:
            choices = getattr(action, "choices", None)
            if isinstance(choices, dict):  # subcommands
                for name, sub in choices.items():
                    yield from walk(sub, f"{path} {name}")
            else:
                yield path, action

    undescribed = [(path, action.dest) for path, action in walk(build_parser(), "sagemaker-plugin")
                   if not action.help]
    assert undescribed == []


# --- images ---------------------------------------------------------------------------------------------------------


def test_images_without_a_region_lists_the_configs_region(tmp_path: Path) -> None:
    config = E.write_config(tmp_path / "config.yaml", region="eu-west-1")
    result = E.cli(["images", "--json", "--config", config], tmp_path)
    assert result.returncode == 0, result.stderr
    regions = {line.split('"region": "')[1].split('"')[0] for line in result.stdout.splitlines()}
    assert regions == {"eu-west-1"}
    every = cli_here(["images", "--json", "--all-regions", "--config", config], tmp_path)
    assert len(every.stdout.splitlines()) > 10 * len(result.stdout.splitlines())


# --- bad job names --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["status", "stop", "logs"])
def test_a_job_name_sagemaker_would_refuse_is_bad_input(command: str, tmp_path: Path, closed_url: str) -> None:
    """Checked against the service model's pattern before any call: exit 2 even with a dead endpoint (status by the
    console script, the others in process)."""
    config = E.write_config(tmp_path / "config.yaml", local={"endpoint_url": closed_url})
    result = (E.cli if command == "status" else cli_here)([command, "bad name!!", "--config", config], tmp_path)
    assert result.returncode == 2, result.stderr
    E.assert_no_traceback(result.stderr)
    assert result.stderr.startswith("error: 1 problem found:\n  JOB_NAME: 'bad name!!' contains a space and '!', "
                                    "which SageMaker's TrainingJobName does not allow (Member must satisfy regular "
                                    "expression pattern: "), result.stderr
    assert "retrying" not in result.stderr


# --- Ctrl-C ---------------------------------------------------------------------------------------------------------


def _seconds_until_the_entry_loads(tmp_path: Path) -> float:
    """How long Python takes here now to start and reach the console script's entry (site, the editable install's
    finder, the module itself): before that no Python program can answer Ctrl-C, so the delays below count from
    there. The slowest of three."""
    times = []
    for _ in range(3):
        started = time.monotonic()
        subprocess.run([sys.executable, "-c", "import re, sagemaker_plugin"], cwd=tmp_path, env=E.cli_env(tmp_path),
                       check=True)
        times.append(time.monotonic() - started)
    return max(times)


@pytest.mark.parametrize("delay", [0.05, 0.2, 0.4, 0.7])
def test_ctrl_c_while_the_command_starts_exits_130_without_a_traceback(delay: float, tmp_path: Path,
                                                                       closed_url: str) -> None:
    """While the plugin's modules, the standard library's and boto3 load (seconds on a busy machine): an
    interruption, not a crash. The console script's entry (sagemaker_plugin.py) answers Ctrl-C from its first line."""
    config = E.write_config(tmp_path / "config.yaml", local={"endpoint_url": closed_url})
    startup = _seconds_until_the_entry_loads(tmp_path)
    proc = subprocess.Popen([str(E.SCRIPT), "status", "some-job", "--config", str(config)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=E.cli_env(tmp_path))
    time.sleep(startup + delay)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    if proc.returncode == 3 or " failed after " in err:  # it had already finished its work: too late to interrupt
        pytest.skip(f"the command finished within {delay} s")
    assert proc.returncode == 130, err
    E.assert_no_traceback(err)
    *before, last = err.strip().splitlines()
    assert last == "interrupted", err
    # a quick machine may already be calling: then only its retry lines come first, never anything else
    assert all(line.startswith("retrying ") for line in before), err


def test_the_command_line_module_loads_without_boto3(tmp_path: Path) -> None:
    """What makes Ctrl-C safe while starting: the console script's import of plugin.cli stays light; boto3 (and what
    needs it) is imported inside main, where an interruption is caught. A top-level import of plugin.config,
    plugin.jobs.render or handlers.client in plugin/cli/app.py or plugin/__init__.py breaks this."""
    probe = "import sys, plugin.cli; print(sorted(m for m in ('boto3', 'botocore', 'yaml') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path,
                          env={**E.cli_env(tmp_path), "PYTHONPATH": str(E.REPO)}, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_console_scripts_entry_loads_nothing_before_it_answers_ctrl_c(tmp_path: Path) -> None:
    """The entry installs its SIGINT handler before importing anything Python had not loaded at start (signal aside),
    and the installed console script is that entry."""
    probe = "import sys; before = set(sys.modules); import sagemaker_plugin; print(*sorted(set(sys.modules) - before))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path,
                          env={**E.cli_env(tmp_path), "PYTHONPATH": str(E.REPO)}, timeout=60)
    assert done.returncode == 0, done.stderr
    assert set(done.stdout.split()) <= {"sagemaker_plugin", "signal"}, done.stdout
    assert "from sagemaker_plugin import main" in E.SCRIPT.read_text()


def test_ctrl_c_during_logs_follow_exits_130(long_served: Any) -> None:
    served = long_served
    identity = E.unique("ctrlc-logs")
    task = E.write_task(served.work, identity)
    job = E.expected_job(identity)
    config = ["--config", served.config]
    with E.started(["run", task, *config], served.work) as run:
        run.wait_for(r"^phase RUNNING: Training")
        with E.started(["logs", job, "--follow", *config], served.work) as follow:
            follow.wait_for(r"^\[algo-1\] ")
            follow.popen.send_signal(signal.SIGINT)
            code, _, err = follow.finish()
        run.popen.send_signal(signal.SIGINT)  # stops the job
        run_code, _, run_err = run.finish()
    assert code == 130, err
    E.assert_no_traceback(err)
    assert err.strip() == "interrupted"
    assert run_code == 130, run_err


# --- log links of local jobs ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A local SageMaker whose jobs take ~3 s."""
    with E.serving(tmp_path_factory.mktemp("served"), timeline=E.SERVED_TIMELINE) as server:
        yield server


@pytest.fixture(scope="module")
def served_run(served: Any) -> tuple[str, subprocess.CompletedProcess[str]]:
    """A run of the XGBoost example on the served local SageMaker: (its job, the run)."""
    identity = E.unique("links")
    return E.expected_job(identity), E.cli(["run", E.write_task(served.work, identity), "--config", served.config],
                                           served.work)


def test_local_jobs_link_to_the_commands_that_show_them_not_to_aws(served: Any, served_run: tuple[
        str, subprocess.CompletedProcess[str]]) -> None:
    job, result = served_run
    assert result.returncode == 0, result.stderr
    command = f"SAGEMAKER_PLUGIN_ENDPOINT_URL={served.url} sagemaker-plugin logs {job} --follow --region us-east-1"
    status = cli_here(["status", job, "--config", served.config], served.work)
    for text in (result.stdout, status.stdout):
        assert "console.aws" not in text and "https://" not in text
        assert f"Logs (local SageMaker): {command}" in text.splitlines()
    # The printed command line works as printed, from any folder, with no config.
    shown = subprocess.run(command.replace("sagemaker-plugin", str(E.SCRIPT), 1), shell=True, capture_output=True,
                           text=True, cwd=served.work.parent, env=E.cli_env(served.work), timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines() == E.log_lines(result.stdout) != []


# --- what would pass locally and fail on AWS ------------------------------------------------------------------------


def test_a_custom_image_in_another_regions_ecr_is_refused(tmp_path: Path) -> None:
    work = E.copy_examples(tmp_path / "examples")
    config = E.write_config(tmp_path / "config.yaml")
    image = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/trainer:1.0"

    def change(data: dict[str, Any]) -> None:
        data["container"]["image"] = image

    task = E.write_task(work, "cross-region", base="custom-native.yaml", change=change)
    result = E.cli(["validate", task, "--config", config], work)
    assert result.returncode == 2, result.stdout
    E.assert_no_traceback(result.stderr)
    assert result.stderr.splitlines() == [
        "error: 1 problem found:",
        f"  container.image: {image} is in the ECR of eu-west-1, but the job runs in us-east-1: SageMaker pulls a "
        "training image only from the ECR of the job's own region (AWS refuses the job: cross-region ECR image pulls "
        "are not allowed); push the image to a repository in us-east-1 (ECR replication can copy it), or run the job "
        "in eu-west-1"]
    assert cli_here(["validate", task, "--region", "eu-west-1", "--config", config], work).returncode == 0


def test_run_warns_of_a_metric_definition_that_never_matched(tmp_path: Path) -> None:
    """The example really runs (its own local SageMaker, execution `run`): its script prints the line `train:loss`
    matches, and never the other one."""
    identity = E.unique("nomatch")

    def change(data: dict[str, Any]) -> None:
        data["training_job"]["algorithm_specification"]["metric_definitions"].append(
            {"name": "val:never", "regex": "never-printed=([0-9.]+)"})

    work = E.copy_examples(tmp_path / "examples")
    config = E.write_config(tmp_path / "config.yaml", local={"execution": "run"})
    task = E.write_task(work, identity, base="custom-native.yaml", change=change)
    job = E.expected_job(identity)
    result = E.cli(["run", task, "--no-logs", "--config", config], work, timeout=120)
    assert result.returncode == 0, result.stderr
    assert re.search(r"^metric train:loss = ", result.stdout, re.MULTILINE)
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert warnings == [f"warning: metric 'val:never' never matched a log line (regex 'never-printed=([0-9.]+)'), so "
                        f"the job has no value for it: check the regex against the logs (`sagemaker-plugin logs "
                        f"{job}`)"]


# --- models outlive the command ------------------------------------------------------------------------------------


def test_a_model_from_run_outlives_the_command(tmp_path: Path) -> None:
    """`run` with its own local SageMaker: the model is on disk where it says, and the next local SageMaker serves
    it again at the printed s3:// URI."""
    work = E.copy_examples(tmp_path / "examples")
    config = E.write_config(tmp_path / "config.yaml", local={"time_scale": 10})
    result = E.cli(["run", work / "xgboost.yaml", "--no-logs", "--config", config], tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    uri = re.search(r"^model (s3://\S+)$", result.stdout, re.MULTILINE)
    path = re.search(r"^model file (\S+)$", result.stdout, re.MULTILINE)
    assert uri and path, result.stdout
    kept = Path(path.group(1))
    assert kept.is_relative_to(tmp_path / ".local-data" / "sagemaker-plugin" / "s3")  # $XDG_DATA_HOME
    assert kept.stat().st_size > 0
    assert "every later local SageMaker" in result.stdout

    started = E.start_serve(tmp_path, config)  # the same data folder
    proc, url = started[0], started[1]
    # Once the local SageMaker takes only its own key pair, start_serve also gives the exported variables.
    clients = E.LocalClients(url, credentials=E.keys_of(started[2])) if len(started) > 2 else E.LocalClients(url)
    try:
        bucket, _, key = uri.group(1).removeprefix("s3://").partition("/")
        served = clients.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    finally:
        proc.popen.send_signal(signal.SIGTERM)
        proc.finish()
    assert served == kept.read_bytes()


def test_run_names_a_model_file_only_if_it_holds_this_jobs_model(served: Any, tmp_path: Path) -> None:
    """A served local SageMaker keeps its data in its own folder. The client's config may name another, where a file
    at the model's bucket and key is an earlier job's: never printed as this job's. In the server's own folder, a file
    an earlier job left there is replaced by this job's model, and that is printed. The runs in process: what they
    print is the claim (the other tests here run the console script)."""
    server_data = served.work.parent / ".local-data" / "sagemaker-plugin"  # `local serve` ran with cwd there
    elsewhere = tmp_path / "client-data"
    for label, data_dir, named in (("stale", elsewhere, False), ("kept", server_data, True)):
        identity = E.unique(label)
        job = E.expected_job(identity)
        left = data_dir / "s3" / "sagemaker-plugin-local" / "outputs" / job / "output" / "model.tar.gz"
        left.parent.mkdir(parents=True)
        left.write_bytes(b"an earlier job's model")
        an_hour_ago = time.time() - 3600  # an earlier job's: written before this one was created
        os.utime(left, (an_hour_ago, an_hour_ago))
        config = E.write_config(tmp_path / f"{label}.yaml", local={"endpoint_url": served.url,
                                                                   "time_scale": E.SERVED_TIME_SCALE,
                                                                   "data_dir": str(data_dir)})
        result = cli_here(["run", E.write_task(served.work, identity), "--no-logs", "--config", config], served.work)
        assert result.returncode == 0, result.stderr
        printed = re.findall(r"^model file (\S+)$", result.stdout, re.MULTILINE)
        if not named:
            assert printed == [], result.stdout
            assert left.read_bytes() == b"an earlier job's model"  # still there: it was only not named
            continue
        assert printed == [str(left)], result.stdout
        model = served.aws.s3.get_object(Bucket="sagemaker-plugin-local", Key=f"outputs/{job}/output/model.tar.gz")
        assert left.read_bytes() == model["Body"].read()


def test_run_on_a_served_local_sagemaker_says_how_to_fetch_the_model(served: Any, served_run: tuple[
        str, subprocess.CompletedProcess[str]]) -> None:
    job, result = served_run
    assert result.returncode == 0, result.stderr
    key = f"outputs/{job}/output/model.tar.gz"
    assert (f'  fetch it: boto3.client("s3", endpoint_url="{served.url}").download_file("sagemaker-plugin-local", '
            f'"{key}", "model.tar.gz")') in result.stdout.splitlines()
