"""The pure parts, without a server: settings, planned log lines, metric extraction, error texts, rate buckets."""

from __future__ import annotations

from typing import Any

import pytest

from handlers.errors import Problem
from handlers.xgboost_algorithm import metric_definitions
from local_sagemaker import DEFAULT_TIMELINE, FailureRule, LocalSettings
from local_sagemaker.api.server import TokenBucket, operation_of
from local_sagemaker.errors import invalid
from local_sagemaker.logs import JobShape, LogLine, MetricExtractor, built_in_metric_definitions, plan_lines


def test_settings_defaults_and_scaling() -> None:
    settings = LocalSettings()
    assert dict(settings.timeline) == dict(DEFAULT_TIMELINE)
    assert sum(settings.seconds(phase) for phase in DEFAULT_TIMELINE) == 5.0
    fast = LocalSettings(timeline={"Training": 20}, time_scale=10)
    assert fast.seconds("Training") == 2.0 and fast.seconds("Starting") == 0.1
    assert fast.scaled(fast.stop_seconds) == 0.1


@pytest.mark.parametrize(
    "kwargs",
    [
        {"timeline": {"Compiling": 1}},
        {"timeline": {"Training": -1}},
        {"time_scale": 0},
        {"requests_per_second": {"CreateTrainingJob": 0}},
        {"instances": {"ml.p3.2xlarge": -1}},
        {"instances": {"ml.p3.2xlarge": 1.5}},
    ],
)
def test_bad_settings_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        LocalSettings(**kwargs)


def test_failure_rules_fullmatch_and_check_their_fields() -> None:
    rule = FailureRule(name_pattern="nightly-.*", at="Training", reason="AlgorithmError: NaN")
    assert rule.matches("nightly-1") and not rule.matches("my-nightly-1")
    settings = LocalSettings(failures=[rule, FailureRule(name_pattern=".*")])  # type: ignore[arg-type]
    assert settings.failures[0] is rule and isinstance(settings.failures, tuple)
    assert settings.failure_for("nightly-2") is rule
    with pytest.raises(ValueError, match="'at'"):
        FailureRule(name_pattern="x", at="Completed")
    with pytest.raises(ValueError, match="regular expression"):
        FailureRule(name_pattern="(")


def test_settings_from_the_config_local_section() -> None:
    """config.yaml's `local` section is parsed by plugin.config; the command line turns it into LocalSettings."""
    from plugin.config import parse_config
    from plugin.embedded import local_settings

    config = parse_config({"local": {
        "endpoint_url": "http://127.0.0.1:4566",
        "timeline": {"Training": 4},
        "time_scale": 2,
        "failures": [{"name_pattern": "nightly-.*", "at": "Training", "reason": "AlgorithmError: loss became NaN"}],
        "quotas": {"requests_per_second": {"CreateTrainingJob": 1}, "instances": {"ml.p3.2xlarge": 0}},
    }})
    settings = local_settings(config)
    assert settings.seconds("Training") == 2.0 and settings.seconds("Starting") == 0.5
    assert settings.failures == (FailureRule("nightly-.*", "Training", "AlgorithmError: loss became NaN"),)
    assert settings.requests_per_second == {"CreateTrainingJob": 1}
    assert settings.instances == {"ml.p3.2xlarge": 0}
    assert local_settings(parse_config({})) == LocalSettings()


def _shape(**kwargs: Any) -> JobShape:
    values: dict[str, Any] = {
        "name": "unit-job",
        "image": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1",
        "hyperparameters": {},
        "channels": ("train",),
        "instance_count": 1,
    }
    values.update(kwargs)
    return JobShape(**values)


def test_xgboost_rounds_are_capped_and_deterministic() -> None:
    shape = _shape(hyperparameters={"num_round": "5000"})
    lines = plan_lines(shape, 1_000_000, 1_010_000)
    rounds = [line for line in lines if line.message.startswith("[") and "#011" in line.message]
    assert len(rounds) == 100
    assert plan_lines(shape, 1_000_000, 1_010_000) == lines
    assert all(1_000_000 <= line.timestamp_ms < 1_010_000 for line in lines)
    other = plan_lines(_shape(name="another-job", hyperparameters={"num_round": "5000"}), 1_000_000, 1_010_000)
    assert [line.message for line in other] != [line.message for line in lines]


