"""What users import and start keeps working where the README and docs/ show it: the `import` lines of their Python
blocks (run in a fresh interpreter, as a reader runs them), the names the Python API page calls, the console script
pyproject.toml declares and the `python -m` entries the pages name."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from plugin import load_config, load_task, registry

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PROJECT = ("plugin", "handlers", "image_registry", "local_sagemaker", "sagemaker_plugin")
IMPORT = re.compile(r"^\s*((?:from|import) (?:" + "|".join(PROJECT) + r")\b.*)$", re.MULTILINE)


def _statements(block: str) -> list[str]:
    """The block's imports of the project, each whole (one line, or a parenthesized import across lines)."""
    statements = []
    for match in IMPORT.finditer(block):
        text = match.group(1)
        if "(" in text and ")" not in text:
            text = block[match.start(1):block.index(")", match.end(1)) + 1]
        statements.append(" ".join(text.split()))
    return statements


def page_imports(pages: list[Path] = PAGES) -> dict[str, list[str]]:
    """Each page's imports of the project's own packages, from its Python blocks."""
    found: dict[str, list[str]] = {}
    for page in pages:
        for block in re.findall(r"^```python\n(.*?)^```", page.read_text(encoding="utf-8"), re.DOTALL | re.MULTILINE):
            found.setdefault(page.name, []).extend(_statements(block))
    return {name: lines for name, lines in found.items() if lines}


def _run(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "XDG_DATA_HOME": str(tmp_path / "data")}
    return subprocess.run([sys.executable, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


def test_the_pages_show_the_documented_imports() -> None:
    shown = page_imports()
    assert "from plugin import registry, load_task, load_config" in shown["README.md"]
    assert "from plugin.flyte import SageMakerBuiltinAlgorithmTask, SageMakerCustomTrainingTask" in shown["flyte.md"]


@pytest.mark.slow
@pytest.mark.parametrize("page", sorted(page_imports()))
def test_every_import_a_page_shows_works_in_a_fresh_interpreter(page: str, tmp_path: Path) -> None:
    done = _run(["-c", "\n".join(page_imports()[page])], tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]


def test_the_flyte_task_types_import_where_the_pages_say() -> None:
    flyte = pytest.importorskip("plugin.flyte")
    for name in ("SageMakerBuiltinAlgorithmTask", "SageMakerCustomTrainingTask", "SageMakerHyperparameterTuningTask"):
        assert isinstance(getattr(flyte, name), type), name


@pytest.mark.parametrize("task_type", ["sagemaker_training_job_task", "sagemaker_custom_training_job_task",
                                       "sagemaker_hyperparameter_tuning_job_task"])
def test_the_python_api_page_calls_what_the_registry_gives(task_type: str, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SAGEMAKER_PLUGIN_CONFIG", raising=False)
    p = registry.get(task_type, config=load_config())
    for name in ("create", "get", "delete"):
        assert callable(getattr(p, name)), name
    assert callable(p.metadata_type.decode)
    assert callable(load_task)


@pytest.mark.slow
def test_the_console_script_and_the_module_entries_start(tmp_path: Path) -> None:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
    assert scripts == {"sagemaker-plugin": "sagemaker_plugin:main"}
    module, function = scripts["sagemaker-plugin"].split(":")
    starts = {
        "console script": ["-c", f"import sys; from {module} import {function}; sys.argv = ['sagemaker-plugin', "
                                 f"'--help']; sys.exit({function}())"],
        "python -m plugin.cli": ["-m", "plugin.cli", "--help"],
        "python -m local_sagemaker": ["-m", "local_sagemaker", "--help"],
    }
    for name, args in starts.items():
        done = _run(args, tmp_path)
        assert done.returncode == 0 and done.stdout.startswith("usage: "), (name, done.stderr[-2000:])


def test_the_import_check_finds_the_lines_of_python_blocks_only(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("```python\nimport os\nfrom plugin.x import y\n    import handlers.z\n```\n"
                    "```sh\nfrom plugin import nothing\n```\nfrom plugin import prose\n", encoding="utf-8")
    assert page_imports([page]) == {"page.md": ["from plugin.x import y", "import handlers.z"]}
