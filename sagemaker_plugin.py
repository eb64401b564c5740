"""The `sagemaker-plugin` console script's entry.

Ctrl-C must end the command quietly (exit 130, no traceback) from its first moment. Python's own handler raises
KeyboardInterrupt wherever the interpreter is, and on a busy machine loading the plugin's modules (and the standard
library beneath them) takes long enough to be interrupted. So this module, which imports nothing that is not already
loaded when Python starts, answers SIGINT itself while `plugin.cli` loads, then hands SIGINT back to Python: from then
on `plugin.cli.main` catches KeyboardInterrupt and stops what it started. Once it has returned, SIGINT is ignored:
the exit code is the command's answer.
"""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType

EXIT_INTERRUPTED = 130  # the shell's 128 + SIGINT; plugin.cli says the same once it is loaded


def _interrupted_while_loading(signum: int, frame: FrameType | None) -> None:
    sys.stderr.write("interrupted\n")
    sys.stderr.flush()
    os._exit(EXIT_INTERRUPTED)  # nothing has started yet: nothing to stop or clean up


def main() -> int:
    python_handler = signal.signal(signal.SIGINT, _interrupted_while_loading)
    from plugin.cli import main as cli_main

    signal.signal(signal.SIGINT, python_handler)
    code = cli_main()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the command has its answer: an interrupt while exiting changes none
    return code
