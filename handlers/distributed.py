"""Distributed training setup: the hyperparameters that SageMaker training toolkit images read."""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
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


# --- how a training-toolkit image starts the job (what decides whether MPI really runs) --------------------------

USER_PROGRAM = "sagemaker_program"
SUBMIT_DIRECTORY = "sagemaker_submit_directory"


@dataclass(frozen=True)
class Launch:
    """What a SageMaker training-toolkit image runs for a CreateTrainingJob request.

    mpirun is started by the toolkit's own entry (the image's `train`), reading `sagemaker_mpi_enabled`; a
    ContainerEntrypoint replaces that entry, and ContainerArguments replace its `train` argument, so either one means
    no toolkit and no MPI. The toolkit then runs the script named by `sagemaker_program`, found in
    `sagemaker_submit_directory` (an S3 tar.gz or a folder) or else the image's /opt/ml/code.
    """

    entrypoint: tuple[str, ...]
    arguments: tuple[str, ...]
    program: str | None
    mpi_requested: bool

    @property
    def toolkit(self) -> bool:
        """The image's own entry (the toolkit) runs: no ContainerEntrypoint and no ContainerArguments."""
        return not self.entrypoint and not self.arguments

    @property
    def mpi(self) -> bool:
        """Whether mpirun really starts on SageMaker for this request."""
        return self.mpi_requested and self.toolkit and bool(self.program)

    def mpi_problem(self) -> str | None:
        """Why MPI was asked for but would not start, or None."""
        if not self.mpi_requested or self.mpi:
            return None
        if self.entrypoint:
            return ("a ContainerEntrypoint replaces the training toolkit's entry, which is what starts mpirun: "
                    "SageMaker would run it once per host without MPI")
        if self.arguments:
            return ("ContainerArguments replace the training toolkit's `train` command, which is what starts "
                    "mpirun: SageMaker would run them once per host without MPI")
        return (f"the training toolkit needs the {USER_PROGRAM} hyperparameter (the script that mpirun starts on "
                "every rank)")


def launch(request: Mapping[str, Any]) -> Launch:
    algorithm = request.get("AlgorithmSpecification") or {}
    hyperparameters = request.get("HyperParameters") or {}
    program = hyperparameters.get(USER_PROGRAM)
    return Launch(
        entrypoint=tuple(str(a) for a in algorithm.get("ContainerEntrypoint") or ()),
        arguments=tuple(str(a) for a in algorithm.get("ContainerArguments") or ()),
        program=_unquoted(str(program)) if program else None,
        mpi_requested=str(hyperparameters.get(MPI_ENABLED, "")).strip().strip('"').lower() == "true",
    )


def _unquoted(value: str) -> str:
    """The SageMaker Python SDK sends string hyperparameters JSON-encoded ('"train.py"'); the toolkit decodes them."""
    try:
        decoded = json.loads(value)
    except ValueError:
        return value
    return decoded if isinstance(decoded, str) else value
