"""The plugin as the tests set it up against a local endpoint (a moto server or a local SageMaker), kept once here.

Many test modules drive the plugin with the same config (tiny retry backoff, no client-side rate limits, no tracker
sweeps, so that every `get` asks SageMaker), the same kind of custom-image task with a fresh execution identity, and a
fake clock. What differs from one module to another is passed in (a config section, the task's project and domain,
its instance type...); a helper only one module needs stays in that module.

The fixtures built on these (`config`, `clock`) are in tests/conftest.py. Importable by name
(`from plugin_setup import make_config`): tests/conftest.py puts tests/support on sys.path.
"""

from __future__ import annotations

import uuid
from typing import Any

from aws_faults import CUSTOM, IMAGE
from plugin.config import Config, parse_config

#: the fake clock's first reading (2027-01-15), and the creation time of the jobs the tests play
START = 1_800_000_000.0
#: a retry policy whose backoff costs nothing (the number of attempts stays the config's default)
TINY_BACKOFF = {"backoff_seconds": 0.001, "max_backoff_seconds": 0.01}


def config_data(endpoint_url: str, **sections: Any) -> dict[str, Any]:
    """The config file's content for the local backend on `endpoint_url`; `sections` replace top-level keys whole."""
    return {
        "backend": "local",
        "local": {"endpoint_url": endpoint_url},
        "retry": dict(TINY_BACKOFF),
        "rate_limits": {"create_per_second": 0, "read_per_second": 0},
        "tracking": {"sweep_interval_seconds": 0},  # every get asks SageMaker: the tests script or check its answers
        **sections,
    }


def make_config(endpoint_url: str, **sections: Any) -> Config:
    """`config_data(endpoint_url, **sections)` parsed, as the plugin gets it."""
    return parse_config(config_data(endpoint_url, **sections))


class Clock:
    """The plugin's injected wall clock: reads `now`, which only a test moves."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


def fresh_task(project: str, domain: str, *, name: str | None = None, train: str = "s3://bucket/train/",
               instance_type: str = "ml.m5.xlarge", input_mode: str | None = None, **extra: Any) -> dict[str, Any]:
    """A custom-image task in task-file form, one instance of `instance_type`, its execution `project`/`domain`/`name`
    (a new unique name unless given) landing in the job name; `extra` adds top-level keys (output_prefix...)."""
    algorithm: dict[str, Any] = {"algorithm_name": "CUSTOM"}
    if input_mode is not None:
        algorithm["input_mode"] = input_mode
    return {
        "task_type": CUSTOM,
        "training_job": {
            "algorithm_specification": algorithm,
            "training_job_resource_config": {"instance_type": instance_type, "instance_count": 1},
        },
        "container": {"image": IMAGE},
        "inputs": {"train": train},
        "execution": {"project": project, "domain": domain, "name": name or uuid.uuid4().hex[:12]},
        **extra,
    }
