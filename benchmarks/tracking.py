"""Tracking N concurrent training jobs: one DescribeTrainingJob per job per interval vs the plugin's status tracker.

    python benchmarks/tracking.py                 # 2000 jobs; several minutes (see benchmarks/README.md)
    python benchmarks/tracking.py --quick         # a few seconds: CI runs it so that it cannot rot
    python benchmarks/tracking.py --events --jobs 10000 --time-scale 50 --mean-intervals 300   # job events
    python benchmarks/tracking.py --events --with-polling --jobs 2000 --mean-intervals 150   # and sweeps beside

With --events there is no naive loop: the plugin's `get` polls every job once per `--interval` (1 s unless given)
on a local SageMaker whose EventBridge rule feeds an SQS queue (`events setup`), the tracker following the queue with
its sweeps slowed to `--safety-interval`; the jobs are made through the plugin at `--create-rate` (SageMaker's pace
on the scaled clock unless given) while the loop polls each from its create; every request the server receives after
the first create counts (SageMaker, SQS, EventBridge; the creates left out). `--with-polling` runs the same jobs on a
second server tracked by sweeps alone, at the same interval, for the ratio.

Two local SageMakers, each in a process of its own, hold the same jobs, made at the same moment with the same
random durations. Side by side, from the same start and with the same poll interval, (a) the naive loop describes each
job once per interval until it ends, as flytekit's connector, Airflow's sensor and the SageMaker SDK do, on one
server; (b) the plugin's `get` backed by the tracker polls each job once per interval, on the other. Each server counts
the requests it receives, so each loop's API calls are counted where AWS would count them, not in the client.

Staleness is the time from the local SageMaker changing a job's secondary status (its SecondaryStatusTransitions,
read at the end) to the loop first seeing it; a job's first observation is not a change and is left out.
Durations are random: every job draws its MaxRuntimeInSeconds, so most end Stopped (MaxRuntimeExceeded) at their own
moment; those drawn past the timeline's end complete. The interval, unless given, is set from the naive server's
measured Describe rate so that the naive loop can keep up (about 80% busy): this machine's speed decides how fast the
run can go, and the run is long enough (`--mean-intervals` polls per job) for the ratio to mean something.

Prints one JSON line: {"jobs", "interval_seconds", "naive": {"api_calls": {op: n}, "calls_per_job_minute",
"staleness_p50", "staleness_p99"}, "tracker": {same keys}, "ratio", "cpu_us_per_get", "peak_rss_mb", ...}.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import http.client
import json
import multiprocessing
import random
import resource
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

from botocore.auth import SigV4Auth  # noqa: E402
from botocore.awsrequest import AWSRequest  # noqa: E402
from botocore.credentials import Credentials  # noqa: E402

from benchmarks import data_folder  # noqa: E402
from handlers import local_credentials  # noqa: E402
from handlers.local_credentials import LocalCredentials  # noqa: E402

REGION = "us-east-1"
ENDED = ("Completed", "Failed", "Stopped")
#: share of a job's mean life spent in each secondary status before its end (Training takes the rest)
SHORT_PHASES = {"Starting": 0.03, "Downloading": 0.03, "Uploading": 0.03}
TIMELINE_END = 1.08  # the timeline's end, in mean lives: jobs whose MaxRuntime reaches past it complete
RUNTIME_RANGE = (0.90, 1.09)  # MaxRuntimeInSeconds drawn uniformly in this range of mean lives


# --- a local SageMaker in a process of its own ----------------------------------------------------------------------


def _serve(conn: Any, settings: dict[str, Any], data_dir: Path | None) -> None:
    """The server process: start a LocalSageMaker, send its URL, then answer 'counts'/'rss' until 'stop'."""
    import logging

    logging.disable(logging.WARNING)
    from local_sagemaker import LocalSageMaker, LocalSettings

    with LocalSageMaker(LocalSettings(execution="simulate", **settings), data_dir=data_dir) as server:
        conn.send((server.url, server.credentials.access_key_id, server.credentials.secret_access_key))
        while True:
            command = conn.recv()
            if command == "counts":
                conn.send(server.call_counts())
            elif command == "counts-all":  # every service's, by "service:Operation"
                conn.send({f"{service}:{op}": n for service in ("sagemaker", "amazonsqs", "awsevents")
                           for op, n in server.call_counts(service).items()})
            elif command == "throttled":
                conn.send(server.throttled_counts())
            elif command == "rss":
                conn.send(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
            else:
                break


class ServerProcess:
    """A LocalSageMaker in a child process: the server gets a core of its own and its counts stay its own."""

    def __init__(self, settings: Mapping[str, Any], data_dir: Path | None = None) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(child, dict(settings), data_dir), daemon=True)
        self._process.start()
        self._lock = threading.Lock()
        self.url = ""

    def wait_ready(self, timeout: float = 60.0) -> str:
        if not self._conn.poll(timeout):
            raise RuntimeError("the local SageMaker did not start")
        self.url, key_id, secret = self._conn.recv()
        local_credentials.register(self.url, LocalCredentials(key_id, secret))  # this process's clients sign with them
        return self.url

    def ask(self, command: str) -> Any:
        with self._lock:
            self._conn.send(command)
            return self._conn.recv()

    def counts(self) -> dict[str, int]:
        return dict(self.ask("counts"))

    def stop(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self._conn.send("stop")
        self._process.join(timeout=10)
        if self._process.is_alive():
            self._process.terminate()


def start_servers(settings: Mapping[str, Any], *data_dirs: Path | None) -> list[ServerProcess]:
    """A server per data folder (None: without one)."""
    servers = [ServerProcess(settings, data_dir) for data_dir in data_dirs]
    for server in servers:
        server.wait_ready()
    return servers


def diff(after: Mapping[str, int], before: Mapping[str, int]) -> dict[str, int]:
    return {op: n - before.get(op, 0) for op, n in sorted(after.items()) if n - before.get(op, 0)}


# --- the naive loop's client ----------------------------------------------------------------------------------------


class RawSageMaker:
    """DescribeTrainingJob over plain keep-alive HTTP, one connection per thread.

    boto3 costs its caller about 2 ms of CPU per call; the naive loop makes hundreds a second on a 2-core machine, so
    it speaks the JSON protocol itself. The server cannot tell: it counts the same requests.
    """

    HEADERS: ClassVar[dict[str, str]] = {
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": "SageMaker.DescribeTrainingJob",
    }

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.url = url
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        keys = local_credentials.for_endpoint(url)
        self._signer = SigV4Auth(Credentials(keys.access_key_id, keys.secret_access_key), "sagemaker", "us-east-1")
        self._local = threading.local()

    def _signed_headers(self, body: str) -> dict[str, str]:
        """The local SageMaker takes only requests signed with its key pair (SigV4, as boto3 signs them)."""
        request = AWSRequest(method="POST", url=self.url + "/", data=body.encode(), headers=dict(self.HEADERS))
        self._signer.add_auth(request)
        return dict(request.headers.items())

    def describe(self, name: str) -> dict[str, Any]:
        body = json.dumps({"TrainingJobName": name})
        for attempt in range(3):
            conn = getattr(self._local, "conn", None)
            if conn is None:
                conn = self._local.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
            try:
                conn.request("POST", "/", body=body, headers=self._signed_headers(body))
                response = conn.getresponse()
                data = json.loads(response.read())
            except (OSError, http.client.HTTPException):
                conn.close()
                self._local.conn = None
                if attempt == 2:
                    raise
                continue
            if response.status != 200:
                raise RuntimeError(f"DescribeTrainingJob {name}: HTTP {response.status} {data}")
            return dict(data)
        raise AssertionError("unreachable")


# --- jobs -----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    jobs: int
    interval: float  # wall seconds between two polls of a job
    mean_life: float  # wall seconds
    time_scale: float
    runtimes: tuple[int, ...]  # per job, MaxRuntimeInSeconds (timeline seconds)

    @property
    def names(self) -> list[str]:
        return [f"bench-{i:05d}" for i in range(self.jobs)]

    def settings(self) -> dict[str, Any]:
        """The local SageMaker's settings: the timeline in timeline seconds, so that it lasts TIMELINE_END lives."""
        scale, life = self.time_scale, self.mean_life
        timeline = {phase: share * life * scale for phase, share in SHORT_PHASES.items()}
        timeline["Training"] = (TIMELINE_END - sum(SHORT_PHASES.values())) * life * scale
        return {"timeline": timeline, "time_scale": scale}

    @property
    def longest(self) -> float:
        return min(max(self.runtimes) / self.time_scale, TIMELINE_END * self.mean_life)


