"""The project's own documentation stands alone and stays true to the code.

- the README reads in ten minutes (at most 350 lines) and links every page of docs/;
- every file the README and docs/ name (a markdown link, or a `code` path under one of the repository's top-level
  folders or files) exists in the repository, and every relative link resolves inside it, to a heading if it names one;
- no document, no user-facing docstring and no --help text sends a reader to a contract outside the repository;
- every `sagemaker-plugin` command a page shows, and each of its options, exists in the command line's --help;
- every config key the code accepts is in docs/config.md, every task key and TrainingJob field in docs/task-file.md,
  and every key of a tuning task, field of the two tuning messages and value of their enums in its tuning section;
- what the pages say of the examples and shows as output is what the examples do: the README's table of examples
  agrees with their files, its sample run and the Flyte page's sample output are lines of a real run, and the
  model-loading snippet loads the models the local XGBoost writes, without a warning.
"""

from __future__ import annotations

import dataclasses
import enum
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import textwrap
import typing
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

import xgboost_hosts
from handlers.local_job_links import page_url
from plugin.config import parse_config
from plugin.fields import Reader
from plugin.jobs.resource import LOCAL_PAGE
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


def test_the_readme_reads_in_ten_minutes() -> None:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 350, f"README.md has {len(lines)} lines: move the detail to a page of docs/"


def test_the_readme_links_every_docs_page() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    linked = {target.split("#")[0] for target in LINK.findall(readme)}
    assert {"docs/task-file.md", "docs/config.md", "docs/phases.md", "docs/architecture.md"} <= linked
    assert sorted(f"docs/{page.name}" for page in DOCS if f"docs/{page.name}" not in linked) == []


def test_the_check_catches_a_missing_file(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("See [the Flyte page](flyte.md), `docs/nowhere.md`, `examples/xgboost.yaml` and "
                    "`/aws/sagemaker/TrainingJobs` or `s3://bucket/x.yaml`.\n", encoding="utf-8")
    named = dict(_named_paths(page))
    assert set(named) == {"flyte.md", "docs/nowhere.md", "examples/xgboost.yaml"}
    assert [text for text, path in named.items() if not path.exists()] == ["flyte.md", "docs/nowhere.md"]


def _anchors(page: Path) -> set[str]:
    """The anchors of a page's headings, as GitHub makes them (lower case, punctuation dropped, spaces to hyphens)."""
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.DOTALL)
    anchors: set[str] = set()
    for heading in re.findall(r"^#{1,6} +(.+?)\s*$", text, re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        anchors.add(slug if slug not in anchors else next(f"{slug}-{n}" for n in range(1, 100)
                                                          if f"{slug}-{n}" not in anchors))
    return anchors


def _link_problems(page: Path, root: Path) -> list[str]:
    """Each relative link of the page that leaves `root`, names no file, or names a heading its page lacks."""
    problems = []
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target):  # a URL
            continue
        file_part, _, anchor = target.partition("#")
        path = (page.parent / file_part).resolve() if file_part else page
        if root not in path.parents:
            problems.append(f"{target}: outside the repository")
        elif not path.is_file():
            problems.append(f"{target}: no such file")
        elif anchor and path.suffix == ".md" and anchor not in _anchors(path):
            problems.append(f"{target}: no such heading in {path.name}")
    return problems


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_relative_link_resolves_inside_the_repository(page: Path) -> None:
    assert _link_problems(page, ROOT) == []


def test_the_link_check_catches_bad_links(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "docs").mkdir(parents=True)
    (tmp_path / "outside.md").write_text("# Outside\n", encoding="utf-8")
    (repo / "docs" / "other.md").write_text("# Other\n\n## The `local` SageMaker's data\n", encoding="utf-8")
    page = repo / "docs" / "page.md"
    page.write_text("# Page\n[a](other.md#the-local-sagemakers-data) [b](#page) [c](https://x.org/y#z)\n"
                    "[d](other.md#nope) [e](../../outside.md) [f](missing.md) [g](#nope)\n", encoding="utf-8")
    assert _link_problems(page, repo) == [
        "other.md#nope: no such heading in other.md", "../../outside.md: outside the repository",
        "missing.md: no such file", "#nope: no such heading in page.md"]


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


