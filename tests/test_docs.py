"""The project's own documentation stands alone and stays true to the code.

- every file the README and docs/ name (a markdown link, or a `code` path under one of the repository's top-level
  folders or files) exists in the repository;
- no document, no user-facing docstring and no --help text sends a reader to a contract outside the repository;
- every config key the code accepts is in docs/config.md, every task key and TrainingJob field in docs/task-file.md,
  and every key of a tuning task, field of the two tuning messages and value of their enums in its tuning section.
"""

from __future__ import annotations

import dataclasses
import enum
import re
import typing
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from plugin.config import parse_config
from plugin.fields import Reader
from plugin.message import AlgorithmSpecification, TrainingJobResourceConfig
from plugin.task import _TASK_KEYS, _TUNING_KEYS, Container, Execution, Spot
from plugin.tuning_message import HyperparameterTuningJob, HyperparameterTuningJobConfig

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [ROOT / "README.md", *DOCS]
#: the repository's top-level names, including those other changes ship (a path under them must exist)
TOP_LEVEL = {p.name for p in ROOT.iterdir() if not p.name.startswith(".git")} | {
    "Dockerfile", "deploy", "config.cluster.yaml", "docs", ".ci", "scripts"}
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
CODE = re.compile(r"`([^`\s]+)`")
USER_FACING_CODE = ("plugin", "handlers", "image_registry", "local_sagemaker", "benchmarks", "examples")
OUTSIDE_CONTRACT = re.compile(r"\bSPEC\b")


def _named_paths(page: Path) -> Iterator[tuple[str, Path]]:
    text = page.read_text(encoding="utf-8")
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):  # a URL or an anchor of the same page
            continue
        yield target, (page.parent / target.split("#")[0]).resolve()
    for span in CODE.findall(text):
        first = span.split("/")[0]
        if first in TOP_LEVEL and re.fullmatch(r"[\w.\-/]+", span):
            yield span, ROOT / span


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_file_a_page_names_exists(page: Path) -> None:
    named = list(_named_paths(page))
    missing = [text for text, path in named if not path.exists()]
    assert missing == [], f"{page.name} names files that do not exist: {missing}"


def test_the_readme_points_to_the_reference_pages() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    linked = {target for target in LINK.findall(readme)}
    assert {"docs/task-file.md", "docs/config.md", "docs/phases.md"} <= linked


