"""One host's view of its job: the folder that stands in for /opt/ml, read as the container reads /opt/ml.

The layout is runner/hostdirs.py's `OptMl`, which the local SageMaker writes; of input/config/ this reads
hyperparameters.json (all values strings), resourceconfig.json (current_host, hosts) and inputdataconfig.json
(per channel: ContentType, TrainingInputMode, S3DistributionType, ...).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local_sagemaker.runner.hostdirs import OptMl
from local_sagemaker.xgboost.failures import ClientError

DEFAULT_TRACKER_PORT = 9099  # the container's first rabit port when none is given


@dataclass(frozen=True)
class Host:
    dirs: OptMl
    hyperparameters: Mapping[str, str]
    channels: Mapping[str, Mapping[str, Any]]
    hosts: tuple[str, ...]  # sorted, as the container sorts them: the first is the master
    current_host: str
    master_addr: str
    master_port: int

    @property
    def checkpoint_dir(self) -> Path | None:
        """Checkpoints are kept when the job has a checkpoint folder (CheckpointConfig on SageMaker)."""
        folder = self.dirs.checkpoint_dir
        return folder if folder.is_dir() else None

    def channel_dir(self, name: str) -> Path | None:
        return self.dirs.channel_dir(name) if name in self.channels else None

    @property
    def is_master(self) -> bool:
        return self.current_host == self.hosts[0]


def read_host(root: Path, environ: Mapping[str, str] = os.environ) -> Host:
    dirs = OptMl(root)
    config = dirs.config_dir
    hyperparameters = _read_json(config / "hyperparameters.json", default={})
    channels = _read_json(config / "inputdataconfig.json", default={})
    resources = _read_json(config / "resourceconfig.json", default={"current_host": "algo-1", "hosts": ["algo-1"]})
    if not isinstance(hyperparameters, dict) or not all(isinstance(v, str) for v in hyperparameters.values()):
        raise ClientError("hyperparameters.json must map each hyperparameter's name to a string value")
    if not isinstance(channels, dict) or not all(isinstance(v, dict) for v in channels.values()):
        raise ClientError("inputdataconfig.json must map each channel's name to its configuration")
    hosts = resources.get("hosts") if isinstance(resources, dict) else None
    current = resources.get("current_host") if isinstance(resources, dict) else None
    if not isinstance(hosts, list) or not hosts or not all(isinstance(h, str) for h in hosts) or current not in hosts:
        raise ClientError("resourceconfig.json must name the hosts and the current host among them")
    ordered = tuple(sorted(hosts))
    port = environ.get("MASTER_PORT", "")
    return Host(
        dirs=dirs,
        hyperparameters=hyperparameters,
        channels=channels,
        hosts=ordered,
        current_host=str(current),
        master_addr=environ.get("MASTER_ADDR") or ordered[0],
        master_port=int(port) if port.isdigit() else DEFAULT_TRACKER_PORT,
    )


def _read_json(path: Path, default: Any) -> Any:
    if not path.exists():
        return default
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ClientError(f"{path.name} is not valid JSON: {error}") from None
