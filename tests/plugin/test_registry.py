"""The plugin registry: task types to the TrainingJobPlugin, the entry point group, conflicts.

Nothing here talks to SageMaker: building a plugin makes no call, and its client is built on first use.
"""

from __future__ import annotations

import importlib.metadata
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import pytest

import plugin.jobs.training_job
from plugin import InputError, PluginRegistry, ResourceMeta, TrainingJobPlugin, registry
from plugin.config import CONFIG_ENV, ENDPOINT_ENV, Config, parse_config
from plugin.registry import BUILTINS, ENTRY_POINT_GROUP

BUILTIN = "sagemaker_training_job_task"
CUSTOM = "sagemaker_custom_training_job_task"
ENDPOINT = "http://127.0.0.1:1"


@pytest.fixture
def config() -> Config:
    return parse_config({"backend": "local", "local": {"endpoint_url": ENDPOINT},
                         "rate_limits": {"create_per_second": 0, "read_per_second": 0}})


@pytest.mark.parametrize("task_type", [BUILTIN, CUSTOM])
def test_both_task_types_give_the_training_job_plugin(config: Config, task_type: str) -> None:
    p = registry.get(task_type, config=config)
    assert isinstance(p, TrainingJobPlugin)
    assert p.config is config
    assert p.metadata_type is ResourceMeta
    assert TrainingJobPlugin.metadata_type is ResourceMeta
    assert task_type in p.task_types


def test_the_registry_knows_both_task_types() -> None:
    assert {BUILTIN, CUSTOM} <= set(registry.task_types())


def test_keyword_arguments_reach_the_plugin(config: Config) -> None:
    p = registry.get(CUSTOM, config=config, clock=lambda: 42.0)
    assert isinstance(p, TrainingJobPlugin)
    client = p.client()
    assert client.endpoint_url == ENDPOINT
    assert client.region == "us-east-1"
    assert p.client() is client  # one client per region and endpoint


def test_unknown_task_type_is_a_key_error_listing_the_known(config: Config) -> None:
    with pytest.raises(KeyError) as caught:
        registry.get("sagemaker_processing_job_task", config=config)
    message = caught.value.args[0]
    assert "sagemaker_processing_job_task" in message
    assert BUILTIN in message
    assert CUSTOM in message
    assert "sagemaker_hyperparameter_tuning_job_task" in message


def test_the_registry_maps_the_tuning_task_type(config: Config) -> None:
    from plugin.jobs.tuning_job import TuningJobPlugin

    assert isinstance(registry.get("sagemaker_hyperparameter_tuning_job_task", config=config), TuningJobPlugin)


def test_the_builtins_are_registered_once_not_also_as_entry_points() -> None:
    pyproject = (Path(__file__).parents[2] / "pyproject.toml").read_text()
    assert ENTRY_POINT_GROUP == "sagemaker_plugin.plugins"
    assert ENTRY_POINT_GROUP not in pyproject  # other packages declare the group; ours are BUILTINS
    assert "plugin.jobs.training_job:register" in BUILTINS


def test_an_entry_point_into_this_package_is_skipped_and_another_is_loaded(monkeypatch: pytest.MonkeyPatch,
                                                                          config: Config) -> None:
    """An install made before the built-ins moved still names their old module: it must not break the registry."""
    stale = EntryPoint("sagemaker", "plugin.training_job:register", ENTRY_POINT_GROUP)
    other = EntryPoint("other", "tests_registry_other:register", ENTRY_POINT_GROUP)
    loaded: list[str] = []
    monkeypatch.setattr(EntryPoint, "load", lambda self: lambda reg: loaded.append(self.value))
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group: [stale, other] if group == ENTRY_POINT_GROUP
                        else [])
    fresh = PluginRegistry(builtins=BUILTINS)
    assert {BUILTIN, CUSTOM} <= set(fresh.task_types())
    assert loaded == ["tests_registry_other:register"]


def test_a_fresh_registry_finds_the_builtins(config: Config) -> None:
    fresh = PluginRegistry(builtins=BUILTINS)
    p = fresh.get(BUILTIN, config=config)
    assert isinstance(p, TrainingJobPlugin)
    assert {BUILTIN, CUSTOM} <= set(fresh.task_types())


def test_registering_the_builtins_again_changes_nothing(config: Config) -> None:
    fresh = PluginRegistry(builtins=BUILTINS)
    first = fresh.task_types()
    again = fresh.task_types()
    plugin.jobs.training_job.register(fresh)
    registry.task_types()  # the global registry already had the built-in registered by `import plugin`
    plugin.jobs.training_job.register(registry)
    assert first == again == fresh.task_types()
    assert isinstance(fresh.get(CUSTOM, config=config), TrainingJobPlugin)
    assert isinstance(registry.get(CUSTOM, config=config), TrainingJobPlugin)


def test_registering_another_factory_for_a_taken_type_raises(config: Config) -> None:
    def other(config: Config, **_: Any) -> object:
        return object()

    with pytest.raises(ValueError, match=CUSTOM):
        registry.register(CUSTOM, other)
    assert isinstance(registry.get(CUSTOM, config=config), TrainingJobPlugin)  # unchanged

    fresh = PluginRegistry()
    fresh.register("my_task", other)
    fresh.register("my_task", other)  # the same factory again is fine
    with pytest.raises(ValueError, match="my_task"):
        fresh.register("my_task", lambda config: None)


def test_a_third_party_factory_gets_the_config_and_keywords(config: Config) -> None:
    seen: list[tuple[Config, dict[str, Any]]] = []

    def factory(config: Config, **kwargs: Any) -> str:
        seen.append((config, kwargs))
        return "made"

    fresh = PluginRegistry()
    fresh.register("my_task", factory)
    assert fresh.get("my_task", config=config, flag=True) == "made"
    assert seen == [(config, {"flag": True})]


def test_without_a_config_the_default_search_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "engine.yaml"
    path.write_text("backend: local\nregion: eu-west-1\nlocal:\n  endpoint_url: http://127.0.0.1:2\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(ENDPOINT_ENV, raising=False)
    monkeypatch.setenv(CONFIG_ENV, str(path))
    p = registry.get(CUSTOM)
    assert p.config.source == str(path)
    assert p.config.region == "eu-west-1"
    assert p.client().endpoint_url == "http://127.0.0.1:2"


def test_the_local_backend_without_an_endpoint_names_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unless it may start a local SageMaker itself (tests/security/test_local_access.py shows that it does)."""
    monkeypatch.delenv(ENDPOINT_ENV, raising=False)
    p = registry.get(CUSTOM, config=parse_config({"backend": "local"}), embedded=False)
    with pytest.raises(InputError) as caught:
        p.client()
    assert [problem.path for problem in caught.value.problems] == ["local.endpoint_url"]
