"""Servers a test starts die with the test process, even when pytest itself is killed (its teardown never runs)."""

from __future__ import annotations

import signal

from local_sagemaker.processes import dies_with_parent

#: A `preexec_fn`: the kernel sends SIGTERM (a server's clean stop) when the test process goes away.
dies_with_test = dies_with_parent(signal.SIGTERM)
