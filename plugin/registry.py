"""Task type -> plugin factory; other packages add theirs through the `sagemaker_plugin.plugins` entry points.

Import-light: the built-in plugin (and with it boto3) is imported when the registry is first asked for a task type,
so that `import plugin` and the command line start fast.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from plugin.config import Config

ENTRY_POINT_GROUP = "sagemaker_plugin.plugins"

Factory = Callable[..., Any]


class PluginRegistry:
    def __init__(self, builtins: tuple[str, ...] = ()) -> None:
        """`builtins`: "module:function" registrations made on first use, as entry points are."""
        self._factories: dict[str, Factory] = {}
        self._lock = threading.Lock()
        self._entry_points_loaded = False
        self._builtins = builtins
        self._builtins_loaded = False

    def _load_builtins(self) -> None:
        if self._builtins_loaded:
            return
        self._builtins_loaded = True
        for spec in self._builtins:
            module, function = spec.split(":")
            getattr(importlib.import_module(module), function)(self)

    def register(self, task_type: str, factory: Factory) -> None:
        self._load_builtins()  # a built-in type is taken even before anyone asked for it
        with self._lock:
            known = self._factories.get(task_type)
            if known is not None and known is not factory:
                raise ValueError(f"task type {task_type!r} is already registered to {known!r}")
            self._factories[task_type] = factory

    def task_types(self) -> list[str]:
        self._load_builtins()
        self._load_entry_points()
        return sorted(self._factories)

    def get(self, task_type: str, config: Config | None = None, **kwargs: Any) -> Any:
        """A plugin for `task_type`, built with `config` (default: load_config())."""
        self._load_builtins()
        factory = self._factories.get(task_type)
        if factory is None:
            self._load_entry_points()
            factory = self._factories.get(task_type)
        if factory is None:
            raise KeyError(f"no plugin for task type {task_type!r}; known: {', '.join(self.task_types())}")
        if config is None:
            from plugin.config import load_config

            config = load_config()
        return factory(config, **kwargs)

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        from importlib.metadata import entry_points

        for entry in entry_points(group=ENTRY_POINT_GROUP):
            if entry.module.split(".")[0] == __package__:
                continue  # the built-ins register themselves (an install made before they moved still names them)
            register = entry.load()
            register(self)


BUILTINS = ("plugin.jobs.training_job:register", "plugin.jobs.tuning_job:register")  # registered here only
registry = PluginRegistry(builtins=BUILTINS)
