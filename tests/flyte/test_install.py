"""The `flyte` extra resolves at once on its own: it bounds the packages pip otherwise backtracks through, and CI's
pins (.ci/constraints.txt) stay inside those bounds, so what CI tests is what a user's plain install gets.

Unbounded, `pip install -e '.[local,flyte]'` walked back through every aiobotocore, s3fs, gcsfs and fsspec release
(aiobotocore pins botocore to a window of a few patch releases; the core's boto3 takes the newest botocore; each s3fs
pins its own fsspec) and had not finished after 15 minutes.
"""

from __future__ import annotations

import re
from importlib.metadata import PackageNotFoundError, requires
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parents[2]
#: what pip backtracked through, or what decides it: each needs an upper bound in the extra
MUST_BE_BOUNDED = ("flytekit", "aiobotocore", "botocore", "boto3", "s3fs", "fsspec")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def flyte_extra() -> dict[str, Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {canonical(r.name): r for r in map(Requirement, project["optional-dependencies"]["flyte"])}


def ci_pins() -> dict[str, Version]:
    pins = {}
    for line in (ROOT / ".ci" / "constraints.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            pins[canonical(name)] = Version(version)
    return pins


def test_the_flyte_extra_bounds_what_pip_backtracks_through() -> None:
    extra = flyte_extra()
    for name in MUST_BE_BOUNDED:
        assert name in extra, f"the flyte extra does not name {name}"
        assert any(spec.operator in ("<", "<=", "==", "~=") for spec in extra[name].specifier), (
            f"{extra[name]}: no upper bound")
    assert extra["flytekit"].extras == {"connector"}  # the connector service's own dependencies


def test_ci_pins_stay_inside_the_flyte_extra() -> None:
    pins = ci_pins()
    for name, requirement in flyte_extra().items():
        assert name in pins, f"{name} is in the flyte extra but not pinned in .ci/constraints.txt"
        assert requirement.specifier.contains(pins[name]), f".ci/constraints.txt pins {name}=={pins[name]}, " \
                                                           f"outside the flyte extra's {requirement}"


def test_the_botocore_window_is_one_aiobotocore_accepts() -> None:
    try:
        declared = requires("aiobotocore") or []
    except PackageNotFoundError:
        pytest.skip("aiobotocore is not installed")
    (theirs,) = [Requirement(r) for r in declared if canonical(Requirement(r).name) == "botocore" and not
                 Requirement(r).marker]
    ours = flyte_extra()["botocore"]
    lowest = min(Version(spec.version) for spec in ours.specifier if spec.operator == ">=")
    assert theirs.specifier.contains(lowest) and theirs.specifier.contains(ci_pins()["botocore"])
    assert ours.specifier == flyte_extra()["boto3"].specifier  # boto3 X.Y.Z needs botocore >= X.Y.Z
