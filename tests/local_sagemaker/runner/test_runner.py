"""`execution: run`: jobs whose hosts are real processes on this machine, fed and collected as SageMaker does.

Each test writes a small training script to its own folder and runs it as a custom image's ContainerEntrypoint (or,
for MPI, as the training toolkit's sagemaker_program); what the script sees and does is checked from outside,
through the API, the local S3, CloudWatch Logs and the process table.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from local_sagemaker import FailureRule, LocalSageMaker, LocalSettings
from local_sagemaker.testing import CUSTOM_IMAGE, DATA_BUCKET, LocalClients, unique_name
from runner_jobs import create, logs, model_files, script

pytestmark = pytest.mark.timeout(120)

# tests/conftest.py runs this module's local SageMaker (`server`, and `aws` on it) with LOCAL_SETTINGS.
LOCAL_SETTINGS = LocalSettings(
    execution="run",
    stop_seconds=1,
    failures=(FailureRule(name_pattern="runfail-.*", at="Training", reason="AlgorithmError: injected (run mode)"),),
)
CALLER_SECRET = "caller-secret-never-in-a-job"


def wait(aws: LocalClients, name: str, timeout: float = 60.0) -> dict[str, Any]:
    """The job once it has ended, asked for every 0.2 s: every wait here is for its end, and each DescribeTrainingJob
    costs CPU (runner_jobs.wait asks every 50 ms)."""
    return aws.wait(name, timeout=timeout, interval=0.2)


def alive(pid: int) -> bool:
    """Whether `pid` is a live process (a zombie counts as dead)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state != "Z"


def statuses(job: Mapping[str, Any]) -> list[str]:
    return [t["Status"] for t in job["SecondaryStatusTransitions"]]


# --- a job that works -------------------------------------------------------------------------------------------

