"""`/opt/ml` is `/opt/ml`: a job's processes see their host's folder at the path itself, in a private mount namespace,
and nothing else of the machine changes; where no namespace is allowed, the runner rewrites and says so.

The end-to-end tests run jobs whose commands name /opt/ml inside shell strings, as the SageMaker Python SDK v3's
drivers do; the unit tests start optml.py directly, as this user and (when the tests run as root) as an unprivileged
one, which is the path a user without root takes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from local_sagemaker import LocalSageMaker, LocalSettings
from local_sagemaker.runner import optml, processes
from local_sagemaker.testing import XGBOOST_IMAGE, LocalClients, unique_name
from runner_jobs import create, logs, model_files, wait

pytestmark = pytest.mark.timeout(120)

LOCAL_SETTINGS = LocalSettings(execution="run", stop_seconds=1)
SYSTEM_PYTHON = "/usr/bin/python3"
#: A shell string naming /opt/ml as a v3 SourceCode driver does: it only works where /opt/ml is the host's folder.
SHELL = (
    "cd /opt/ml/input/data/train && ls >/opt/ml/model/files.txt && pwd >$M/pwd.txt"
    " && cp /opt/ml/input/config/resourceconfig.json $M && ls -a /opt >$M/opt.txt;"
    " test -w /opt; echo $? >$M/writable.txt; echo model dir $SM_MODEL_DIR train $SM_CHANNEL_TRAIN"
)


def opt_entries() -> set[str]:
    return set(os.listdir("/opt")) if os.path.isdir("/opt") else set()


def test_a_shell_string_naming_opt_ml_runs_as_in_the_container(aws: LocalClients) -> None:
    before = opt_entries()
    name = unique_name("optmlsh")
    create(aws, name, ["/bin/sh", "-c", SHELL], instance_count=2, channels={"train": aws.put_data(f"optml/{name}")},
           Environment={"M": "/opt/ml/model"})
    job = wait(aws, name)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    files = model_files(aws, job)  # algo-1's files win a name clash: each host wrote its own
    assert files["pwd.txt"] == b"/opt/ml/input/data/train\n"
    assert files["files.txt"].split() == [b"part-0.csv"]
    assert json.loads(files["resourceconfig.json"])["current_host"] == "algo-1"
    # The rest of /opt is the machine's, read-only (`test -w` fails), and the machine's /opt is left as it was.
    assert set(files["opt.txt"].decode().split()) - {".", ".."} == (before - {"ml"}) | {"ml"}
    assert files["writable.txt"] == b"1\n"
    assert opt_entries() - {"ml"} == before - {"ml"}
    for host in ("algo-1", "algo-2"):
        assert "model dir /opt/ml/model train /opt/ml/input/data/train" in logs(aws, name)[host]
        assert not [line for line in logs(aws, name)[host] if "no private mount namespace" in line]


def test_the_built_in_xgboost_logs_its_files_path_under_opt_ml(aws: LocalClients) -> None:
    rows = (Path(__file__).resolve().parents[3] / "examples" / "data" / "train" / "train.csv").read_bytes()
    name = unique_name("optmlxgb")
    aws.sagemaker.create_training_job(**aws.training_request(
        name, image=XGBOOST_IMAGE, channels={"train": aws.put_data(f"optml/{name}/train", rows)},
        hyperparameters={"num_round": "2", "objective": "reg:squarederror"}))
    job = wait(aws, name, timeout=120)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert any(line.endswith("files path: /opt/ml/input/data/train") for line in logs(aws, name)["algo-1"])


def test_a_program_named_under_opt_ml_starts_and_a_missing_one_fails_the_job(aws: LocalClients,
                                                                             tmp_path: Path) -> None:
    name = unique_name("optmlprog")
    code = aws.put_data(f"optml/{name}/code", b"echo ran from $(pwd)\n")
    create(aws, name, ["/bin/sh", "/opt/ml/input/data/code/part-0.csv"], channels={"code": code})
    job = wait(aws, name)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert "ran from /opt/ml/code" in logs(aws, name)["algo-1"]
    missing = unique_name("optmlmissing")
    create(aws, missing, ["/opt/ml/input/data/code/absent.sh"])
    job = wait(aws, missing)
    assert job["TrainingJobStatus"] == "Failed"
    assert "cannot start /opt/ml/input/data/code/absent.sh on algo-1" in job["FailureReason"]


def test_without_a_namespace_commands_are_rewritten_and_the_log_says_so(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(processes, "mount_refusal", lambda root: "user namespaces are disabled")
    script = tmp_path / "where.py"
    script.write_text("import os, sys\nprint('model dir', os.environ['SM_MODEL_DIR'], 'arg', sys.argv[1])\n",
                      encoding="utf-8")
    with LocalSageMaker(LocalSettings(execution="run"), reset=False) as server:
        aws = LocalClients(server.url)
        name = unique_name("optmlfallback")
        create(aws, name, ["python", str(script), "/opt/ml/model"])
        job = wait(aws, name)
        assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
        lines = logs(aws, name)["algo-1"]
    notes = [line for line in lines if "no private mount namespace" in line]
    assert len(notes) == 1 and "user namespaces are disabled" in notes[0]
    printed = next(line for line in lines if line.startswith("model dir "))
    _, _, model_dir, _, arg = printed.split(" ")
    assert model_dir == arg != "/opt/ml/model" and model_dir.endswith("/algo-1/model")


# --- optml.py by itself ---------------------------------------------------------------------------------------

@pytest.fixture
def shared_root() -> Iterator[Path]:
    """A host folder any user can read (pytest's tmp_path is this user's only)."""
    folder = Path(tempfile.mkdtemp(prefix="optml-test-"))
    try:
        (folder / "code").mkdir()
        (folder / "marker").write_text("host folder\n", encoding="utf-8")
        for path in (folder, folder / "code"):
            path.chmod(0o777)
        (folder / "marker").chmod(0o644)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


CHECK = "id -u; pwd; cat /opt/ml/marker; ls -a /opt; test -w /opt || touch /opt/ml/code/written && echo wrote"


def _run(prefix: list[str], python: str, root: Path) -> list[str]:
    done = subprocess.run([*prefix, python, "-I", "-S", str(processes.OPTML_SCRIPT), str(root), "--",
                           "/bin/sh", "-c", CHECK], cwd=root / "code", capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def _check(lines: list[str], uid: int, root: Path) -> None:
    assert lines[0] == str(uid), "the program runs as the same user"
    assert lines[1] == "/opt/ml/code", "the working folder moved under /opt/ml"
    assert lines[2] == "host folder"
    assert set(lines[3:-1]) - {".", ".."} == opt_entries() | {"ml"}
    assert lines[-1] == "wrote" and (root / "code" / "written").is_file(), "/opt read-only, /opt/ml writable"


def test_optml_shows_the_host_folder_at_opt_ml_to_this_user(shared_root: Path) -> None:
    before = opt_entries()
    _check(_run([], sys.executable, shared_root), os.geteuid(), shared_root)
    assert opt_entries() - {"ml"} == before - {"ml"}


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv") or not os.path.exists(SYSTEM_PYTHON),
                    reason="needs root to become an unprivileged user (setpriv) and a system python3")
@pytest.mark.parametrize(("who", "uid"), [
    (["--reuid=65534", "--regid=65534", "--clear-groups"], 65534),  # a user: the user namespace path
    (["--bounding-set=-sys_admin", "--inh-caps=-sys_admin"], 0),  # root without CAP_SYS_ADMIN, as in a container
], ids=["unprivileged-user", "root-without-sys-admin"])
def test_optml_works_without_privileges(shared_root: Path, who: list[str], uid: int) -> None:
    _check(_run(["setpriv", *who], SYSTEM_PYTHON, shared_root), uid, shared_root)


def test_optml_refuses_in_words_where_it_cannot(tmp_path: Path) -> None:
    assert processes.mount_refusal(tmp_path) is None  # this machine allows it (CI is the same kind of machine)
    done = subprocess.run([sys.executable, str(processes.OPTML_SCRIPT), str(tmp_path / "absent"), "--", "true"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 125
    assert f"cannot show {tmp_path / 'absent'} at /opt/ml" in done.stderr
    assert optml._moved("/x/root/code", "/x/root") == "/opt/ml/code"
    assert optml._moved("/x/rooted", "/x/root") is None
