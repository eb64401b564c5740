"""Bad input never gets through: every bad task is refused before any AWS call, with exit 2, a message naming the
field (or the file), no traceback, in bounded time and memory.

Three sources of bad input:
- the corpus in tests/data/bad (its conventions: tests/plugin/test_bad_tasks.py, whose `read_case` and TABLE
  are reused here), run through `render` and through `run`, the command that would call AWS;
- byte-level inputs that cannot live in that corpus (its reader wants UTF-8 comment lines) or would weigh megabytes:
  other encodings, binary files, truncations, very large and very deep files, generated here;
- local inputs that point outside what the task names: `..` paths and symbolic links.

"Before any AWS call" is checked twice: every HTTP send of botocore is refused and recorded (the list must stay
empty), and the SageMaker endpoint is a closed port with bogus AWS credentials, so that a request that slipped
through would end in exit 3, not 2.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore.httpsession
import pytest
from botocore.config import Config

from handlers import uploads
from handlers.errors import printable
from plugin.cli import app, main
from sibling import load

ROOT = Path(__file__).resolve().parents[2]
BAD = ROOT / "tests" / "data" / "bad"
CONFIGS = BAD / "configs"
LOCAL_CONFIG = CONFIGS / "local.yaml"


# The corpus conventions (`# expect:` lines, TABLE for files that cannot carry comments) live in one place.
FND = load(ROOT / "tests" / "plugin" / "test_bad_tasks.py", "_sec_bad_tasks")
CORPUS = sorted(p for p in BAD.iterdir() if p.is_file())
CASES = [FND.read_case(p) for p in CORPUS]

BOGUS_AWS = {
    "AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7BOGUS00",
    "AWS_SECRET_ACCESS_KEY": "bogus/secret/key/that/must/never/be/used/0000",
    "AWS_SESSION_TOKEN": "bogus-session-token-that-must-never-be-used",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}

VALID_XGBOOST = """task_type: sagemaker_training_job_task
training_job:
  algorithm_specification:
    algorithm_name: XGBOOST
    algorithm_version: "1.7-1"
  training_job_resource_config:
    instance_count: 1
    instance_type: ml.m5.xlarge
    volume_size_in_gb: 10
inputs:
  train: s3://bucket/data/train/
  validation: s3://bucket/data/validation/
  static_hyperparameters:
    num_round: 10
    objective: "reg:squarederror"
output_prefix: s3://bucket/outputs
execution: {project: p, domain: development, name: f3a9c2e1b0, node_id: n0, retry_attempt: 0}
"""


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


CLOSED_ENDPOINT = f"http://127.0.0.1:{_closed_port()}"


@pytest.fixture(scope="module")
def parser() -> argparse.ArgumentParser:
    return app.build_parser()


@pytest.fixture(autouse=True)
def _one_parser(parser: argparse.ArgumentParser, monkeypatch: pytest.MonkeyPatch) -> None:
    """main() builds its command-line parser at every call (once a process, in real use), and that is most of what a
    call costs; the ~1,300 calls here get the same parser, built once (parse_args leaves it as it was)."""
    monkeypatch.setattr(app, "build_parser", lambda: parser)


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """No AWS call can happen: botocore's sends are refused and recorded; the endpoint is closed; credentials bogus."""
    sent: list[str] = []

    def refuse(self: Any, request: Any) -> Any:
        sent.append(f"{request.method} {request.url}")
        raise AssertionError(f"an AWS call was attempted: {request.method} {request.url}")

    monkeypatch.setattr(botocore.httpsession.URLLib3Session, "send", refuse)
    monkeypatch.delenv("SAGEMAKER_PLUGIN_CONFIG", raising=False)
    monkeypatch.setenv("SAGEMAKER_PLUGIN_ENDPOINT_URL", CLOSED_ENDPOINT)
    for key, value in BOGUS_AWS.items():
        monkeypatch.setenv(key, value)
    yield sent
    assert sent == [], f"AWS calls were attempted: {sent}"


def assert_refused(code: int, out: str, err: str, expect: tuple[str, ...] | list[str]) -> None:
    """Exit 2, nothing on stdout, every problem on its own indented line under a count, each expectation named."""
    assert code == 2, f"exit {code}:\n{err}"
    assert out == ""
    assert "Traceback" not in err
    lines = err.splitlines()
    count = len(lines) - 1
    assert lines[0] == f"error: {count} problem{'s' if count != 1 else ''} found:", err
    assert all(line.startswith("  ") for line in lines[1:]), err
    for expected in expect:
        assert printable(expected) in err, f"{expected!r} not in:\n{err}"