def test_a_script_trains_logs_its_metrics_and_its_model_is_uploaded(aws: LocalClients, tmp_path: Path) -> None:
    path = script(tmp_path, """
        import os, time
        for epoch in range(3):
            print(f"epoch {epoch} loss={1.0 / (epoch + 1):.4f}", flush=True)
        with open(os.path.join(os.environ["SM_MODEL_DIR"], "weights.txt"), "w") as out:
            out.write(os.environ["SM_CURRENT_HOST"])
        os.makedirs(os.environ["SM_OUTPUT_DATA_DIR"], exist_ok=True)
        with open(os.path.join(os.environ["SM_OUTPUT_DATA_DIR"], "report.txt"), "w") as out:
            out.write("done")
    """)
    name = unique_name("runok")
    create(aws, name, ["python", str(path)], instance_count=2,
           AlgorithmSpecification={"TrainingImage": CUSTOM_IMAGE, "TrainingInputMode": "File",
                                   "MetricDefinitions": [{"Name": "train:loss", "Regex": "loss=([0-9.]+)"}]})
    job = wait(aws, name)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert statuses(job) == ["Starting", "Downloading", "Training", "Uploading", "Completed"]
    assert [(m["MetricName"], m["Value"]) for m in job["FinalMetricDataList"]] == [("train:loss", pytest.approx(1 / 3,
                                                                                                          abs=1e-4))]
    lines = logs(aws, name)
    assert set(lines) == {"algo-1", "algo-2"}
    for host in lines.values():
        assert host[0].startswith(f"local SageMaker: image {CUSTOM_IMAGE} is not pulled")
        assert host[1:] == ["epoch 0 loss=1.0000", "epoch 1 loss=0.5000", "epoch 2 loss=0.3333"]
    # Both hosts wrote weights.txt; the archive holds one, algo-1's.
    assert model_files(aws, job) == {"weights.txt": b"algo-1"}
    output = aws.s3.get_object(Bucket=DATA_BUCKET, Key=f"output/{name}/output/output.tar.gz")["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(output)) as archive:
        assert archive.extractfile("report.txt").read() == b"done"  # type: ignore[union-attr]
    assert job["TrainingTimeInSeconds"] == job["BillableTimeInSeconds"] >= 0
    assert job["TrainingEndTime"] >= job["TrainingStartTime"]


def test_lines_reach_the_logs_while_the_script_runs(aws: LocalClients, tmp_path: Path) -> None:
    path = script(tmp_path, """
        import time
        print("first line", flush=True)
        time.sleep(30)
    """)
    name = unique_name("runlive")
    create(aws, name, ["python", str(path)])
    deadline = time.monotonic() + 20
    while "first line" not in logs(aws, name).get("algo-1", []):
        assert time.monotonic() < deadline, "the line never reached the log while the job ran"
        time.sleep(0.1)
    running = aws.sagemaker.describe_training_job(TrainingJobName=name)
    assert (running["TrainingJobStatus"], running["SecondaryStatus"]) == ("InProgress", "Training")
    aws.sagemaker.stop_training_job(TrainingJobName=name)
    assert wait(aws, name)["TrainingJobStatus"] == "Stopped"


# --- failures -----------------------------------------------------------------------------------------------------

def test_a_script_that_exits_3_fails_the_job_with_its_error_output_and_exit_code(aws: LocalClients,
                                                                                  tmp_path: Path) -> None:
    path = script(tmp_path, """
        import sys
        print("about to fail", flush=True)
        print("Traceback: something broke", file=sys.stderr)
        print("ValueError: the data is bad", file=sys.stderr)
        sys.exit(3)
    """)
    name = unique_name("runexit")
    create(aws, name, ["python", str(path)])
    job = wait(aws, name)
    assert job["TrainingJobStatus"] == "Failed"
    assert statuses(job) == ["Starting", "Downloading", "Training", "Failed"]
    reason = job["FailureReason"]
    assert reason.startswith("AlgorithmError: ")
    assert "Traceback: something broke\nValueError: the data is bad" in reason
    assert "ExitCode 3" in reason
    assert "ModelArtifacts" not in job
    assert "ValueError: the data is bad" in logs(aws, name)["algo-1"]


def test_the_failure_file_is_the_failure_reason(aws: LocalClients, tmp_path: Path) -> None:
    path = script(tmp_path, """
        import os, sys
        print("noise on stderr", file=sys.stderr)
        with open(os.path.join(os.environ["SM_OUTPUT_DIR"], "failure"), "w") as f:
            f.write("the learning rate is too high")
        sys.exit(1)
    """)
    name = unique_name("runfailfile")
    create(aws, name, ["python", str(path)])
    job = wait(aws, name)
    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"] == "AlgorithmError: the learning rate is too high"


def test_without_an_entrypoint_the_job_fails_at_training_saying_what_to_add(aws: LocalClients) -> None:
    name = unique_name("runnoentry")
    create(aws, name, None)
    job = wait(aws, name)
    assert job["TrainingJobStatus"] == "Failed"
    assert statuses(job) == ["Starting", "Downloading", "Training", "Failed"]
    assert "container.command" in job["FailureReason"]
    assert "sagemaker_program" in job["FailureReason"]


def test_a_program_that_does_not_exist_fails_the_job(aws: LocalClients) -> None:
    name = unique_name("runnoprog")
    create(aws, name, ["no-such-program-here", "--x"])
    job = wait(aws, name)
    assert job["TrainingJobStatus"] == "Failed"
    assert "cannot start no-such-program-here --x on algo-1" in job["FailureReason"]


def test_failure_rules_apply_in_run_mode(aws: LocalClients, tmp_path: Path) -> None:
    path = script(tmp_path, "print('never runs')\n")
    name = unique_name("runfail")
    create(aws, name, ["python", str(path)])
    job = wait(aws, name)
    assert (job["TrainingJobStatus"], job["FailureReason"]) == ("Failed", "AlgorithmError: injected (run mode)")
    assert statuses(job)[-2:] == ["Training", "Failed"]
    lines = logs(aws, name)["algo-1"]
    assert "never runs" not in lines
    assert lines == ["local SageMaker: this job fails at Training (local.failures): "
                     "AlgorithmError: injected (run mode)"]


def test_an_empty_channel_fails_the_job_at_downloading(aws: LocalClients) -> None:
    name = unique_name("runempty")
    aws.put_data("other/x")  # the bucket exists, the prefix holds nothing
    create(aws, name, ["python", "-c", "pass"], channels={"train": f"s3://{DATA_BUCKET}/nothing-here/"})
    job = wait(aws, name)
    assert job["TrainingJobStatus"] == "Failed"
    assert statuses(job) == ["Starting", "Downloading", "Failed"]
    assert job["FailureReason"].startswith("ClientError: No S3 objects found under S3 URL")


# --- stopping -----------------------------------------------------------------------------------------------------

STUBBORN = """
    import os, signal, subprocess, sys, time
    signal.signal(signal.SIGTERM, lambda *_: print("ignoring SIGTERM", flush=True))
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    with open(sys.argv[1], "w") as out:
        out.write(f"{os.getpid()} {child.pid}")
    print("running", flush=True)
    while True:
        time.sleep(0.1)
"""


def test_a_script_that_ignores_sigterm_is_killed_after_the_grace_period(aws: LocalClients, tmp_path: Path) -> None:
    path = script(tmp_path, STUBBORN)
    pids_file = tmp_path / "pids"
    name = unique_name("runstop")
    create(aws, name, ["python", str(path), str(pids_file)])
    aws.wait(name, until=lambda job: "running" in logs(aws, name).get("algo-1", []), timeout=60, interval=0.1)
    pids = [int(p) for p in pids_file.read_text().split()]
    assert all(alive(pid) for pid in pids)
    stopped_at = time.monotonic()
    aws.sagemaker.stop_training_job(TrainingJobName=name)
    assert aws.sagemaker.describe_training_job(TrainingJobName=name)["TrainingJobStatus"] == "Stopping"
    job = wait(aws, name)
    took = time.monotonic() - stopped_at
    assert job["TrainingJobStatus"] == "Stopped"
    assert statuses(job) == ["Starting", "Downloading", "Training", "Stopping", "Stopped"]
    assert took >= 0.9, "SIGKILL came before the grace period (stop_seconds 1)"
    assert "ignoring SIGTERM" in logs(aws, name)["algo-1"]
    deadline = time.monotonic() + 5
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [pid for pid in pids if alive(pid)], "the script or its child outlived the job"


#: An MPI rank that ignores SIGTERM, after writing its pid into the folder named by $PIDS.
FOREVER = """
    import os, signal, time
    from mpi4py import MPI
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    with open(os.path.join(os.environ["PIDS"], str(os.getpid())), "w"):
        pass
    print("rank", MPI.COMM_WORLD.Get_rank(), "waiting", flush=True)
    while True:
        time.sleep(0.1)
"""


def test_max_runtime_stops_the_job(aws: LocalClients, tmp_path: Path) -> None:
    path = script(tmp_path, "import time\nprint('sleeping', flush=True)\ntime.sleep(60)\n")
    name = unique_name("runmax")
    create(aws, name, ["python", str(path)], max_runtime=2)
    job = wait(aws, name)
    assert (job["TrainingJobStatus"], job["SecondaryStatus"]) == ("Stopped", "MaxRuntimeExceeded")
    assert "FailureReason" not in job
    elapsed = (job["TrainingEndTime"] - job["CreationTime"]).total_seconds()
    assert 2 <= elapsed < 10


def test_max_wait_stops_a_spot_job(aws: LocalClients, tmp_path: Path) -> None:
    """Spot: MaxWait counts from creation, MaxRuntime from Downloading; with both at 2 s, MaxWait comes first."""
    path = script(tmp_path, "import time\ntime.sleep(60)\n")
    name = unique_name("runwait")
    create(aws, name, ["python", str(path)], EnableManagedSpotTraining=True,
           StoppingCondition={"MaxRuntimeInSeconds": 2, "MaxWaitTimeInSeconds": 2})
    job = wait(aws, name)
    assert (job["TrainingJobStatus"], job["SecondaryStatus"]) == ("Stopped", "MaxWaitTimeExceeded")


def test_stopping_the_server_kills_every_job_process(tmp_path: Path) -> None:
    path = script(tmp_path, STUBBORN)
    pids_file = tmp_path / "pids"
    with LocalSageMaker(LocalSettings(execution="run"), reset=False) as server:
        aws = LocalClients(server.url)
        name = unique_name("runserverstop")
        create(aws, name, ["python", str(path), str(pids_file)])
        aws.wait(name, until=lambda job: pids_file.exists() and pids_file.read_text().count(" ") == 1, timeout=30,
                 interval=0.1)
        pids = [int(p) for p in pids_file.read_text().split()]
    assert not [pid for pid in pids if alive(pid)], "a job process outlived LocalSageMaker.stop()"


def test_job_processes_die_when_their_server_is_killed_hard(tmp_path: Path) -> None:
    """SIGKILL of the server's process: the kernel (PR_SET_PDEATHSIG) and the reaper kill every job's processes,
    an MPI job's ranks too (Open MPI puts each rank in a group of its own; the reaper kills mpirun's session)."""
    path = script(tmp_path, STUBBORN)
    pids_file = tmp_path / "pids"
    rank_pids = tmp_path / "ranks"
    rank_pids.mkdir()
    script(tmp_path, FOREVER, name="forever.py")
    serving = script(tmp_path, f"""
        import sys, time
        from local_sagemaker import LocalSageMaker, LocalSettings
        from local_sagemaker.testing import CUSTOM_IMAGE, LocalClients
        with LocalSageMaker(LocalSettings(execution="run")) as server:
            aws = LocalClients(server.url)
            request = aws.training_request("hardkill", image=CUSTOM_IMAGE)
            request["AlgorithmSpecification"]["ContainerEntrypoint"] = ["python", {str(path)!r}, {str(pids_file)!r}]
            aws.sagemaker.create_training_job(**request)
            hyperparameters = {{"sagemaker_mpi_enabled": "true", "sagemaker_mpi_num_of_processes_per_host": "1",
                               "sagemaker_program": "forever.py", "sagemaker_submit_directory": {str(tmp_path)!r}}}
            aws.sagemaker.create_training_job(**aws.training_request(
                "hardkill-mpi", image=CUSTOM_IMAGE, instance_count=2, hyperparameters=hyperparameters,
                Environment={{"PIDS": {str(rank_pids)!r}}}))
            time.sleep(600)
    """, name="serve.py")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[3]),
                                                        os.environ.get("PYTHONPATH", "")])}
    before = set(Path(tempfile.gettempdir()).glob("local-sagemaker-*"))
    server = subprocess.Popen([sys.executable, str(serving)], env=env, stdout=subprocess.DEVNULL)
    pids: list[int] = []
    try:
        deadline = time.monotonic() + 90
        while not (pids_file.exists() and pids_file.read_text().count(" ") == 1 and
                   len(list(rank_pids.iterdir())) == 2):
            assert server.poll() is None and time.monotonic() < deadline, "the jobs never started"
            time.sleep(0.1)
        pids = [int(p) for p in pids_file.read_text().split()] + [int(p.name) for p in rank_pids.iterdir()]
        assert all(alive(pid) for pid in pids)
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=10)
        deadline = time.monotonic() + 10
        while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [pid for pid in pids if alive(pid)], "a job process outlived its SIGKILLed server"

        def left() -> list[Path]:
            """Host folders of this test's jobs still on disk (other servers may be running meanwhile)."""
            return [folder for root in set(Path(tempfile.gettempdir()).glob("local-sagemaker-*")) - before
                    for folder in root.glob("hardkill-*")]

        while left() and time.monotonic() < deadline + 5:
            time.sleep(0.1)
        assert not left(), "the jobs' folders outlived their SIGKILLed server"
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        for pid in pids:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


