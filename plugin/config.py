"""config.yaml: typed, with defaults, every key checked (docs/config.md lists them).

Found as the command line documents: an explicit path, else $SAGEMAKER_PLUGIN_CONFIG, else ./config.yaml, else the
built-in defaults. AWS credentials never live here; boto3's own chain provides them.
"""

from __future__ import annotations

import functools
import os
import re
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from botocore.model import StringShape

from handlers.client import ClientSettings
from handlers.errors import InputError, join_path
from handlers.explain import did_you_mean
from handlers.local import EVENT_FAULTS, EXECUTIONS, LOCAL_PHASES, EventFault, FailureRule, LocalSettings
from handlers.ratelimit import RateLimits
from handlers.retry import RetrySettings
from handlers.service_model import enum_values, service_model
from handlers.tracker_events import EventSettings
from plugin.fields import Reader
from plugin.yamlfile import read_document

_Section = TypeVar("_Section")

CONFIG_ENV = "SAGEMAKER_PLUGIN_CONFIG"
ENDPOINT_ENV = "SAGEMAKER_PLUGIN_ENDPOINT_URL"
BACKENDS = ("local", "aws")


@dataclass(frozen=True)
class Defaults:
    volume_size_in_gb: int = 30
    max_runtime_seconds: int = 86400


@dataclass(frozen=True)
class Security:
    subnets: tuple[str, ...] = ()
    security_group_ids: tuple[str, ...] = ()
    enable_network_isolation: bool | None = None
    enable_inter_container_traffic_encryption: bool | None = None
    volume_kms_key_id: str | None = None
    output_kms_key_id: str | None = None


@dataclass(frozen=True)
class Limits:
    resource_wait_seconds: float = 3600.0


@dataclass(frozen=True)
class Tracking:
    sweep_interval_seconds: float = 10.0
    not_found_grace_seconds: float = 60.0
    #: job changes from an SQS queue fed by EventBridge (docs/events.md); None: sweeps only
    events: EventSettings | None = None


@dataclass(frozen=True)
class LocalConfig(LocalSettings):
    """config's `local` section: the local SageMaker's settings (handlers/local.py, one home for them and their
    defaults), and where to find it."""

    endpoint_url: str | None = None
    data_dir: str | None = None  # where the local S3 is kept; None: the default (local_sagemaker/persistence.py)
    #: not a key: endpoint_url is a local SageMaker this process started for itself (`run`'s), gone when it ends
    embedded: bool = False


@dataclass(frozen=True)
class Config:
    backend: str = "local"
    region: str = "us-east-1"
    role_arn: str | None = None
    output_prefix: str | None = None
    defaults: Defaults = field(default_factory=Defaults)
    tags: Mapping[str, str] = field(default_factory=dict)
    security: Security = field(default_factory=Security)
    mpi_custom_options: str | None = None
    prebuilt_algorithms: Mapping[str, Mapping[str, Mapping[str, str]]] = field(default_factory=dict)
    retry: RetrySettings = field(default_factory=RetrySettings)
    rate_limits: RateLimits = field(default_factory=RateLimits)
    tracking: Tracking = field(default_factory=Tracking)
    limits: Limits = field(default_factory=Limits)
    local: LocalConfig = field(default_factory=LocalConfig)
    source: str = "built-in defaults"
    #: the top-level keys the document set (a served connector runs locally only when `backend` is one of them)
    explicit_keys: frozenset[str] = field(default=frozenset(), compare=False)

    def endpoint_url(self) -> str | None:
        """The SageMaker endpoint for this backend: None means AWS's own (or start a local one)."""
        if self.backend != "local":
            return None
        return os.environ.get(ENDPOINT_ENV) or self.local.endpoint_url

    def client_settings(self, endpoint_url: str | None = None, region: str | None = None) -> ClientSettings:
        local = self.backend == "local"
        return ClientSettings(
            region=region or self.region,
            endpoint_url=endpoint_url if endpoint_url is not None else self.endpoint_url(),
            local_credentials=local,
            retry=self.retry,
            rate_limits=self.rate_limits,
        )


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """The config at `path`, else $SAGEMAKER_PLUGIN_CONFIG, else ./config.yaml, else the defaults."""
    if path is None:
        path = os.environ.get(CONFIG_ENV) or None
        if path is None and Path("config.yaml").is_file():
            path = "config.yaml"
    if path is None:
        return Config()
    data = read_document(Path(path), what="config", empty_ok=True)
    config = parse_config(data, source=str(path))
    return config


