"""The data folder where a benchmark's local SageMakers keep their S3 and records, on by default as users run them.

`--data-dir DIR` keeps it (one subfolder per server); without it a temporary folder, deleted at the end;
`--no-data-dir` runs without one (everything in memory). `size_mb` is the disk space a folder takes.
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="keep the local SageMakers' data folders here (default: a temporary folder)")
    parser.add_argument("--no-data-dir", action="store_true", help="run the local SageMakers without a data folder")


@contextlib.contextmanager
def root(args: argparse.Namespace) -> Iterator[Path | None]:
    """The folder under which each server gets its data folder; None with --no-data-dir."""
    if args.no_data_dir:
        yield None
    elif args.data_dir is not None:
        args.data_dir.mkdir(parents=True, exist_ok=True)
        yield args.data_dir
    else:
        with tempfile.TemporaryDirectory(prefix="benchmark-data-") as folder:
            yield Path(folder)


def size_mb(folder: Path | None) -> float | None:
    """The disk space the folder takes, as `du` counts it (its files' blocks and its folders'), in MB."""
    if folder is None or not folder.exists():
        return None
    return round(sum(path.lstat().st_blocks * 512 for path in [folder, *folder.rglob("*")]) / 1e6, 2)
