"""The command line's exit codes: imported by every command module, importing nothing (the start stays light)."""

from __future__ import annotations

EXIT_OK, EXIT_JOB_FAILED, EXIT_INPUT, EXIT_AWS, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
EXIT_CODES = """exit codes:
  0    success (run: the job SUCCEEDED)
  1    run: the job ended in another phase (FAILED, ABORTED, ...)
  2    invalid input or usage: every problem is printed with the path of its field
  3    an AWS or network error that outlasted the retries (credentials, endpoint)
  130  interrupted (Ctrl-C or SIGTERM; run stops its job first)"""
