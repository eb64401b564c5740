"""The environment of a job's processes: the training toolkit's `SM_*` variables, local AWS settings, nothing else.

`SM_*` follow sagemaker-training-toolkit (environment.py `to_env_vars`, mapping.py `to_env_vars`): each key upper
cased behind `SM_`; strings as they are, anything else as compact JSON with sorted keys. Hyperparameters are read as
the toolkit reads hyperparameters.json: each value JSON-decoded when it can be ("3" is the number 3, "true" is true),
the `sagemaker_*` ones kept apart as framework parameters.

The inherited environment loses every AWS variable (credentials, profiles, config and credential files, endpoints):
a job reaches the local SageMaker with the server's own credentials, never the caller's.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from typing import Any

from local_sagemaker.runner.hostdirs import NETWORK_INTERFACE, HostDirs, host_name, input_data_config, resource_config

#: Hyperparameters the toolkit takes for itself (params.SAGEMAKER_HYPERPARAMETERS); other `sagemaker_*` ones are
#: framework parameters (SM_FRAMEWORK_PARAMS), e.g. sagemaker_mpi_enabled.
TOOLKIT_PARAMETERS = (
    "sagemaker_program", "sagemaker_submit_directory", "sagemaker_enable_cloudwatch_metrics", "sagemaker_region",
    "sagemaker_container_log_level", "sagemaker_job_name", "default_user_module_name", "_tuning_objective_metric",
    "sagemaker_s3_output",
)
#: Inherited variables that would let a job reach AWS as the caller, or configure this project on the caller's behalf.
SCRUBBED_PREFIXES = ("AWS_", "BOTO_", "SAGEMAKER_PLUGIN_")
#: Names that the local runner sets on every host of a multi-host job (native protocol: the code's own rendezvous).
MASTER_ADDR, MASTER_PORT = "MASTER_ADDR", "MASTER_PORT"


def decode(value: str) -> Any:
    """A hyperparameter as the toolkit reads it: JSON when it parses, else the string itself."""
    try:
        return json.loads(value)
    except (ValueError, TypeError):
        return value


def env_value(value: Any) -> str:
    """mapping.to_env_vars' value format: strings as they are, None as "", else compact sorted JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def split_hyperparameters(raw: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(user hyperparameters, toolkit parameters, framework parameters), values decoded."""
    user: dict[str, Any] = {}
    toolkit: dict[str, Any] = {}
    framework: dict[str, Any] = {}
    for key, value in raw.items():
        decoded = decode(str(value))
        if key in TOOLKIT_PARAMETERS:
            toolkit[key] = decoded
        elif key.startswith("sagemaker_"):
            framework[key] = decoded
        else:
            user[key] = decoded
    return user, toolkit, framework


def cmd_args(hyperparameters: Mapping[str, Any]) -> list[str]:
    """mapping.to_cmd_args: `--key value` (`-k` for a one-letter key) in key order; maps as `k=v,...`."""
    args: list[str] = []
    for key in sorted(hyperparameters):
        value = hyperparameters[key]
        args.append(f"--{key}" if len(key) > 1 else f"-{key}")
        if isinstance(value, Mapping):
            args.append(",".join(f"{k}={v}" for k, v in sorted(value.items())))
        else:
            args.append("" if value is None else str(value))
    return args


