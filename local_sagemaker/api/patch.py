"""The one place moto is patched: SageMaker's training-job operations are routed to the serving LocalSageMaker.

`install()` replaces CreateTrainingJob, DescribeTrainingJob, ListTrainingJobs and adds StopTrainingJob on moto's
`SageMakerResponse` (moto dispatches by the snake_case action name), and replaces CloudWatch Logs' FilterLogEvents
(log_filter.py), CloudWatch's GetMetricData for plain metric queries (metric_data.py), IAM's GetRole and
SimulatePrincipalPolicy and STS's GetCallerIdentity (iam.py), and tells the engine after
SageMaker's AddTags and DeleteTags (a job's tags are kept in the data folder), and makes SQS's ReceiveMessage read a
queue's retention period directly (moto computes every attribute of the queue, a walk over all its messages, four
times per message received: a queue of job events holding a few hundred took seconds a receive), a receive of a
standard queue without a wait stop at the messages it takes, and DeleteMessage stop at the message it deletes (moto
walks the whole queue for each). It is idempotent and only
`LocalSageMaker.start()` calls it; importing local_sagemaker changes nothing.
Each replacement asks a context variable which engine serves the current request: the server sets it around each
request it handles, so a request arriving any other way (plain `mock_aws` in the same process, another
ThreadedMotoServer) gets moto's own behaviour, unchanged.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from moto.cloudwatch.responses import CloudWatchResponse
from moto.core.responses import ActionResult
from moto.iam.responses import IamResponse
from moto.logs.responses import LogsResponse
from moto.sagemaker.responses import SageMakerResponse
from moto.sqs.exceptions import ReceiptHandleIsInvalid
from moto.sqs.models import Queue, SQSBackend, _filter_message_attributes
from moto.sts.responses import TokenResponse

from local_sagemaker.api import iam
from local_sagemaker.api.engine import Engine
from local_sagemaker.api.log_filter import filter_log_events
from local_sagemaker.api.metric_data import get_metric_data, handles

OPERATIONS = ("create_training_job", "describe_training_job", "list_training_jobs", "stop_training_job",
              # hyperparameter tuning (local_sagemaker/tuning): moto only stores these jobs and lacks the last two
              "create_hyper_parameter_tuning_job", "describe_hyper_parameter_tuning_job",
              "list_hyper_parameter_tuning_jobs", "stop_hyper_parameter_tuning_job",
              "list_training_jobs_for_hyper_parameter_tuning_job")


def _filter_log_events(response: Any) -> str:
    return json.dumps(filter_log_events(response.logs_backend, _params(response)))


def _get_metric_data(response: Any) -> Any:
    params = response._get_params()
    if not handles(params):
        return _original(CloudWatchResponse, "get_metric_data")(response)
    return ActionResult(get_metric_data(response.cloudwatch_backend, params))


def _original(cls: type, name: str) -> Callable[[Any], Any]:
    current = getattr(cls, name)
    original: Callable[[Any], Any] = getattr(current, _MARK, None) or current
    return original


#: Operations of other services answered here instead of by moto while serving: (moto's response class, action, how).
OTHERS: tuple[tuple[type, str, Callable[[Any], Any]], ...] = (
    (LogsResponse, "filter_log_events", _filter_log_events),
    (CloudWatchResponse, "get_metric_data", _get_metric_data),
    # IAM and STS as the SageMaker Python SDK v3 asks them before it trains (iam.py); moto lacks the first
    (IamResponse, "simulate_principal_policy", iam.simulate_principal_policy),
    (IamResponse, "get_role", iam.get_role),
    (TokenResponse, "get_caller_identity", iam.get_caller_identity),
)
#: SageMaker operations moto answers, after which the serving engine is told: (action, engine method).
NOTIFIED = (("add_tags", "tags_changed"), ("delete_tags", "tags_changed"))
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


def _targets() -> list[tuple[type, str]]:
    return ([(SageMakerResponse, name) for name in OPERATIONS] + [(cls, name) for cls, name, _ in OTHERS]
            + [(SageMakerResponse, name) for name, _ in NOTIFIED])


def install() -> None:
    """Patches moto's response classes once; later calls do nothing."""
    for name in OPERATIONS:
        current = getattr(SageMakerResponse, name, None)
        if current is not None and hasattr(current, _MARK):
            continue
        setattr(SageMakerResponse, name, _route(name, current))
    for cls, name, answer in OTHERS:
        current = getattr(cls, name, None)
        if current is not None and hasattr(current, _MARK):
            continue
        setattr(cls, name, _answer_while_serving(name, answer, current))
    for name, method in NOTIFIED:
        current = getattr(SageMakerResponse, name)
        if not hasattr(current, _MARK):
            setattr(SageMakerResponse, name, _notify_after(name, method, current))
    retained = SQSBackend.is_message_valid_based_on_retention_period
    if not hasattr(retained, _MARK):
        SQSBackend.is_message_valid_based_on_retention_period = _retained_while_serving(retained)  # type: ignore[method-assign]
    if not hasattr(Queue.delete_message, _MARK):
        Queue.delete_message = _delete_while_serving(Queue.delete_message)  # type: ignore[method-assign]
    if not hasattr(SQSBackend.receive_message, _MARK):
        SQSBackend.receive_message = _receive_while_serving(SQSBackend.receive_message)  # type: ignore[method-assign]


