"""Installs the AWS operation recorder (tests/support/record_ops.py) in a subprocess of a recorded test session."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

if os.environ.get("SAGEMAKER_PLUGIN_RECORD_OPS"):
    _spec = importlib.util.spec_from_file_location("record_ops", Path(__file__).resolve().parents[1] / "record_ops.py")
    if _spec is not None and _spec.loader is not None:
        _module = importlib.util.module_from_spec(_spec)
        sys.modules["record_ops"] = _module
        _spec.loader.exec_module(_module)
        _module.install_from_environment()
