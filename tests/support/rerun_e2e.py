"""The helpers of the end-to-end tests of the edit-and-run-again loop (issue 21): tests/e2e/test_rerun.py (against a
served local SageMaker) and test_rerun_embedded.py (`run` with a local SageMaker of its own).

Importable by name (`import rerun_e2e`): tests/conftest.py puts tests/support on sys.path.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import cli_e2e as E

FLAG = "--new-attempt"
#: a local SageMaker started by the command for itself: its address, dead once the command has exited
LOOPBACK = re.compile(r"127\.0\.0\.1|localhost|SAGEMAKER_PLUGIN_ENDPOINT_URL")


def edit(data: dict[str, Any]) -> None:
    data["inputs"]["static_hyperparameters"]["eta"] = 0.1


def printed_command(stderr: str) -> list[str]:
    """The command line the refusal names (between backticks), as argv with the console script's path."""
    found = re.search(r"`(sagemaker-plugin run [^`]*)`", stderr)
    assert found, stderr
    words = shlex.split(found.group(1))
    return [str(E.SCRIPT), *words[1:]]


def run_printed(argv: list[str], cwd: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*argv, *extra], capture_output=True, text=True, cwd=cwd, env=E.cli_env(cwd), timeout=120)
