"""Helpers of the tests that drive the Flyte 2 connector: tasks as Flyte 2 serializes them, its requests as the
backend sends them, and Flyte 2's connector server (`c0`) in a process of its own.

Importable by name (`from fly2_service import ...`); only modules that skip without flyte import it. The process's
environment and config come from fly_service (both generations install together).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from pathlib import Path
from typing import Any

import flyte
import flyte.io
from flyte._internal.runtime.convert import convert_from_native_to_inputs
from flyte._internal.runtime.task_serde import get_proto_task
from flyte.models import SerializationContext
from flyteidl2.connector import connector_pb2
from flyteidl2.core import identifier_pb2

import fly_service
from fly_service import Connector

MODULE = "plugin.flyte2.connector"


def serialized(task: Any) -> Any:
    """The TaskTemplate (flyteidl2) as Flyte 2 deploys it, through its bytes (what the backend sends the connector);
    a task in no environment yet gets one of its own, as Flyte 2 users give connector tasks."""
    if task.parent_env_name is None:
        flyte.TaskEnvironment.from_task(task.name.replace(".", "_"), task)
    template = get_proto_task(task, SerializationContext(version="v1", project="flytesnacks", domain="development",
                                                         org="testorg"))
    return type(template).FromString(template.SerializeToString())


def inputs(task: Any, **values: Any) -> Any:
    """`values` as the task's flyteidl2 Inputs."""
    return asyncio.run(convert_from_native_to_inputs(task.native_interface, **values)).proto_inputs


def create_request(task: Any, data: dict[str, str], execution: str, **values: Any) -> Any:
    """The backend's CreateTaskRequest for `task` (a built-in XGBoost task) on `data`'s train and validation URIs;
    `values` add inputs or replace them."""
    given = {"train": flyte.io.Dir.from_existing_remote(data["train"]),
             "validation": flyte.io.Dir.from_existing_remote(data["validation"]),
             "static_hyperparameters": {"num_round": 5}, **values}
    ids = identifier_pb2.TaskExecutionIdentifier(node_execution_id=identifier_pb2.NodeExecutionIdentifier(
        node_id="n0", execution_id=identifier_pb2.WorkflowExecutionIdentifier(
            project="flytesnacks", domain="development", name=execution)))
    return connector_pb2.CreateTaskRequest(
        inputs=inputs(task, **given), template=serialized(task), output_prefix="s3://flyte/metadata/x",
        task_execution_metadata=connector_pb2.TaskExecutionMetadata(task_execution_id=ids))


def connector_service(endpoint_url: str, tmp: Path, keys: dict[str, str], **sections: Any
                      ) -> contextlib.AbstractContextManager[Connector]:
    """Flyte 2's connector server (`c0`) in a process of its own on a local SageMaker at `endpoint_url`, signing
    with `keys`; `sections` add to its config. It loads the connector by module too (an editable install made before
    the `flyte.connectors` entry point was declared lacks it)."""
    c0 = str(Path(sys.executable).with_name("c0"))
    return fly_service.connector_service(endpoint_url, tmp, keys, **sections, command=lambda port, metrics: [
        c0, "--port", str(port), "--prometheus_port", str(metrics), "--modules", MODULE])
