"""A job's processes: each in its own session, its output read line by line, killed with everything it started.

With `mount` (a host's folder), the process starts through optml.py, which gives it a private mount namespace in
which that folder is `/opt/ml`, then becomes the program in the same process: pid, session and parent stay as they
were, so what follows holds alike.

Three guards make sure nothing outlives the local SageMaker: every process leads its own session and group
(start_new_session) and signals go to the whole session, so they reach children and grandchildren too; on Linux
each gets PR_SET_PDEATHSIG, so the kernel kills it when the server dies; and the server's reaper (reaper.py), a
separate process holding a pipe from the server, kills every session it was told of when that pipe closes, however
the server ended.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from local_sagemaker.runner.hostdirs import OptMl
from local_sagemaker.runner.reaper import session_pids, signal_session

_PR_SET_PDEATHSIG = 1
#: Started by file path (it imports nothing of the project); `-I -S` keeps its start short and the caller's
#: PYTHON* settings for the program only.
OPTML_SCRIPT = Path(__file__).with_name("optml.py")
#: Seconds the once-per-server look at mount namespaces may take on a loaded machine.
PROBE_SECONDS = 30.0


def through_optml(root: Path, command: Sequence[str]) -> list[str]:
    """`command` started in a mount namespace of its own in which `root` is /opt/ml."""
    return [sys.executable, "-I", "-S", str(OPTML_SCRIPT), str(root), "--", *command]


def mount_refusal(root: Path) -> str | None:
    """None when a process can see `root` at /opt/ml in a namespace of its own here, else why not (tried for real)."""
    if not sys.platform.startswith("linux"):
        return f"{sys.platform} has no mount namespaces"
    try:
        done = subprocess.run([sys.executable, "-I", "-S", str(OPTML_SCRIPT), "--probe", str(root)],
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=PROBE_SECONDS)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"the probe did not run: {error}"
    return None if done.returncode == 0 else (done.stderr.strip() or f"the probe ended with {done.returncode}")


def _find_prctl() -> Any:
    """libc's prctl, looked up once in the parent: the child between fork and exec must not load libraries."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _find_prctl()


def dies_with_parent(signum: int = signal.SIGKILL) -> Callable[[], None]:
    """A `preexec_fn`: in the child, before exec, ask the kernel for `signum` when the parent goes away (Linux only)."""

    def ask() -> None:
        if _PRCTL is not None:
            _PRCTL(_PR_SET_PDEATHSIG, signum, 0, 0, 0)

    return ask


@dataclass(frozen=True)
class Line:
    """One line a process wrote: which host's stream it goes to, when it was read, its text."""

    host: int
    timestamp_ms: int
    text: str
    stderr: bool


@dataclass
class Process:
    """One started process of a host; `group` is its process group id (its pid)."""

    host: int
    popen: subprocess.Popen[bytes]
    readers: list[threading.Thread] = field(default_factory=list)
    stderr_tail: list[str] = field(default_factory=list)

    @property
    def group(self) -> int:
        return self.popen.pid


def start(
    command: Sequence[str],
    host: int,
    env: Mapping[str, str],
    cwd: Path,
    sink: Callable[[Line], None],
    tail_lines: int = 20,
    mount: Path | None = None,
) -> Process:
    """Starts `command` in a new session (seeing `mount` at /opt/ml when given); every line of its stdout and stderr
    goes to `sink` as it is written. OSError when the program is not there to start."""
    if mount is not None:
        _startable(command[0], env, cwd, mount)
        command = through_optml(mount, command)
    popen = subprocess.Popen(list(command), env=dict(env), cwd=str(cwd), stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                             preexec_fn=dies_with_parent())  # and close_fds, Popen's default
    process = Process(host, popen)
    for stream, is_err in ((popen.stdout, False), (popen.stderr, True)):
        assert stream is not None
        reader = threading.Thread(target=_pump, args=(stream, process, is_err, sink, tail_lines),
                                  name=f"job-output-{popen.pid}", daemon=True)
        reader.start()
        process.readers.append(reader)
    return process


def _startable(program: str, env: Mapping[str, str], cwd: Path, mount: Path) -> None:
    """Raises what Popen would when `program` (as the namespace will see it) cannot be executed."""
    if "/" in program:
        real = OptMl(mount).container_path(str(cwd / program))
        found = real if os.path.isfile(real) and os.access(real, os.X_OK) else None
    else:
        found = shutil.which(program, path=env.get("PATH", os.defpath))
    if found is None:
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), program)


def _pump(stream: IO[bytes], process: Process, is_err: bool, sink: Callable[[Line], None], tail_lines: int) -> None:
    with stream:
        for raw in iter(stream.readline, b""):
            text = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            if is_err:
                process.stderr_tail.append(text)
                del process.stderr_tail[:-tail_lines]
            sink(Line(process.host, round(time.time() * 1000), text, is_err))


def signal_group(group: int, signum: int) -> None:
    """`signum` to the process's group and to everything else in its session (see reaper.session_pids)."""
    signal_session(group, signum)


def group_alive(group: int) -> bool:
    """Whether any process of the group or its session still lives."""
    try:
        os.killpg(group, 0)
        return True
    except ProcessLookupError:
        pass
    except PermissionError:
        return True
    return bool(session_pids(group))


def terminate(processes: Sequence[Process], grace_seconds: float) -> None:
    """SIGTERM to every group, up to `grace_seconds` for them to end, then SIGKILL to whatever is left."""
    for process in processes:
        signal_group(process.group, signal.SIGTERM)
    deadline = time.monotonic() + grace_seconds
    while time.monotonic() < deadline:
        for process in processes:
            process.popen.poll()
        if not any(group_alive(p.group) and not _only_zombie(p) for p in processes):
            break
        time.sleep(0.05)
    kill(processes)


def kill(processes: Sequence[Process]) -> None:
    """SIGKILL to every group, then reap the leaders."""
    for process in processes:
        signal_group(process.group, signal.SIGKILL)
    for process in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.popen.wait(timeout=5)


def _only_zombie(process: Process) -> bool:
    """The leader has exited (reaped) and no other member of its group is left."""
    return process.popen.returncode is not None and not group_alive(process.group)


def finish_readers(processes: Sequence[Process], timeout: float = 5.0) -> None:
    """Waits for the output of ended processes to be read to its end (a grandchild may hold a pipe open)."""
    deadline = time.monotonic() + timeout
    for process in processes:
        for reader in process.readers:
            reader.join(max(0.0, deadline - time.monotonic()))
