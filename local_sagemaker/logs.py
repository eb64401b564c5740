"""What a job's containers would print, and the metrics SageMaker would read from it.

Lines are planned once, when the job is created, with timestamps inside its Training window; the lifecycle writes
them to CloudWatch Logs as the clock passes them, so a reader during Training sees only part. Everything is
deterministic from the job's name, so a test can rely on the values' shape (loss-like metrics fall, score-like rise).
"""

from __future__ import annotations

import hashlib
import shlex
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import regex

from handlers import xgboost_algorithm
from handlers.hosts import host_count
from image_registry import ImageRegistry

MAX_ROUNDS = 100
DEFAULT_XGBOOST_ROUNDS = 10
DEFAULT_EPOCHS = 3

_RISING = ("auc", "aucpr", "ndcg", "map", "pre")


@dataclass(frozen=True)
class LogLine:
    """One line of one host's stream; `host` counts from 1 as in `algo-1`."""

    host: int
    timestamp_ms: int
    message: str


@dataclass(frozen=True)
class JobShape:
    """What decides a job's log lines, taken from its CreateTrainingJob request."""

    name: str
    image: str
    hyperparameters: Mapping[str, str]
    channels: tuple[str, ...]
    instance_count: int
    entrypoint: tuple[str, ...] = ()
    arguments: tuple[str, ...] = ()

    @classmethod
    def from_request(cls, request: Mapping[str, Any]) -> JobShape:
        algorithm = request.get("AlgorithmSpecification") or {}
        return cls(
            name=str(request.get("TrainingJobName", "")),
            image=str(algorithm.get("TrainingImage") or algorithm.get("AlgorithmName") or ""),
            hyperparameters={str(k): str(v) for k, v in (request.get("HyperParameters") or {}).items()},
            channels=tuple(str(c.get("ChannelName", "")) for c in request.get("InputDataConfig") or []),
            instance_count=host_count(request),
            entrypoint=tuple(str(a) for a in algorithm.get("ContainerEntrypoint") or ()),
            arguments=tuple(str(a) for a in algorithm.get("ContainerArguments") or ()),
        )

    @property
    def is_xgboost(self) -> bool:
        repository = self.image.rsplit("/", 1)[-1].split(":", 1)[0].split("@", 1)[0]
        return "xgboost" in repository.lower()

    @property
    def has_validation(self) -> bool:
        return "validation" in self.channels

    @property
    def mpi(self) -> bool:
        return self.hyperparameters.get("sagemaker_mpi_enabled", "").strip().lower() == "true"


def seed(name: str) -> int:
    """A stable number from the job's name (Python's hash() is salted per process)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big")


def unit(name: str, salt: str) -> float:
    """A stable number in [0, 1) from the job's name and a salt."""
    return (seed(f"{salt}:{name}") % 1_000_000) / 1_000_000


def stream_name(job_name: str, host: int, epoch_seconds: int) -> str:
    return f"{job_name}/algo-{host}-{epoch_seconds}"


def built_in_metric_definitions(shape: JobShape) -> list[dict[str, str]]:
    """The metrics SageMaker reads for the built-in XGBoost (train:<m>, validation:<m>, with the algorithm version's
    own regexes) that this job's lines carry; none for custom images, even ones named like XGBoost (SageMaker knows
    its algorithms by their registry's image URIs)."""
    known = ImageRegistry.default().identify(shape.image)
    if known is None or known.algorithm != "xgboost":
        return []
    version = known.version
    metric = _xgboost_metric(shape.hyperparameters)
    wanted = [f"{channel}:{metric}" for channel in (["train", "validation"] if shape.has_validation else ["train"])]
    by_name = {d["Name"]: d for d in xgboost_algorithm.metric_definitions(version)}
    return [by_name[name] for name in wanted if name in by_name]