def sm_variables(host: HostDirs, request: Mapping[str, Any], hosts: int, num_cpus: int) -> dict[str, str]:
    """The toolkit's SM_* variables for `host` of a job made by `request`, with paths as its processes see them."""
    seen = host.seen
    user, toolkit, framework = split_hyperparameters(request.get("HyperParameters") or {})
    resources = request.get("ResourceConfig") or {}
    instance_type = str(resources.get("InstanceType") or "local")
    channels = [str(c.get("ChannelName", "")) for c in request.get("InputDataConfig") or []]
    channel_dirs = {name: str(seen.channel_dir(name)) for name in channels}
    names = [host_name(index) for index in range(1, hosts + 1)]
    program = toolkit.get("sagemaker_program")
    module_name = str(program)[:-3] if isinstance(program, str) and program.endswith(".py") else program
    log_level = toolkit.get("sagemaker_container_log_level", 20)
    groups = [{"instance_group_name": "homogeneousCluster", "instance_type": instance_type, "hosts": names}]
    env: dict[str, Any] = {
        "hosts": names,
        "network_interface_name": NETWORK_INTERFACE,
        "hps": user,
        "user_entry_point": program,
        "framework_params": framework,
        "resource_config": resource_config(host, hosts, instance_type),
        "input_data_config": input_data_config(request.get("InputDataConfig") or []),
        "output_data_dir": str(seen.output_data_dir),
        "channels": sorted(channels),
        "current_host": host.name,
        "current_instance_type": instance_type,
        "current_instance_group": "homogeneousCluster",
        "current_instance_group_hosts": names,
        "instance_groups": ["homogeneousCluster"],
        "instance_groups_dict": {"homogeneousCluster": groups[0]},
        "distribution_instance_groups": ["homogeneousCluster"] if framework.get("sagemaker_mpi_enabled") else [],
        "is_hetero": False,
        "module_name": module_name,
        "log_level": log_level,
        "framework_module": None,
        "input_dir": str(seen.input_dir),
        "input_config_dir": str(seen.config_dir),
        "output_dir": str(seen.output_dir),
        "num_cpus": num_cpus,
        "num_gpus": 0,
        "num_neurons": 0,
        "model_dir": str(seen.model_dir),
        "module_dir": str(toolkit.get("sagemaker_submit_directory") or seen.code_dir),
        "user_args": cmd_args(user),
        "output_intermediate_dir": str(seen.intermediate_dir),
    }
    training_env = {
        **{key: value for key, value in env.items() if key not in ("hps", "framework_params", "channels")},
        "hyperparameters": user,
        "additional_framework_parameters": framework,
        "channel_input_dirs": channel_dirs,
        "job_name": request.get("TrainingJobName"),
        "master_hostname": names[0],
        "is_master": host.index == 1,
    }
    env["training_env"] = training_env
    for name, path in channel_dirs.items():
        env[f"channel_{name}"] = path
    for key, value in user.items():
        env[f"hp_{key}"] = value
    return {f"SM_{key.upper()}": env_value(value) for key, value in env.items()}


def scrubbed(inherited: Mapping[str, str]) -> dict[str, str]:
    """`inherited` without any variable that points at AWS, a profile or this project's own settings."""
    return {key: value for key, value in inherited.items() if not key.upper().startswith(SCRUBBED_PREFIXES)}


def host_environment(
    host: HostDirs,
    request: Mapping[str, Any],
    hosts: int,
    client_env: Mapping[str, str],
    region: str,
    master_port: int,
    arn: str,
    inherited: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Everything a process of `host` sees: the scrubbed inherited environment with this interpreter first on PATH,
    the request's Environment (container paths moved under the host's root), the toolkit's variables, the platform's
    TRAINING_JOB_* names, the rendezvous for several hosts, and AWS settings for the local SageMaker only."""
    env = scrubbed(os.environ if inherited is None else inherited)
    python_bin = os.path.dirname(sys.executable)
    env["PATH"] = os.pathsep.join([python_bin, *[p for p in env.get("PATH", "").split(os.pathsep) if p]])
    env["PYTHONUNBUFFERED"] = "1"  # lines reach the logs as they are printed, as in a container's docker logs
    for key, value in (request.get("Environment") or {}).items():
        env[str(key)] = host.container_path(str(value))
    env.update(sm_variables(host, request, hosts, os.cpu_count() or 1))
    env["TRAINING_JOB_NAME"] = str(request.get("TrainingJobName", ""))
    env["TRAINING_JOB_ARN"] = arn
    env["CURRENT_HOST"] = host.name
    env[MASTER_ADDR] = "127.0.0.1"
    env[MASTER_PORT] = str(master_port)
    # Last, so that nothing above can point the job's boto3 anywhere else.
    env = scrubbed(env) | {key: value for key, value in client_env.items() if key.startswith("AWS_")}
    env["AWS_REGION"] = env["AWS_DEFAULT_REGION"] = region
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    env["AWS_CONFIG_FILE"] = env["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    return env
