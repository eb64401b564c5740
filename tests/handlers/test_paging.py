"""Every list call pages through botocore's paginator, one call of ours per page (handlers/paging.py), and every
reader of a job's hosts counts them by one rule (handlers/hosts.py)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSResponse

from aws_faults import response
from client_setup import UNLIMITED, FakeClock
from handlers import paging
from handlers.client import ClientSettings, SageMakerClient
from handlers.errors import AwsError
from handlers.hosts import host_count
from handlers.metric_series import host_names
from local_sagemaker.logs import JobShape
from local_sagemaker.runner.runner import JobRunner

ARN = "arn:aws:sagemaker:us-east-1:123456789012:training-job/t"


class Pages:
    """A list operation that answers page after page: `tokens[i]` is the NextToken of page i (None ends)."""

    def __init__(self, tokens: list[str | None]) -> None:
        self.tokens = tokens
        self.sent: list[dict[str, Any]] = []

    def __call__(self, **params: Any) -> dict[str, Any]:
        self.sent.append(params)
        if len(self.sent) > 20:  # a walk in a circle would go on forever
            raise RuntimeError("still paging after 20 pages")
        token = self.tokens[min(len(self.sent), len(self.tokens)) - 1]
        page: dict[str, Any] = {"Tags": [{"Key": f"k{len(self.sent)}", "Value": "v"}]}
        return {**page, "NextToken": token} if token else page


def test_each_page_is_one_call_that_carries_the_previous_token() -> None:
    call = Pages(["a", "b", None])
    pages = list(paging.pages(call, "ListTags", {"ResourceArn": ARN}))
    assert [p["Tags"][0]["Key"] for p in pages] == ["k1", "k2", "k3"]
    assert [s.get("NextToken") for s in call.sent] == [None, "a", "b"]
    assert all(s["ResourceArn"] == ARN for s in call.sent)


def test_max_pages_stops_the_walk() -> None:
    call = Pages(["a", "b", "c", None])
    assert len(list(paging.pages(call, "ListTags", {"ResourceArn": ARN}, max_pages=2))) == 2
    assert len(call.sent) == 2


@pytest.mark.parametrize("tokens", [["a", "a"], ["a", "b", "a"]], ids=["twice in a row", "in a circle"])
def test_a_token_handed_out_again_is_a_clean_error(tokens: list[str | None]) -> None:
    with pytest.raises(AwsError, match=r"ListTags: .*twice") as raised:
        list(paging.pages(Pages(tokens), "ListTags", {"ResourceArn": ARN}))
    assert raised.value.operation == "ListTags"


@pytest.fixture
def client(endpoint: str, session: boto3.Session) -> Iterator[SageMakerClient]:
    settings = ClientSettings(endpoint_url=endpoint, local_credentials=True, rate_limits=UNLIMITED)
    clock = FakeClock()
    made = SageMakerClient(settings, session=session, sleep=clock.sleep, clock=clock)
    yield made
    made.close()


def test_list_tags_of_a_server_that_pages_in_a_circle_ends_with_an_error(client: SageMakerClient) -> None:
    """On main the hand-written loop asked again and again (the fake gives up after 20 pages)."""
    tokens = itertools.cycle(["a", "b", "c"])
    answered: list[int] = []

    def circle(request: AWSPreparedRequest, **_: Any) -> AWSResponse:
        answered.append(1)
        if len(answered) > 20:
            raise RuntimeError("still paging after 20 pages")
        return response(request, 200, {"Tags": [{"Key": f"k{len(answered)}", "Value": "v"}], "NextToken": next(tokens)})

    client.sagemaker.meta.events.register_first("before-send.sagemaker.ListTags", circle)
    with pytest.raises(AwsError, match="twice"):
        client.list_tags(ARN)
    assert len(answered) == 4


def test_list_tags_reads_every_page(client: SageMakerClient) -> None:
    tokens = iter(["a", "b", None])

    def paged(request: AWSPreparedRequest, **_: Any) -> AWSResponse:
        token = next(tokens)
        body: dict[str, Any] = {"Tags": [{"Key": f"k{token}", "Value": "v"}]}
        return response(request, 200, {**body, "NextToken": token} if token else body)

    client.sagemaker.meta.events.register_first("before-send.sagemaker.ListTags", paged)
    assert [t["Key"] for t in client.list_tags(ARN)] == ["ka", "kb", "kNone"]


GROUPS = {"ResourceConfig": {"InstanceGroups": [{"InstanceGroupName": "a", "InstanceType": "ml.m5.xlarge",
                                                 "InstanceCount": 2},
                                                {"InstanceGroupName": "b", "InstanceType": "ml.c5.xlarge",
                                                 "InstanceCount": 1}]}}


@pytest.mark.parametrize(("job", "hosts"), [
    ({"ResourceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 4}}, 4),
    (GROUPS, 3),
    ({"ResourceConfig": {"InstanceGroups": []}}, 1),
    ({}, 1),
])
def test_the_host_count_counts_instance_groups(job: dict[str, Any], hosts: int) -> None:
    assert host_count(job) == hosts
    assert len(host_names(job)) == hosts
    assert JobShape.from_request(job).instance_count == hosts


def test_the_local_runner_starts_a_host_per_instance_of_every_group() -> None:
    """On main the runner read InstanceCount only: a heterogeneous cluster of 3 ran on 1 host."""
    job = SimpleNamespace(request=GROUPS, training_job_name="groups")
    assert JobRunner(job, None).host_count == 3  # type: ignore[arg-type]