def _receive_while_serving(original: Callable[..., list[Any]]) -> Callable[..., list[Any]]:
    """moto's ReceiveMessage for a standard queue without a wait or a redrive policy (a long poll is the server's,
    api/events.py): the oldest visible messages, stopping once it has `count`."""
    def receive_message(self: SQSBackend, queue_name: str, count: int, wait_seconds_timeout: int,
                        visibility_timeout: int, message_attribute_names: list[str] | None = None) -> list[Any]:
        queue = self.get_queue(queue_name)
        if _serving.get() is None or wait_seconds_timeout or queue.fifo_queue or queue.redrive_policy:
            return original(self, queue_name, count, wait_seconds_timeout, visibility_timeout,
                            message_attribute_names)
        now = time.time() * 1000
        period = float(queue.message_retention_period) * 1000  # type: ignore[attr-defined]
        taken: list[Any] = []
        for message in list(queue._messages):
            if len(taken) >= count:
                break
            expired = (message.sent_timestamp or 0) + period <= now
            if message.visible_at >= now or message.delayed_until > now or expired:
                continue
            queue.pending_messages.add(message)
            message.mark_received(visibility_timeout=visibility_timeout)
            copied = copy.deepcopy(message)
            _filter_message_attributes(copied, message_attribute_names or [])
            taken.append(copied)
        return taken

    setattr(receive_message, _MARK, original)
    return receive_message


def _delete_while_serving(original: Callable[..., None]) -> Callable[..., None]:
    """moto's DeleteMessage in one pass that stops at its message (the oldest are received, and deleted, first)."""
    def delete_message(self: Queue, receipt_handle: str) -> None:
        if _serving.get() is None:
            return original(self, receipt_handle)
        if receipt_handle in self.deleted_messages:
            return None  # deleted already: AWS answers success again
        for index, message in enumerate(self._messages):
            if message.had_receipt_handle(receipt_handle):
                del self._messages[index]
                self.pending_messages.discard(message)
                self.deleted_messages.update(message.all_receipt_handles)  # type: ignore[arg-type]
                return None
        raise ReceiptHandleIsInvalid()

    setattr(delete_message, _MARK, original)
    return delete_message


def _retained_while_serving(original: Callable[..., bool]) -> Callable[..., bool]:
    def retained(self: SQSBackend, queue_name: str, message: Any) -> bool:
        if _serving.get() is None:
            return original(self, queue_name, message)
        period = float(self.get_queue(queue_name).message_retention_period)  # type: ignore[attr-defined]
        return bool(period + message.sent_timestamp / 1000 > time.time())

    setattr(retained, _MARK, original)
    return retained


def _params(response: Any) -> dict[str, Any]:
    body = response.body or "{}"
    params = json.loads(body) if isinstance(body, (str, bytes)) else {}
    return params if isinstance(params, dict) else {}


def _answer_while_serving(name: str, answer: Callable[[Any], Any], original: Callable[[Any], Any] | None
                          ) -> Callable[[Any], Any]:
    def operation(self: Any) -> Any:
        if _serving.get() is None and original is not None:
            return original(self)
        return answer(self)

    operation.__name__ = operation.__qualname__ = name
    setattr(operation, _MARK, original)
    return operation


def _notify_after(name: str, method: str, original: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def operation(self: SageMakerResponse) -> Any:
        result = original(self)
        engine = _serving.get()
        if engine is not None:
            getattr(engine, method)(self.sagemaker_backend, str(_params(self).get("ResourceArn", "")))
        return result

    operation.__name__ = operation.__qualname__ = name
    setattr(operation, _MARK, original)
    return operation


def _route(name: str, original: Callable[[SageMakerResponse], Any] | None) -> Callable[[SageMakerResponse], Any]:
    def operation(self: SageMakerResponse) -> Any:
        engine = _serving.get()
        if engine is None:
            if original is None:
                raise NotImplementedError(f"The {name} action has not been implemented")
            return original(self)
        handler: Callable[[Any, Any], dict[str, Any]] = getattr(engine, name)
        return ActionResult(handler(self.sagemaker_backend, _params(self)))

    operation.__name__ = operation.__qualname__ = name
    setattr(operation, _MARK, original)
    return operation
