"""One MPI rank's start: take its host's environment, then become the training program.

mpirun starts every rank with the first host's environment (as the toolkit's `-x` exports it on SageMaker). Locally
every host has its own folders, so a rank of host n needs host n's paths and names: this script reads the rank from
Open MPI's OMPI_COMM_WORLD_RANK, finds its host (ranks are placed host by host, `per_host` each), takes that host's
environment and working folder (a file written by the runner, readable only by this user), and execs the program:
through optml.py when the hosts see their folders at /opt/ml, so that a rank of host n sees host n's folder there
(a namespace nested in the one mpirun runs in, which shows the first host's). It runs as a script so that nothing
is imported before the program starts.

    python mpi_rank.py JOB_DIR PER_HOST -- PROGRAM [ARGS...]
"""

from __future__ import annotations

import json
import os
import sys


def main(argv: list[str]) -> None:
    job_dir, per_host, separator, *program = argv
    if separator != "--" or not program:
        raise SystemExit("usage: mpi_rank.py JOB_DIR PER_HOST -- PROGRAM [ARGS...]")
    rank = int(os.environ.get("OMPI_COMM_WORLD_RANK", "0"))
    host = rank // max(1, int(per_host)) + 1
    with open(os.path.join(job_dir, f"algo-{host}.env.json"), encoding="utf-8") as handle:
        spec = json.load(handle)
    env = {**os.environ, **spec["env"]}
    os.chdir(spec["cwd"])
    if spec.get("mount"):
        optml = os.path.join(os.path.dirname(os.path.abspath(__file__)), "optml.py")
        program = [sys.executable, "-I", "-S", optml, spec["mount"], "--", *program]
    os.execvpe(program[0], program, env)


if __name__ == "__main__":
    main(sys.argv[1:])