def _parsers() -> dict[tuple[str, ...], Any]:
    """Every parser of the command line by its command words: () the top level, ("local", "serve"), ..."""
    from plugin.cli import build_parser

    found: dict[tuple[str, ...], Any] = {}

    def walk(parser: Any, words: tuple[str, ...]) -> None:
        found[words] = parser
        for action in parser._actions:
            if isinstance(getattr(action, "choices", None), dict):
                for name, sub in action.choices.items():
                    walk(sub, (*words, name))

    walk(build_parser(), ())
    return found


def test_no_help_text_points_to_an_outside_contract() -> None:
    texts = [parser.format_help() for parser in _parsers().values()]
    assert len(texts) >= 9
    assert not [text for text in texts if OUTSIDE_CONTRACT.search(text)]


# --- every command shown exists -----------------------------------------------------------------------------------

#: `sagemaker-plugin` as a command (not inside a path or a tag such as `sagemaker-plugin:fingerprint`), and its words up
#: to the end of the code or of the shell command
SHOWN_COMMAND = re.compile(r"(?<![\w/.'-])sagemaker-plugin[ \t]+([^`|&;#),'\"\n]*)")


CODE_SPAN = re.compile(r"`((?:[^`\n]|\n(?!\n))+)`")  # a span may go on to the next line, not past a paragraph


def _code(text: str) -> Iterator[str]:
    """A page's code: each line of its fenced blocks, and each inline code span outside them."""
    for index, part in enumerate(re.split(r"^ *```[^\n]*$", text, flags=re.MULTILINE)):
        if index % 2:
            yield from part.splitlines()
        else:
            yield from CODE_SPAN.findall(part)


def _command_problems(text: str, parsers: dict[tuple[str, ...], Any]) -> list[str]:
    """Each `sagemaker-plugin ...` the text shows whose command, or one of whose options, the command line lacks."""
    problems = []
    for code in _code(text.replace("\\|", "/")):  # a `|` inside a table cell's code
        for rest in SHOWN_COMMAND.findall(code):
            words = rest.split()
            if words and (words[0].endswith(":") or words[0].strip("[]").isupper()):
                continue  # a log line's prefix (`sagemaker-plugin connector: ...`), or a placeholder (COMMAND)
            command: tuple[str, ...] = ()
            while words and (*command, words[0]) in parsers:
                command = (*command, words.pop(0))
            if words and not words[0].startswith(("-", "[")) and any(k[:len(command)] == command and len(k) >
                                                                    len(command) for k in parsers):
                problems.append(f"sagemaker-plugin {rest.strip()}: no command {' '.join((*command, words[0]))!r}")
                continue
            options = {option for action in parsers[command]._actions for option in action.option_strings}
            problems += [f"sagemaker-plugin {rest.strip()}: {' '.join(command) or 'the command line'} has no {flag}"
                         for flag in re.findall(r"(?<![\w-])(--?[a-z][\w-]*)", " ".join(words))
                         if flag not in options]
    return problems


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_command_a_page_shows_exists(page: Path) -> None:
    assert _command_problems(page.read_text(encoding="utf-8"), _parsers()) == []


def test_the_command_check_catches_what_the_command_line_lacks() -> None:
    text = ("Run `sagemaker-plugin run examples/xgboost.yaml --no-logs` or `sagemaker-plugin frobnicate JOB`.\n"
            "```\n$ sagemaker-plugin local explode\nsagemaker-plugin connector: backend aws\n"
            "X=1 sagemaker-plugin logs JOB --follow --warp-speed 10 | grep x\n```\n"
            "| `sagemaker-plugin run TASK [--backend local\\|aws] [--time-travel]` | `sagemaker-plugin COMMAND -h` |\n"
            "`~/.local/share/sagemaker-plugin`, the tag `sagemaker-plugin:fingerprint`, `grep 'sagemaker-plugin x'`\n")
    assert _command_problems(text, _parsers()) == [
        "sagemaker-plugin frobnicate JOB: no command 'frobnicate'",
        "sagemaker-plugin local explode: no command 'local explode'",
        "sagemaker-plugin logs JOB --follow --warp-speed 10: logs has no --warp-speed",
        "sagemaker-plugin run TASK [--backend local/aws] [--time-travel]: run has no --time-travel"]


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