# --- data in ------------------------------------------------------------------------------------------------------

def test_sharded_by_s3_key_gives_each_host_its_part(aws: LocalClients, tmp_path: Path) -> None:
    prefix = f"shards/{unique_name('data')}"
    aws.put_data(f"{prefix}-bucket")  # the bucket, whichever test runs first
    for index in range(5):
        aws.s3.put_object(Bucket=DATA_BUCKET, Key=f"{prefix}/part-{index}.csv", Body=f"{index}\n".encode())
    path = script(tmp_path, """
        import os
        print(sorted(os.listdir(os.environ["SM_CHANNEL_TRAIN"])), flush=True)
    """)
    for distribution, expected in (
        ("ShardedByS3Key", {"algo-1": ["part-0.csv", "part-2.csv", "part-4.csv"],
                            "algo-2": ["part-1.csv", "part-3.csv"]}),
        ("FullyReplicated", {f"algo-{n}": [f"part-{i}.csv" for i in range(5)] for n in (1, 2)}),
    ):
        name = unique_name("runshard")
        request = aws.training_request(name, image=CUSTOM_IMAGE, instance_count=2,
                                       channels={"train": f"s3://{DATA_BUCKET}/{prefix}/"})
        request["AlgorithmSpecification"]["ContainerEntrypoint"] = ["python", str(path)]
        request["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3DataDistributionType"] = distribution
        aws.sagemaker.create_training_job(**request)
        assert wait(aws, name)["TrainingJobStatus"] == "Completed"
        assert {host: lines[-1] for host, lines in logs(aws, name).items()} == {
            host: str(files) for host, files in expected.items()}