def make_plan(jobs: int, interval: float, mean_intervals: float, time_scale: float, seed: int) -> Plan:
    rng = random.Random(seed)
    life = interval * mean_intervals
    low, high = RUNTIME_RANGE
    runtimes = tuple(max(1, round(rng.uniform(low, high) * life * time_scale)) for _ in range(jobs))
    return Plan(jobs, interval, life, time_scale, runtimes)


def create_jobs(url: str, plan: Plan, threads: int = 8) -> None:
    from local_sagemaker.testing import LocalClients

    aws = LocalClients(url)
    data = aws.put_data("bench/train")
    sagemaker = aws.client("sagemaker", max_pool_connections=threads, retries={"total_max_attempts": 5})

    def create(index: int) -> None:
        name = plan.names[index]
        request = aws.training_request(name, channels={"train": data}, max_runtime=plan.runtimes[index])
        # boto3 may retry a create whose first attempt made the job (its answer late on a loaded machine)
        with contextlib.suppress(sagemaker.exceptions.ResourceInUse):
            sagemaker.create_training_job(**request)

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(create, range(plan.jobs)))


def describe_all(raw: RawSageMaker, names: Sequence[str], threads: int = 4) -> dict[str, dict[str, Any]]:
    with ThreadPoolExecutor(threads) as pool:
        return dict(zip(names, pool.map(raw.describe, names), strict=True))