# --- what the pages say of the examples, and show as their output, is what they do -------------------------------

SCRIPT = Path(sys.executable).parent / "sagemaker-plugin"
README_RUN = "sagemaker-plugin run examples/xgboost.yaml"
FLYTE_RUN = "python examples/flyte_workflow.py"
#: what differs from one run to the next in a sample line, and the pattern standing for it ("..." elides)
VARYING = [
    (r"\.\.\.", r".*"),
    (r"\d{8}-\d{6}-[0-9a-f]{4}", r"\d{8}-\d{6}-[0-9a-f]{4}"),  # a job name made from the time
    (r"\d{4}-\d\d-\d\d", r"\d{4}-\d\d-\d\d"),
    (r"\d\d:\d\d:\d\d", r"\d\d:\d\d:\d\d"),
    (r"127\.0\.0\.1:\d+", r"127\.0\.0\.1:\d+"),
    (r"seconds \d+", r"seconds \d+"),
]
DURATION = re.compile(r" \(\d+\.\d s\)")  # how long a status lasted: there or not, by the machine's speed


def _sample(page: Path, command: str) -> list[str]:
    """The output a page shows for `$ command`: the lines after it in its fenced block."""
    for block in re.findall(r"^```[^\n]*\n(.*?)^```", page.read_text(encoding="utf-8"), re.DOTALL | re.MULTILINE):
        lines = block.splitlines()
        if lines and lines[0] == f"$ {command}":
            return lines[1:]
    raise AssertionError(f"{page.name} shows no output of `{command}`")


def _pattern(line: str) -> str:
    varying = re.compile("|".join(f"({pattern})" for pattern, _ in VARYING))
    parts, last = [], 0
    for match in varying.finditer(line):
        parts += [re.escape(line[last:match.start()]), VARYING[match.lastindex - 1][1]]  # type: ignore[operator]
        last = match.end()
    return "".join([*parts, re.escape(line[last:])])


def _unmatched(sample: list[str], output: str) -> list[str]:
    """The sample's lines that are no line of the real output (what varies between runs aside)."""
    real = [DURATION.sub("", line) for line in output.splitlines()]
    return [line for line in sample if line != "..."
            and not any(re.fullmatch(_pattern(DURATION.sub("", line)), other) for other in real)]


def test_the_sample_check_catches_a_line_no_run_printed() -> None:
    output = "job xgboost-20261206-204441-8449 on http://127.0.0.1:40321\n  09:57:33 Starting (0.1 s): go\nrmse 0.259\n"
    sample = ["job xgboost-20261126-070558-4f31 on http://127.0.0.1:45333", "...", "  20:44:07 Starting: go",
              "rmse 0.922", "rmse 0.25..."]
    assert _unmatched(sample, output) == ["rmse 0.922"]


