"""Flyte 2's deploy files (the Dockerfile's `flyte2` target; deploy/flyte2/: Deployment, Service, NetworkPolicy), read
as their tools read them and checked against flytekit's beside them (the same config, ConfigMap and service account)
and against the project (the entry point the server loads). The Dockerfile's linter covers both targets
(tests/flyte/test_deploy.py). Kubernetes' schemas cover them with the rest of deploy/
(tests/flyte/test_deploy.py, which also checks their NetworkPolicy admits only the caller to the gRPC port)."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

pytest.importorskip("kubernetes_validate")

import deploy_checks

tomllib = pytest.importorskip("tomllib")

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
TARGET = "flyte2"


def kinds(folder: Path) -> dict[str, dict[str, Any]]:
    return {doc["kind"]: doc for path in sorted(folder.glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text())}


def test_the_image_installs_the_flyte2_extra_as_ci_tested_it_and_serves_the_entry_points_module() -> None:
    instructions = deploy_checks.dockerfile(DOCKERFILE, TARGET)
    assert deploy_checks.stage_names(DOCKERFILE)[-1] != TARGET  # a build without --target makes flytekit's image
    for word, arguments in instructions:
        for source in shlex.split(arguments)[:-1] if word == "COPY" else ():
            assert (ROOT / source).exists() and not deploy_checks.dockerignored(source), source
    (install,) = [arguments for word, arguments in instructions if word == "RUN" and "pip install" in arguments]
    assert "'.[flyte2]'" in install and "-c constraints.txt" in install
    (cmd,) = [json.loads(arguments) for word, arguments in instructions if word == "CMD"]
    assert cmd[0] == "c0"
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    module = project["entry-points"]["flyte.connectors"]["sagemaker_plugin"].split(":")[0]
    assert cmd[cmd.index("--modules") + 1] == module
    # the same config where flytekit's image has it
    flytekit = deploy_checks.dockerfile(DOCKERFILE)
    for word in ("ENV", "USER", "EXPOSE"):
        assert [a for w, a in instructions if w == word] == [a for w, a in flytekit if w == word]


def test_the_manifests_agree_with_the_image_and_share_flytekits_config_and_account() -> None:
    (cmd,) = [json.loads(a) for w, a in deploy_checks.dockerfile(DOCKERFILE, TARGET) if w == "CMD"]
    mine, flytekit = kinds(ROOT / "deploy" / "flyte2"), kinds(ROOT / "deploy")
    assert set(mine) == {"Deployment", "Service", "NetworkPolicy"}
    pod = mine["Deployment"]["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    assert container["args"] == cmd
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"grpc": int(cmd[cmd.index("--port") + 1]), "metrics": int(cmd[cmd.index("--prometheus_port") + 1])}
    assert container["readinessProbe"]["grpc"]["port"] == ports["grpc"]
    (volume,) = pod["spec"]["volumes"]
    assert volume["configMap"]["name"] == flytekit["ConfigMap"]["metadata"]["name"]
    assert pod["spec"]["serviceAccountName"] == flytekit["ServiceAccount"]["metadata"]["name"]
    assert mine["Service"]["spec"]["selector"] == pod["metadata"]["labels"]
    # beside flytekit's connector, not in its place: other names and labels, so each Service reaches its own pods
    for kind in ("Deployment", "Service", "NetworkPolicy"):
        assert mine[kind]["metadata"]["name"] != flytekit[kind]["metadata"]["name"]
    assert pod["metadata"]["labels"] != flytekit["Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert {doc["metadata"]["namespace"] for doc in mine.values()} == {"flyte"}
