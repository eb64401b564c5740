"""Faked AWS answers for the tests that inject faults into the SageMaker client path, kept once here.

Many test modules play SageMaker from a handler registered first on botocore's `before-send.sagemaker.<Operation>`
(or in place of its HTTP send): the handler returns a faked HTTP response, which still goes through botocore's parsing
and the plugin's retry policy, or raises a network error. Each module used to carry its own copy of these helpers and
of AWS's messages; they live here so that every module fakes AWS the same way. Helpers only one module needs stay in
that module, and so does a message whose text differs from one module to another.

Importable by name (`from aws_faults import answer`): tests/conftest.py puts tests/support on sys.path.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.compat import HTTPHeaders

AWS_JSON = "application/x-amz-json-1.1"  # the content type SageMaker answers with

CUSTOM = "sagemaker_custom_training_job_task"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/trainer:1.0"
STOPPED_BY_TAG = "sagemaker-plugin:stopped-by"

# AWS's own words (reference/sagemaker-facts.md, "Errors as AWS sends them")
AWS_NAME_IN_USE = (
    "Training job names must be unique within an AWS account and region, and a training job with this name already "
    "exists (arn:aws:sagemaker:us-east-1:123456789012:training-job/{name})"
)
AWS_NOT_FOUND = "Requested resource not found."
AWS_QUOTA = (
    "The account-level service limit 'ml.p3.2xlarge for training job usage' is 0 Instances, with current utilization "
    "of 0 Instances and a request delta of 1 Instances. Please use AWS Service Quotas to request an increase for this "
    "quota. If AWS Service Quotas is not available, contact AWS support to request an increase for this quota."
)

#: a faked answer to one request: returns the response botocore parses, or raises what the network would
Fault = Callable[[AWSPreparedRequest], AWSResponse]


class Body:
    """The raw stream of a faked response, as much of urllib3's as botocore reads."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.data

    def read(self, *_: Any) -> bytes:
        return self.data


def response(request: AWSPreparedRequest, status: int, body: dict[str, Any] | bytes,
             content_type: str = AWS_JSON) -> AWSResponse:
    """An HTTP answer to `request`: `body` as JSON (a dict) or as these bytes, with a request id as AWS sends one."""
    headers = HTTPHeaders()
    headers["Content-Type"] = content_type
    headers["x-amzn-RequestId"] = str(uuid.uuid4())
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    return AWSResponse(request.url, status, headers, Body(data))


def answer(status: int, body: dict[str, Any] | bytes, content_type: str = AWS_JSON) -> Fault:
    """A fault that answers every request with this HTTP status and body."""

    def fault(request: AWSPreparedRequest) -> AWSResponse:
        return response(request, status, body, content_type)

    return fault


def aws_error(code: str, message: str, status: int = 400) -> Fault:
    """A fault that answers with an AWS JSON error, as SageMaker sends one."""
    return answer(status, {"__type": code, "message": message})


def raising(make: Callable[[str], BaseException]) -> Fault:
    """A fault that raises `make(url)` in place of an answer: a network error, as botocore would meet it."""

    def fault(request: AWSPreparedRequest) -> AWSResponse:
        raise make(request.url)

    return fault


def seconds_retried(message: str) -> float:
    """How long a call that gave up says it kept trying ("... failed after 9 attempts over 2.0 s ...")."""
    over = re.search(r" failed after \d+ attempts? over ([0-9.]+) s", message)
    assert over is not None, message
    return float(over.group(1))