def plan_lines(shape: JobShape, start_ms: int, end_ms: int) -> list[LogLine]:
    """Every line of every host for a Training window [start_ms, end_ms), ordered by time then host."""
    span = max(0, end_ms - start_ms)
    per_host = _xgboost_lines(shape) if shape.is_xgboost else _custom_lines(shape)
    lines: list[LogLine] = []
    for host, texts in per_host.items():
        count = len(texts)
        for index, text in enumerate(texts):
            # Spread over the first 95% of the window so the last line lands before Uploading begins.
            offset = (span * 95 * index) // (100 * max(1, count)) if span else 0
            timestamp = start_ms + offset
            lines.append(LogLine(host, timestamp, _stamp(text, timestamp)))
    lines.sort(key=lambda line: (line.timestamp_ms, line.host))
    return lines


def failure_lines(shape: JobShape, reason: str, timestamp_ms: int) -> list[LogLine]:
    """What algo-1 prints when the algorithm fails: the toolkit's report and the reason."""
    if shape.is_xgboost:
        texts = ["[{date}:ERROR] " + reason]
    else:
        texts = ["{iso} sagemaker-training-toolkit ERROR    Reporting training FAILURE", "{iso} " + reason]
    return [LogLine(1, timestamp_ms, _stamp(text, timestamp_ms)) for text in texts]


#: Where each extracted value goes as it is taken: (metric name, host number, value, timestamp in epoch ms).
MetricSink = Callable[[str, int, float, int], None]


class MetricExtractor:
    """Applies MetricDefinitions regexes to log lines as SageMaker does: the last captured value per metric wins
    (FinalMetricDataList), and every value, with its line's time and host, goes to `publish` (the CloudWatch metrics
    SageMaker publishes). Whoever feeds lines, the simulated timeline or a running job, publishes through here."""

    def __init__(self, definitions: Sequence[Mapping[str, Any]], publish: MetricSink | None = None) -> None:
        self._publish = publish
        self._patterns: list[tuple[str, Any]] = []
        seen: set[str] = set()
        for definition in definitions:
            name, pattern = str(definition.get("Name", "")), str(definition.get("Regex", ""))
            if not name or name in seen:
                continue
            try:
                compiled = regex.compile(pattern)
            except regex.error:
                continue  # SageMaker accepts the definition; it just never yields a value.
            seen.add(name)
            self._patterns.append((name, compiled))
        self._latest: dict[str, tuple[float, int]] = {}

    def feed(self, line: LogLine) -> None:
        for name, pattern in self._patterns:
            match = pattern.search(line.message)
            if match is None:
                continue
            text = match.group(1) if pattern.groups else match.group(0)
            try:
                value = float(text)
            except (TypeError, ValueError):
                continue
            self._latest[name] = (value, line.timestamp_ms)
            if self._publish is not None:
                self._publish(name, line.host, value, line.timestamp_ms)

    def latest(self) -> dict[str, tuple[float, int]]:
        """The last value of each metric and its time (epoch ms): what `final` shows, as data to keep."""
        return dict(self._latest)

    def restore(self, latest: Mapping[str, tuple[float, int]]) -> None:
        """The last values kept by an earlier server (`latest`), as if their lines had been fed."""
        self._latest = {name: (float(value), int(at)) for name, (value, at) in latest.items()}

    def final(self) -> list[dict[str, Any]]:
        """FinalMetricDataList entries, in the order the definitions were given."""
        return [
            {"MetricName": name, "Value": value, "Timestamp": to_datetime(timestamp)}
            for name, _ in self._patterns
            if name in self._latest
            for value, timestamp in [self._latest[name]]
        ]