def run_argv(case: Any) -> list[str]:
    return ["run", "--no-logs", "--config", str(CONFIGS / case.config), *case.args, str(case.path)]


# --- the corpus ------------------------------------------------------------------------------------------------------


def test_the_corpus_covers_every_kind_of_bad_input() -> None:
    names = [p.name for p in CORPUS]
    assert len(names) >= 60
    kinds = {
        "types": "type_", "ranges": "range_", "enums": "enum_", "YAML features": "yaml_", "job names": "job_name_",
        "tags": "tag_", "local input paths": "input_path_", "channel names": "channel_name_",
        "hyperparameters": "hyperparameter_", "proto3 JSON": "proto3_",
    }
    for kind, prefix in kinds.items():
        assert sum(name.startswith(prefix) for name in names) >= 2, f"too few {kind} cases ({prefix}*)"
    for required in ("alias_bomb.yaml", "python_object_tag.yaml", "custom_tag.yaml", "truncated.yaml", "binary.yaml",
                     "not_utf8.yaml", "job_name_zero_width_space.yaml", "job_name_nul_escape.yaml",
                     "tag_value_newline.yaml", "tag_key_rtl_override.yaml", "input_path_traversal_missing.yaml"):
        assert required in names


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.path.name)
def test_render_refuses_each_bad_task(case: Any, offline: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["render", "--config", str(CONFIGS / case.config), *case.args, str(case.path)])
    out, err = capsys.readouterr()
    assert_refused(code, out, err, case.expect)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.path.name)
def test_run_refuses_each_bad_task_before_any_aws_call(case: Any, offline: list[str],
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """`run` reads the task, then renders it inside the plugin's create: both refusals come before any call."""
    code = main(run_argv(case))
    out, err = capsys.readouterr()
    assert_refused(code, out, err, case.expect)


# --- byte-level inputs, generated ------------------------------------------------------------------------------------


def _with(text: str, **replace: str) -> str:
    for old, new in replace.items():
        assert old in text
        text = text.replace(old, new, 1)
    return text


def _generated() -> dict[str, tuple[bytes, tuple[str, ...]]]:
    """name -> (the file's bytes, what the error must mention); `{name}` stands for the file's name."""
    valid = VALID_XGBOOST
    owner = valid + 'tags: {owner: "José Müller"}\n'
    rng = random.Random(6)
    noise = bytes(rng.randrange(256) for _ in range(4096))
    no_nul = bytes(b for b in noise if b) + b"\xff"
    res = "training_job.training_job_resource_config"
    cases: dict[str, tuple[bytes, tuple[str, ...]]] = {
        # encodings
        "utf16le_bom.yaml": (b"\xff\xfe" + valid.encode("utf-16-le"), ("{name}",)),
        "utf16be_bom.yaml": (b"\xfe\xff" + valid.encode("utf-16-be"), ("{name}",)),
        "utf16_no_bom.yaml": (valid.encode("utf-16-le"), ("{name}",)),
        "utf32_bom.yaml": (valid.encode("utf-32"), ("{name}",)),
        "latin1.yaml": (owner.encode("latin-1"), ("{name}", "is not UTF-8 text")),
        "cp1252_smart_quotes.yaml": ((valid + "job_name: \u201cjob\u201d\n").encode("cp1252"), ("{name}",)),
        "shift_jis.yaml": ((valid + "tags: {owner: 日本語}\n").encode("shift_jis"), ("{name}",)),
        "utf8_overlong_slash.yaml": (valid.encode() + b"job_name: a\xc0\xafb\n", ("{name}", "is not UTF-8 text")),
        "utf8_encoded_surrogate.yaml": (valid.encode() + b"job_name: a\xed\xa0\x80b\n", ("{name}",)),
        "utf8_stray_continuation.yaml": (b"\x80" + valid.encode(), ("{name}", "is not UTF-8 text")),
        "utf8_truncated_at_end.yaml": (valid.encode() + b"job_name: caf\xc3", ("{name}", "is not UTF-8 text")),
        "utf8_bom_bad_field.yaml": (b"\xef\xbb\xbf" + (valid + "job_name: bad_name!\n").encode(), ("job_name",)),
        # binary files
        "gzip.yaml": (gzip.compress(valid.encode(), mtime=0), ("{name}",)),
        "png.yaml": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + noise[:64], ("{name}", "is a binary file")),
        "elf.yaml": (b"\x7fELF\x02\x01\x01\x00" + noise[:256], ("{name}", "is a binary file")),
        "random_bytes.yaml": (noise, ("{name}",)),
        "random_bytes_no_nul.yaml": (no_nul, ("{name}",)),
        "nul_in_the_middle.yaml": (valid.encode().replace(b"ml.m5", b"ml\x00m5"), ("{name}", "is a binary file")),
        # truncated files
        "truncated_in_quote.yaml": (valid.encode()[: valid.index("1.7-1") + 2], ("{name}",)),
        "truncated_in_flow_map.yaml": (valid.encode()[: valid.index("node_id")], ("{name}",)),
        "truncated_json.yaml": (json.dumps({"task_type": "sagemaker_training_job_task",
                                            "training_job": {"algorithmSpecification": {}}}).encode()[:-7],
                                ("{name}",)),
        # very large and very deep
        "over_one_megabyte.yaml": ((valid + "#" + "x" * (1 << 20) + "\n").encode(), ("{name}", "too large")),
        "one_megabyte_job_name.yaml": ((valid + "job_name: " + "a" * ((1 << 20) - len(valid) - 20) + "\n").encode(),
                                       ("job_name", "Member must have length less than or equal to 63")),
        "forty_thousand_tags.yaml": ((valid + "tags: {" + ", ".join(f"k{i}: v" for i in range(40000)) + "}\n")
                                     .encode(), ("{name}", "more than 10000 values", "under tags")),
        "many_values.yaml": ((valid + "x: {" + ", ".join(f"h{i}: {i}" for i in range(60000)) + "}\n").encode(),
                             ("{name}", "more than 10000 values", "under x")),
        "deep_lists.yaml": ((valid + "tags: " + "[" * 400000 + "]" * 400000 + "\n").encode(),
                            ("{name}", "nested too deeply")),
        "deep_maps.yaml": ((valid + "tags: " + "{a: " * 200000 + "x" + "}" * 200000 + "\n").encode(),
                           ("{name}", "nested too deeply")),
        "long_string_instance_count.yaml": (_with(valid, **{"instance_count: 1": "instance_count: \"" + "9" * 500_000
                                                            + "\""}).encode(), (f"{res}.instance_count",)),
        "long_unquoted_key.yaml": ((valid + "tags: {" + "k" * 900_000 + ": v}\n").encode(), ("{name}",)),
    }
    return cases


