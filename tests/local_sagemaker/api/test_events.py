"""The local SageMaker's EventBridge events (local_sagemaker/api/events.py): sent to moto's rules and their SQS
targets as SageMaker sends them, in both execution modes and for tuning jobs, with the fault knobs, and SQS long polls
that do not hold the server while they wait.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from handlers.local import EventFault
from local_sagemaker import LocalSageMaker, LocalSettings
from local_sagemaker.api.events import TRAINING_CHANGE, TRAINING_DETAIL, TUNING_CHANGE
from local_sagemaker.testing import CUSTOM_IMAGE, LocalClients

pytestmark = pytest.mark.timeout(180)

TIMELINE = {"Starting": 0.2, "Downloading": 0.2, "Training": 0.4, "Uploading": 0.2}
FAULTS = (EventFault("ev-dropped", "drop", "Training"), EventFault("ev-twice", "duplicate", "Starting"),
          EventFault("ev-late", "delay", "Downloading", delay_seconds=0.5))


def listen(aws: LocalClients, kinds: tuple[str, ...] = (TRAINING_CHANGE, TUNING_CHANGE)) -> str:
    """A queue fed by a rule matching SageMaker's job state changes; its URL."""
    sqs, events = aws.client("sqs"), aws.client("events")
    url: str = sqs.create_queue(QueueName="job-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="job-events", EventPattern=json.dumps({"source": ["aws.sagemaker"],
                                                                "detail-type": list(kinds)}))
    events.put_targets(Rule="job-events", Targets=[{"Id": "queue", "Arn": arn}])
    return url


def drain(aws: LocalClients, url: str, done: Callable[[list[dict[str, Any]]], bool],
          timeout: float = 60.0) -> list[dict[str, Any]]:
    """Every event received (long polls, deleted as read) until `done` says so."""
    sqs = aws.client("sqs")
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while not done(seen):
        assert time.monotonic() < deadline, [(e["detail"].get("SecondaryStatus"), e["resources"]) for e in seen]
        for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
                "Messages", []):
            seen.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return seen


def ended(names: list[str]) -> Callable[[list[dict[str, Any]]], bool]:
    def check(seen: list[dict[str, Any]]) -> bool:
        over = {e["detail"].get("TrainingJobName") for e in seen
                if e["detail"].get("TrainingJobStatus") in ("Completed", "Failed", "Stopped")}
        return set(names) <= over

    return check


def statuses(seen: list[dict[str, Any]], name: str) -> list[str]:
    return [e["detail"]["SecondaryStatus"] for e in seen if e["detail"].get("TrainingJobName") == name]


@pytest.fixture
def simulated() -> Iterator[LocalSageMaker]:
    from local_sagemaker import FailureRule

    settings = LocalSettings(execution="simulate", timeline=TIMELINE, event_faults=FAULTS,
                             failures=(FailureRule("ev-fails", "Training", "AlgorithmError: boom"),))
    with LocalSageMaker(settings) as server:
        yield server


def test_each_change_of_a_simulated_job_is_one_event_shaped_as_sagemaker_sends_it(simulated: LocalSageMaker) -> None:
    aws = LocalClients(simulated.url)
    url = listen(aws)
    aws.sagemaker.create_training_job(**aws.training_request("ev-plain", Tags=[{"Key": "team", "Value": "ml"}]))
    aws.sagemaker.create_training_job(**aws.training_request("ev-fails"))
    seen = drain(aws, url, ended(["ev-plain", "ev-fails"]))
    assert statuses(seen, "ev-plain") == ["Starting", "Downloading", "Training", "Uploading", "Completed"]
    assert statuses(seen, "ev-fails") == ["Starting", "Downloading", "Training", "Failed"]
    for event in seen:
        assert event["source"] == "aws.sagemaker" and event["detail-type"] == TRAINING_CHANGE
        assert event["resources"] == [event["detail"]["TrainingJobArn"]]
        assert set(event["detail"]) <= {*TRAINING_DETAIL, "Tags"}
        assert event["detail"]["LastModifiedTime"].isdigit()  # epoch milliseconds, as a string
    last = [e["detail"] for e in seen if e["detail"]["TrainingJobName"] == "ev-plain"][-1]
    assert last["Tags"] == {"team": "ml"} and last["ModelArtifacts"]["S3ModelArtifacts"].endswith("model.tar.gz")
    assert "FinalMetricDataList" not in last and "TrainingTimeInSeconds" not in last  # not in the event's schema
    assert all(t["StartTime"].isdigit() for t in last["SecondaryStatusTransitions"])
    failed = [e["detail"] for e in seen if e["detail"]["TrainingJobName"] == "ev-fails"][-1]
    assert failed["FailureReason"] == "AlgorithmError: boom"


