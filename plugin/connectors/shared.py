"""The plugins every served connector uses (flytekit's and Flyte 2's), and what keeps a config from serving.

Generation-neutral: imports neither flytekit nor flyte.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from typing import Any

from handlers.errors import AwsError, InputError, Problem
from plugin.config import CONFIG_ENV, Config, load_config
from plugin.connectors import loopback
from plugin.jobs.training_job import TrainingJobPlugin
from plugin.registry import registry
from plugin.task import TASK_TYPES, TUNING_TASK

SERVED_TASK_TYPES = (*TASK_TYPES, TUNING_TASK)


class SharedPlugin:
    """The plugins every registered connector uses unless given its own: set by `configure`, else built on first use.

    Flyte shows the message of each phase: every secondary status with its StatusMessage, as `run` prints it. A
    served connector starts no local SageMaker of its own (a local run starts the process's one first).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._training: TrainingJobPlugin | None = None
        self._others: dict[str, TrainingJobPlugin] = {}
        self.configured = False  # the caller chose the config: the service checks do not apply

    def configure(self, config: Config | None = None,
                  plugin: TrainingJobPlugin | None = None) -> TrainingJobPlugin | None:
        with self._lock:
            self._training = plugin if plugin is not None else (new_plugin(config) if config is not None else None)
            self._others.clear()
            self.configured = self._training is not None
            return self._training

    def training(self) -> TrainingJobPlugin:
        with self._lock:
            if self._training is None:
                self._training = new_plugin()
            return self._training

    def for_task(self, task_type: str) -> TrainingJobPlugin:
        """The registry's plugin for `task_type`, on the training plugin's config (rebuilt when `configure` changes
        it)."""
        shared = self.training()
        if task_type in TrainingJobPlugin.task_types:
            return shared
        with self._lock:
            known: TrainingJobPlugin | None = self._others.get(task_type)
            if known is None or known.config is not shared.config:
                known = self._others[task_type] = registry.get(task_type, shared.config, status_messages=True,
                                                               embedded=False)
            return known


SHARED = SharedPlugin()


def configure(config: Config | None = None, *, plugin: TrainingJobPlugin | None = None) -> TrainingJobPlugin | None:
    """Set the TrainingJobPlugin the registered connectors use (from `config`, or `plugin` itself).

    With neither, forget it: the next call builds one from load_config() (`$SAGEMAKER_PLUGIN_CONFIG`, else
    ./config.yaml, else the defaults). Returns the plugin now in use (None until first use when reset).
    """
    return SHARED.configure(config, plugin)


def new_plugin(config: Config | None = None) -> TrainingJobPlugin:
    plugin: TrainingJobPlugin = registry.get(TASK_TYPES[0], config, status_messages=True, embedded=False)
    return plugin


def service_problems(config: Config) -> list[Problem]:
    """What keeps `config` from serving Flyte's CreateTasks: checked at the service's start, not at its first task.

    The built-in default backend is `local`: a service whose operator forgot the config must not train jobs inside
    its own pod, so the local backend serves only when the config says so.
    """
    if config.backend == "local" and "backend" not in config.explicit_keys:
        where = (f"no config was found (${CONFIG_ENV} is not set and there is no ./config.yaml)"
                 if config.source == Config().source else f"{config.source} does not set it")
        return [Problem("backend", f"must be set for the connector service: {where}; write `backend: aws` with "
                        f"region and role_arn (or `backend: local` to serve a local SageMaker on purpose), and point "
                        f"${CONFIG_ENV} at the file")]
    if config.backend == "aws" and not config.role_arn:
        return [Problem("role_arn", f"is required with the aws backend in {config.source}: the IAM role SageMaker "
                        "assumes for every job (Flyte's tasks do not name one)")]
    return []


def start_checked_service(patch_service: Callable[[], Any]) -> None:
    """A connector service's start (either generation's): load and check the config, keep a local backend's service
    to loopback, make the connectors use its plugin, `patch_service` (the generation's own fixes of its server), say
    what is served; or exit with code 2 saying why."""
    try:
        config = load_config()
        problems = service_problems(config)
        if problems:
            raise InputError(problems)
        plugin = new_plugin(config)
        endpoint = config.endpoint_url() or "none set (local.endpoint_url)"
        if config.backend == "aws":
            endpoint = str(plugin.client().sagemaker.meta.endpoint_url)
        if config.backend == "local":  # it runs any command a CreateTask names: only this machine may call it
            loopback.listen_on_loopback()
    except (InputError, AwsError) as error:
        print(f"sagemaker-plugin connector: cannot start: {error}", file=sys.stderr, flush=True)
        if threading.current_thread() is not threading.main_thread():
            # Flyte 2's c0 imports connectors on its event loop's own thread: SystemExit there stops that loop and
            # leaves the main thread waiting for it forever. Nothing has started yet: end the process now.
            sys.stdout.flush()
            os._exit(2)
        raise SystemExit(2) from None
    configure(plugin=plugin)
    patch_service()
    print(f"sagemaker-plugin connector: backend {config.backend}, region {config.region}, SageMaker endpoint "
          f"{endpoint}, config {config.source}", file=sys.stderr, flush=True)
    if config.backend == "local":
        print(f"sagemaker-plugin connector: listening on {loopback.LOOPBACK} only (its gRPC and metrics ports): "
              "with the local backend it runs the training command of every task it is given on this machine",
              file=sys.stderr, flush=True)
