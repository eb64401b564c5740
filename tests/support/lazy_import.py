"""Names of a heavy package that a test module imports when a test first uses them, not when pytest collects it.

Every pytest-xdist worker collects every test file but runs only its share of them: a package imported at a module's
top (the SageMaker Python SDK: ~1.7 CPU s) is paid by each worker, whether or not it runs a test of that module.
`Lazy("sagemaker.estimator", "Estimator")` stands for the class: calling it or reading an attribute imports it then.
Pair it with a module-scoped autouse fixture that calls `pytest.importorskip` on the package, so that the module's
tests are still skipped where the package is missing.
"""

from __future__ import annotations

import importlib
from typing import Any


class Lazy:
    """A module, or one of its attributes, imported at first use."""

    def __init__(self, module: str, attribute: str | None = None) -> None:
        self._module = module
        self._attribute = attribute

    def _load(self) -> Any:
        module = importlib.import_module(self._module)
        return module if self._attribute is None else getattr(module, self._attribute)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # copy, pickle and pytest's introspection probe these: never worth an import
            raise AttributeError(name)
        return getattr(self._load(), name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._load()(*args, **kwargs)

    def __repr__(self) -> str:
        return f"Lazy({self._module!r}, {self._attribute!r})"