def _clean_env(folder: Path) -> dict[str, str]:
    """This environment without AWS's and the plugin's variables (no endpoint, no credentials: a local SageMaker of
    the command's own), the local S3 kept in `folder`, not in the user's data folder."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "SAGEMAKER_PLUGIN_"))}
    env.update(XDG_DATA_HOME=str(folder / "data"), AWS_EC2_METADATA_DISABLED="true",
               AWS_CONFIG_FILE=str(folder / "no-aws-config"), AWS_SHARED_CREDENTIALS_FILE=str(folder / "no-aws-creds"))
    return env


def _clean_process(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """This process as a command run in `folder` with `_clean_env(folder)` would be (for main() called in-process)."""
    monkeypatch.chdir(folder)
    clean = _clean_env(folder)
    for key in [key for key in os.environ if key not in clean]:
        monkeypatch.delenv(key)
    for key, value in clean.items():
        monkeypatch.setenv(key, value)


@pytest.fixture(scope="module")
def readme_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """The README's first command, run as a newcomer runs it (no config, no endpoint): (its stdout, its model file)."""
    folder = tmp_path_factory.mktemp("readme")
    shutil.copytree(ROOT / "examples", folder / "examples", ignore=shutil.ignore_patterns("__pycache__"))
    done = subprocess.run([str(SCRIPT), *README_RUN.split()[1:]], cwd=folder, env=_clean_env(folder),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    models = list((folder / "data").rglob("model.tar.gz"))
    assert len(models) == 1, models
    return done.stdout, models[0]


def test_the_readme_sample_run_is_a_real_run(readme_run: tuple[str, Path]) -> None:
    assert _unmatched(_sample(ROOT / "README.md", README_RUN), readme_run[0]) == []


#: the `validate` samples: the page, its command, and the edits of examples/xgboost.yaml its text names
VALIDATE_SAMPLES = {
    "task-file.md": ("sagemaker-plugin validate typos.yaml", {
        "instance_type: ml.m5.xlarge": "instance_type: ml.p3.16xl",
        "tags: {team: ml-platform}": "tags: {team: ml-platform, cost$center: x}"}),
    "xgboost.md": ("sagemaker-plugin validate bad-xgboost.yaml", {
        "eta: 0.3": "eta: 2", "num_round: 20": "num_rounds: 20", '"reg:squarederror"': '"multi:softmax"'}),
}


@pytest.mark.slow
@pytest.mark.parametrize("page", sorted(VALIDATE_SAMPLES))
def test_the_validate_samples_are_what_validate_prints_in_their_order(page: str, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """`validate`'s main() in this process, in the clean environment a reader's shell has (the console script's own
    runs are tests/e2e's): its exit code and its lines, stdout's then stderr's."""
    from plugin.cli import main

    command, edits = VALIDATE_SAMPLES[page]
    text = (ROOT / "examples" / "xgboost.yaml").read_text(encoding="utf-8")
    for old, new in edits.items():
        assert old in text, old
        text = text.replace(old, new)
    shutil.copytree(ROOT / "examples" / "data", tmp_path / "data")
    (tmp_path / command.split()[-1]).write_text(text, encoding="utf-8")
    _clean_process(tmp_path, monkeypatch)
    code = main(command.split()[1:])
    out, err = capsys.readouterr()
    assert code == 2, err[-3000:]
    assert (out + err).splitlines() == _sample(ROOT / "docs" / page, command)


def test_every_job_page_link_a_page_shows_is_where_the_page_is() -> None:
    shown = re.findall(rf"^{re.escape(LOCAL_PAGE)}: (http://\S+)\?token=\.\.\.$",
                       "\n".join(page.read_text(encoding="utf-8") for page in PAGES), re.MULTILINE)
    assert shown, "no page shows a job page link"
    for link in shown:
        endpoint, _, name = link.rpartition("/")
        endpoint = endpoint.rsplit("/", 1)[0]
        assert page_url(endpoint, name, "secret").split("?")[0] == link


def test_the_flyte_sample_output_is_a_real_run(tmp_path: Path) -> None:
    """`python examples/flyte_workflow.py` in a fresh process with no config: the training step starts a local
    SageMaker of its own, and the run prints the page's lines, its decision last."""
    if importlib.util.find_spec("flytekit") is None:
        pytest.skip("flytekit is not installed (the flyte extra)")
    done = subprocess.run([sys.executable, str(ROOT / FLYTE_RUN.split()[1])], cwd=tmp_path, env=_clean_env(tmp_path),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    # the job's lines (stderr), then the decision (stdout)
    sample = _sample(ROOT / "docs" / "flyte.md", FLYTE_RUN)
    assert _unmatched(sample, done.stderr + done.stdout) == []
    assert re.fullmatch(_pattern(sample[-1]), done.stdout.strip().splitlines()[-1]), done.stdout[-3000:]


def test_the_readme_says_what_each_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """Hosts, instance types and MPI ranks the README's table of examples names are those of the rendered request
    (`sagemaker-plugin render`'s main() in this process, in the same clean environment: the claim is the README's,
    not the console script's, whose own runs are tests/e2e's)."""
    from plugin.cli import main

    _clean_process(tmp_path, monkeypatch)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `(examples/[\w.-]+\.yaml)` \| (.*) \|$", readme, re.MULTILINE)
    assert {path for path, _ in rows} == {f"examples/{p.name}" for p in (ROOT / "examples").glob("*.yaml")}
    for path, text in rows:
        code = main(["render", str(ROOT / path)])
        out, err = capsys.readouterr()
        assert code == 0, err
        request = json.loads(out)
        job = request.get("TrainingJobDefinition", request)
        count, kind = job["ResourceConfig"]["InstanceCount"], job["ResourceConfig"]["InstanceType"]
        per_host = int(job.get("StaticHyperParameters", job.get("HyperParameters", {})).get(
            "sagemaker_mpi_num_of_processes_per_host", 1))
        for said in re.findall(r"on (\d+) hosts", text):
            assert int(said) == count, f"{path}: the README says {said} hosts, the file has {count}"
        for said_count, said_kind in re.findall(r"(\d+) × (ml\.[\w.]+)", text):
            assert (said_kind, int(said_count)) == (kind, count), f"{path}: {text}"
        for said_kind in re.findall(r"\((ml\.[\w.]+)\)", text):
            assert said_kind == kind, f"{path}: the README says {said_kind}, the file has {kind}"
        if "one rank per host" in text:
            assert per_host == 1, f"{path}: {per_host} ranks per host"
        for said in re.findall(r"(\d+) ranks in all", text):
            assert int(said) == per_host * count, f"{path}: {per_host * count} ranks in all"


def _model_snippet() -> str:
    """The one Python snippet of the pages that loads an XGBoost model."""
    blocks = [textwrap.dedent(block) for page in PAGES
              for block in re.findall(r"```python\n(.*?)```", page.read_text(encoding="utf-8"), re.DOTALL)
              if "load_model" in block]
    assert len(blocks) == 1, blocks
    return blocks[0]


def _load(snippet: str, model: Path, folder: Path) -> subprocess.CompletedProcess[str]:
    """The snippet run as a reader runs it, next to `model.tar.gz`, any warning an error; it prints how many rows it
    predicted for the example's validation set."""
    shutil.copy(model, folder / "model.tar.gz")
    data = next((ROOT / "examples" / "data" / "validation").glob("*.csv"))
    script = (f"import numpy\nfeatures = numpy.loadtxt({str(data)!r}, delimiter=',')[:, 1:]\n{snippet}\n"
              "print(len(predictions))\n")
    return subprocess.run([sys.executable, "-W", "error", "-c", script], cwd=folder, capture_output=True, text=True,
                          timeout=120)


def test_the_model_snippet_loads_a_model_of_a_real_run_without_a_warning(readme_run: tuple[str, Path],
                                                                           tmp_path: Path) -> None:
    """Version 1.7-1's model file (the Booster's own format, no extension on its name) as the README's run wrote it."""
    done = _load(_model_snippet(), readme_run[1], tmp_path)
    assert (done.returncode, done.stdout, done.stderr) == (0, "100\n", "")


def test_the_model_snippet_loads_a_pickled_model_as_it_says(tmp_path: Path) -> None:
    """Version 1.2-2 pickles the Booster: the snippet's line for those versions loads it."""
    root = xgboost_hosts.make_root(tmp_path / "host", {"num_round": "3"}, xgboost_hosts.csv_channels())
    assert xgboost_hosts.run(root, version="1.2-2").returncode == 0
    with tarfile.open(tmp_path / "model.tar.gz", "w:gz") as archive:
        archive.add(root / "model" / "xgboost-model", arcname="xgboost-model")
    lines = _model_snippet().splitlines()
    earlier = [line.lstrip("# ") if "1.2-2 and earlier" in line else f"# {line}" if "1.3-1 and later" in line
               else line for line in lines]
    (tmp_path / "reader").mkdir()
    done = _load("\n".join(earlier), tmp_path / "model.tar.gz", tmp_path / "reader")
    assert (done.returncode, done.stdout, done.stderr) == (0, "100\n", "")
