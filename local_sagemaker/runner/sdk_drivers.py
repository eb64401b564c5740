"""The SageMaker Python SDK v3's `SourceCode` drivers, run as on SageMaker.

v3 uploads its drivers as the `sm_drivers` channel (`sm_train.sh`, `sourcecode.json`, `distributed.json`, the
drivers and scripts) and runs `/bin/bash -c "chmod +x /opt/ml/input/data/sm_drivers/sm_train.sh && ..."`: with
each host's folder at /opt/ml (optml.py), that script runs here unchanged. What the runner adds:

- a Python environment of the job's own per host (a venv layered over the Python that runs the local SageMaker:
  its packages stay importable, and `python3 -m pip install -r requirements.txt`, `pip` and `pip3` install into the
  job's environment, never into the caller's), first on the job's PATH, so `SourceCode(requirements=...)` installs
  as in the container;
- a refusal, at Training, of `distributed=MPI(...)`, whose driver needs what hosts-as-processes cannot give.
"""

from __future__ import annotations

import site
import sys
import sysconfig
import venv
from pathlib import Path

from local_sagemaker.runner.hostdirs import OptMl

CHANNEL = "sm_drivers"
SOURCE_CODE_JSON = "sourcecode.json"
TRAIN_SCRIPT = "sm_train.sh"
MPI_DRIVER = "mpi_driver.py"
MPI_REFUSED = (
    "AlgorithmError: SourceCode with distributed=MPI(...) runs the SageMaker Python SDK v3's {driver}, which starts "
    "an SSH server on every host (/usr/sbin/sshd on port 22), reaches the hosts by their names algo-1, algo-2, ... "
    "over SSH (paramiko) before it runs mpirun, and appends the environment to /etc/environment: the local "
    "SageMaker runs a job's hosts as processes on this machine, with no SSH server and no such host names, so this "
    "driver cannot run here. Locally, let the training toolkit's convention start MPI (a custom image with the "
    "sagemaker_program, sagemaker_mpi_enabled and sagemaker_mpi_num_of_processes_per_host hyperparameters: the local "
    "runner starts mpirun itself), or leave distributed out"
)
PIP_SHIM = '#!/bin/sh\nexec "{python}" -m pip "$@"\n'


def is_source_code(host: OptMl) -> bool:
    """Whether the job is a v3 SourceCode job (its drivers' channel holds sourcecode.json)."""
    return (host.channel_dir(CHANNEL) / SOURCE_CODE_JSON).is_file()


def refusal(host: OptMl) -> str | None:
    """The FailureReason for a driver that cannot run on this machine, or None."""
    try:
        script = (host.channel_dir(CHANNEL) / TRAIN_SCRIPT).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    return MPI_REFUSED.format(driver=MPI_DRIVER) if MPI_DRIVER in script else None


def caller_site_dirs() -> list[str]:
    """The site folders of the Python running the local SageMaker (its venv's, when it runs in one)."""
    folders = [*site.getsitepackages(), sysconfig.get_paths()["purelib"]]
    return list(dict.fromkeys(folder for folder in folders if Path(folder).is_dir()))


def make_python(folder: Path) -> Path:
    """A venv at `folder` whose Python also sees the caller's packages (their .pth files too), with `pip` and `pip3`
    that install into it; returns its bin folder."""
    venv.EnvBuilder(symlinks=True, with_pip=False).create(folder)
    bin_dir = folder / "bin"
    python = bin_dir / "python"
    purelib = sysconfig.get_paths(vars={"base": str(folder), "platbase": str(folder)})["purelib"]
    lines = [f"import site; site.addsitedir({path!r})" for path in caller_site_dirs()]
    # After the venv's own site-packages: what the job installs wins over the caller's.
    (Path(purelib) / "_local_sagemaker_caller.pth").write_text("\n".join(lines) + "\n", encoding="utf-8")
    for name in ("pip", "pip3", f"pip{sys.version_info.major}.{sys.version_info.minor}"):
        shim = bin_dir / name
        shim.write_text(PIP_SHIM.format(python=python), encoding="utf-8")
        shim.chmod(0o755)
    return bin_dir
