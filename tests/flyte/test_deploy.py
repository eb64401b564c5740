"""What the README's deployment section ships: the Dockerfile, config.cluster.yaml and the manifests under deploy/.

No Docker daemon or cluster here, so each file is read as its tool would read it and checked against the others:
every COPY source exists and is not dockerignored, the image installs every package pyproject.toml declares, the
config the image bakes and the ConfigMap mounts is the same and can serve, and ports, names and paths agree.
"""

from __future__ import annotations

import fnmatch
import json
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from plugin.config import CONFIG_ENV, parse_config

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parents[2]
INSTRUCTIONS = {"FROM", "WORKDIR", "COPY", "ADD", "RUN", "ENV", "ARG", "USER", "EXPOSE", "CMD", "ENTRYPOINT", "LABEL",
                "HEALTHCHECK", "STOPSIGNAL", "SHELL", "VOLUME", "ONBUILD"}


def dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) of each instruction, continuation lines joined, comments left out."""
    out: list[tuple[str, str]] = []
    pending = ""
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        word, _, rest = (pending + line).strip().partition(" ")
        pending = ""
        assert word.upper() == word and word in INSTRUCTIONS, f"Dockerfile: unknown instruction {word!r}"
        out.append((word, rest.strip()))
    assert not pending, "Dockerfile ends inside a continued line"
    return out


def env_of(arguments: str) -> dict[str, str]:
    return dict(word.split("=", 1) for word in shlex.split(arguments))


def manifests() -> dict[str, dict[str, Any]]:
    docs = [doc for path in sorted((ROOT / "deploy").glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text())]
    kinds = {doc["kind"]: doc for doc in docs}
    assert len(kinds) == len(docs), "one manifest of each kind"
    return kinds


def dockerignored(path: str) -> bool:
    patterns = [p.strip() for p in (ROOT / ".dockerignore").read_text().splitlines()
                if p.strip() and not p.startswith("#")]
    parts = Path(path).parts
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    return any(fnmatch.fnmatch(prefix, pattern) for pattern in patterns for prefix in prefixes)


def test_the_dockerfile_parses_and_copies_only_what_exists_in_the_build_context() -> None:
    instructions = dockerfile()
    assert instructions[0][0] == "FROM"
    copies = [shlex.split(arguments) for word, arguments in instructions if word == "COPY"]
    assert copies
    for *sources, _destination in copies:
        assert not any(s.startswith("--from") for s in sources)
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: no such file in the repository"
            assert not dockerignored(source), f"COPY {source}: excluded by .dockerignore"


def test_the_image_installs_every_package_the_project_declares() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    copied = {Path(source).name for word, arguments in dockerfile() if word == "COPY"
              for source in shlex.split(arguments)[:-1]}
    assert set(project["tool"]["setuptools"]["packages"]) <= copied
    assert project["project"]["readme"] in copied and "pyproject.toml" in copied
    (install,) = [arguments for word, arguments in dockerfile() if word == "RUN" and "pip install" in arguments]
    assert "'.[flyte]'" in install and "-c constraints.txt" in install


def test_the_baked_config_and_the_configmap_are_one_config_that_can_serve() -> None:
    from plugin.flyte import service_problems

    baked = (ROOT / "config.cluster.yaml").read_text()
    mounted = manifests()["ConfigMap"]["data"]["config.yaml"]
    assert yaml.safe_load(mounted) == yaml.safe_load(baked)
    config = parse_config(yaml.safe_load(baked), source="config.cluster.yaml")
    assert config.backend == "aws" and "backend" in config.explicit_keys
    assert service_problems(config) == []


def test_ports_paths_and_names_agree_between_the_image_and_the_manifests() -> None:
    instructions = dockerfile()
    (cmd,) = [json.loads(arguments) for word, arguments in instructions if word == "CMD"]
    assert cmd[:3] == ["pyflyte", "serve", "connector"]
    grpc_port, metrics_port = int(cmd[cmd.index("--port") + 1]), int(cmd[cmd.index("--prometheus_port") + 1])
    exposed = {int(p) for word, arguments in instructions if word == "EXPOSE" for p in arguments.split()}
    assert exposed == {grpc_port, metrics_port}
    env = {k: v for word, arguments in instructions if word == "ENV" for k, v in env_of(arguments).items()}
    config_path = env[CONFIG_ENV]
    (copied_config,) = [shlex.split(a) for w, a in instructions if w == "COPY" and "config.cluster.yaml" in a]
    assert copied_config == ["config.cluster.yaml", config_path]

    kinds = manifests()
    pod = kinds["Deployment"]["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    assert container.get("args", cmd) == cmd
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"grpc": grpc_port, "metrics": metrics_port}
    assert container["readinessProbe"]["grpc"]["port"] == grpc_port
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == str(metrics_port)
    assert {e["name"]: e["value"] for e in container["env"]}[CONFIG_ENV] == config_path
    (mount,) = container["volumeMounts"]
    (volume,) = pod["spec"]["volumes"]
    assert mount["name"] == volume["name"] and str(Path(config_path).parent) == mount["mountPath"]
    assert volume["configMap"]["name"] == kinds["ConfigMap"]["metadata"]["name"]
    assert Path(config_path).name in kinds["ConfigMap"]["data"]

    account = kinds["ServiceAccount"]
    assert pod["spec"]["serviceAccountName"] == account["metadata"]["name"]
    assert account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].startswith("arn:aws:iam::")
    service = kinds["Service"]
    assert service["spec"]["selector"] == pod["metadata"]["labels"]
    assert {p["name"]: (p["port"], p["targetPort"]) for p in service["spec"]["ports"]} == {
        "grpc": (grpc_port, "grpc"), "metrics": (metrics_port, "metrics")}
    namespaces = {doc["metadata"]["namespace"] for doc in kinds.values()}
    assert namespaces == {"flyte"}
