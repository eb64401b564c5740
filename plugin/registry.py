"""Task type -> plugin factory; other packages add theirs through the `sagemaker_plugin.plugins` entry points."""

from __future__ import annotations

import threading
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from plugin.config import Config, load_config

ENTRY_POINT_GROUP = "sagemaker_plugin.plugins"

Factory = Callable[..., Any]


class PluginRegistry:
    def __init__(self) -> None:
        self._factories: dict[str, Factory] = {}
        self._lock = threading.Lock()
        self._entry_points_loaded = False

    def register(self, task_type: str, factory: Factory) -> None:
        with self._lock:
            known = self._factories.get(task_type)
            if known is not None and known is not factory:
                raise ValueError(f"task type {task_type!r} is already registered to {known!r}")
            self._factories[task_type] = factory

    def task_types(self) -> list[str]:
        self._load_entry_points()
        return sorted(self._factories)

    def get(self, task_type: str, config: Config | None = None, **kwargs: Any) -> Any:
        """A plugin for `task_type`, built with `config` (default: load_config())."""
        factory = self._factories.get(task_type)
        if factory is None:
            self._load_entry_points()
            factory = self._factories.get(task_type)
        if factory is None:
            raise KeyError(f"no plugin for task type {task_type!r}; known: {', '.join(self.task_types())}")
        return factory(config if config is not None else load_config(), **kwargs)

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        for entry in entry_points(group=ENTRY_POINT_GROUP):
            register = entry.load()
            register(self)


registry = PluginRegistry()
