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
    pattern = re.compile(r"`((?:" + "|".join(PACKAGES) + r")/[\w/]*(?:\.py|/))`")
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


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _defined_private(tree: ast.AST) -> set[str]:
    """The private names a module makes: its functions, classes, variables and attributes (`self._x = ...`)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
    return {name for name in names if _private(name)}


def private_uses(known: Mapping[str, Path]) -> list[str]:
    """Private names (`_x`) one production module takes from another: `from m import _x`; `m._x` on a module it
    imported; `obj._x` on anything but `self` and `cls` when `_x` is made only by other modules (an object of their
    class). A name another module needs is part of its module's interface, and is public."""
    trees = {module: ast.parse(path.read_text(encoding="utf-8"), str(path)) for module, path in known.items()}
    made = {module: _defined_private(tree) for module, tree in trees.items()}
    found = []
    for module, tree in trees.items():
        path = known[module]
        bound: dict[str, str] = {}  # a local name -> the project module it stands for
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                bound.update({alias.asname or alias.name: alias.name for alias in node.names if alias.name in known})
            elif isinstance(node, ast.ImportFrom):
                source = _resolve(module, path, ast.ImportFrom(node.module, [], node.level), known)
                for alias in node.names:
                    target = _resolve(module, path, ast.ImportFrom(node.module, [alias], node.level), known)
                    if _private(alias.name) and source and source[0] != module:
                        found.append(f"{module} imports {source[0]}.{alias.name}")
                    elif target and (not source or target[0] != source[0]):
                        bound[alias.asname or alias.name] = target[0]
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Attribute) and _private(node.attr)):
                continue
            owner = ast.unparse(node.value)
            owner = bound.get(owner, owner)
            if owner in known and owner != module:
                found.append(f"{module} uses {owner}.{node.attr}")
            elif owner not in ("self", "cls") and node.attr not in made[module]:
                makers = sorted(other for other, names in made.items() if node.attr in names and other != module)
                if makers:
                    found.append(f"{module} uses {owner}.{node.attr} of {makers[0]}")
    return sorted(set(found))


def test_no_private_name_crosses_a_module() -> None:
    assert private_uses(modules()) == []


def test_the_private_check_catches_each_way_across(tmp_path: Path) -> None:
    files = {
        "sagemaker_plugin.py": "",
        "plugin/a.py": "_TABLE = {}\n\n\nclass Job:\n    def __init__(self):\n        self._lines = []\n\n"
                       "    def _check(self):\n        return self._lines\n",
        "plugin/b.py": "from plugin.a import _TABLE, Job\nfrom plugin import a\nimport plugin.a\n\n\n"
                       "def f(job: Job):\n    job._lines.append(a._check)\n    return plugin.a._TABLE\n",
        "plugin/c.py": "from .a import _TABLE as table\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    assert private_uses(modules(tmp_path)) == [
        "plugin.b imports plugin.a._TABLE", "plugin.b uses job._lines of plugin.a", "plugin.b uses plugin.a._TABLE",
        "plugin.b uses plugin.a._check", "plugin.c imports plugin.a._TABLE"]