def to_datetime(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


def _stamp(text: str, timestamp_ms: int) -> str:
    if "{" not in text:
        return text
    moment = time.gmtime(timestamp_ms / 1000)
    millis = timestamp_ms % 1000
    return text.replace("{date}", time.strftime("%Y-%m-%d:%H:%M:%S", moment)).replace(
        "{iso}", time.strftime("%Y-%m-%d %H:%M:%S", moment) + f",{millis:03d}"
    )


def _int_setting(values: Mapping[str, str], keys: Sequence[str], default: int) -> int:
    for key in keys:
        if key in values:
            try:
                return max(1, min(MAX_ROUNDS, int(float(values[key]))))
            except ValueError:
                return default
    return default


def _xgboost_metric(hyperparameters: Mapping[str, str]) -> str:
    chosen = hyperparameters.get("eval_metric", "").split(",")[0].strip()
    if chosen:
        return chosen
    objective = hyperparameters.get("objective", "reg:squarederror")
    by_family = {"binary:": "logloss", "multi:": "mlogloss", "rank:": "ndcg", "survival:": "cox-nloglik"}
    return next((metric for prefix, metric in by_family.items() if objective.startswith(prefix)), "rmse")


def _curve(shape: JobShape, salt: str, steps: int, rising: bool) -> list[float]:
    """A smooth monotone curve of `steps` values, its start and end drawn from the job's name."""
    if rising:
        first, last = 0.55 + 0.1 * unit(shape.name, salt + "a"), 0.85 + 0.12 * unit(shape.name, salt + "b")
    else:
        first = 0.8 + 3.2 * unit(shape.name, salt + "a")
        last = first * (0.15 + 0.25 * unit(shape.name, salt + "b"))
    if steps == 1:
        return [last]
    ratio = (last / first) ** (1 / (steps - 1))
    return [first * ratio**step for step in range(steps)]


def _xgboost_lines(shape: JobShape) -> dict[int, list[str]]:
    rounds = _int_setting(shape.hyperparameters, ("num_round",), DEFAULT_XGBOOST_ROUNDS)
    metric = _xgboost_metric(shape.hyperparameters)
    rising = metric.split("@")[0] in _RISING
    train = _curve(shape, "train", rounds, rising)
    gap = 0.97 if rising else 1.05 + 0.2 * unit(shape.name, "gap")
    validation = [value * gap for value in train]
    hosts = shape.instance_count
    preamble = [
        "[{date}:INFO] Imported framework sagemaker_xgboost_container.training",
        "[{date}:INFO] Failed to parse hyperparameter objective value "
        f"{shape.hyperparameters.get('objective', 'reg:squarederror')} to Json.",
        "[{date}:INFO] Running XGBoost Sagemaker in algorithm mode",
        "[{date}:INFO] Determined delimiter of CSV input is ','",
        "[{date}:INFO] files path: /opt/ml/input/data/train",
    ]
    if shape.has_validation:
        preamble.append("[{date}:INFO] files path: /opt/ml/input/data/validation")
    if hosts > 1:
        names = ", ".join(f"'algo-{n}'" for n in range(1, hosts + 1))
        preamble.append(f"[{{date}}:INFO] Distributed node training with {hosts} hosts: [{names}]")
    else:
        preamble.append("[{date}:INFO] Single node training.")
    preamble.append(f"[{{date}}:INFO] Train matrix has {1000 + seed(shape.name) % 9000} rows and 9 columns")
    if shape.has_validation:
        preamble.append(f"[{{date}}:INFO] Validation matrix has {250 + seed(shape.name) % 2000} rows")
    rows = _progress_lines(shape, rounds, lambda i: f"[{i}]#011train-{metric}:{train[i]:.5f}",
                           lambda i: f"#011validation-{metric}:{validation[i]:.5f}")
    return {host: [*preamble, *rows] for host in range(1, hosts + 1)}


def _progress_lines(shape: JobShape, count: int, line: Callable[[int], str], validation: Callable[[int], str]
                    ) -> list[str]:
    """One line per round or epoch, with its validation part when the job has a validation channel."""
    return [line(index) + (validation(index) if shape.has_validation else "") for index in range(count)]


def _custom_epochs(shape: JobShape) -> int:
    epochs = _int_setting(shape.hyperparameters, ("epochs", "num_epochs", "n_epochs"), 0)
    if epochs:
        return epochs
    args = list(shape.arguments)
    for index, arg in enumerate(args):
        for flag in ("--epochs", "--num-epochs", "--num_epochs"):
            value = None
            if arg == flag and index + 1 < len(args):
                value = args[index + 1]
            elif arg.startswith(flag + "="):
                value = arg.split("=", 1)[1]
            if value is not None:
                return _int_setting({"e": value}, ("e",), DEFAULT_EPOCHS)
    return DEFAULT_EPOCHS


def _custom_lines(shape: JobShape) -> dict[int, list[str]]:
    epochs = _custom_epochs(shape)
    loss = _curve(shape, "loss", epochs, rising=False)
    accuracy = _curve(shape, "accuracy", epochs, rising=True)
    val_loss = [v * (1.04 + 0.1 * unit(shape.name, "val")) for v in loss]
    command = shlex.join((*(shape.entrypoint or ("train",)), *shape.arguments))
    hosts = shape.instance_count
    toolkit = "{iso} sagemaker-training-toolkit INFO     "
    common = [
        toolkit + "No GPUs detected (normal if no gpus installed)",
        toolkit + "Invoking user script",
        toolkit + f"Hosts: {[f'algo-{n}' for n in range(1, hosts + 1)]}, current host: algo-{{host}}",
    ]
    epoch_lines = _progress_lines(shape, epochs,
                                  lambda i: f"epoch {i + 1}/{epochs} loss={loss[i]:.4f} accuracy={accuracy[i]:.4f}",
                                  lambda i: f" val_loss={val_loss[i]:.4f}")
    per_host: dict[int, list[str]] = {}
    if shape.mpi:
        per_process = shape.hyperparameters.get("sagemaker_mpi_num_of_processes_per_host", "1").strip() or "1"
        try:
            processes = max(1, int(per_process))
        except ValueError:
            processes = 1
        options = shape.hyperparameters.get("sagemaker_mpi_custom_mpi_options", "").strip()
        host_list = ",".join(f"algo-{n}:{processes}" for n in range(1, hosts + 1))
        mpirun = (
            f"mpirun --host {host_list} -np {hosts * processes} --allow-run-as-root --display-map --tag-output "
            "-mca btl_tcp_if_include eth0 -mca oob_tcp_if_include eth0 -mca plm_rsh_no_tree_spawn 1 -bind-to none "
            "-map-by slot -mca pml ob1 -mca btl ^openib -mca orte_abort_on_non_zero_status 1 "
            "-x NCCL_MIN_NRINGS=4 -x NCCL_SOCKET_IFNAME=eth0 -x NCCL_DEBUG=INFO -x LD_LIBRARY_PATH -x PATH"
            + (f" {options}" if options else "")
            + f" {command}"
        )
        per_host[1] = [
            *common,
            toolkit + "Starting MPI run as master node.",
            toolkit + "Waiting for MPI workers to establish their SSH connections",
            toolkit + "Invoking script with the following command:",
            mpirun,
            *(f"[1,0]<stdout>:{text}" for text in epoch_lines),
            toolkit + "Reporting training SUCCESS",
        ]
        for host in range(2, hosts + 1):
            per_host[host] = [
                *common,
                toolkit + "Starting MPI run as worker node.",
                toolkit + "Waiting for MPI Master to create SSH daemon.",
                toolkit + "MPI Master online, creating SSH daemon.",
                toolkit + "Waiting for MPI process to finish.",
                toolkit + "MPI process finished.",
                toolkit + "Reporting training SUCCESS",
            ]
    else:
        for host in range(1, hosts + 1):
            per_host[host] = [
                *common,
                toolkit + "Invoking script with the following command:",
                command,
                *epoch_lines,
                toolkit + "Reporting training SUCCESS",
            ]
    return {host: [text.replace("{host}", str(host)) for text in texts] for host, texts in per_host.items()}
