"""The `sagemaker-plugin` command line run in the test's own process, for the end-to-end tests' commands whose claim is
the command's answer (its exit code, stdout and stderr), not the process around it: bad input, refusals, listing,
the status of a job a shared local SageMaker holds. A new Python process per command costs a second of CPU (the
interpreter, boto3, botocore's service models); this costs milliseconds once they are loaded. Every capability keeps
true subprocess runs of the console script in the same files (cli_e2e.cli).

The command sees what the subprocess would: cli_e2e.cli_env's environment (no AWS variable of this machine, no way out
to AWS, the served local SageMaker's key pair) and `cwd` as its folder; both are put back afterwards. Never for a
command that waits for a signal. A command that names no local SageMaker starts its own here for its duration: never
such a command while this process runs another (moto's state is the process's).

Importable by name (`import cli_in_process`): tests/conftest.py puts tests/support on sys.path.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

from cli_e2e import SCRIPT, cli_env


def cli_here(args: Sequence[str | Path], cwd: Path, timeout: float = 60, env: dict[str, str] | None = None
             ) -> subprocess.CompletedProcess[str]:
    """plugin.cli.main(args) in this process, as cli_e2e.cli runs it in a subprocess: (exit code, stdout, stderr).

    argparse's own exits (usage errors, --help, --version) count with their exit code, as the process's would.
    `timeout` is cli_e2e.cli's; here the test's own timeout bounds the command. `env`: the whole environment, when
    not cli_e2e.cli_env's."""
    from plugin.cli import main

    argv = [str(arg) for arg in args]
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        env = cli_env(cwd) if env is None else env
        for name in set(os.environ) - set(env):
            patch.delenv(name)
        for name, value in env.items():
            patch.setenv(name, value)
        patch.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(argv)
            except SystemExit as exit_:
                code = 0 if exit_.code is None else exit_.code if isinstance(exit_.code, int) else 1
    return subprocess.CompletedProcess([str(SCRIPT), *argv], code, out.getvalue(), err.getvalue())
