"""The reaper: a small process that kills a server's job processes when the server is gone, however it ended.

The server starts one (`Reaper`) before its first job and tells it, through a pipe, the folder of its jobs
(`d<path>`), each process group it starts (`+<group>`) and each one it has finished with (`-<group>`). When the pipe
closes (the server stopped, crashed or was SIGKILLed, since the kernel closes a dead process's pipes), the reaper
sends SIGKILL to every group still on its list (the whole session each leads), deletes the folder and exits. It runs
in its own session, so a Ctrl-C aimed at the server's terminal does not take it first. Run as a script (`python
reaper.py`), not as a module, so that it starts without importing anything of the project.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading


def session_pids(session: int) -> list[int]:
    """The live processes of a session (Linux's /proc; none found elsewhere).

    A job's process leads its own session, and whatever it starts stays in it unless it calls setsid itself; some
    launchers (Open MPI's prterun) put each child in a process group of its own, so the session, not the group, is
    what holds all of a job's processes."""
    pids: list[int] = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return pids
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[-1].split()
        except OSError:
            continue
        # After the command: state, ppid, pgrp, session, ...
        if len(fields) > 3 and fields[0] != b"Z" and int(fields[3]) == session:
            pids.append(int(entry))
    return pids


def signal_session(session: int, signum: int) -> None:
    """`signum` to the process group `session` leads and to every other process of the session."""
    with contextlib.suppress(OSError):
        os.killpg(session, signum)
    for pid in session_pids(session):
        with contextlib.suppress(OSError):
            os.kill(pid, signum)


def _watch() -> None:
    """The reaper's own loop (in the reaper process)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    groups: set[int] = set()
    folders: list[str] = []
    for raw in sys.stdin:
        word = raw.strip()
        if word.startswith("d/"):
            folders.append(word[1:])
        elif len(word) > 1 and word[1:].isdigit():
            group = int(word[1:])
            if word[0] == "+":
                groups.add(group)
            elif word[0] == "-":
                groups.discard(group)
    for group in groups:
        signal_session(group, signal.SIGKILL)
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)


class Reaper:
    """The server side: starts the reaper process on first use; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._popen: subprocess.Popen[str] | None = None

    def add(self, group: int) -> None:
        self._send(f"+{group}")

    def remove(self, group: int) -> None:
        self._send(f"-{group}")

    def folder(self, path: str) -> None:
        """A folder (absolute) to delete once the server is gone: the jobs' host folders."""
        self._send(f"d{path}")

    def close(self) -> None:
        """Closes the pipe (the reaper kills what is still listed and exits) and waits for it."""
        with self._lock:
            popen, self._popen = self._popen, None
        if popen is None:
            return
        with contextlib.suppress(OSError):
            assert popen.stdin is not None
            popen.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            popen.wait(timeout=5)

    def _send(self, word: str) -> None:
        with self._lock:
            if self._popen is None or self._popen.poll() is not None:
                # its own session, so that a Ctrl-C aimed at the server's terminal spares it; close_fds by default
                self._popen = subprocess.Popen([sys.executable, os.path.abspath(__file__)], stdin=subprocess.PIPE,
                                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True,
                                               start_new_session=True)
            assert self._popen.stdin is not None
            with contextlib.suppress(OSError):
                self._popen.stdin.write(word + "\n")
                self._popen.stdin.flush()


if __name__ == "__main__":
    _watch()
