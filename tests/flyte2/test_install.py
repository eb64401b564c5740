"""The `flyte2` extra resolves at once and installs beside the `flyte` extra: its bounds hold what pip could walk
back through, CI's pins (.ci/constraints.txt, one environment for both generations) stay inside them, and .ci/run
installs both."""

from __future__ import annotations

import re
from importlib.metadata import PackageNotFoundError, requires, version
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parents[2]


def extra(name: str) -> dict[str, Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {re.sub(r"[-_.]+", "-", r.name).lower(): r for r in map(Requirement, project["optional-dependencies"][name])}


def pins() -> dict[str, Version]:
    found = {}
    for line in (ROOT / ".ci" / "constraints.txt").read_text().splitlines():
        if line.split("#")[0].strip():
            name, pinned = line.split("#")[0].strip().split("==")
            found[re.sub(r"[-_.]+", "-", name).lower()] = Version(pinned)
    return found


def test_the_flyte2_extra_bounds_flyte_and_brings_its_connector_stack() -> None:
    flyte2 = extra("flyte2")
    assert flyte2["flyte"].extras == {"connector"}  # grpc: flyte.connectors imports it
    assert any(spec.operator in ("<", "<=", "==", "~=") for spec in flyte2["flyte"].specifier)
    assert any(spec.operator in ("<", "<=", "==", "~=") for spec in flyte2["grpcio-health-checking"].specifier)


@pytest.mark.parametrize("name", ["flyte", "flyte2"])
def test_ci_pins_stay_inside_both_extras(name: str) -> None:
    pinned = pins()
    for package, requirement in extra(name).items():
        assert package in pinned, f"{package} is in the {name} extra but not pinned in .ci/constraints.txt"
        assert requirement.specifier.contains(pinned[package]), f"{package}=={pinned[package]} is outside {requirement}"


def test_ci_pins_what_flyte_pins_itself() -> None:
    """flyte pins flyteidl2 and rich-click exactly: CI's pins must be those, or the one environment cannot exist."""
    try:
        declared = [Requirement(r) for r in requires("flyte") or [] if "extra ==" not in r]
    except PackageNotFoundError:
        pytest.skip("flyte is not installed")
    pinned = pins()
    assert Version(version("flyte")) == pinned["flyte"]
    for requirement in declared:
        name = re.sub(r"[-_.]+", "-", requirement.name).lower()
        if any(spec.operator == "==" for spec in requirement.specifier):
            assert requirement.specifier.contains(pinned[name]), f"flyte wants {requirement}, CI pins {pinned[name]}"


def test_ci_installs_both_generations_in_one_environment() -> None:
    assert "-e '.[test,flyte,flyte2]'" in (ROOT / ".ci" / "run").read_text()
