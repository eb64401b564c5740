"""Distributed training setup: the hyperparameters that SageMaker training toolkit images read."""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

MPI_ENABLED = "sagemaker_mpi_enabled"
MPI_PROCESSES_PER_HOST = "sagemaker_mpi_num_of_processes_per_host"
MPI_CUSTOM_OPTIONS = "sagemaker_mpi_custom_mpi_options"


@functools.lru_cache(maxsize=1)
def _accelerators() -> dict[str, Any]:
    text = resources.files("handlers").joinpath("data/instance_accelerators.json").read_text(encoding="utf-8")
    instances: dict[str, Any] = json.loads(text)["instances"]
    return instances


def processes_per_host(instance_type: str) -> int:
    """The GPU count, else the Neuron cores, else 1: one MPI process per accelerator."""
    entry = _accelerators().get(instance_type, {})
    return int(entry.get("gpus") or entry.get("neuron_cores") or 1)


def mpi_hyperparameters(instance_type: str, custom_mpi_options: str | None = None) -> dict[str, str]:
    params = {MPI_ENABLED: "true", MPI_PROCESSES_PER_HOST: str(processes_per_host(instance_type))}
    if custom_mpi_options:
        params[MPI_CUSTOM_OPTIONS] = custom_mpi_options
    return params
