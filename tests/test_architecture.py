"""The import rules of docs/architecture.md, enforced: which package may import which, the one lazy door from the
plugin to the local SageMaker, and no import circle (imports inside functions counted, as they still tie modules)."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("plugin", "handlers", "image_registry", "local_sagemaker")
DOOR = "plugin.embedded"  # the one module of the plugin that may start the local SageMaker, lazily

#: Who may import whom, besides itself (docs/architecture.md, "Direction of imports").
ALLOWED: Mapping[str, frozenset[str]] = {
    "plugin": frozenset({"handlers", "image_registry"}),
    "local_sagemaker": frozenset({"handlers", "image_registry"}),
    "handlers": frozenset(),
    "image_registry": frozenset(),
    "sagemaker_plugin": frozenset({"plugin"}),
}


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # the imported module (the longest project module the statement names)
    lazy: bool  # inside a function
    typing_only: bool  # under `if TYPE_CHECKING:`


def modules(root: Path = ROOT) -> dict[str, Path]:
    found = {"sagemaker_plugin": root / "sagemaker_plugin.py"}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            name = ".".join(path.relative_to(root).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def _resolve(module: str, path: Path, node: ast.Import | ast.ImportFrom, known: Mapping[str, Path]) -> list[str]:
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:
            parts = module.split(".")[: None if path.name == "__init__.py" else -1]
            parts = parts[: len(parts) - node.level + 1]
            base = ".".join([*parts, base] if base else parts)
        names = [f"{base}.{alias.name}" for alias in node.names] + [base]
    return [name for name in names if name in known][:1]


def imports(known: Mapping[str, Path]) -> Iterator[Import]:
    for module, path in known.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        yield from _walk(module, path, tree, known, lazy=False, typing_only=False)


def _walk(module: str, path: Path, node: ast.AST, known: Mapping[str, Path], *, lazy: bool, typing_only: bool
          ) -> Iterator[Import]:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.Import | ast.ImportFrom):
            for target in _resolve(module, path, child, known):
                yield Import(module, target, lazy, typing_only)
        inner_lazy = lazy or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
        inner_typing = typing_only or (isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test))
        yield from _walk(module, path, child, known, lazy=inner_lazy, typing_only=inner_typing)


def broken_rules(found: list[Import]) -> list[str]:
    broken = []
    for item in found:
        source, target = item.source.split(".")[0], item.target.split(".")[0]
        if source == target or target in ALLOWED[source]:
            continue
        through_door = item.source == DOOR and (item.lazy or item.typing_only)
        if source == "plugin" and target == "local_sagemaker" and through_door:
            continue
        broken.append(f"{item.source} imports {item.target}" + (" (inside a function)" if item.lazy else ""))
    return broken


def circles(found: list[Import], faces: set[str]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan), package faces (`__init__`) left out."""
    graph: dict[str, set[str]] = {}
    for item in found:
        if item.typing_only or item.source in faces or item.target in faces or item.source == DOOR:
            continue
        graph.setdefault(item.source, set()).add(item.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in sorted(graph.get(node, ())):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


@pytest.fixture(scope="module")
def project() -> tuple[list[Import], set[str]]:
    known = modules()
    return list(imports(known)), {name for name, path in known.items() if path.name == "__init__.py"}


def test_every_import_runs_the_way_the_architecture_says(project: tuple[list[Import], set[str]]) -> None:
    assert broken_rules(project[0]) == []


def test_no_import_circle(project: tuple[list[Import], set[str]]) -> None:
    assert circles(*project) == []


def test_the_checks_catch_what_they_are_for(tmp_path: Path) -> None:
    """A tree that breaks each rule: the handlers import the plugin, the plugin starts the local SageMaker outside the
    door and at import, and two modules import each other (one of them inside a function)."""
    files = {
        "sagemaker_plugin.py": "",
        "plugin/__init__.py": "",
        "plugin/embedded.py": "def start():\n    from local_sagemaker import server\n",
        "plugin/cli.py": "from local_sagemaker import server\n",
        "handlers/__init__.py": "",
        "handlers/a.py": "from handlers import b\nfrom plugin import cli\n",
        "handlers/b.py": "def f():\n    from handlers import a\n",
        "image_registry/__init__.py": "",
        "local_sagemaker/__init__.py": "",
        "local_sagemaker/server.py": "",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    known = modules(tmp_path)
    found = list(imports(known))
    assert broken_rules(found) == ["plugin.cli imports local_sagemaker.server", "handlers.a imports plugin.cli"]
    assert circles(found, {name for name, path in known.items() if path.name == "__init__.py"}) == [
        ["handlers.a", "handlers.b"]]


ARCHITECTURE = ROOT / "docs" / "architecture.md"


def holds_code(path: Path) -> bool:
    """More than a docstring (and `from __future__`): a package face users import, rather than a folder's marker."""
    body = ast.parse(path.read_text(encoding="utf-8"), str(path)).body
    return any(not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))
               and not (isinstance(node, ast.ImportFrom) and node.module == "__future__") for node in body)


def unnamed_modules(text: str, root: Path = ROOT) -> list[str]:
    """The production modules the text does not name by their path in backticks; a docstring-only `__init__.py` is
    named by its folder (`plugin/jobs/`)."""
    missing = []
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            relative = path.relative_to(root).as_posix()
            if path.name == "__init__.py" and not holds_code(path):
                relative = relative.removesuffix("__init__.py")
            if f"`{relative}`" not in text:
                missing.append(relative)
    return missing


def stale_paths(text: str, root: Path = ROOT) -> list[str]:
    """The paths under the four packages the text names in backticks that are no module or folder of the tree."""
    pattern = re.compile(r"`((?:%s)/[\w/]*(?:\.py|/))`" % "|".join(PACKAGES))
    return sorted({path for path in pattern.findall(text) if not (root / path).exists()})


def test_the_architecture_names_every_module_and_no_other() -> None:
    text = ARCHITECTURE.read_text(encoding="utf-8")
    assert unnamed_modules(text) == []
    assert stale_paths(text) == []


def test_the_module_check_catches_a_module_left_out(tmp_path: Path) -> None:
    files = {"plugin/__init__.py": "X = 1\n", "plugin/jobs/__init__.py": '"""Marker."""\n', "plugin/jobs/new.py": "",
             "handlers/__init__.py": "", "image_registry/__init__.py": "", "local_sagemaker/__init__.py": ""}
    for name, content in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(content, encoding="utf-8")
    text = "`plugin/__init__.py` `plugin/jobs/` `handlers/` `image_registry/` `local_sagemaker/` `plugin/gone.py`"
    assert unnamed_modules(text, tmp_path) == ["plugin/jobs/new.py"]
    assert unnamed_modules(text + " `plugin/jobs/new.py`", tmp_path) == []
    assert stale_paths(text, tmp_path) == ["plugin/gone.py"]
