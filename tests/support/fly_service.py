"""Helpers of the tests that drive the Flyte connector: tasks as propeller sends them, and flytekit's connector service
(`pyflyte serve connector`) in a process of its own.

Importable by name (`from fly_service import ...`): tests/conftest.py puts tests/support on sys.path. Only modules that
skip without flytekit import it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import subprocess
import sys
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest
from flyteidl.admin import agent_pb2
from flytekit.configuration import ImageConfig, SerializationSettings
from flytekit.core.context_manager import FlyteContextManager
from flytekit.core.type_engine import TypeEngine
from flytekit.models import literals
from flytekit.models.core import identifier
from flytekit.models.task import TaskExecutionMetadata, TaskTemplate
from flytekit.tools.translator import get_serializable
from flytekit.types.directory import FlyteDirectory

from children import dies_with_test

ENTRY_POINT = "plugin.flyte"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def entry_point_path(tmp: Path) -> str:
    """A sys.path entry declaring the flytekit.plugins entry point, unless the installed project declares it."""
    if any(ep.value == ENTRY_POINT for ep in entry_points(group="flytekit.plugins")):
        return ""
    dist = tmp / "entry-points" / "sagemaker_plugin_flyte_entry_points-0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: sagemaker-plugin-flyte-entry-points\nVersion: 0\n")
    (dist / "entry_points.txt").write_text(f"[flytekit.plugins]\nsagemaker_plugin = {ENTRY_POINT}\n")
    return str(dist.parent)


def serialized(task: Any) -> Any:
    """The TaskTemplate as flytekit registers it, through its protobuf (what propeller sends the connector)."""
    template = get_serializable(OrderedDict(), SerializationSettings(ImageConfig.auto_default_image()), task).template
    return TaskTemplate.from_flyte_idl(template.to_flyte_idl())


def literal_map(task: Any, values: dict[str, Any]) -> Any:
    """`values` as the LiteralMap of `task`'s inputs, through its protobuf."""
    lm = TypeEngine.dict_to_literal_map(FlyteContextManager.current_context(), values, task.get_input_types())
    return literals.LiteralMap.from_flyte_idl(lm.to_flyte_idl())


def create_request(task: Any, data: dict[str, str], execution: str, **values: Any) -> Any:
    """propeller's CreateTaskRequest for `task` (a built-in XGBoost task) on `data`'s train and validation URIs;
    `values` add inputs (a tuning task's config) or replace them."""
    ctx = FlyteContextManager.current_context()
    template = get_serializable(OrderedDict(), SerializationSettings(ImageConfig.auto_default_image()), task).template
    inputs = TypeEngine.dict_to_literal_map(ctx, {"train": FlyteDirectory(data["train"]),
                                                  "validation": FlyteDirectory(data["validation"]),
                                                  "static_hyperparameters": {"num_round": 5}, **values},
                                            task.get_input_types())
    task_id = identifier.Identifier(identifier.ResourceType.TASK, "flytesnacks", "development", task.name, "v1")
    ids = identifier.TaskExecutionIdentifier(task_id, identifier.NodeExecutionIdentifier(
        "n0", identifier.WorkflowExecutionIdentifier("flytesnacks", "development", execution)), 0)
    metadata = TaskExecutionMetadata(ids, "flytesnacks-development", {}, {}, "default", {}, None)
    return agent_pb2.CreateTaskRequest(inputs=inputs.to_flyte_idl(), template=template.to_flyte_idl(),
                                       output_prefix="s3://flyte/metadata/propeller/x",
                                       task_execution_metadata=metadata.to_flyte_idl())


def local_config(endpoint_url: str, **sections: Any) -> dict[str, Any]:
    """The connector's config for a local SageMaker at `endpoint_url`, with no client-side rate limits; `sections` add
    or replace top-level keys."""
    return {"backend": "local", "local": {"endpoint_url": endpoint_url},
            "rate_limits": {"create_per_second": 0, "read_per_second": 0}, **sections}


def connector_env(tmp: Path, config: dict[str, Any], keys: dict[str, str]) -> dict[str, str]:
    """The environment of a process that runs the connector: `config` (written to tmp/config.json), the local
    SageMaker's key pair `keys`, nothing of the caller's own config or endpoint, and the connector's entry point."""
    (tmp / "config.json").write_text(json.dumps(config))
    env = {k: v for k, v in os.environ.items() if k not in ("SAGEMAKER_PLUGIN_CONFIG", "SAGEMAKER_PLUGIN_ENDPOINT_URL")}
    env["SAGEMAKER_PLUGIN_CONFIG"] = str(tmp / "config.json")
    env.update(keys)  # the local SageMaker takes requests signed with its own key pair only
    env["PYTHONPATH"] = os.pathsep.join(p for p in (entry_point_path(tmp), env.get("PYTHONPATH", "")) if p)
    env["PYTHONUNBUFFERED"] = "1"  # the log holds all the service wrote, also when it is stopped
    env["FLYTE_SDK_LOGGING_LEVEL"] = str(logging.ERROR)  # flytekit's own errors (and their tracebacks) in the log
    return env


@dataclass(frozen=True)
class Connector:
    """A running connector service: its gRPC channel, its log (stdout and stderr), its Prometheus endpoint, and the
    process's id and ports."""

    channel: Any
    log: Path
    metrics_url: str
    pid: int = 0
    port: int = 0
    metrics_port: int = 0


@contextlib.contextmanager
def connector_service(endpoint_url: str, tmp: Path, keys: dict[str, str], *,
                      command: Callable[[int, int], list[str]] | None = None, **sections: Any) -> Iterator[Connector]:
    """`pyflyte serve connector` in a process of its own on a local SageMaker at `endpoint_url`, signing with `keys`
    (the server's AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY); `sections` add to its config (`local_config`).
    `command(port, metrics_port)`: another server's command line (Flyte 2's `c0`)."""
    import grpc

    env = connector_env(tmp, local_config(endpoint_url, **sections), keys)
    pyflyte = Path(sys.executable).with_name("pyflyte")
    port, metrics_port = free_port(), free_port()
    command = (command or (lambda port, metrics: [str(pyflyte), "serve", "connector", "--port", str(port),
                                                  "--prometheus_port", str(metrics)]))
    started = command(port, metrics_port)
    log_path = tmp / "connector.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(started, cwd=tmp, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   preexec_fn=dies_with_test)
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        try:
            try:
                grpc.channel_ready_future(channel).result(timeout=90)
            except grpc.FutureTimeoutError:
                pytest.fail(f"{' '.join(started[:3])} did not start:\n{log_path.read_text()[-3000:]}")
            yield Connector(channel, log_path, f"http://127.0.0.1:{metrics_port}/metrics", process.pid, port,
                            metrics_port)
        finally:
            channel.close()
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