def measure_describe_rate(raw: RawSageMaker, names: Sequence[str], seconds: float = 2.0, threads: int = 4) -> float:
    """Describes per second the server sustains (the naive loop's ceiling)."""
    done = 0
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def worker(offset: int) -> None:
        nonlocal done
        i = offset
        while time.monotonic() < stop_at:
            raw.describe(names[i % len(names)])
            i += threads
            with lock:
                done += 1

    start = time.monotonic()
    pool = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return done / (time.monotonic() - start)


# --- the two loops --------------------------------------------------------------------------------------------------


@dataclass
class Observations:
    """When a loop first saw each secondary status of each job, and when it saw the job end."""

    seen: dict[str, dict[str, float]] = field(default_factory=dict)
    ended: dict[str, float] = field(default_factory=dict)
    late_rounds: int = 0

    def see(self, name: str, status: str, at: float) -> None:
        statuses = self.seen.setdefault(name, {})
        if status not in statuses:
            statuses[status] = at


PollOne = Callable[[str, Observations], bool]  # polls a job, records what it saw; True once the job has ended


def run_loop(names: Sequence[str], poll: PollOne, threads: int, interval: float, start: float,
             deadline: float, made: Mapping[str, float] | None = None) -> Observations:
    """Each thread polls its share of the jobs once per interval (rounds on a fixed schedule) until they end;
    with `made` (filled while the loop runs), a job from the round after its create."""
    seen = Observations()
    lock = threading.Lock()

    def worker(shard: list[str]) -> None:
        mine = Observations()
        active = list(shard)
        n = 0
        while active and time.time() < deadline:
            due = start + n * interval
            wait = due - time.time()
            if wait > 0:
                time.sleep(wait)
            elif n and -wait > interval / 2:
                mine.late_rounds += 1
            still = []
            for name in active:
                if made is not None and name not in made:
                    still.append(name)
                elif poll(name, mine):
                    mine.ended[name] = time.time()
                else:
                    still.append(name)
            active = still
            n += 1
        with lock:
            seen.seen.update(mine.seen)
            seen.ended.update(mine.ended)
            seen.late_rounds += mine.late_rounds

    shards = [list(names[k::threads]) for k in range(threads)]
    pool = [threading.Thread(target=worker, args=(shard,)) for shard in shards]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return seen


def naive_poller(raw: RawSageMaker) -> PollOne:
    def poll(name: str, seen: Observations) -> bool:
        answer = raw.describe(name)
        seen.see(name, answer["SecondaryStatus"], time.time())
        return answer["TrainingJobStatus"] in ENDED

    return poll