GENERATED = _generated()


@pytest.fixture(scope="module")
def generated_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("generated-bad")
    paths = {}
    for name, (data, _) in GENERATED.items():
        paths[name] = folder / name
        paths[name].write_bytes(data)
    return paths


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_run_refuses_each_generated_bad_file(name: str, generated_files: dict[str, Path], offline: list[str],
                                             capsys: pytest.CaptureFixture[str]) -> None:
    path = generated_files[name]
    code = main(["run", "--no-logs", "--config", str(LOCAL_CONFIG), str(path)])
    out, err = capsys.readouterr()
    assert_refused(code, out, err, [e.replace("{name}", name) for e in GENERATED[name][1]])


def test_a_utf8_bom_is_fine(tmp_path: Path, offline: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """The control case of the encodings above: UTF-8 with a BOM is UTF-8."""
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + VALID_XGBOOST.encode())
    assert main(["validate", "--config", str(LOCAL_CONFIG), str(path)]) == 0
    assert "valid sagemaker_training_job_task" in capsys.readouterr().out


def test_every_truncation_of_a_valid_task_is_valid_or_refused(tmp_path: Path, offline: list[str],
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """Cut a valid task after every byte: each prefix is valid (exit 0) or refused cleanly (exit 2)."""
    data = VALID_XGBOOST.encode()
    path = tmp_path / "cut.yaml"
    refused = 0
    for end in range(len(data)):
        path.write_bytes(data[:end])
        code = main(["validate", "--config", str(LOCAL_CONFIG), str(path)])
        out, err = capsys.readouterr()
        assert code in (0, 2), (end, code, err)
        if code == 2:
            refused += 1
            assert_refused(code, out, err, ())
    assert refused > len(data) // 2


def test_random_byte_edits_of_a_valid_task_are_valid_or_refused(tmp_path: Path, offline: list[str],
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """Seeded single-byte edits (printable ASCII, newline, quotes, NUL, 0xff, multi-byte UTF-8): never a crash.

    Raw control characters are left out: they are a known crash (test_a_raw_control_character_is_refused).
    """
    rng = random.Random(2024)
    data = VALID_XGBOOST.encode()
    replacements = [bytes([b]) for b in range(0x20, 0x7F)] + [b"\n", b"\t", b"\x00", b"\xff", "é".encode(),
                                                              "\u202e".encode(), "\u200b".encode(), b""]
    path = tmp_path / "edit.yaml"
    for _ in range(400):
        at = rng.randrange(len(data))
        edited = data[:at] + rng.choice(replacements) + data[at + 1:]
        path.write_bytes(edited)
        code = main(["validate", "--config", str(LOCAL_CONFIG), str(path)])
        _, err = capsys.readouterr()
        assert code in (0, 2), (edited, code, err)
        assert "Traceback" not in err


# --- bounded time and memory, in a child process with resource limits -------------------------------------------------

CHILD = r"""
import contextlib, io, json, resource, sys, time
import botocore.httpsession

sent = []

def refuse(self, request):
    sent.append(request.url)
    raise RuntimeError("network use")

botocore.httpsession.URLLib3Session.send = refuse
from plugin.cli import app, main

results = []
for argv in json.load(sys.stdin):
    out, err = io.StringIO(), io.StringIO()
    start, cpu = time.monotonic(), time.process_time()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except BaseException as error:  # a crash: reported, not raised
            code = f"{type(error).__name__}: {str(error)[:200]}"
    results.append({"argv": argv, "code": code, "seconds": time.monotonic() - start,
                    "cpu_seconds": time.process_time() - cpu, "out": out.getvalue()[:500], "err": err.getvalue()[:500]})
def peak_mib():
    # VmHWM is this process's own peak; Linux's ru_maxrss also counts the parent's size at fork (a big pytest).
    with contextlib.suppress(OSError), open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

print(json.dumps({"results": results, "sent": sent, "max_rss_mib": peak_mib()}))
"""
CPU_SECONDS = 120
ADDRESS_SPACE = 2 << 30
# CPU time, so that a loaded machine does not fail the test, and generous: the slowest file takes 0.09 s with libyaml
# and 0.9 s without (`python benchmarks/bad_inputs.py [--pure-python]` measures it). A bound, not a benchmark.
MAX_CPU_SECONDS_PER_FILE = 5.0
MAX_SECONDS_PER_FILE = 30.0
MAX_RSS_MIB = 512


def _limits() -> None:  # in the child
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_SECONDS, CPU_SECONDS))
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


