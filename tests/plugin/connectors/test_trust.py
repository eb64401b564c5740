"""plugin/connectors/trust.py: what a connector believes of a resource meta handed back to it, without a connector or a
network."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import pytest

from handlers.errors import InputError
from handlers.job_kinds import TRAINING
from handlers.job_kinds import TUNING as TUNING_KIND
from handlers.request import FINGERPRINT_TAG, fingerprint
from plugin.config import Config, parse_config
from plugin.connectors.loopback import loopback_address
from plugin.connectors.trust import same_endpoint, trusted_meta
from plugin.jobs.training_job import TrainingJobPlugin
from plugin.jobs.tuning_job import TuningJobPlugin
from plugin.meta import ResourceMeta

ROLE = "arn:aws:iam::123456789012:role/SageMakerTrainingRole"
LOCAL = "http://127.0.0.1:4566"
TASK = {"task_type": "sagemaker_training_job_task",
        "training_job": {"algorithm_specification": {"algorithm_name": "XGBOOST", "algorithm_version": "1.7-1"},
                         "training_job_resource_config": {"instance_type": "ml.m5.xlarge"}},
        "inputs": {"train": "s3://b/train/", "static_hyperparameters": {"num_round": 2}},
        "execution": {"project": "p", "domain": "d", "name": "e1"}}


def aws_config(**keys: Any) -> Config:
    return parse_config({"backend": "aws", "region": "us-east-1", "role_arn": ROLE, "output_prefix": "s3://out/x",
                         **keys})


def meta(**fields: Any) -> ResourceMeta:
    return ResourceMeta(**{"job_name": "p-d-e1-n0-0", "region": "us-east-1", "created_at": time.time(), **fields})


@pytest.mark.parametrize(("first", "second", "same"), [
    (None, None, True),
    ("", None, True),
    (LOCAL, LOCAL, True),
    ("HTTP://LocalHost:80", "http://localhost", True),  # case, and the scheme's default port
    ("https://api.sagemaker.us-east-1.amazonaws.com:443/", "https://api.sagemaker.us-east-1.amazonaws.com", True),
    (LOCAL + "/any/path?x=1", LOCAL, True),  # scheme, host and port are what count
    (LOCAL, "http://127.0.0.1:4567", False),
    (LOCAL, "https://127.0.0.1:4566", False),
    ("http://127.0.0.1:4566", "http://localhost:4566", False),  # another name is another endpoint
    (LOCAL, None, False),
    ("http://127.0.0.1:99999", "http://127.0.0.1:99999", False),  # no URL at all: never the same as anything
    ("http://[::1", "http://[::1", False),
    ("127.0.0.1:4566", "127.0.0.1:4566", False),
])
def test_endpoints_are_compared_as_urls(first: str | None, second: str | None, same: bool) -> None:
    assert same_endpoint(first, second) is same
    assert same_endpoint(second, first) is same


def test_a_trusted_meta_goes_to_the_configs_own_spelling_of_its_endpoint() -> None:
    config = parse_config({"backend": "local", "local": {"endpoint_url": LOCAL}})
    assert trusted_meta(meta(endpoint_url="HTTP://127.0.0.1:4566/x"), config, LOCAL, TRAINING).endpoint_url == LOCAL
    assert trusted_meta(meta(), aws_config(), None, TRAINING).endpoint_url is None


@pytest.mark.parametrize(("fields", "says"), [
    ({"endpoint_url": "http://127.0.0.1:1"}, "endpoint_url: names endpoint 'http://127.0.0.1:1', not this "
                                             "connector's (AWS's own endpoint)"),
    ({"region": "eu-west-1"}, "region: 'eu-west-1' is not this connector's region (us-east-1)"),
    ({"region": "us-east-1.evil.example"}, "region: 'us-east-1.evil.example' is not this connector's region"),
    ({"job_name": "../x"}, "job_name: Member must satisfy regular expression pattern"),
    ({"job_name": ""}, "job_name: "),
    ({"created_at": float("inf")}, "created_at: must be a finite number of seconds"),
    ({"created_at": time.time() + 10**9}, "s in the future"),
])
def test_a_meta_that_chooses_where_requests_go_is_refused_naming_the_field(fields: dict[str, Any],
                                                                          says: str) -> None:
    with pytest.raises(InputError) as raised:
        trusted_meta(meta(**fields), aws_config(), None, TRAINING)
    assert says in str(raised.value)


def queued(config: Config, **changes: Any) -> ResourceMeta:
    """A queued meta as `config` renders TASK; `changes` replace request members, the fingerprint made to match."""
    rendered = TrainingJobPlugin(config, embedded=False).render(TASK)
    request = {**rendered.request, **changes}
    request["Tags"] = [t for t in request["Tags"] if t["Key"] != FINGERPRINT_TAG]
    request["Tags"].append({"Key": FINGERPRINT_TAG, "Value": fingerprint(request)})
    return meta(job_name=rendered.job_name, fingerprint=fingerprint(request), queued_request=request)


def refusal(config: Config, forged: ResourceMeta) -> str:
    with pytest.raises(InputError) as raised:
        trusted_meta(forged, config, None, TRAINING)
    return str(raised.value)


def test_a_queued_request_as_the_config_renders_it_is_followed() -> None:
    config = aws_config(security={"enable_network_isolation": True, "volume_kms_key_id": "alias/k"},
                        tags={"team": "ml"})
    assert trusted_meta(queued(config), config, None, TRAINING).queued


@pytest.mark.parametrize(("changes", "says"), [
    ({"RoleArn": "arn:aws:iam::123456789012:role/Admin"},
     f"queued_request.RoleArn: is 'arn:aws:iam::123456789012:role/Admin', not the config's {ROLE!r}"),
    ({"EnableNetworkIsolation": False}, "queued_request.EnableNetworkIsolation: is False, not the config's True"),
    ({"OutputDataConfig": {"S3OutputPath": "s3://elsewhere/x"}},
     "queued_request.OutputDataConfig.S3OutputPath: 's3://elsewhere/x' is not under the config's output_prefix "
     "s3://out/x"),
    ({"OutputDataConfig": {"S3OutputPath": "s3://out/x-other"}}, "is not under the config's output_prefix"),
    ({"TrainingJobName": "someone-elses-job"}, "queued_request.TrainingJobName: is not the meta's job_name"),
    ({"HyperParameters": {"num_round": ["2"]}}, "queued_request.HyperParameters.num_round: "),
    ({"Unknown": 1}, "queued_request.Unknown: is not a field of CreateTrainingJobRequest"),
])
def test_a_queued_request_the_config_would_not_render_is_refused(changes: dict[str, Any], says: str) -> None:
    config = aws_config(security={"enable_network_isolation": True}, tags={"team": "ml"})
    assert says in refusal(config, queued(config, **changes))


def test_a_queued_request_without_the_configs_tags_or_with_another_fingerprint_is_refused() -> None:
    config = aws_config(tags={"team": "ml"})
    genuine = queued(config)
    untagged = dict(genuine.queued_request or {}, Tags=[t for t in (genuine.queued_request or {})["Tags"]
                                                        if t["Key"] != "team"])
    assert "queued_request.Tags: lacks the config's tags team" in refusal(config, replace(genuine,
                                                                                           queued_request=untagged))
    assert "the sagemaker-plugin:fingerprint tag" in refusal(config, replace(genuine, fingerprint="0" * 32))


TUNING = {"task_type": "sagemaker_hyperparameter_tuning_job_task",
          "hyperparameter_tuning_job": {"training_job": TASK["training_job"], "max_number_of_training_jobs": 2,
                                        "max_parallel_training_jobs": 1},
          "tuning_config": {"hyperparameter_ranges": {"parameter_range_map": {
              "eta": {"continuous_parameter_range": {"min_value": 0.1, "max_value": 0.5}}}},
              "tuning_objective": {"objective_type": "MINIMIZE", "metric_name": "validation:rmse"}},
          "inputs": {**TASK["inputs"], "validation": "s3://b/validation/"}, "execution": TASK["execution"]}


def test_a_queued_tuning_request_is_checked_in_its_training_job_definition() -> None:
    config = aws_config(security={"enable_network_isolation": True})
    rendered = TuningJobPlugin(config, embedded=False).render(TUNING)
    request = rendered.request
    genuine = meta(job_name=rendered.job_name, fingerprint=fingerprint(request), queued_request=request)
    assert trusted_meta(genuine, config, None, TUNING_KIND).queued
    definition = {**request["TrainingJobDefinition"], "RoleArn": "arn:aws:iam::123456789012:role/Admin"}
    forged = {**request, "TrainingJobDefinition": definition}
    forged["Tags"] = [*[t for t in request["Tags"] if t["Key"] != FINGERPRINT_TAG],
                      {"Key": FINGERPRINT_TAG, "Value": fingerprint(forged)}]
    with pytest.raises(InputError, match=r"queued_request\.TrainingJobDefinition\.RoleArn: is 'arn:aws:iam::"):
        trusted_meta(replace(genuine, fingerprint=fingerprint(forged), queued_request=forged), config, None,
                     TUNING_KIND)
    with pytest.raises(InputError, match=r"queued_request\.HyperParameterTuningJobConfig: Member must not be null"):
        trusted_meta(meta(queued_request={"HyperParameterTuningJobName": "p-d-e1-n0-0"}), config, None, TUNING_KIND)


@pytest.mark.parametrize(("address", "bound"), [
    ("[::]:8000", "127.0.0.1:8000"),
    ("0.0.0.0:9090", "127.0.0.1:9090"),
    ("10.1.2.3:1", "127.0.0.1:1"),
    ("localhost:8000", "127.0.0.1:8000"),  # a name a hosts file may point anywhere
    ("127.0.0.1:8000", "127.0.0.1:8000"),
    ("[::1]:8000", "[::1]:8000"),
    ("unix:/tmp/connector.sock", "unix:/tmp/connector.sock"),
])
def test_every_bind_address_moves_to_loopback(address: str, bound: str) -> None:
    assert loopback_address(address) == bound
