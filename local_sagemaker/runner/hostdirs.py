"""Each host's root folder, shown to its processes as the container's `/opt/ml`, and the config files SageMaker
writes there.

The layout and the three JSON files are what SageMaker gives a training container (`input/config/*.json`,
`input/data/<channel>/`, `model/`, `output/`, `output/data/`, `checkpoints/` for `/opt/ml/checkpoints`), so code
written for SageMaker finds everything where it looks for it. The runner writes under the host's real folder; its
processes see that folder at `/opt/ml` itself when they run in a private mount namespace (`mounted`, see optml.py),
else under its real path, with `/opt/ml` at the start of a command's argument or an Environment value rewritten.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CONTAINER_ROOT = "/opt/ml"
#: The network interface SageMaker names in resourceconfig.json (the toolkit's default too).
NETWORK_INTERFACE = "eth0"


def host_name(index: int) -> str:
    """`algo-1` for index 1: SageMaker's host names count from 1."""
    return f"algo-{index}"


class _Under:
    """A place of the layout: its path under the root that stands for /opt/ml."""

    def __init__(self, *parts: str) -> None:
        self.parts = parts

    def __get__(self, layout: OptMl, owner: type | None = None) -> Path:
        return layout.root.joinpath(*self.parts)


@dataclass(frozen=True)
class OptMl:
    """The container's /opt/ml layout under `root`: what SageMaker writes there and where the container writes back
    (the one statement of it, for the local SageMaker and the XGBoost program it runs on each host)."""

    root: Path

    input_dir = _Under("input")
    config_dir = _Under("input", "config")
    data_dir = _Under("input", "data")
    model_dir = _Under("model")
    output_dir = _Under("output")
    output_data_dir = _Under("output", "data")
    intermediate_dir = _Under("output", "intermediate")
    failure_file = _Under("output", "failure")
    checkpoint_dir = _Under("checkpoints")
    code_dir = _Under("code")

    def channel_dir(self, channel: str) -> Path:
        return self.data_dir / channel

    def container_path(self, text: str) -> str:
        """`text` with a leading /opt/ml (a container path in a command or an env value) moved under this root."""
        if text == CONTAINER_ROOT or text.startswith(CONTAINER_ROOT + "/"):
            return str(self.root) + text[len(CONTAINER_ROOT) :]
        return text


@dataclass(frozen=True)
class HostDirs(OptMl):
    """The folders of one host of a job (`index` from 1, as SageMaker counts hosts); `mounted` when its processes
    see `root` at /opt/ml itself."""

    index: int
    mounted: bool = False

    @property
    def name(self) -> str:
        return host_name(self.index)

    @property
    def seen(self) -> OptMl:
        """The layout as the host's processes see it (paths for their environment and arguments)."""
        return OptMl(Path(CONTAINER_ROOT)) if self.mounted else OptMl(self.root)

    def container_path(self, text: str) -> str:
        """A container path as the host's processes must name it: itself when they see /opt/ml."""
        return text if self.mounted else super().container_path(text)

    def real_path(self, text: str) -> str:
        """A container path as the runner (outside the namespace) finds it."""
        return OptMl.container_path(self, text)


def make_hosts(job_dir: Path, count: int, mounted: bool = False) -> list[HostDirs]:
    """The empty layout of `count` hosts under `job_dir` (`algo-1/`, `algo-2/`, ...)."""
    hosts = [HostDirs(job_dir / host_name(index), index, mounted) for index in range(1, count + 1)]
    for host in hosts:
        for folder in (host.config_dir, host.data_dir, host.model_dir, host.output_data_dir, host.intermediate_dir,
                       host.checkpoint_dir, host.code_dir):
            folder.mkdir(parents=True, exist_ok=True)
    return hosts


def resource_config(host: HostDirs, count: int, instance_type: str) -> dict[str, Any]:
    """resourceconfig.json: this host, every host, the network interface, and the single instance group."""
    names = [host_name(index) for index in range(1, count + 1)]
    return {
        "current_host": host.name,
        "current_instance_type": instance_type,
        "current_group_name": "homogeneousCluster",
        "hosts": names,
        "instance_groups": [{"instance_group_name": "homogeneousCluster", "instance_type": instance_type,
                             "hosts": names}],
        "network_interface_name": NETWORK_INTERFACE,
    }


def input_data_config(channels: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """inputdataconfig.json: per channel, what SageMaker writes (content type, input mode, distribution)."""
    out: dict[str, Any] = {}
    for channel in channels:
        source = (channel.get("DataSource") or {}).get("S3DataSource") or {}
        entry: dict[str, Any] = {
            "TrainingInputMode": channel.get("InputMode") or "File",
            "S3DistributionType": source.get("S3DataDistributionType") or "FullyReplicated",
            "RecordWrapperType": channel.get("RecordWrapperType") or "None",
        }
        if channel.get("ContentType"):
            entry["ContentType"] = channel["ContentType"]
        out[str(channel.get("ChannelName", ""))] = entry
    return out


def write_config(host: HostDirs, request: Mapping[str, Any], count: int) -> None:
    """The three files of input/config/, from the CreateTrainingJob request."""
    resources = request.get("ResourceConfig") or {}
    files = {
        "hyperparameters.json": {str(k): str(v) for k, v in (request.get("HyperParameters") or {}).items()},
        "resourceconfig.json": resource_config(host, count, str(resources.get("InstanceType") or "local")),
        "inputdataconfig.json": input_data_config(request.get("InputDataConfig") or []),
    }
    for name, content in files.items():
        (host.config_dir / name).write_text(json.dumps(content, indent=2, sort_keys=True), encoding="utf-8")
