"""A benchmark script run as a person runs it, in a subprocess from the repository's root: its one line of JSON.

The tests of benchmarks/ run each script small (`--quick`) so that it cannot rot. Importable by name
(`from benchmark_run import run_benchmark`): tests/conftest.py puts tests/support on sys.path.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def run_benchmark(script: str, *args: str, timeout: float = 120) -> dict[str, Any]:
    """benchmarks/`script` with `args`: it exits 0 and prints one JSON line, nothing else on stdout."""
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-3000:]
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1, done.stdout
    result: dict[str, Any] = json.loads(lines[0])
    return result
