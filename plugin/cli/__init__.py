"""The `sagemaker-plugin` command line: app (parsing, import-light), jobs, tuning, metrics, list and charts.

    from plugin.cli import main
"""

from __future__ import annotations

from plugin.cli.app import MASK, build_parser, main

__all__ = ["MASK", "build_parser", "main"]
