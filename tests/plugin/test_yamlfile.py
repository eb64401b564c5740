"""Reading YAML and JSON files: a file with too many values is refused while it is parsed, not after.

Both loaders are checked: libyaml's parser (what PyYAML wheels carry) and PyYAML's own (an install without libyaml).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from handlers.errors import InputError
from plugin import yamlfile

ROOT = Path(__file__).resolve().parents[2]
LOADERS = [pytest.param(yamlfile._StrictPyLoader, id="pure-python")]
if yaml.__with_libyaml__:
    LOADERS.insert(0, pytest.param(yamlfile._StrictCLoader, id="libyaml"))


def parse(text: str, loader: Any) -> Any:
    return yamlfile.parse_text(text, "f.yaml", loader)


def flow_map(count: int) -> str:
    return "{" + ", ".join(f"k{i}: {i}" for i in range(count)) + "}"


@pytest.mark.parametrize("loader", LOADERS)
def test_values_beyond_the_limit_are_refused_before_the_rest_is_read(loader: Any) -> None:
    """The file breaks after the limit: the limit is what is reported, so the rest was never parsed."""
    text = "a: 1\nhyper:\n  many: " + flow_map(yamlfile.MAX_VALUES) + "\n  broken: [unclosed\n"
    with pytest.raises(InputError) as caught:
        parse(text, loader)
    message = str(caught.value)
    assert f"more than {yamlfile.MAX_VALUES} values" in message, message
    assert "line 3, column" in message and "under hyper.many" in message, message


@pytest.mark.parametrize("loader", LOADERS)
def test_values_up_to_the_limit_are_read(loader: Any) -> None:
    pairs = (yamlfile.MAX_VALUES - 3) // 2  # the top-level map, its key "m" and the inner map are values too
    data = parse(f"m: {flow_map(pairs)}\n", loader)
    assert len(data["m"]) == pairs and data["m"][f"k{pairs - 1}"] == pairs - 1
    with pytest.raises(InputError, match="more than"):
        parse(f"m: {flow_map(pairs + 1)}\n", loader)


@pytest.mark.parametrize("loader", LOADERS)
def test_items_of_a_list_are_named_by_index(loader: Any) -> None:
    text = "outer:\n  - " + "[" + ", ".join("1" for _ in range(yamlfile.MAX_VALUES)) + "]\n"
    with pytest.raises(InputError, match=r"under outer\[0\]"):
        parse(text, loader)


@pytest.mark.parametrize("loader", LOADERS)
def test_both_loaders_read_and_refuse_alike(loader: Any) -> None:
    text = "a: [1, {b: c}, 2.5, true, null]\nd: &x 0x1f\ne: *x\n'quoted': \"é\"\n"
    assert parse(text, loader) == {"a": [1, {"b": "c"}, 2.5, True, None], "d": 31, "e": 31, "quoted": "é"}
    refusals = {
        "a: 1\na: 2\n": "duplicate key 'a'",
        "a: !!python/object/apply:os.getcwd []\n": "could not determine a constructor",
        "a: b\nc: x\x1by\n": "character U+001B at line 2, column 5 is not allowed",
        "a: " + "[" * 5000 + "\n": "nested too deeply",
        "a: [\n": "not valid YAML or JSON at line",
    }
    for bad, expected in refusals.items():
        with pytest.raises(InputError, match=expected.replace("+", r"\+")):
            parse(bad, loader)


def test_the_benchmark_runs_quick() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bad_inputs.py"), "--quick"],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert result["files"] == result["refused"] >= 8 and result["not_refused"] == []
    assert result["max_values"] == yamlfile.MAX_VALUES
    assert 0 < result["median_cpu_seconds"] <= result["max_cpu_seconds"]
    assert {"name", "cpu_seconds", "exit"} == set(result["slowest"][0])