def test_every_bad_file_is_refused_in_bounded_time_and_memory(generated_files: dict[str, Path],
                                                              tmp_path: Path) -> None:
    """The whole corpus and every generated file through `run` in one child process under CPU and memory limits."""
    argvs = [run_argv(case) for case in CASES]
    argvs += [["run", "--no-logs", "--config", str(LOCAL_CONFIG), str(path)] for path in generated_files.values()]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SAGEMAKER_PLUGIN_", "AWS_"))}
    env.update(BOGUS_AWS, SAGEMAKER_PLUGIN_ENDPOINT_URL=CLOSED_ENDPOINT)
    done = subprocess.run([sys.executable, "-c", CHILD], input=json.dumps(argvs), capture_output=True, text=True,
                          cwd=tmp_path, env=env, timeout=CPU_SECONDS * 2, preexec_fn=_limits)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.splitlines()[-1])
    assert report["sent"] == []
    assert report["max_rss_mib"] < MAX_RSS_MIB, report["max_rss_mib"]
    for result in report["results"]:
        name = Path(result["argv"][-1]).name
        assert result["code"] == 2, (name, result)
        assert result["out"] == "" and "Traceback" not in result["err"], (name, result)
        assert result["cpu_seconds"] < MAX_CPU_SECONDS_PER_FILE, (name, result["cpu_seconds"])
        assert result["seconds"] < MAX_SECONDS_PER_FILE, (name, result["seconds"])


# --- inputs that once crashed with a traceback: each must be refused with a message ----------------------------------