def test_xgboost_metric_follows_eval_metric_and_objective() -> None:
    auc = plan_lines(_shape(hyperparameters={"eval_metric": "auc", "num_round": "5"}), 0, 1000)
    values = [float(line.message.rsplit(":", 1)[1]) for line in auc if "#011train-auc:" in line.message]
    assert len(values) == 5 and values == sorted(values)  # a score rises
    binary = _shape(hyperparameters={"objective": "binary:logistic"}, channels=("train", "validation"))
    assert [d["Name"] for d in built_in_metric_definitions(binary)] == ["train:logloss", "validation:logloss"]
    assert built_in_metric_definitions(binary) == metric_definitions("1.7-1", {"objective": "binary:logistic"})
    assert built_in_metric_definitions(_shape(image="team/trainer:1")) == []
    # A custom image named like XGBoost, even in SageMaker's account, is no built-in algorithm.
    named_like_it = "683313688378.dkr.ecr.us-east-1.amazonaws.com/my-xgboost:1.7-1"
    assert built_in_metric_definitions(_shape(image=named_like_it)) == []


def test_a_zero_length_training_window_still_orders_lines() -> None:
    lines = plan_lines(_shape(instance_count=3), 5000, 5000)
    assert {line.host for line in lines} == {1, 2, 3}
    assert all(line.timestamp_ms == 5000 for line in lines)


def test_metric_extractor_keeps_the_last_value_and_skips_bad_regexes() -> None:
    extractor = MetricExtractor(
        [
            {"Name": "loss", "Regex": r"loss=([0-9.]+)"},
            {"Name": "broken", "Regex": "("},
            {"Name": "whole", "Regex": r"[0-9]+\.[0-9]+"},
            {"Name": "loss", "Regex": r"duplicate=([0-9.]+)"},
        ]
    )
    extractor.feed(LogLine(1, 1000, "epoch 1 loss=0.9"))
    extractor.feed(LogLine(1, 2000, "epoch 2 loss=0.5 acc=x"))
    extractor.feed(LogLine(2, 3000, "nothing to see"))
    final = extractor.final()
    assert [(m["MetricName"], m["Value"]) for m in final] == [("loss", 0.5), ("whole", 0.5)]
    assert final[0]["Timestamp"].timestamp() == 2.0


def test_validation_messages_follow_aws_wording() -> None:
    params = {"TrainingJobName": "bad_name!", "InputDataConfig": [{"ChannelName": "a b"}], "HyperParameters": {"k": 1}}
    error = invalid(
        [
            Problem("TrainingJobName", "must match a pattern"),
            Problem("InputDataConfig[0].ChannelName", "must match a pattern"),
            Problem("HyperParameters", "too many"),
            Problem("RoleArn", "is required"),
        ],
        params,
    )
    assert error.code == "ValidationException"
    assert error.message == (
        "4 validation errors detected: Value 'bad_name!' at 'trainingJobName' failed to satisfy constraint: must "
        "match a pattern; Value 'a b' at 'inputDataConfig.1.member.channelName' failed to satisfy constraint: must "
        "match a pattern; Value '{k=1}' at 'hyperParameters' failed to satisfy constraint: too many; Value null at "
        "'roleArn' failed to satisfy constraint: is required"
    )


def test_token_bucket_allows_a_burst_then_the_rate() -> None:
    now = [0.0]
    bucket = TokenBucket(2.0, clock=lambda: now[0])
    assert [bucket.take() for _ in range(3)] == [True, True, False]
    now[0] = 0.5
    assert [bucket.take(), bucket.take()] == [True, False]
    slow = TokenBucket(0.5, clock=lambda: now[0])
    assert slow.take() and not slow.take()
    now[0] = 2.5
    assert slow.take()


def test_operations_are_read_from_the_target_header() -> None:
    assert operation_of("SageMaker.CreateTrainingJob") == ("sagemaker", "CreateTrainingJob")
    assert operation_of("Logs_20140328.GetLogEvents") == ("logs", "GetLogEvents")
