"""Prometheus metrics of what the plugin asks AWS and how it fares: calls, throttles, retries, quota waits, sweeps.

The metrics live in prometheus_client's default registry, which flytekit's connector service (`pyflyte serve connector
--prometheus_port`) already exposes beside its own `flyte_connector_*` counters. prometheus_client is optional (it
comes with the `flyte` extra): without it every hook here does nothing, so the core install needs nothing more.
"""

from __future__ import annotations

from typing import Any

PREFIX = "sagemaker_plugin_"
#: sweep durations (seconds): a sweep is one ListTrainingJobs page when little changed, a few dozen at worst
SWEEP_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class _Metrics:
    """The metric objects, made once per process (prometheus_client refuses a name registered twice)."""

    def __init__(self, prometheus: Any) -> None:
        self.calls = prometheus.Counter(
            f"{PREFIX}aws_calls", "AWS calls by operation and outcome (ok, or the error class it ended with), "
            "each counted once however many attempts it took", ["service", "operation", "outcome"])
        self.retries = prometheus.Counter(
            f"{PREFIX}aws_retries", "Attempts beyond the first, by operation (throttling, 5xx, network faults)",
            ["service", "operation"])
        self.throttles = prometheus.Counter(
            f"{PREFIX}aws_throttles", "Attempts AWS answered with a throttling error, by operation",
            ["service", "operation"])
        self.waiting = prometheus.Gauge(
            f"{PREFIX}jobs_waiting_for_quota", "Jobs whose CreateTrainingJob an account quota refused, queued in "
            "this process until capacity frees (WAITING_FOR_RESOURCES)")
        self.sweeps = prometheus.Histogram(
            f"{PREFIX}status_sweep_seconds", "Duration of a status sweep (ListTrainingJobs pages of what changed)",
            buckets=SWEEP_BUCKETS)
        self.sweep_failures = prometheus.Counter(
            f"{PREFIX}status_sweep_failures", "Status sweeps that failed (jobs are then described one by one)")


def _make() -> _Metrics | None:
    try:
        import prometheus_client
    except ImportError:
        return None
    return _Metrics(prometheus_client)


_METRICS = _make()


def call_finished(service: str, operation: str, outcome: str, attempts: int, throttled: int) -> None:
    """One call of `operation` is over: `outcome` is "ok" or the error class name; `attempts` includes the first."""
    if _METRICS is None:
        return
    _METRICS.calls.labels(service, operation, outcome).inc()
    if attempts > 1:
        _METRICS.retries.labels(service, operation).inc(attempts - 1)
    if throttled:
        _METRICS.throttles.labels(service, operation).inc(throttled)


def waiting_for_quota(change: int) -> None:
    """A job started (+1) or stopped (-1) waiting for quota in this process."""
    if _METRICS is not None and change:
        _METRICS.waiting.inc(change)


def sweep_finished(seconds: float, *, failed: bool = False) -> None:
    if _METRICS is None:
        return
    if failed:
        _METRICS.sweep_failures.inc()
    else:
        _METRICS.sweeps.observe(seconds)
