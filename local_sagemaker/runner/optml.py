"""A host's process start: its own mount namespace in which the host's folder is `/opt/ml`, then the program.

    python optml.py HOST_ROOT -- PROGRAM [ARGS...]      # enter, mount, exec PROGRAM
    python optml.py --probe HOST_ROOT                   # the same set-up, then exit 0 (or 1 with the reason)

Linux only, and without root where user namespaces allow it: an unprivileged process makes a user namespace in which
it may mount (its own uid and gid mapped to themselves, so the program runs as the same user, without privileges)
and a mount namespace of its own; as root only the mount namespace. Nothing is seen outside the namespace. There
`/opt` becomes a read-only tmpfs holding every entry of the machine's `/opt` bound back in place (submounts too)
beside `ml` bound to the host's folder, so the rest of `/opt` (conda, ...) looks as before, `/opt` itself takes no
writes, and a machine's own `/opt/ml`, if it has one, stays out of the job's sight. The working folder moves under
`/opt/ml` when it lies in the host's folder. Run as a script so that nothing is imported before the program starts;
the process keeps its pid, session and parent, so the runner's signals, the kernel's parent-death signal and the
reaper reach the program as before.
"""

from __future__ import annotations

import ctypes
import os
import stat
import sys

CONTAINER_ROOT = "/opt/ml"
_CLONE_NEWNS = 0x00020000
_CLONE_NEWUSER = 0x10000000
_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_REMOUNT, _MS_BIND = 0x1, 0x2, 0x4, 0x20, 0x1000
_MS_REC, _MS_PRIVATE = 0x4000, 0x40000
_PR_SET_PDEATHSIG = 1
_SIGKILL = 9  # the signal module's import (enum) would cost more than the rest of this script's start


class Refused(Exception):
    """The operating system allows no private /opt/ml here (the reason is the message)."""


def _libc() -> ctypes.CDLL:
    if not sys.platform.startswith("linux"):
        raise Refused(f"mount namespaces are Linux's ({sys.platform} has none)")
    return ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        error = ctypes.get_errno()
        raise Refused(f"{what}: {os.strerror(error)}")


def _write(path: str, text: str) -> None:
    with open(path, "w", encoding="ascii") as handle:
        handle.write(text)


def _namespace(libc: ctypes.CDLL) -> None:
    """A mount namespace of this process's own, in a user namespace of its own unless root may make one without
    (root without CAP_SYS_ADMIN, in a container, may still make a user namespace)."""
    uid, gid = os.geteuid(), os.getegid()
    if uid != 0 or libc.unshare(_CLONE_NEWNS) != 0:
        _check(libc.unshare(_CLONE_NEWUSER | _CLONE_NEWNS), "unshare(CLONE_NEWUSER|CLONE_NEWNS) (user namespaces)")
        try:
            _write("/proc/self/setgroups", "deny")
            _write("/proc/self/uid_map", f"{uid} {uid} 1\n")
            _write("/proc/self/gid_map", f"{gid} {gid} 1\n")
        except OSError as error:
            raise Refused(f"mapping the user into its namespace: {error.strerror}") from None
    # Nothing mounted here reaches the machine's namespace.
    _check(libc.mount(None, b"/", None, _MS_REC | _MS_PRIVATE, None), "making / private")


def _bind(libc: ctypes.CDLL, source: str, target: str) -> None:
    _check(libc.mount(os.fsencode(source), os.fsencode(target), None, _MS_BIND | _MS_REC, None),
           f"binding {source} at {target}")


def _opt_with_ml(libc: ctypes.CDLL, root: str) -> None:
    """`/opt` as before plus `ml`: a tmpfs with the original entries bound back, then made read-only."""
    if not os.path.isdir("/opt"):
        raise Refused("this machine has no /opt folder")
    original = os.open("/opt", os.O_PATH | os.O_DIRECTORY)
    entries = [name for name in os.listdir("/opt") if name != "ml"]  # a machine's own /opt/ml stays hidden
    _check(libc.mount(b"tmpfs", b"/opt", b"tmpfs", _MS_NOSUID | _MS_NODEV, b"mode=0755"), "a tmpfs at /opt")
    for name in entries:
        source, target = f"/proc/self/fd/{original}/{name}", f"/opt/{name}"
        mode = os.lstat(source).st_mode
        if stat.S_ISLNK(mode):
            os.symlink(os.readlink(source), target)
            continue
        if stat.S_ISDIR(mode):
            os.mkdir(target)
        else:
            os.close(os.open(target, os.O_CREAT | os.O_WRONLY, 0o644))
        _bind(libc, source, target)
    os.mkdir(CONTAINER_ROOT)
    os.close(original)
    _check(libc.mount(None, b"/opt", None, _MS_REMOUNT | _MS_BIND | _MS_RDONLY | _MS_NOSUID | _MS_NODEV, None),
           "making the tmpfs at /opt read-only")


def enter(root: str) -> None:
    """This process (and whatever it starts) sees `root` at /opt/ml; Refused when the system allows it not."""
    libc = _libc()
    _namespace(libc)
    _opt_with_ml(libc, root)
    _bind(libc, root, CONTAINER_ROOT)


def _moved(cwd: str, root: str) -> str | None:
    """The working folder as the program sees it, when it lies in the host's folder."""
    if cwd == root or cwd.startswith(root + "/"):
        return CONTAINER_ROOT + cwd[len(root):]
    return None


def main(argv: list[str]) -> int:
    if argv[:1] == ["--probe"] and len(argv) == 2:
        try:
            enter(os.path.realpath(argv[1]))
        except (Refused, OSError) as error:
            print(error, file=sys.stderr)
            return 1
        return 0
    if len(argv) < 3 or argv[1] != "--":
        print("usage: optml.py HOST_ROOT -- PROGRAM [ARGS...] | optml.py --probe HOST_ROOT", file=sys.stderr)
        return 2
    root, program = os.path.realpath(argv[0]), argv[2:]
    cwd = os.getcwd()
    try:
        enter(root)
    except (Refused, OSError) as error:
        print(f"local SageMaker: cannot show {root} at {CONTAINER_ROOT}: {error}", file=sys.stderr)
        return 125
    moved = _moved(os.path.realpath(cwd), root)
    if moved is not None:
        os.chdir(moved)
        os.environ["PWD"] = moved  # shells trust PWD when it names the working folder
    # A change of credentials may have cleared the runner's parent-death signal: ask again (the parent is the same).
    ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, _SIGKILL, 0, 0, 0)
    try:
        os.execvp(program[0], program)
    except OSError as error:
        print(f"local SageMaker: cannot start {program[0]}: {error.strerror or error}", file=sys.stderr)
        return 127
    return 0  # not reached: exec replaced this process


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
