"""Helpers of the tests that run flytekit's connector service (`pyflyte serve connector`) in a process of its own.

Importable by name (`from fly_service import ...`): tests/conftest.py puts tests/support on sys.path. Only modules that
skip without flytekit import it.
"""

from __future__ import annotations

import socket
from collections import OrderedDict
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from flyteidl.admin import agent_pb2
from flytekit.configuration import ImageConfig, SerializationSettings
from flytekit.core.context_manager import FlyteContextManager
from flytekit.core.type_engine import TypeEngine
from flytekit.models.core import identifier
from flytekit.models.task import TaskExecutionMetadata
from flytekit.tools.translator import get_serializable
from flytekit.types.directory import FlyteDirectory

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


def create_request(task: Any, data: dict[str, str], execution: str) -> Any:
    """propeller's CreateTaskRequest for `task` (a built-in XGBoost task) on `data`'s train and validation URIs."""
    ctx = FlyteContextManager.current_context()
    template = get_serializable(OrderedDict(), SerializationSettings(ImageConfig.auto_default_image()), task).template
    inputs = TypeEngine.dict_to_literal_map(ctx, {"train": FlyteDirectory(data["train"]),
                                                  "validation": FlyteDirectory(data["validation"]),
                                                  "static_hyperparameters": {"num_round": 5}},
                                            task.get_input_types())
    task_id = identifier.Identifier(identifier.ResourceType.TASK, "flytesnacks", "development", task.name, "v1")
    ids = identifier.TaskExecutionIdentifier(task_id, identifier.NodeExecutionIdentifier(
        "n0", identifier.WorkflowExecutionIdentifier("flytesnacks", "development", execution)), 0)
    metadata = TaskExecutionMetadata(ids, "flytesnacks-development", {}, {}, "default", {}, None)
    return agent_pb2.CreateTaskRequest(inputs=inputs.to_flyte_idl(), template=template.to_flyte_idl(),
                                       output_prefix="s3://flyte/metadata/propeller/x",
                                       task_execution_metadata=metadata.to_flyte_idl())