def test_the_check_catches_a_missing_file(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("See [the Flyte page](flyte.md), `docs/flyte.md`, `examples/xgboost.yaml` and "
                    "`/aws/sagemaker/TrainingJobs` or `s3://bucket/x.yaml`.\n", encoding="utf-8")
    named = dict(_named_paths(page))
    assert set(named) == {"flyte.md", "docs/flyte.md", "examples/xgboost.yaml"}
    assert [text for text, path in named.items() if not path.exists()] == ["flyte.md", "docs/flyte.md"]


# --- nothing points outside the repository ----------------------------------------------------------------------


def _user_facing_files() -> Iterator[Path]:
    yield from PAGES
    for folder in USER_FACING_CODE:
        yield from (p for p in (ROOT / folder).rglob("*") if p.suffix in (".py", ".md", ".yaml") and p.is_file())
    yield ROOT / "config.yaml"


def test_no_page_or_docstring_points_to_an_outside_contract() -> None:
    found = [f"{path.relative_to(ROOT)}:{number}" for path in _user_facing_files()
             for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
             if OUTSIDE_CONTRACT.search(line)]
    assert found == []


def _help_texts() -> Iterator[str]:
    from plugin.cli import build_parser

    def walk(parser: Any) -> Iterator[str]:
        yield parser.format_help()
        for action in parser._actions:
            if isinstance(getattr(action, "choices", None), dict):
                for sub in action.choices.values():
                    yield from walk(sub)

    yield from walk(build_parser())


def test_no_help_text_points_to_an_outside_contract() -> None:
    texts = list(_help_texts())
    assert len(texts) >= 9
    assert not [text for text in texts if OUTSIDE_CONTRACT.search(text)]


# --- every key documented -----------------------------------------------------------------------------------------


def _config_keys() -> set[str]:
    """Every key the config parser accepts, as dotted paths (list items as `[]`), recorded while it reads."""
    seen: set[str] = set()
    original = Reader.known_keys

    def record(self: Reader, data: Any, known: Iterable[str], path: str) -> None:
        prefix = re.sub(r"\[\d+\]", "[]", path)
        seen.update(f"{prefix}.{key}" if prefix else key for key in known)
        original(self, data, known, path)

    Reader.known_keys = record  # type: ignore[method-assign]
    try:
        parse_config({"local": {"failures": [{}]}})
    finally:
        Reader.known_keys = original  # type: ignore[method-assign]
    return seen


def test_every_config_key_is_documented() -> None:
    keys = _config_keys()
    assert {"backend", "retry.attempts", "local.quotas.instances", "local.failures[].name_pattern"} <= keys
    leaves = {key for key in keys if not any(other.startswith((f"{key}.", f"{key}[]")) for other in keys)}
    page = (ROOT / "docs" / "config.md").read_text(encoding="utf-8")
    assert sorted(key for key in leaves if f"`{key}`" not in page) == []


def test_every_task_key_and_message_field_is_documented() -> None:
    page = (ROOT / "docs" / "task-file.md").read_text(encoding="utf-8")
    names = [f"`{key}`" for key in _TASK_KEYS]
    names += [f"`{kind}.{f.name}`" for kind, message in (("algorithm_specification", AlgorithmSpecification),
                                                          ("training_job_resource_config", TrainingJobResourceConfig))
              for f in dataclasses.fields(message)]
    names += [f"`{f.name}`" for cls in (Container, Execution, Spot) for f in dataclasses.fields(cls)]
    assert [name for name in names if name not in page] == []


def _schema(message: type, fields: set[str], enums: set[str]) -> None:
    """The field names of a message and of the messages it holds (the TrainingJob template aside: checked above),
    and the value names of every enum among them, read from the dataclass annotations."""
    def walk(kind: Any) -> None:
        if isinstance(kind, type) and issubclass(kind, enum.Enum):
            enums.update(member.name for member in kind)
        elif dataclasses.is_dataclass(kind) and isinstance(kind, type) and kind.__name__ != "TrainingJob":
            _schema(kind, fields, enums)
        for inner in typing.get_args(kind):
            walk(inner)

    hints = typing.get_type_hints(message)
    for field in dataclasses.fields(message):  # the fields, not class variables such as default_path
        fields.add(field.name)
        walk(hints[field.name])


def test_every_tuning_key_message_field_and_enum_value_is_documented() -> None:
    page = (ROOT / "docs" / "task-file.md").read_text(encoding="utf-8")
    section = re.sub(r"```.*?```", "", page[page.index("## Tuning tasks"):], flags=re.DOTALL)  # the tables, the text
    words = {word for span in re.findall(r"`([^`]+)`", section) for word in re.split(r"[^\w]+", span) if word}
    fields: set[str] = set()
    enums: set[str] = set()
    for message in (HyperparameterTuningJob, HyperparameterTuningJobConfig):
        _schema(message, fields, enums)
    assert {"parameter_range_map", "integer_parameter_range", "metric_name", "values"} <= fields
    assert {"REVERSELOGARITHMIC", "RANDOM", "MAXIMIZE", "AUTO"} <= enums
    assert sorted((set(_TUNING_KEYS) | fields | enums) - words) == []


def test_every_docs_page_named_anywhere_exists() -> None:
    """Code, examples and config name docs/ pages too (e.g. a docstring's `docs/flyte.md`)."""
    named = {(path.relative_to(ROOT), match) for path in _user_facing_files()
             for match in re.findall(r"\bdocs/[\w.-]*\w", path.read_text(encoding="utf-8"))}
    assert named, "no page names docs/ at all"
    assert sorted(str(entry) for entry in named if not (ROOT / entry[1]).exists()) == []
