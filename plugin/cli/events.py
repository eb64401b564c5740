"""`sagemaker-plugin events setup` / `events teardown`: the EventBridge rule and SQS queue that feed the tracker job
events (handlers/tracker_events.py; users read docs/events.md).

Setup makes, each idempotently: the queue, the rule matching `aws.sagemaker`'s training and tuning job state changes,
the queue's policy admitting SendMessage from that rule only, and the rule's target; then it prints the config lines
to add and the statement the connector's role needs. Teardown removes them; what is already gone is not an error. The
same calls serve AWS and a running local SageMaker (its EventBridge and SQS are moto's, on its endpoint); a local
SageMaker started for one command would forget the rule and queue when it ends, so the local backend needs one
running (`local serve`).

The calls here are an administrator's, once: docs/iam-events-setup-policy.json lists them (tests/security checks it
against this file); the connector's role needs only what the listener calls (docs/iam-policy.json).
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from handlers.client import SageMakerClient
from handlers.errors import AwsError, InputError, NotFound
from handlers.tracker_events import DETAIL_TYPES, QUEUE_ACTIONS, SOURCE
from plugin.cli.exit_codes import EXIT_OK
from plugin.config import Config

DEFAULT_NAME = "sagemaker-plugin-job-events"
TARGET_ID = "sagemaker-plugin-queue"
#: a name both an SQS queue (1-80 of these) and an EventBridge rule (1-64, dots too) may take
NAME_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
RETENTION_SECONDS = 4 * 24 * 3600  # SQS's default: a connector down for a weekend loses nothing


@dataclass(frozen=True)
class Made:
    queue_url: str
    queue_arn: str
    rule_arn: str


def event_pattern() -> dict[str, Any]:
    return {"source": [SOURCE], "detail-type": list(DETAIL_TYPES)}


def queue_policy(queue_arn: str, rule_arn: str) -> dict[str, Any]:
    """SendMessage for EventBridge, from this rule only."""
    return {"Version": "2012-10-17", "Statement": [{
        "Sid": "JobEventsFromTheRuleOnly", "Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"},
        "Action": "sqs:SendMessage", "Resource": queue_arn,
        "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}}}]}


def connector_statement(queue_arn: str) -> dict[str, Any]:
    """What the connector's role needs to read the queue: the listener's calls' actions."""
    return {"Sid": "ReadJobEventsFromTheQueue", "Effect": "Allow",
            "Action": sorted(set(QUEUE_ACTIONS.values())), "Resource": queue_arn}


def setup(client: SageMakerClient, name: str = DEFAULT_NAME) -> Made:
    url = str(client.call("sqs", "CreateQueue", QueueName=name)["QueueUrl"])  # same name, same answer
    attributes = client.call("sqs", "GetQueueAttributes", QueueUrl=url, AttributeNames=["QueueArn"])
    queue_arn = str(attributes["Attributes"]["QueueArn"])
    rule_arn = str(client.call("events", "PutRule", Name=name, EventPattern=json.dumps(event_pattern()),
                               State="ENABLED", Description="SageMaker job state changes for sagemaker-plugin's "
                               "tracker")["RuleArn"])
    client.call("sqs", "SetQueueAttributes", QueueUrl=url, Attributes={
        "Policy": json.dumps(queue_policy(queue_arn, rule_arn)), "MessageRetentionPeriod": str(RETENTION_SECONDS)})
    client.call("events", "PutTargets", Rule=name, Targets=[{"Id": TARGET_ID, "Arn": queue_arn}])
    return Made(url, queue_arn, rule_arn)


def teardown(client: SageMakerClient, name: str = DEFAULT_NAME) -> list[str]:
    """What was removed (the rule, the queue); what was not there is skipped."""
    removed = []
    try:
        client.call("events", "RemoveTargets", Rule=name, Ids=[TARGET_ID])
        client.call("events", "DeleteRule", Name=name)
        removed.append(f"rule {name}")
    except NotFound:
        pass
    try:
        url = client.call("sqs", "GetQueueUrl", QueueName=name)["QueueUrl"]
        client.call("sqs", "DeleteQueue", QueueUrl=url)
        removed.append(f"queue {url}")
    except AwsError as error:
        if not _missing(error):
            raise
    return removed


def _missing(error: AwsError) -> bool:
    return isinstance(error, NotFound) or error.code in ("AWS.SimpleQueueService.NonExistentQueue",
                                                         "QueueDoesNotExist")


def add_commands(commands: Any, common: Callable[[argparse.ArgumentParser], None],
                 command_parser: Callable[..., argparse.ArgumentParser]) -> None:
    p = command_parser(commands, "events", "set up or remove the EventBridge rule and SQS queue of job events",
                       "Job events instead of polls (docs/events.md): `setup` creates the EventBridge rule, the SQS "
                       "queue and its policy (idempotent) and prints the config lines and IAM statement to add; "
                       "`teardown` removes them.")
    common(p)
    p.add_argument("action", choices=("setup", "teardown"),
                   help="setup: make (or keep) the rule, the queue and its policy; teardown: remove them")
    p.add_argument("--name", default=DEFAULT_NAME, help=f"the rule's and the queue's name (default {DEFAULT_NAME})")
    p.set_defaults(handler=cmd_events)


def cmd_events(args: argparse.Namespace, config: Config) -> int:
    if not NAME_PATTERN.fullmatch(args.name):
        raise InputError(f"must be 1-64 letters, digits, '-' or '_' (a queue's and a rule's name), not {args.name!r}",
                         path="--name")
    if config.backend == "local" and not config.endpoint_url():
        raise InputError("the local backend needs a running local SageMaker for job events (`sagemaker-plugin local "
                         "serve`, then local.endpoint_url or $SAGEMAKER_PLUGIN_ENDPOINT_URL): one started for this "
                         "command would forget the rule and the queue when it ends", path="local.endpoint_url")
    with SageMakerClient(config.client_settings(region=args.region)) as client:
        if args.action == "teardown":
            removed = teardown(client, args.name)
            print("removed " + ", ".join(removed) if removed else f"nothing named {args.name} was there")
            return EXIT_OK
        made = setup(client, args.name)
    print(f"rule {made.rule_arn} -> queue {made.queue_url}")
    print("\nAdd to config.yaml:\n")
    print(f"tracking:\n  events:\n    queue_url: {made.queue_url}")
    print("\nThe connector's role then needs (docs/iam-policy.json has it for the default name):\n")
    print(json.dumps(connector_statement(made.queue_arn), indent=2))
    return EXIT_OK