def test_a_script_reads_its_data_with_boto3_from_the_job_env_only(aws: LocalClients, tmp_path: Path,
                                                                   server: LocalSageMaker,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The caller's AWS settings never reach a job; boto3 in the job reaches the local SageMaker and nothing else."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", CALLER_SECRET)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", CALLER_SECRET)
    monkeypatch.setenv("AWS_SESSION_TOKEN", CALLER_SECRET)
    monkeypatch.setenv("AWS_PROFILE", "caller-profile")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "caller-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "caller-config"))
    monkeypatch.setenv("SAGEMAKER_PLUGIN_ENDPOINT_URL", "http://127.0.0.1:1")
    train = aws.put_data(f"boto/{unique_name('d')}", body=b"42,1,2\n")
    path = script(tmp_path, """
        import json, os, boto3
        bucket, prefix = os.environ["DATA_URI"][len("s3://"):].split("/", 1)
        s3 = boto3.client("s3")
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]]
        body = s3.get_object(Bucket=bucket, Key=keys[0])["Body"].read().decode()
        print("read", keys[0].rsplit("/", 1)[-1], body.strip(), flush=True)
        print("endpoint", s3.meta.endpoint_url, flush=True)
        with open(os.path.join(os.environ["SM_MODEL_DIR"], "env.json"), "w") as out:
            json.dump(dict(os.environ), out)
    """)
    name = unique_name("runboto")
    create(aws, name, ["python", str(path)], channels={"train": train}, Environment={"DATA_URI": train})
    job = wait(aws, name)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    lines = logs(aws, name)["algo-1"]
    assert "read part-0.csv 42,1,2" in lines
    assert f"endpoint {server.url}" in lines
    env = json.loads(model_files(aws, job)["env.json"])
    assert not [key for key, value in env.items() if CALLER_SECRET in value or "caller-" in value]
    assert "AWS_PROFILE" not in env and "AWS_SESSION_TOKEN" not in env and "SAGEMAKER_PLUGIN_ENDPOINT_URL" not in env
    assert env["AWS_ENDPOINT_URL"] == server.url
    assert env["AWS_SHARED_CREDENTIALS_FILE"] == env["AWS_CONFIG_FILE"] == os.devnull
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "us-east-1"
    assert env["AWS_EC2_METADATA_DISABLED"] == "true"
    assert env["PATH"].split(os.pathsep)[0] == os.path.dirname(sys.executable)


def test_hyperparameters_config_files_and_sm_variables_are_the_toolkits(aws: LocalClients, tmp_path: Path) -> None:
    path = script(tmp_path, """
        import json, os
        root = os.path.dirname(os.environ["SM_MODEL_DIR"])
        config = {name: json.load(open(os.path.join(os.environ["SM_INPUT_CONFIG_DIR"], name)))
                  for name in ("hyperparameters.json", "resourceconfig.json", "inputdataconfig.json")}
        out = {"env": {k: v for k, v in os.environ.items() if k.startswith(("SM_", "MASTER_", "TRAINING_JOB",
                                                                            "CURRENT_HOST"))},
               "config": config, "root": root, "cwd": os.getcwd()}
        with open(os.path.join(os.environ["SM_MODEL_DIR"], os.environ["SM_CURRENT_HOST"] + ".json"), "w") as f:
            json.dump(out, f)
    """)
    name = unique_name("runenv")
    hyperparameters = {"epochs": "3", "learning_rate": "0.01", "optimizer": "adam", "use_bias": "true",
                       "sagemaker_mpi_custom_mpi_options": "-x X"}
    train, validation = aws.put_data(f"env/{name}/train"), aws.put_data(f"env/{name}/validation")
    create(aws, name, ["python", str(path)], instance_count=2, hyperparameters=hyperparameters,
           channels={"train": train, "validation": validation}, instance_type="ml.c5.xlarge")
    job = wait(aws, name)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    files = model_files(aws, job)
    seen = {host: json.loads(files[f"{host}.json"]) for host in ("algo-1", "algo-2")}
    ports = set()
    for host, found in seen.items():
        env, config, root = found["env"], found["config"], found["root"]
        assert config["hyperparameters.json"] == hyperparameters
        assert config["resourceconfig.json"]["current_host"] == host
        assert config["resourceconfig.json"]["hosts"] == ["algo-1", "algo-2"]
        assert config["resourceconfig.json"]["network_interface_name"] == "eth0"
        assert set(config["inputdataconfig.json"]) == {"train", "validation"}
        assert config["inputdataconfig.json"]["train"]["TrainingInputMode"] == "File"
        assert config["inputdataconfig.json"]["train"]["S3DistributionType"] == "FullyReplicated"
        # The toolkit's variables: JSON for lists and maps (compact, sorted keys), strings as they are.
        assert env["SM_HOSTS"] == '["algo-1","algo-2"]'
        assert env["SM_CURRENT_HOST"] == env["CURRENT_HOST"] == host
        assert env["SM_NETWORK_INTERFACE_NAME"] == "eth0"
        assert env["SM_CHANNELS"] == '["train","validation"]'
        assert env["SM_CHANNEL_TRAIN"] == f"{root}/input/data/train"
        assert env["SM_CHANNEL_VALIDATION"] == f"{root}/input/data/validation"
        assert env["SM_MODEL_DIR"] == f"{root}/model"
        assert env["SM_OUTPUT_DATA_DIR"] == f"{root}/output/data"
        assert env["SM_OUTPUT_DIR"] == f"{root}/output"
        assert env["SM_INPUT_DIR"] == f"{root}/input"
        assert env["SM_INPUT_CONFIG_DIR"] == f"{root}/input/config"
        assert env["SM_OUTPUT_INTERMEDIATE_DIR"] == f"{root}/output/intermediate"
        assert env["SM_HPS"] == '{"epochs":3,"learning_rate":0.01,"optimizer":"adam","use_bias":true}'
        assert (env["SM_HP_EPOCHS"], env["SM_HP_LEARNING_RATE"], env["SM_HP_OPTIMIZER"], env["SM_HP_USE_BIAS"]) == (
            "3", "0.01", "adam", "true")
        assert "SM_HP_SAGEMAKER_MPI_CUSTOM_MPI_OPTIONS" not in env
        assert json.loads(env["SM_FRAMEWORK_PARAMS"]) == {"sagemaker_mpi_custom_mpi_options": "-x X"}
        # mapping.to_cmd_args writes str() of the decoded value: the JSON true becomes Python's "True".
        assert env["SM_USER_ARGS"] == ('["--epochs","3","--learning_rate","0.01","--optimizer","adam",'
                                       '"--use_bias","True"]')
        assert env["SM_NUM_GPUS"] == "0" and int(env["SM_NUM_CPUS"]) == os.cpu_count()
        assert env["SM_CURRENT_INSTANCE_TYPE"] == "ml.c5.xlarge"
        assert json.loads(env["SM_RESOURCE_CONFIG"]) == config["resourceconfig.json"]
        assert json.loads(env["SM_INPUT_DATA_CONFIG"]) == config["inputdataconfig.json"]
        training_env = json.loads(env["SM_TRAINING_ENV"])
        assert training_env["current_host"] == host and training_env["hosts"] == ["algo-1", "algo-2"]
        assert training_env["hyperparameters"] == json.loads(env["SM_HPS"])
        assert training_env["channel_input_dirs"] == {"train": env["SM_CHANNEL_TRAIN"],
                                                      "validation": env["SM_CHANNEL_VALIDATION"]}
        assert training_env["job_name"] == env["TRAINING_JOB_NAME"] == name
        assert training_env["master_hostname"] == "algo-1"
        assert env["TRAINING_JOB_ARN"] == job["TrainingJobArn"]
        assert env["MASTER_ADDR"] == "127.0.0.1"
        ports.add(env["MASTER_PORT"])
        # Each host sees its own folder at /opt/ml itself (its private mount namespace), as in its container.
        assert root == "/opt/ml" and found["cwd"] == "/opt/ml/code"
    assert len(ports) == 1 and 0 < int(ports.pop()) < 65536


def test_checkpoints_come_from_s3_and_go_back_while_training(aws: LocalClients, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from local_sagemaker.runner import runner

    monkeypatch.setattr(runner, "CHECKPOINT_SYNC_SECONDS", 0.2)
    name = unique_name("runckpt")
    aws.put_data(f"ckpt/{name}", body=b"one")  # ckpt/<name>/part-0.csv
    path = script(tmp_path, """
        import os, time
        folder = os.path.join(os.path.dirname(os.environ["SM_MODEL_DIR"]), "checkpoints")
        print("found", sorted(os.listdir(folder)), flush=True)
        with open(os.path.join(folder, "step-2.txt"), "w") as out:
            out.write("two")
        time.sleep(4)
        with open(os.path.join(folder, "step-3.txt"), "w") as out:
            out.write("three")
    """)
    create(aws, name, ["python", str(path)], CheckpointConfig={"S3Uri": f"s3://{DATA_BUCKET}/ckpt/{name}/"})

    def synced(job: Mapping[str, Any]) -> bool:
        listed = aws.s3.list_objects_v2(Bucket=DATA_BUCKET, Prefix=f"ckpt/{name}/step-2")
        return bool(listed.get("KeyCount")) or job["TrainingJobStatus"] != "InProgress"

    assert aws.wait(name, until=synced, timeout=30, interval=0.1)["TrainingJobStatus"] == "InProgress", \
        "the checkpoint was not synced while the job trained"
    assert wait(aws, name)["TrainingJobStatus"] == "Completed"
    assert "found ['part-0.csv']" in logs(aws, name)["algo-1"]
    for key, body in (("step-2.txt", b"two"), ("step-3.txt", b"three")):
        assert aws.s3.get_object(Bucket=DATA_BUCKET, Key=f"ckpt/{name}/{key}")["Body"].read() == body


# --- MPI --------------------------------------------------------------------------------------------------------

MPI_SCRIPT = """
    import os, sys
    from mpi4py import MPI
    comm = MPI.COMM_WORLD
    total = comm.allreduce(comm.Get_rank())
    # Each rank sees its own host's folder at /opt/ml, though one mpirun on algo-1 starts them all.
    import json
    seen = json.load(open("/opt/ml/input/config/resourceconfig.json"))["current_host"]
    assert seen == os.environ["SM_CURRENT_HOST"], (seen, os.environ["SM_CURRENT_HOST"])
    print(f"rank {comm.Get_rank()} of {comm.Get_size()} on {seen} "
          f"args {' '.join(sys.argv[1:])} sum {total}", flush=True)
    if comm.Get_rank() == 0:
        with open(os.path.join(os.environ["SM_MODEL_DIR"], "ranks.txt"), "w") as out:
            out.write(str(comm.Get_size()))
"""


def _code_archive(aws: LocalClients, tmp_path: Path, name: str) -> str:
    """The script as the SageMaker Python SDK ships it: sourcedir.tar.gz in S3."""
    script(tmp_path, MPI_SCRIPT, name="ranks.py")
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as archive:
        archive.add(tmp_path / "ranks.py", arcname="ranks.py")
    key = f"code/{name}/sourcedir.tar.gz"
    aws.s3.put_object(Bucket=DATA_BUCKET, Key=key, Body=raw.getvalue())
    return f"s3://{DATA_BUCKET}/{key}"


def test_mpi_runs_hosts_times_processes_per_host_ranks_each_with_its_host(aws: LocalClients, tmp_path: Path) -> None:
    name = unique_name("runmpi")
    hyperparameters = {"sagemaker_mpi_enabled": "true", "sagemaker_mpi_num_of_processes_per_host": "2",
                       "sagemaker_program": '"ranks.py"', "sagemaker_submit_directory": _code_archive(aws, tmp_path,
                                                                                                       name),
                       "epochs": "2"}
    create(aws, name, None, instance_count=2, hyperparameters=hyperparameters)
    job = wait(aws, name, timeout=90)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    lines = logs(aws, name)
    ranks = sorted(line.split(":", 1)[1].strip() for line in lines["algo-1"] if "<stdout>" in line)
    assert ranks == [f"rank {r} of 4 on algo-{r // 2 + 1} args --epochs 2 sum 6" for r in range(4)]
    assert any("mpirun -np 4" in line for line in lines["algo-1"])
    assert any("MPI worker" in line for line in lines["algo-2"])
    assert model_files(aws, job) == {"ranks.txt": b"4"}


def test_stopping_an_mpi_job_leaves_no_rank_behind(aws: LocalClients, tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    pids.mkdir()
    script(tmp_path, FOREVER, name="forever.py")
    name = unique_name("runmpistop")
    hyperparameters = {"sagemaker_mpi_enabled": "true", "sagemaker_mpi_num_of_processes_per_host": "1",
                       "sagemaker_program": "forever.py", "sagemaker_submit_directory": str(tmp_path)}
    create(aws, name, None, instance_count=2, hyperparameters=hyperparameters, Environment={"PIDS": str(pids)})
    deadline = time.monotonic() + 60
    while len(list(pids.iterdir())) < 2:
        assert time.monotonic() < deadline, logs(aws, name)
        time.sleep(0.1)
    ranks = [int(p.name) for p in pids.iterdir()]
    assert all(alive(pid) for pid in ranks)
    aws.sagemaker.stop_training_job(TrainingJobName=name)
    assert wait(aws, name)["TrainingJobStatus"] == "Stopped"
    deadline = time.monotonic() + 5
    while any(alive(pid) for pid in ranks) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [pid for pid in ranks if alive(pid)], "an MPI rank outlived its stopped job"


def test_an_entrypoint_gets_no_mpi_as_on_sagemaker(aws: LocalClients, tmp_path: Path) -> None:
    """sagemaker_mpi_enabled with a ContainerEntrypoint: SageMaker's toolkit never runs, so neither does mpirun."""
    path = script(tmp_path, """
        import os
        print("ranks", os.environ.get("OMPI_COMM_WORLD_SIZE", "none"), "on", os.environ["SM_CURRENT_HOST"], flush=True)
    """)
    name = unique_name("runnompi")
    create(aws, name, ["python", str(path)], instance_count=2,
           hyperparameters={"sagemaker_mpi_enabled": "true", "sagemaker_mpi_num_of_processes_per_host": "2"})
    assert wait(aws, name)["TrainingJobStatus"] == "Completed"
    for host, lines in logs(aws, name).items():
        assert f"ranks none on {host}" in lines
        assert any("MPI was asked for but does not start" in line for line in lines)


# --- built-in XGBoost -------------------------------------------------------------------------------------------

def test_xgboost_without_the_local_algorithm_is_simulated_and_says_so(aws: LocalClients,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from local_sagemaker.runner import runner

    monkeypatch.setattr(runner, "xgboost_runnable", lambda: False)
    name = unique_name("runxgb")
    aws.sagemaker.create_training_job(**aws.training_request(name, hyperparameters={"num_round": "3"}))
    job = wait(aws, name)
    assert job["TrainingJobStatus"] == "Completed"
    first = logs(aws, name)["algo-1"][0]
    assert "local_sagemaker.xgboost is not installed" in first


# --- CloudWatch Logs' limits -----------------------------------------------------------------------------------------


def test_a_20_mib_line_is_split_into_ordered_events_that_give_it_back(aws: LocalClients, tmp_path: Path,
                                                                      server: LocalSageMaker) -> None:
    unit = "abcdefghi€𝄞"  # 1-, 3- and 4-byte characters: a cut at any byte count may fall inside one
    count = (20 * 1024 * 1024) // len(unit.encode()) + 1
    path = script(tmp_path, f"""
        import sys
        print("before", flush=True)
        sys.stdout.write({unit!r} * {count} + "\\n")
        print("after", flush=True)
    """)
    name = unique_name("runbig")
    create(aws, name, ["python", str(path)])
    assert wait(aws, name, timeout=120)["TrainingJobStatus"] == "Completed"
    messages = logs(aws, name)["algo-1"]
    assert messages[1] == "before" and messages[-1] == "after"
    pieces = messages[2:-1]
    line = unit * count
    assert len(line.encode()) > 20 * 1024 * 1024
    assert "".join(pieces) == line  # nothing lost, nothing repeated, in order
    assert len(pieces) > 20
    from local_sagemaker.log_limits import limits

    cap = limits().message_bytes
    assert all(0 < len(piece.encode()) <= cap for piece in pieces)
    assert len(pieces) == -(-len(line.encode()) // cap)  # as few events as fit (a cut only moves back within a char)


def test_a_burst_of_lines_keeps_its_order_in_every_reader(aws: LocalClients, tmp_path: Path,
                                                          server: LocalSageMaker) -> None:
    from handlers.log_cursor import read_page

    path = script(tmp_path, """
        import sys
        sys.stdout.write("".join(f"{999 - i:04d} burst\\n" for i in range(1000)))
    """)
    name = unique_name("runburst")
    create(aws, name, ["python", str(path)])
    assert wait(aws, name)["TrainingJobStatus"] == "Completed"
    expected = [f"{999 - i:04d} burst" for i in range(1000)]
    assert logs(aws, name)["algo-1"][1:] == expected
    lines: list[str] = []
    token = ""
    while True:
        page = read_page(server.client(), name, token, 64)
        if not page.lines:
            break
        lines += [line.message for line in page.lines]
        token = page.token
    assert lines[1:] == expected