def parse_config(data: Any, source: str = "<config>") -> Config:
    reader = Reader()
    root = reader.mapping(data, "")
    if root is None:
        raise InputError("the config must be a map of settings", path="")
    reader.known_keys(
        root,
        ("backend", "region", "role_arn", "output_prefix", "defaults", "tags", "security", "mpi",
         "prebuilt_algorithms", "retry", "rate_limits", "tracking", "limits", "local"),
        "",
    )
    backend = reader.string(root, "backend", "", "local")
    if backend not in BACKENDS:
        reader.fail("backend", f"must be one of {', '.join(BACKENDS)}, not {backend!r}")
    config = Config(
        backend=backend,
        region=reader.string(root, "region", "", "us-east-1"),
        role_arn=reader.string(root, "role_arn", "", None),
        output_prefix=reader.string(root, "output_prefix", "", None),
        defaults=_numbers(reader, root.get("defaults"), "defaults", Defaults, minimum=1),
        tags=reader.string_map(root, "tags", ""),
        security=_security(reader, root.get("security")),
        mpi_custom_options=_mpi(reader, root.get("mpi")),
        prebuilt_algorithms=_prebuilt(reader, root.get("prebuilt_algorithms")),
        retry=_numbers(reader, root.get("retry"), "retry", RetrySettings, minimums={"attempts": 1}),
        rate_limits=_numbers(reader, root.get("rate_limits"), "rate_limits", RateLimits),
        tracking=_tracking(reader, root.get("tracking")),
        limits=_numbers(reader, root.get("limits"), "limits", Limits),
        local=_local(reader, root.get("local")),
        source=source,
        explicit_keys=frozenset(str(key) for key in root),
    )
    reader.raise_if_any()
    return config


def _section(reader: Reader, value: Any, path: str, keys: tuple[str, ...]) -> Mapping[str, Any]:
    data = reader.mapping(value, path) or {}
    reader.known_keys(data, keys, path)
    return data


def _security(reader: Reader, value: Any) -> Security:
    p = "security"
    d = _section(reader, value, p, ("subnets", "security_group_ids", "enable_network_isolation",
                                    "enable_inter_container_traffic_encryption", "volume_kms_key_id",
                                    "output_kms_key_id"))
    security = Security(
        subnets=reader.string_list(d, "subnets", p) or (),
        security_group_ids=reader.string_list(d, "security_group_ids", p) or (),
        enable_network_isolation=reader.boolean(d, "enable_network_isolation", p, None),
        enable_inter_container_traffic_encryption=reader.boolean(d, "enable_inter_container_traffic_encryption", p,
                                                                 None),
        volume_kms_key_id=reader.string(d, "volume_kms_key_id", p, None),
        output_kms_key_id=reader.string(d, "output_kms_key_id", p, None),
    )
    if bool(security.subnets) != bool(security.security_group_ids):
        reader.fail(p, "subnets and security_group_ids go together: a VPC config needs both")
    return security


def _tracking(reader: Reader, value: Any) -> Tracking:
    p = "tracking"
    d = _section(reader, value, p, ("sweep_interval_seconds", "not_found_grace_seconds", "events"))
    base = Tracking()
    interval = reader.number(d, "sweep_interval_seconds", p, base.sweep_interval_seconds, minimum=0)
    grace = reader.number(d, "not_found_grace_seconds", p, base.not_found_grace_seconds, minimum=0)
    if d.get("events") is None:
        return Tracking(interval, grace)
    ep = join_path(p, "events")
    e = _section(reader, d.get("events"), ep, ("queue_url", "sweep_interval_seconds", "max_silence_seconds"))
    url = reader.string(e, "queue_url", ep, None)
    if url is None:
        reader.fail(join_path(ep, "queue_url"), "is required with tracking.events: the queue `sagemaker-plugin events "
                    "setup` printed")
    elif not _queue_url(url):
        reader.fail(join_path(ep, "queue_url"), f"must be an SQS queue URL like https://sqs.<region>.amazonaws.com/"
                    f"<account>/<name>, not {url!r}")
    defaults = EventSettings("")
    sweep = reader.number(e, "sweep_interval_seconds", ep, defaults.sweep_interval_seconds, minimum=1)
    silence = reader.number(e, "max_silence_seconds", ep, defaults.max_silence_seconds, minimum=1)
    return Tracking(interval, grace, EventSettings(url or "", sweep, silence))


