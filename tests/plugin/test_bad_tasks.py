"""The bad-task corpus in tests/data/bad: `validate` on each file exits 2, names every expected field path on stderr,
and never shows a traceback.

Each YAML file starts with comment lines that say what to expect:
    # expect: <substring>      one line per problem the output must mention (a field path, or the file name)
    # args: <extra arguments>  optional, e.g. --region mars-1
    # config: <file>           optional, a config in tests/data/bad/configs (default: local.yaml)
Files that cannot carry a comment (JSON, empty, binary, not UTF-8) have their expectations in TABLE below.
"""

from __future__ import annotations

import os
import resource
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from handlers.errors import printable
from plugin.cli import main

ROOT = Path(__file__).resolve().parents[2]
BAD = ROOT / "tests" / "data" / "bad"
CONFIGS = BAD / "configs"
SCRIPT = Path(sys.executable).with_name("sagemaker-plugin")
RES = "training_job.training_job_resource_config"
ALGO = "training_job.algorithm_specification"

TABLE: dict[str, list[str]] = {
    "empty.yaml": ["empty.yaml", "is empty"],
    "binary.yaml": ["binary.yaml", "is a binary file"],
    "not_utf8.yaml": ["not_utf8.yaml", "is not UTF-8 text"],
    "syntax_error.json": ["syntax_error.json", "not valid YAML or JSON at line 4"],
    "proto3_bool_count.json": [f"{RES}.instance_count"],
    "proto3_enum_out_of_range.json": [f"{ALGO}.input_mode"],
    "proto3_field_twice.json": [f"{RES}.instance_count: is given twice"],
    "proto3_int64_underflow.json": [f"{RES}.volume_size_in_gb: does not fit in an int64"],
    "proto3_unknown_field.json": [f"{RES}.instanceCountt: unknown field (did you mean 'instanceCount'?)"],
}


@dataclass(frozen=True)
class Case:
    path: Path
    expect: tuple[str, ...]
    args: tuple[str, ...] = ()
    config: str = "local.yaml"

    def argv(self) -> list[str]:
        return ["validate", "--config", str(CONFIGS / self.config), *self.args, str(self.path)]


def read_case(path: Path) -> Case:
    if path.name in TABLE:
        return Case(path, tuple(TABLE[path.name]))
    expect: list[str] = []
    args: tuple[str, ...] = ()
    config = "local.yaml"
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        key, _, value = line[1:].strip().partition(":")
        if key == "expect":
            expect.append(printable(value.strip()))  # the CLI escapes control and bidi characters
        elif key == "args":
            args = tuple(shlex.split(value))
        elif key == "config":
            config = value.strip()
    return Case(path, tuple(expect), args, config)


CORPUS = sorted(p for p in BAD.iterdir() if p.is_file())
CASES = [read_case(p) for p in CORPUS]


def test_the_corpus_is_complete() -> None:
    assert len(CORPUS) >= 30
    for case in CASES:
        assert case.expect, f"{case.path.name}: no '# expect:' line and no entry in TABLE"
        assert (CONFIGS / case.config).is_file(), case
    assert set(TABLE) <= {p.name for p in CORPUS}


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.path.name)
def test_validate_rejects_each_bad_task(case: Case, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(case.argv())
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert "Traceback" not in err
    for expected in case.expect:
        assert expected in err, f"{expected!r} not in:\n{err}"
    lines = err.splitlines()
    count = len(lines) - 1
    assert lines[0] == f"error: {count} problem{'s' if count != 1 else ''} found:"
    assert all(line.startswith("  ") for line in lines[1:])


def test_a_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "missing.yaml"
    assert main(["validate", "--config", str(CONFIGS / "local.yaml"), str(missing)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == ["error: 1 problem found:", f"  {missing}: no such task file"]


def test_a_folder(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--config", str(CONFIGS / "local.yaml"), str(CONFIGS)]) == 2
    assert f"{CONFIGS}: is a folder, not a task file" in capsys.readouterr().err


def test_a_file_too_large(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    big = tmp_path / "big.yaml"
    big.write_text("tags:\n" + "".join(f"  k{i}: {'v' * 100}\n" for i in range(12000)), encoding="utf-8")
    assert main(["validate", "--config", str(CONFIGS / "local.yaml"), str(big)]) == 2
    assert "is too large for a task file" in capsys.readouterr().err


def test_several_problems_are_all_reported(capsys: pytest.CaptureFixture[str]) -> None:
    case = read_case(BAD / "several_problems.yaml")
    assert main(case.argv()) == 2
    err = capsys.readouterr().err
    reported = {line.strip().split(": ")[0] for line in err.splitlines()[1:]}
    assert reported == set(case.expect)


def _run_script(argv: list[str], cwd: Path, **kwargs: object) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAGEMAKER_PLUGIN_")}
    return subprocess.run([str(SCRIPT), *argv], capture_output=True, text=True, cwd=cwd, env=env, timeout=60,
                          **kwargs)  # type: ignore[call-overload]


@pytest.mark.parametrize("name", ["truncated.yaml", "binary.yaml", "alias_bomb.yaml", "python_object_tag.yaml",
                                  "several_problems.yaml", "unknown_region.yaml", "aws_missing_role.yaml"])
def test_the_console_script_rejects_bad_tasks(name: str, tmp_path: Path) -> None:
    case = read_case(BAD / name)
    done = _run_script(case.argv(), tmp_path)
    assert done.returncode == 2
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    for expected in case.expect:
        assert expected in done.stderr


def test_the_console_script_on_a_missing_file(tmp_path: Path) -> None:
    done = _run_script(["validate", "missing.yaml"], tmp_path)
    assert (done.returncode, done.stdout) == (2, "")
    assert "missing.yaml: no such task file" in done.stderr and "Traceback" not in done.stderr


def _limits() -> None:  # runs in the child: 3 s of CPU, 2 GiB of memory
    resource.setrlimit(resource.RLIMIT_CPU, (3, 3))
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))


def test_an_alias_bomb_under_the_alias_limit_is_refused_quickly(tmp_path: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 4) + "]" for i in range(1, 16)]  # 60 aliases
    lines = ["task_type: sagemaker_custom_training_job_task", "bomb:", *("  " + line for line in lines),
             "max_runtime_seconds: *a15"]  # 61st alias: 4**16 leaves
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    done = _run_script(["validate", "--config", str(CONFIGS / "local.yaml"), str(path)], tmp_path,
                       preexec_fn=_limits)
    assert done.returncode == 2, done.returncode
    assert "expands to more than" in done.stderr and "Traceback" not in done.stderr
