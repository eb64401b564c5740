"""Many jobs at once: no thread per job, requests that stay cheap, listing that stays fast."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from local_sagemaker import LocalSageMaker, LocalSettings
from local_sagemaker.testing import LocalClients, unique_name

JOBS = 400
# tests/conftest.py runs this module's local SageMaker (`server`, and `aws` on it) with LOCAL_SETTINGS.
LOCAL_SETTINGS = LocalSettings(execution="simulate", time_scale=5)  # a job takes 1 s


def test_hundreds_of_concurrent_jobs_complete_and_list_quickly(server: LocalSageMaker) -> None:
    aws = LocalClients(server.url)
    marker = unique_name("scale")
    data = aws.put_data(f"d/{marker}")
    names = [f"{marker}-{i:04d}" for i in range(JOBS)]
    clients = [LocalClients(server.url) for _ in range(4)]
    threads_before = threading.active_count()
    with ThreadPoolExecutor(4) as pool:
        list(
            pool.map(
                lambda i: clients[i % 4].sagemaker.create_training_job(
                    **aws.training_request(names[i], channels={"train": data}, hyperparameters={"num_round": "50"})
                ),
                range(JOBS),
            )
        )
    assert threading.active_count() <= threads_before + 4

    server.reset_counts()
    started = time.monotonic()
    while True:
        sweep_started = time.monotonic()
        statuses: dict[str, int] = {}
        params: dict[str, object] = {"NameContains": marker, "MaxResults": 100}
        while True:
            page = aws.sagemaker.list_training_jobs(**params)
            for summary in page["TrainingJobSummaries"]:
                statuses[summary["TrainingJobStatus"]] = statuses.get(summary["TrainingJobStatus"], 0) + 1
            if "NextToken" not in page:
                break
            params["NextToken"] = page["NextToken"]
        assert time.monotonic() - sweep_started < 5.0  # four pages over 400 jobs
        assert sum(statuses.values()) == JOBS
        if statuses.get("Completed") == JOBS:
            break
        assert time.monotonic() - started < 20
        time.sleep(0.2)

    describe_started = time.monotonic()
    for name in names[:50]:
        job = aws.sagemaker.describe_training_job(TrainingJobName=name)
        assert job["TrainingJobStatus"] == "Completed" and len(job["FinalMetricDataList"]) == 1
    # A describe costs the same with 400 jobs as with one (no scan of every job): bounded loosely, as the suite's
    # workers share two cores; benchmarks/tracking.py measures what requests cost.
    assert (time.monotonic() - describe_started) / 50 < 0.25
    assert server.call_counts()["DescribeTrainingJob"] == 50