def _queue_url(url: str) -> bool:
    parts = urlsplit(url)
    segments = [segment for segment in parts.path.split("/") if segment]
    return parts.scheme in ("http", "https") and bool(parts.hostname) and len(segments) == 2 and not parts.query


def _mpi(reader: Reader, value: Any) -> str | None:
    d = _section(reader, value, "mpi", ("custom_mpi_options",))
    return reader.string(d, "custom_mpi_options", "mpi", None)  # type: ignore[no-any-return]


def _prebuilt(reader: Reader, value: Any) -> dict[str, dict[str, dict[str, str]]]:
    p = "prebuilt_algorithms"
    algorithms = reader.mapping(value, p) or {}
    out: dict[str, dict[str, dict[str, str]]] = {}
    for algorithm, versions in algorithms.items():
        ap = join_path(p, algorithm)
        version_map = reader.mapping(versions, ap) or {}
        out[algorithm] = {}
        for version, regions in version_map.items():
            vp = join_path(ap, str(version))
            region_map = reader.mapping(regions, vp) or {}
            uris = {}
            for region, uri in region_map.items():
                if not isinstance(uri, str) or not uri:
                    reader.fail(join_path(vp, region), "must be an image URI string")
                else:
                    uris[region] = uri
            out[algorithm][str(version)] = uris
    return out


def _numbers(reader: Reader, value: Any, path: str, cls: type[_Section], minimum: int = 0,
             minimums: Mapping[str, int] | None = None) -> _Section:
    """A section of numbers, one per field of the dataclass `cls` (an int field read as an integer), each defaulting
    to the field's own default and at least `minimum` (or its entry in `minimums`)."""
    names = tuple(f.name for f in fields(cls))  # type: ignore[arg-type]
    section = _section(reader, value, path, names)
    base, kinds = cls(), typing.get_type_hints(cls)
    values = {name: (reader.integer if kinds[name] is int else reader.number)(
        section, name, path, getattr(base, name), minimum=(minimums or {}).get(name, minimum)) for name in names}
    return cls(**values)


@functools.lru_cache(maxsize=1)
def _local_operations() -> frozenset[str]:
    return frozenset(op for service in ("sagemaker", "s3", "logs") for op in service_model(service).operation_names)


