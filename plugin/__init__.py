"""What an engine sees: tasks, config, the TrainingJobPlugin and its registry.

    from plugin import registry, load_task, load_config
"""

from __future__ import annotations

from handlers.errors import AwsError, InputError, Problem
from handlers.status import Phase
from plugin.config import Config, load_config
from plugin.meta import ResourceMeta
from plugin.registry import PluginRegistry, registry
from plugin.resource import LogLink, Resource
from plugin.task import Task, load_task
from plugin.training_job import TrainingJobPlugin
from plugin.training_job import register as _register_builtin

_register_builtin(registry)

__all__ = [
    "AwsError",
    "Config",
    "InputError",
    "LogLink",
    "Phase",
    "PluginRegistry",
    "Problem",
    "Resource",
    "ResourceMeta",
    "Task",
    "TrainingJobPlugin",
    "load_config",
    "load_task",
    "registry",
]
