"""The local SageMaker's GetMetricData answers as CloudWatch does where moto 5.2.5 does not (metric_data.py).

AWS's checks (Period, at most 500 queries, Ids), one point per period, ScanBy (newest first by default), paging at
MaxDatapoints with NextToken, the namespace honoured with dimensions; metric math still goes to moto.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

pytest.importorskip("moto")

from botocore.exceptions import ClientError

from local_sagemaker import LocalSageMaker
from local_sagemaker.testing import LocalClients

NOW = datetime.now(timezone.utc).replace(microsecond=0)
START = NOW - timedelta(minutes=30)


@pytest.fixture(scope="module")
def cloudwatch(server: LocalSageMaker) -> Any:
    client = LocalClients(server.url).client("cloudwatch", retries={"total_max_attempts": 1})
    data = [{"MetricName": "loss", "Dimensions": [{"Name": "Host", "Value": "job/algo-1"}],
             "Timestamp": START + timedelta(seconds=second), "Value": float(100 - second)}
            for second in (0, 1, 2, 10, 11, 70)]  # 6 values: seconds 0-2, 10-11, and one a minute later
    client.put_metric_data(Namespace="/aws/sagemaker/TrainingJobs", MetricData=data)
    client.put_metric_data(Namespace="Other", MetricData=[{**data[0], "Value": -1.0}])
    return client


def query(period: int = 1, stat: str = "Average", namespace: str = "/aws/sagemaker/TrainingJobs",
          query_id: str = "a") -> dict[str, Any]:
    return {"Id": query_id, "MetricStat": {"Metric": {"Namespace": namespace, "MetricName": "loss",
                                                      "Dimensions": [{"Name": "Host", "Value": "job/algo-1"}]},
                                           "Period": period, "Stat": stat}}


def get(cloudwatch: Any, *queries: dict[str, Any], **extra: Any) -> dict[str, Any]:
    params = {"MetricDataQueries": list(queries) or [query()], "StartTime": START, "EndTime": NOW, **extra}
    answer: dict[str, Any] = cloudwatch.get_metric_data(**params)
    return answer


def test_one_point_per_period_newest_first_by_default(cloudwatch: Any) -> None:
    [result] = get(cloudwatch)["MetricDataResults"]
    assert result["Values"] == [30.0, 89.0, 90.0, 98.0, 99.0, 100.0]
    assert result["StatusCode"] == "Complete" and result["Label"] == "loss"
    [by_ten] = get(cloudwatch, query(period=10), ScanBy="TimestampAscending")["MetricDataResults"]
    assert by_ten["Values"] == [99.0, 89.5, 30.0]
    assert [t.replace(tzinfo=timezone.utc) - START for t in by_ten["Timestamps"]] == [
        timedelta(seconds=0), timedelta(seconds=10), timedelta(seconds=70)]
    [minimum] = get(cloudwatch, query(period=60, stat="Minimum"))["MetricDataResults"]
    assert minimum["Values"] == [30.0, 89.0]


def test_the_namespace_counts_even_with_dimensions(cloudwatch: Any) -> None:
    [other] = get(cloudwatch, query(namespace="Other"))["MetricDataResults"]
    assert other["Values"] == [-1.0]


def test_pages_at_max_datapoints_with_a_next_token(cloudwatch: Any) -> None:
    values, token, pages = [], None, 0
    while True:
        extra = {"MaxDatapoints": 4, "ScanBy": "TimestampAscending", **({"NextToken": token} if token else {})}
        page = get(cloudwatch, query(), query(query_id="b"), **extra)
        values += [v for r in page["MetricDataResults"] for v in r["Values"]]
        pages += 1
        token = page.get("NextToken")
        if not token:
            break
    assert pages == 3 and len(values) == 12  # two queries of 6 points, 4 a page


@pytest.mark.parametrize(("queries", "words"), [
    ([query(period=7)], "Period must be 1, 5, 10, 20, 30, or a multiple of 60"),
    ([query(period=90)], "Period must be 1, 5, 10, 20, 30, or a multiple of 60"),
    ([query(query_id="A")], "MetricDataQueries.member.1.Id is not valid"),
    ([query(), query()], "are not unique"),
    ([query(query_id=f"q{n}") for n in range(501)], "must not have a size greater than 500"),
])
def test_what_cloudwatch_refuses_is_refused(cloudwatch: Any, queries: list[dict[str, Any]], words: str) -> None:
    with pytest.raises(ClientError) as refused:
        get(cloudwatch, *queries)
    assert refused.value.response["Error"]["Code"] == "ValidationError"
    assert words in refused.value.response["Error"]["Message"]


def test_metric_math_is_left_to_moto(cloudwatch: Any) -> None:
    answer = get(cloudwatch, {**query(), "ReturnData": False}, {"Id": "double", "Expression": "a * 2"})
    assert [r["Id"] for r in answer["MetricDataResults"]] == ["double"]