def tracked_plugin(url: str, interval: float) -> tuple[Any, Any, Any]:
    """The plugin, its client and the shared tracker, for the local SageMaker at `url`."""
    import plugin.jobs.training_job as training_job
    from handlers.client import SageMakerClient
    from handlers.ratelimit import RateLimits
    from handlers.tracker import tracker_for
    from plugin.config import Config, LocalConfig, Tracking

    config = Config(backend="local", region=REGION, local=LocalConfig(endpoint_url=url),
                    rate_limits=RateLimits(create_per_second=0, read_per_second=0),
                    tracking=Tracking(sweep_interval_seconds=interval))
    client = SageMakerClient(config.client_settings())
    tracker = tracker_for(client, interval)
    plugin = training_job.TrainingJobPlugin(config, client=client)  # its get asks this same shared tracker
    return plugin, client, tracker


def tracker_poller(plugin: Any, tracker: Any, url: str) -> tuple[PollOne, Callable[[str], Any]]:
    from plugin.meta import ResourceMeta

    metas: dict[str, Any] = {}

    def meta_of(name: str) -> Any:
        meta = metas.get(name)
        if meta is None:
            meta = metas[name] = ResourceMeta(job_name=name, region=REGION, created_at=time.time(), endpoint_url=url)
        return meta

    def poll(name: str, seen: Observations) -> bool:
        result, description = plugin.get_with_description(meta_of(name))
        if description is not None:
            seen.see(name, description["SecondaryStatus"], time.time())
        if result.phase.is_terminal:
            tracker.forget(name)  # what the plugin does once it has reported a terminal phase
            return True
        return False

    return poll, meta_of


# --- figures --------------------------------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def staleness(seen: Observations, truth: Mapping[str, Mapping[str, Any]]) -> dict[str, list[float]]:
    """Per secondary status, seconds from each change to the loop first seeing it (a job's first sighting excluded)."""
    out: dict[str, list[float]] = {}
    for name, statuses in seen.seen.items():
        starts = {t["Status"]: float(t["StartTime"]) for t in truth[name].get("SecondaryStatusTransitions", [])}
        for status, at in sorted(statuses.items(), key=lambda item: item[1])[1:]:
            if status in starts:
                out.setdefault(status, []).append(max(0.0, at - starts[status]))
    return out


def loop_figures(calls: Mapping[str, int], seen: Observations, truth: Mapping[str, Mapping[str, Any]],
                 start: float) -> dict[str, Any]:
    by_status = staleness(seen, truth)
    ages = [age for values in by_status.values() for age in values]
    job_minutes = sum(ended - start for ended in seen.ended.values()) / 60
    return {
        "api_calls": dict(calls),
        "calls_per_job_minute": round(sum(calls.values()) / job_minutes, 3) if job_minutes else None,
        "staleness_p50": round(percentile(ages, 50), 3),
        "staleness_p99": round(percentile(ages, 99), 3),
        "staleness_p99_by_status": {status: round(percentile(values, 99), 3)
                                    for status, values in sorted(by_status.items())},
        "changes_seen": len(ages),
        "jobs_ended": len(seen.ended),
        "late_rounds": seen.late_rounds,
    }


def cpu_per_get(plugin: Any, tracker: Any, meta_of: Callable[[str], Any], names: Iterable[str],
                rounds: int) -> tuple[float, float]:
    """Microseconds of CPU (this thread's) per cached `get`, and per cached tracker describe alone."""
    metas = [meta_of(name) for name in names]
    for meta in metas:  # warm: each job is described (or listed) once, then cached
        plugin.get(meta)
    start = time.thread_time()
    for _ in range(rounds):
        for meta in metas:
            plugin.get(meta)
    per_get = (time.thread_time() - start) / (rounds * len(metas)) * 1e6
    start = time.thread_time()
    for _ in range(rounds):
        for meta in metas:
            tracker.describe(meta.job_name)
    per_describe = (time.thread_time() - start) / (rounds * len(metas)) * 1e6
    return round(per_get, 2), round(per_describe, 2)