def test_the_fault_knobs_drop_duplicate_and_delay_events(simulated: LocalSageMaker) -> None:
    aws = LocalClients(simulated.url)
    url = listen(aws)
    names = ["ev-dropped", "ev-twice", "ev-late"]
    for name in names:
        aws.sagemaker.create_training_job(**aws.training_request(name))
    seen = drain(aws, url, ended(names))
    assert "Training" not in statuses(seen, "ev-dropped")
    assert statuses(seen, "ev-twice")[:2] == ["Starting", "Starting"]
    late = statuses(seen, "ev-late")
    assert late.index("Downloading") > late.index("Training")  # out of order, as AWS may send them


def test_a_long_poll_does_not_hold_the_server(simulated: LocalSageMaker) -> None:
    aws = LocalClients(simulated.url)
    url = listen(aws, (TUNING_CHANGE,))  # no event will come
    order: list[str] = []
    polling = threading.Thread(target=lambda: (aws.client("sqs").receive_message(QueueUrl=url, WaitTimeSeconds=3),
                                               order.append("poll")))
    polling.start()
    time.sleep(0.3)
    aws.sagemaker.list_training_jobs()
    order.append("list")
    polling.join(30)
    assert order == ["list", "poll"]


def test_no_rule_no_event_and_a_deleted_queue_loses_them_quietly(simulated: LocalSageMaker) -> None:
    aws = LocalClients(simulated.url)
    aws.sagemaker.create_training_job(**aws.training_request("ev-unheard"))
    url = listen(aws)
    aws.client("sqs").delete_queue(QueueUrl=url)
    aws.sagemaker.create_training_job(**aws.training_request("ev-lost"))
    assert aws.wait("ev-lost", timeout=60, interval=0.05)["TrainingJobStatus"] == "Completed"


def test_a_job_that_runs_for_real_sends_its_events(tmp_path: Path) -> None:
    with LocalSageMaker(LocalSettings(execution="run")) as server:
        aws = LocalClients(server.url)
        url = listen(aws)
        request = aws.training_request("ev-run", image=CUSTOM_IMAGE)
        request["AlgorithmSpecification"]["ContainerEntrypoint"] = ["python3", "-c", "print('trained')"]
        aws.sagemaker.create_training_job(**request)
        seen = drain(aws, url, ended(["ev-run"]), timeout=120)
    assert statuses(seen, "ev-run")[0] == "Starting" and statuses(seen, "ev-run")[-1] == "Completed"
    assert "Training" in statuses(seen, "ev-run")


def test_a_tuning_job_sends_its_state_changes(simulated: LocalSageMaker, tmp_path: Path) -> None:
    from tuning_jobs import config, definition, write_script

    aws = LocalClients(simulated.url)
    url = listen(aws, (TUNING_CHANGE,))
    aws.sagemaker.create_hyper_parameter_tuning_job(
        HyperParameterTuningJobName="ev-tune", TrainingJobDefinition=definition(aws, write_script(tmp_path / "code")),
        HyperParameterTuningJobConfig=config(ContinuousParameterRanges=[{"Name": "lr", "MinValue": "0.1",
                                                                          "MaxValue": "0.5"}]))
    aws.sagemaker.stop_hyper_parameter_tuning_job(HyperParameterTuningJobName="ev-tune")
    seen = drain(aws, url, lambda s: any(e["detail"]["HyperParameterTuningJobStatus"] == "Stopped" for e in s))
    assert [e["detail"]["HyperParameterTuningJobStatus"] for e in seen] == ["InProgress", "Stopping", "Stopped"]
    assert all(e["detail-type"] == TUNING_CHANGE and e["resources"] == [e["detail"]["HyperParameterTuningJobArn"]]
               for e in seen)


def test_the_queue_answers_deletes_and_receives_as_sqs_does(simulated: LocalSageMaker) -> None:
    """The quick paths of patch.py: a queue with a retention period answers receives, a message deleted twice is
    fine, a handle never given out is refused, a batch deletes what it names."""
    import botocore.exceptions

    sqs = LocalClients(simulated.url).client("sqs")
    url = sqs.create_queue(QueueName="plain", Attributes={"MessageRetentionPeriod": "60"})["QueueUrl"]
    for body in ("a", "b", "c"):
        sqs.send_message(QueueUrl=url, MessageBody=body)
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert sorted(m["Body"] for m in got) == ["a", "b", "c"]
    handle = got[1]["ReceiptHandle"]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=handle)
    sqs.delete_message(QueueUrl=url, ReceiptHandle=handle)
    with pytest.raises(botocore.exceptions.ClientError):
        sqs.delete_message(QueueUrl=url, ReceiptHandle="never-given-out")
    batch = sqs.delete_message_batch(QueueUrl=url, Entries=[{"Id": "0", "ReceiptHandle": got[0]["ReceiptHandle"]},
                                                             {"Id": "1", "ReceiptHandle": got[2]["ReceiptHandle"]}])
    assert len(batch["Successful"]) == 2
    assert int(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])[
        "Attributes"]["ApproximateNumberOfMessages"]) == 0
