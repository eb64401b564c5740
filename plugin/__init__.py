"""What an engine sees: tasks, config, the TrainingJobPlugin and its registry.

    from plugin import registry, load_task, load_config

The names are imported when first used (PEP 562), so that `import plugin` stays light: the command line starts, and
answers Ctrl-C, before boto3 is imported.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from plugin.registry import PluginRegistry, registry

if TYPE_CHECKING:
    from handlers.errors import AwsError, InputError, Problem
    from handlers.status import Phase
    from plugin.config import Config, load_config
    from plugin.jobs.resource import LogLink, Resource
    from plugin.jobs.training_job import TrainingJobPlugin
    from plugin.meta import ResourceMeta
    from plugin.task import Task, load_task

_LAZY = {
    "AwsError": "handlers.errors",
    "InputError": "handlers.errors",
    "Problem": "handlers.errors",
    "Phase": "handlers.status",
    "Config": "plugin.config",
    "load_config": "plugin.config",
    "ResourceMeta": "plugin.meta",
    "LogLink": "plugin.jobs.resource",
    "Resource": "plugin.jobs.resource",
    "Task": "plugin.task",
    "load_task": "plugin.task",
    "TrainingJobPlugin": "plugin.jobs.training_job",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'plugin' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


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