# --- the run --------------------------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    wall_start = time.time()
    probe = make_plan(args.jobs, args.interval or 1.0, args.mean_intervals, args.time_scale, args.seed)
    # The interval is not known before the rate is measured, and the timeline depends on it: measure on a throwaway
    # server only when the interval is not given.
    interval = args.interval
    rate = None
    root = args.data_root
    folders = {name: root / name if root else None for name in ("calibration", "naive", "tracker")}
    if not interval:
        calibration = start_servers(probe.settings(), folders["calibration"])[0]
        try:
            create_jobs(calibration.url, make_plan(200, 1.0, 1e6, args.time_scale, args.seed))
            rate = measure_describe_rate(RawSageMaker(calibration.url), probe.names[:200])
        finally:
            calibration.stop()
        interval = round(max(0.25, args.jobs / (args.load * rate)), 2)
    plan = make_plan(args.jobs, interval, args.mean_intervals, args.time_scale, args.seed)
    naive_server, tracker_server = start_servers(plan.settings(), folders["naive"], folders["tracker"])
    try:
        with ThreadPoolExecutor(2) as pool:  # the same jobs on both, at the same moment
            list(pool.map(lambda s: create_jobs(s.url, plan), (naive_server, tracker_server)))
        plugin, client, tracker = tracked_plugin(tracker_server.url, interval)
        naive_raw = RawSageMaker(naive_server.url)
        before = (naive_server.counts(), tracker_server.counts())
        start = time.time() + 0.2
        deadline = start + plan.longest + 10 * interval + 30
        poll_tracked, meta_of = tracker_poller(plugin, tracker, tracker_server.url)
        with ThreadPoolExecutor(2) as pool:
            naive_future = pool.submit(run_loop, plan.names, naive_poller(naive_raw), args.naive_threads, interval,
                                       start, deadline)
            tracked_future = pool.submit(run_loop, plan.names, poll_tracked, args.tracker_threads, interval, start,
                                         deadline)
            naive_seen, tracked_seen = naive_future.result(), tracked_future.result()
        naive_calls = diff(naive_server.counts(), before[0])
        tracker_calls = diff(tracker_server.counts(), before[1])
        stats = tracker.stats
        with ThreadPoolExecutor(2) as pool:  # what really happened, after the counts
            naive_truth, tracker_truth = pool.map(lambda raw: describe_all(raw, plan.names),
                                                  (naive_raw, RawSageMaker(tracker_server.url)))
        # CPU of a cached get: a few long-running jobs, each got once, then many times from the cache.
        cpu_plan = make_plan(min(200, args.jobs), interval, 1e4, args.time_scale, args.seed)
        extra = [f"cpu-{name}" for name in cpu_plan.names]
        create_cpu_jobs(tracker_server.url, extra, cpu_plan)
        cpu_us_per_get, cpu_us_per_describe = cpu_per_get(plugin, tracker, meta_of, extra, args.cpu_rounds)
        server_rss = max(naive_server.ask("rss"), tracker_server.ask("rss"))
        client.close()
    finally:
        naive_server.stop()
        tracker_server.stop()
    naive = loop_figures(naive_calls, naive_seen, naive_truth, start)
    tracked = loop_figures(tracker_calls, tracked_seen, tracker_truth, start)
    total_tracker = sum(tracker_calls.values())
    return {
        "jobs": plan.jobs,
        "interval_seconds": interval,
        "naive": naive,
        "tracker": tracked,
        "ratio": round(sum(naive_calls.values()) / total_tracker, 2) if total_tracker else None,
        "cpu_us_per_get": cpu_us_per_get,
        "cpu_us_per_describe": cpu_us_per_describe,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "server_peak_rss_mb": round(server_rss, 1),
        "time_scale": plan.time_scale,
        "mean_job_seconds": round(plan.mean_life, 2),
        "describe_rate_per_second": round(rate, 1) if rate else None,
        "tracker_stats": dataclasses.asdict(stats),
        "data_folder_mb": {name: data_folder.size_mb(folders[name]) for name in ("naive", "tracker")},
        "seconds": round(time.time() - wall_start, 1),
    }


def events_plugin(url: str, interval: float, safety: float) -> tuple[Any, Any, Any]:
    """The plugin, its client and tracker following the job events of the local SageMaker at `url` (setup made)."""
    import plugin.jobs.training_job as training_job
    from handlers.client import SageMakerClient
    from handlers.ratelimit import RateLimits
    from handlers.tracker_events import EventSettings
    from plugin.cli.events import setup
    from plugin.config import Config, LocalConfig, Tracking

    base = Config(backend="local", region=REGION, local=LocalConfig(endpoint_url=url),
                  rate_limits=RateLimits(create_per_second=0, read_per_second=0))
    client = SageMakerClient(base.client_settings())
    made = setup(client)
    config = dataclasses.replace(base, tracking=Tracking(sweep_interval_seconds=interval, events=EventSettings(
        made.queue_url, sweep_interval_seconds=safety, max_silence_seconds=max(600.0, 10 * safety))))
    plugin = training_job.TrainingJobPlugin(config, client=client)
    return plugin, client, plugin._tracker(client)


