"""Loading another test file as a module, to reuse its helpers and tables without a package.

Importable by name (`from sibling import load`): tests/conftest.py puts tests/support on sys.path.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType


def load(path: Path, name: str) -> ModuleType:
    """The module at `path`, registered as `name` (its dataclasses look their module up in sys.modules)."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