def _local(reader: Reader, value: Any) -> LocalConfig:
    """config's `local` section; the checks LocalSettings makes itself are made here first, to name the field."""
    p = "local"
    d = _section(reader, value, p, ("endpoint_url", "execution", "timeline", "time_scale", "failures", "quotas",
                                    "data_dir", "event_faults"))
    base = LocalConfig()
    problems = len(reader.problems)
    timeline = dict(base.timeline)
    tp = join_path(p, "timeline")
    for status, seconds in (reader.mapping(d.get("timeline"), tp) or {}).items():
        if status not in LOCAL_PHASES:
            reader.fail(join_path(tp, status), f"unknown secondary status; use {', '.join(LOCAL_PHASES)}")
        timeline[status] = reader.number({status: seconds}, status, tp, 0.0, minimum=0)

    def failure(item: Any, path: str) -> FailureRule | None:
        f = _section(reader, item, path, ("name_pattern", "at", "reason"))
        problems = len(reader.problems)
        pattern = _name_pattern(reader, f, path)
        at = reader.string(f, "at", path, FailureRule.at)
        if at not in LOCAL_PHASES:
            reader.fail(join_path(path, "at"), f"must be one of {', '.join(LOCAL_PHASES)}, not {at!r}")
        reason = reader.string(f, "reason", path, FailureRule.reason)
        if len(reader.problems) > problems:
            return None
        try:
            return FailureRule(pattern, at, reason)
        except ValueError as error:  # a check of the rule's own that the reader does not make (an empty reason)
            reader.fail(path, str(error))
            return None

    qp = join_path(p, "quotas")
    quotas = _section(reader, d.get("quotas"), qp, ("requests_per_second", "instances"))
    rps_path = join_path(qp, "requests_per_second")
    rps: dict[str, float] = {}
    for op, v in (reader.mapping(quotas.get("requests_per_second"), rps_path) or {}).items():
        if op not in _local_operations():
            reader.fail(join_path(rps_path, op), "is not a SageMaker, S3 or CloudWatch Logs operation name "
                        "(like CreateTrainingJob)")
        rate = reader.number({op: v}, op, rps_path, 1.0, minimum=0)
        if rate <= 0:
            reader.fail(join_path(rps_path, op), "must be more than 0 requests per second (leave it out for no limit)")
        rps[op] = rate
    ip = join_path(qp, "instances")
    instances: dict[str, int] = {}
    for kind, count in (reader.mapping(quotas.get("instances"), ip) or {}).items():
        types = enum_values("CreateTrainingJob", "ResourceConfig.InstanceType")
        if kind not in types:
            reader.fail(join_path(ip, kind), "is not a SageMaker training instance type" + did_you_mean(kind, types, 3))
        instances[kind] = reader.integer({kind: count}, kind, ip, 0, minimum=0)
    execution = reader.string(d, "execution", p, base.execution)
    if execution not in EXECUTIONS:
        reader.fail(join_path(p, "execution"), f"must be one of {', '.join(EXECUTIONS)}, not {execution!r}")
    endpoint_url = reader.string(d, "endpoint_url", p, None)
    time_scale = reader.number(d, "time_scale", p, base.time_scale, minimum=0.001)
    failures = tuple(rule for rule in reader.each(d.get("failures"), join_path(p, "failures"), failure) if rule)
    data_dir = reader.string(d, "data_dir", p, None)
    event_faults = tuple(fault for fault in reader.each(d.get("event_faults"), join_path(p, "event_faults"),
                                                        lambda item, path: _event_fault(reader, item, path)) if fault)
    if len(reader.problems) > problems:
        return base  # refused all the same (Reader.raise_if_any), with every problem named
    return LocalConfig(endpoint_url=endpoint_url, execution=execution, timeline=timeline, time_scale=time_scale,
                       failures=failures, requests_per_second=rps, instances=instances, data_dir=data_dir,
                       event_faults=event_faults)


@functools.lru_cache(maxsize=1)
def _event_statuses() -> tuple[str, ...]:
    """What an event fault's `status` may name: a training job's secondary status or a tuning job's status."""
    model = service_model("sagemaker")
    shapes = [model.shape_for(name) for name in ("SecondaryStatus", "HyperParameterTuningJobStatus")]
    return tuple(dict.fromkeys(value for shape in shapes if isinstance(shape, StringShape) for value in shape.enum))


def _name_pattern(reader: Reader, section: Any, path: str) -> str:
    """A rule's `name_pattern` (every job name when absent), refused unless it compiles."""
    pattern = reader.string(section, "name_pattern", path, ".*")
    try:
        re.compile(pattern)
    except (re.error, OverflowError, RecursionError, ValueError) as error:
        reader.fail(join_path(path, "name_pattern"), f"is not a valid regular expression: {error}")
    return str(pattern)


def _event_fault(reader: Reader, item: Any, path: str) -> EventFault | None:
    f = _section(reader, item, path, ("name_pattern", "fault", "status", "delay_seconds"))
    problems = len(reader.problems)
    pattern = _name_pattern(reader, f, path)
    fault = reader.string(f, "fault", path, None)
    if fault not in EVENT_FAULTS:
        reader.fail(join_path(path, "fault"), f"must be one of {', '.join(EVENT_FAULTS)}, not {fault!r}")
    status = reader.string(f, "status", path, None)
    if status is not None and status not in _event_statuses():
        reader.fail(join_path(path, "status"), "is not a job status" + did_you_mean(status, _event_statuses(), 3))
    delay = reader.number(f, "delay_seconds", path, EventFault.delay_seconds, minimum=0)
    if len(reader.problems) > problems:
        return None
    return EventFault(pattern, fault, status, delay)
