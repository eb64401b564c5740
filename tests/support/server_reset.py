"""Forgetting a running local SageMaker's state between the steps of a test, as a fresh start would (what moto's
/moto-api/reset did; that path is closed to everyone). Only tests need it, so it lives here, not in LocalSageMaker.

Importable by name (`from server_reset import reset_state`): tests/conftest.py puts tests/support on sys.path.
"""

from __future__ import annotations

from local_sagemaker import LocalSageMaker


def reset_state(server: LocalSageMaker) -> None:
    """Forget every job, bucket and log (moto's state and the engine's) of a server without a data folder."""
    app = server._app  # the served app is the server's own; only tests reset it in place
    if app is None:
        raise RuntimeError("LocalSageMaker is not started")
    if server.data_dir is not None:
        raise RuntimeError(f"this local SageMaker keeps its jobs in {server.data_dir}: reset it on disk instead")
    app.reset()