def _validate(path: Path, capsys: pytest.CaptureFixture[str], config: Path = LOCAL_CONFIG) -> tuple[int, str, str]:
    try:
        code = main(["validate", "--config", str(config), str(path)])
    except Exception as error:  # what a user sees as a traceback
        out, err = capsys.readouterr()
        return -1, out, f"{err}Traceback: {type(error).__name__}: {error}"
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("char", ["\x1b", "\x0c", "\x7f", "\x9b"], ids=["esc", "form-feed", "del", "c1-csi"])
def test_a_raw_control_character_is_refused(char: str, tmp_path: Path, offline: list[str],
                                            capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "control.yaml"
    path.write_text(VALID_XGBOOST + f'job_name: "a{char}b"\n', encoding="utf-8")
    code, out, err = _validate(path, capsys)
    assert_refused(code, out, err, [str(path)])


def test_a_raw_control_character_in_the_config_is_refused(tmp_path: Path, offline: list[str],
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("backend: local\nregion: \"us-east-1\x1b[2J\"\n", encoding="utf-8")
    task = tmp_path / "task.yaml"
    task.write_text(VALID_XGBOOST, encoding="utf-8")
    code, out, err = _validate(task, capsys, config)
    assert_refused(code, out, err, [str(config)])


def test_an_integer_of_five_thousand_digits_is_refused(tmp_path: Path, offline: list[str],
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "digits.yaml"
    path.write_text(_with(VALID_XGBOOST, **{"instance_count: 1": "instance_count: " + "1" * 5000}), encoding="utf-8")
    code, out, err = _validate(path, capsys)
    assert_refused(code, out, err, ["instance_count"])


def test_a_huge_hex_integer_is_refused(tmp_path: Path, offline: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "hex.yaml"
    path.write_text(VALID_XGBOOST + "max_runtime_seconds: 0x" + "f" * 5000 + "\n", encoding="utf-8")
    code, out, err = _validate(path, capsys)
    assert_refused(code, out, err, ["max_runtime_seconds"])


def test_a_config_number_too_large_for_a_float_is_refused(tmp_path: Path, offline: list[str],
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("backend: local\nretry:\n  backoff_seconds: 1" + "0" * 400 + "\n", encoding="utf-8")
    task = tmp_path / "task.yaml"
    task.write_text(VALID_XGBOOST, encoding="utf-8")
    code, out, err = _validate(task, capsys, config)
    assert_refused(code, out, err, ["retry.backoff_seconds"])


def test_an_integer_beyond_int32_is_refused(tmp_path: Path, offline: list[str],
                                            capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "int32.yaml"
    path.write_text(VALID_XGBOOST + f"max_runtime_seconds: {2**31}\n", encoding="utf-8")
    code, out, err = _validate(path, capsys)
    assert_refused(code, out, err, ["max_runtime_seconds"])


@pytest.mark.parametrize("train", ["~no-such-user-6/data", "a" * 300, '"data/\\ud800"'],
                         ids=["under-an-unknown-home", "too-long", "with-a-lone-surrogate"])
def test_a_bad_local_input_path_is_refused(train: str, tmp_path: Path, offline: list[str],
                                           capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "input.yaml"
    path.write_text(_with(VALID_XGBOOST, **{"train: s3://bucket/data/train/": "train: " + train}), encoding="utf-8")
    code, out, err = _validate(path, capsys)
    assert_refused(code, out, err, ["inputs.train"])


# --- messages that name the field ------------------------------------------------------------------------------------


def test_a_non_string_top_level_key_is_named(tmp_path: Path, offline: list[str],
                                             capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "key.yaml"
    path.write_text(VALID_XGBOOST + "1: one\n", encoding="utf-8")
    code, out, err = _validate(path, capsys)
    assert_refused(code, out, err, ["key that is not a string: 1"])
    assert "not a map" not in err


def test_one_bad_message_field_gives_one_problem(tmp_path: Path, offline: list[str],
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """A bad field of the training_job message keeps its default alone: no false problems about the fields around."""
    path = tmp_path / "one.yaml"
    path.write_text(_with(VALID_XGBOOST, **{"instance_count: 1": 'instance_count: "two"'}), encoding="utf-8")
    code, out, err = _validate(path, capsys)
    assert_refused(code, out, err, ["training_job.training_job_resource_config.instance_count"])
    assert err.startswith("error: 1 problem found:"), err


@pytest.mark.parametrize("key", ["max\ndepth", "\x1b[2Jred", "nul\x00", "team\u202e"],
                         ids=["newline", "esc", "nul", "rtl-override"])
def test_control_characters_in_field_names_are_escaped(key: str, tmp_path: Path, offline: list[str],
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "keys.yaml"
    escaped = key.encode("unicode_escape").decode("ascii")
    path.write_text(VALID_XGBOOST + f'tags: {{"{escaped}": x}}\n', encoding="utf-8")
    code, out, err = _validate(path, capsys)
    assert_refused(code, out, err, ["tags."])
    assert not any(ch in err for ch in ("\x1b", "\x00", "\u202e")), repr(err)


# --- local inputs are only read, never followed outside what the task names ------------------------------------------


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder with a secret, outside the task's folder."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "secret.txt").write_text("outside-secret-6f1c", encoding="utf-8")
    return folder


def _input_folder(tmp_path: Path, outside: Path) -> Path:
    """task/data/: one real file, plus links to a file and to a folder outside."""
    data = tmp_path / "task" / "data"
    (data / "sub").mkdir(parents=True)
    (data / "train.csv").write_text("1,2,3\n", encoding="utf-8")
    (data / "sub" / "more.csv").write_text("4,5,6\n", encoding="utf-8")
    (data / "secret-link.txt").symlink_to(outside / "secret.txt")
    (data / "outside-link").symlink_to(outside, target_is_directory=True)
    (data / "sub" / "up-link").symlink_to(tmp_path, target_is_directory=True)
    return data


def test_links_inside_an_input_folder_are_not_followed(tmp_path: Path, outside: Path) -> None:
    data = _input_folder(tmp_path, outside)
    assert sorted(uploads.iter_files(data)) == [(data / "sub" / "more.csv", "sub/more.csv"),
                                                 (data / "train.csv", "train.csv")]


def test_an_input_that_is_a_link_is_refused_by_uploads(tmp_path: Path, outside: Path) -> None:
    link = tmp_path / "link"
    link.symlink_to(outside, target_is_directory=True)
    with pytest.raises(uploads.InputError, match="symbolic link"):
        list(uploads.iter_files(link))


def test_run_uploads_only_the_files_inside_the_input_folder(tmp_path: Path, outside: Path, endpoint: str,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """End to end through the plugin's create on a moto server (`endpoint`, tests/conftest.py): the links' targets
    never reach S3."""
    from plugin import TrainingJobPlugin, load_task
    from plugin.config import parse_config

    monkeypatch.delenv("SAGEMAKER_PLUGIN_ENDPOINT_URL", raising=False)
    _input_folder(tmp_path, outside)
    task_file = tmp_path / "task" / "task.yaml"
    task_file.write_text(_with(VALID_XGBOOST, **{
        "train: s3://bucket/data/train/": "train: data", "name: f3a9c2e1b0": f"name: links-{time.time_ns()}"}),
        encoding="utf-8")
    config = parse_config({"backend": "local", "local": {"endpoint_url": endpoint},
                           "retry": {"attempts": 2, "backoff_seconds": 0.001},
                           "rate_limits": {"create_per_second": 0, "read_per_second": 0}})
    meta = TrainingJobPlugin(config).create(load_task(task_file))
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing",
                      aws_secret_access_key="testing", config=Config(s3={"addressing_style": "path"}))
    prefix = f"outputs/{meta.job_name}/input/train/"  # the task's output_prefix is s3://bucket/outputs
    found = s3.list_objects_v2(Bucket="bucket", Prefix=prefix).get("Contents", [])
    keys = sorted(item["Key"][len(prefix):] for item in found)
    assert keys == ["sub/more.csv", "train.csv"]
    for key in keys:
        body = s3.get_object(Bucket="bucket", Key=prefix + key)["Body"].read()
        assert b"outside-secret" not in body


def test_an_input_that_is_a_link_is_refused_before_any_call(tmp_path: Path, outside: Path, offline: list[str],
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "link").symlink_to(outside, target_is_directory=True)
    path = tmp_path / "task.yaml"
    path.write_text(_with(VALID_XGBOOST, **{"train: s3://bucket/data/train/": "train: ./link"}), encoding="utf-8")
    code, out, err = _validate(path, capsys)
    assert_refused(code, out, err, ["inputs.train"])


def test_a_local_input_climbing_out_of_the_task_folder_is_refused(tmp_path: Path, offline: list[str],
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "traversal.yaml"
    path.write_text(_with(VALID_XGBOOST, **{"train: s3://bucket/data/train/": "train: " + "../" * 12 + "etc/passwd"}),
                    encoding="utf-8")
    assert Path("/etc/passwd").exists()
    code, out, err = _validate(path, capsys)
    assert_refused(code, out, err, ["inputs.train"])
