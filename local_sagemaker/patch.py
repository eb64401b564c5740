"""The one place moto is patched: SageMaker's training-job operations are routed to the serving LocalSageMaker.

`install()` replaces CreateTrainingJob, DescribeTrainingJob, ListTrainingJobs and adds StopTrainingJob on moto's
`SageMakerResponse` (moto dispatches by the snake_case action name). It is idempotent and only `LocalSageMaker.start()`
calls it; importing local_sagemaker changes nothing. Each replacement asks a context variable which engine serves the
current request: the server sets it around each request it handles, so a request arriving any other way (plain
`mock_aws` in the same process, another ThreadedMotoServer) gets moto's own behaviour, unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from moto.core.responses import ActionResult
from moto.sagemaker.responses import SageMakerResponse

from local_sagemaker.engine import Engine

OPERATIONS = ("create_training_job", "describe_training_job", "list_training_jobs", "stop_training_job")
_MARK = "_local_sagemaker_original"

_serving: ContextVar[Engine | None] = ContextVar("local_sagemaker_engine", default=None)


@contextmanager
def serving(engine: Engine) -> Iterator[None]:
    """Routes the training-job operations of requests handled in this context to `engine`."""
    token = _serving.set(engine)
    try:
        yield
    finally:
        _serving.reset(token)


def installed() -> bool:
    return all(hasattr(getattr(SageMakerResponse, name, None), _MARK) for name in OPERATIONS)


def install() -> None:
    """Patches moto's SageMakerResponse once; later calls do nothing."""
    for name in OPERATIONS:
        current = getattr(SageMakerResponse, name, None)
        if current is not None and hasattr(current, _MARK):
            continue
        setattr(SageMakerResponse, name, _route(name, current))


def uninstall() -> None:
    """Puts moto's own methods back (StopTrainingJob disappears again)."""
    for name in OPERATIONS:
        current = getattr(SageMakerResponse, name, None)
        if current is None or not hasattr(current, _MARK):
            continue
        original = getattr(current, _MARK)
        if original is None:
            delattr(SageMakerResponse, name)
        else:
            setattr(SageMakerResponse, name, original)


def _route(name: str, original: Callable[[SageMakerResponse], Any] | None) -> Callable[[SageMakerResponse], Any]:
    def operation(self: SageMakerResponse) -> Any:
        engine = _serving.get()
        if engine is None:
            if original is None:
                raise NotImplementedError(f"The {name} action has not been implemented")
            return original(self)
        body = self.body or "{}"
        params = json.loads(body) if isinstance(body, (str, bytes)) else {}
        handler: Callable[[Any, Any], dict[str, Any]] = getattr(engine, name)
        return ActionResult(handler(self.sagemaker_backend, params if isinstance(params, dict) else {}))

    operation.__name__ = operation.__qualname__ = name
    setattr(operation, _MARK, original)
    return operation