def bench_task(name: str, data: str, runtime: int) -> dict[str, Any]:
    """The job `name` in task-file form: a custom image on one ml.m5.xlarge, MaxRuntimeInSeconds `runtime`."""
    from local_sagemaker.testing import CUSTOM_IMAGE

    return {"task_type": "sagemaker_custom_training_job_task", "job_name": name,
            "training_job": {"algorithm_specification": {"algorithm_name": "CUSTOM", "input_mode": "FILE"},
                             "training_job_resource_config": {"instance_type": "ml.m5.xlarge", "instance_count": 1}},
            "container": {"image": CUSTOM_IMAGE}, "inputs": {"train": data}, "max_runtime_seconds": runtime}


def plugin_creates(plugins: Mapping[str, Any], plan: Plan, rate: float, made: Mapping[str, dict[str, float]],
                   threads: int = 8) -> None:
    """Each job made through each plugin (as an engine makes them: the tracker then knows what it made), the same
    job on every server at about the same moment, `rate` jobs a second (0: as fast as they go). `made[server]` gets
    each job's name and the moment its create answered."""
    from local_sagemaker.testing import LocalClients
    from plugin.task import load_task

    data = {key: LocalClients(p.client().endpoint_url).put_data("bench/train") for key, p in plugins.items()}
    begin = time.time()

    def create(index: int) -> None:
        if rate > 0:
            wait = begin + index / rate - time.time()
            if wait > 0:
                time.sleep(wait)
        name = plan.names[index]
        for key, p in plugins.items():
            p.create(load_task(bench_task(name, data[key], plan.runtimes[index])))
            made[key][name] = time.time()  # type: ignore[index]

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(create, range(plan.jobs)))


def run_events(args: argparse.Namespace) -> dict[str, Any]:
    """The tracker fed by job events; with `--with-polling`, a second server's tracker by sweeps alone, side by side.

    The jobs are made through the plugin while the loops poll, `--create-rate` a second: by default SageMaker's own
    pace for CreateTrainingJob (about one a second) on the run's scaled clock, i.e. `--time-scale` a second."""
    wall_start = time.time()
    interval = args.interval or 1.0
    rate = args.time_scale if args.create_rate is None else args.create_rate
    plan = make_plan(args.jobs, interval, args.mean_intervals, args.time_scale, args.seed)
    root = args.data_root
    names = ("events", "polling") if args.with_polling else ("events",)
    servers = dict(zip(names, start_servers(plan.settings(), *(root / n if root else None for n in names)),
                       strict=True))
    try:
        events_plugin_, events_client, events_tracker = events_plugin(servers["events"].url, interval,
                                                                      args.safety_interval)
        loops = {"events": (events_plugin_, events_tracker, servers["events"].url)}
        if args.with_polling:
            polling_plugin, polling_client, polling_tracker = tracked_plugin(servers["polling"].url, interval)
            loops["polling"] = (polling_plugin, polling_tracker, servers["polling"].url)
        before = {name: server.ask("counts-all") for name, server in servers.items()}
        made: dict[str, dict[str, float]] = {name: {} for name in loops}
        start = time.time() + 0.2
        creating = plan.jobs / rate if rate > 0 else 0.0
        deadline = start + creating + plan.longest + 10 * interval + 60
        with ThreadPoolExecutor(len(loops) + 1) as pool:
            creates = pool.submit(plugin_creates, {name: p for name, (p, _, _) in loops.items()}, plan, rate, made)
            futures = {name: pool.submit(run_loop, plan.names, tracker_poller(p, t, url)[0], args.tracker_threads,
                                         interval, start, deadline + (0 if rate > 0 else 600), made[name])
                       for name, (p, t, url) in loops.items()}
            creates.result()
            created = time.time()
            seen = {name: future.result() for name, future in futures.items()}
        calls = {name: diff(server.ask("counts-all"), before[name]) for name, server in servers.items()}
        # the creates are the workload's, not the tracking's
        calls = {name: {op: n for op, n in counted.items() if op != "sagemaker:CreateTrainingJob"}
                 for name, counted in calls.items()}
        stats = {name: dataclasses.asdict(t.stats) for name, (_, t, _) in loops.items()}
        listener = events_tracker.listener
        listener_state = {"active": listener.active, "stopped_reason": listener.stopped_reason,
                          "received": listener.received}
        listener.stop(timeout=0)
        with ThreadPoolExecutor(len(servers)) as pool:
            truth = dict(zip(servers, pool.map(lambda s: describe_all(RawSageMaker(s.url), plan.names),
                                               servers.values()), strict=True))
        server_rss = max(server.ask("rss") for server in servers.values())
        events_client.close()
        if args.with_polling:
            polling_client.close()
    finally:
        for server in servers.values():
            server.stop()
    figures = {name: loop_figures(calls[name], seen[name], truth[name], start) for name in loops}
    for name, figure in figures.items():
        figure["api_calls_per_job"] = round(sum(calls[name].values()) / plan.jobs, 3)
    result: dict[str, Any] = {
        "jobs": plan.jobs, "interval_seconds": interval, "safety_interval_seconds": args.safety_interval,
        "create_rate_per_second": rate, **figures, "tracker_stats": stats, "listener": listener_state,
        "create_seconds": round(created - start, 1), "time_scale": plan.time_scale,
        "mean_job_seconds": round(plan.mean_life, 2), "server_peak_rss_mb": round(server_rss, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "seconds": round(time.time() - wall_start, 1),
    }
    if args.with_polling:
        total = sum(calls["events"].values())
        result["polling_to_events_ratio"] = round(sum(calls["polling"].values()) / total, 2) if total else None
    return result


def create_cpu_jobs(url: str, names: Sequence[str], plan: Plan) -> None:
    from local_sagemaker.testing import LocalClients

    aws = LocalClients(url)
    data = aws.put_data("bench/cpu")
    sagemaker = aws.client("sagemaker", max_pool_connections=8)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda name: sagemaker.create_training_job(
            **aws.training_request(name, channels={"train": data}, max_runtime=10**6)), names))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2000, help="concurrent training jobs (default 2000)")
    parser.add_argument("--interval", type=float, default=0.0,
                        help="seconds between two polls of a job, for both loops (default: from the measured rate)")
    parser.add_argument("--time-scale", type=float, default=20.0, help="the local SageMaker's time scale")
    parser.add_argument("--mean-intervals", type=float, default=60.0, help="polls per job over its mean life")
    parser.add_argument("--load", type=float, default=0.8, help="share of the server the naive loop may use")
    parser.add_argument("--naive-threads", type=int, default=4)
    parser.add_argument("--tracker-threads", type=int, default=8)
    parser.add_argument("--cpu-rounds", type=int, default=50)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="a small run of a few seconds (CI)")
    parser.add_argument("--events", action="store_true", help="the tracker fed by job events (EventBridge to SQS)")
    parser.add_argument("--with-polling", action="store_true",
                        help="with --events: the same run tracked by sweeps alone, on a second server, side by side")
    parser.add_argument("--safety-interval", type=float, default=300.0,
                        help="with --events: seconds between the safety net's sweeps (default 300, config's default)")
    parser.add_argument("--create-rate", type=float, default=None,
                        help="with --events: jobs made a second (default: the time scale, i.e. SageMaker's own pace "
                             "of about one CreateTrainingJob a second on the scaled clock; 0: as fast as they go)")
    data_folder.add_arguments(parser)
    args = parser.parse_args(argv)
    if args.quick:
        args.jobs, args.interval, args.mean_intervals, args.cpu_rounds = 24, 0.3, 10.0, 20
        args.naive_threads, args.tracker_threads = 2, 2
        args.safety_interval = min(args.safety_interval, 3.0)
    if args.jobs < 1 or args.mean_intervals <= 0 or args.interval < 0:
        parser.error("--jobs and --mean-intervals must be positive, --interval not negative")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    import logging

    logging.basicConfig(level=logging.WARNING)
    args = parse_args(argv)
    with data_folder.root(args) as args.data_root:
        result = run_events(args) if args.events else run(args)
    print(json.dumps(result, separators=(",", ":")), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
