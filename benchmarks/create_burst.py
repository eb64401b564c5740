"""A burst of training job creations against SageMaker's low CreateTrainingJob rate: they queue, none fails.

    python benchmarks/create_burst.py             # 200 creates, quota 2/s: about 100 s
    python benchmarks/create_burst.py --quick     # a few seconds (CI)

A local SageMaker enforces `quotas.requests_per_second.CreateTrainingJob` (over it: ThrottlingException, as
AWS answers). An engine submits all the tasks at once, one thread each, through the plugin's `create`; the client's
write limiter (config `rate_limits.create_per_second`, the same rate) makes them wait their turn on our side instead of
being throttled and retried. The floor is what the quota allows: after a burst of max(1, rate) requests, one per
1/rate seconds, i.e. (jobs - burst) / rate seconds.

Prints one JSON line: {"jobs", "created", "failed", "throttled_responses", "seconds", "floor_seconds", ...}.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

from benchmarks import data_folder  # noqa: E402

REGION = "us-east-1"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/team/trainer:1.0"


def task(index: int, run: str, data: str) -> dict[str, Any]:
    """A custom-image task as an engine hands it over (docs/task-file.md; the TrainingJob message in protobuf's JSON,
    as flytekit writes it), its own execution identity, so its own job name."""
    from plugin.message import AlgorithmName, AlgorithmSpecification, TrainingJob, TrainingJobResourceConfig
    from plugin.task import CUSTOM_TASK

    job = TrainingJob(AlgorithmSpecification(algorithm_name=AlgorithmName.CUSTOM),
                      TrainingJobResourceConfig(instance_count=1, instance_type="ml.m5.xlarge", volume_size_in_gb=10))
    return {
        "task_type": CUSTOM_TASK,
        "training_job": job.to_proto3_json(),
        "inputs": {"train": data},
        "output_prefix": "s3://local-sagemaker-data/burst-output",
        "container": {"image": IMAGE},
        "execution": {"project": "burst", "domain": "bench", "name": run, "node_id": f"n{index}", "retry_attempt": 0},
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    from handlers.ratelimit import RateLimits
    from local_sagemaker import LocalSageMaker, LocalSettings
    from local_sagemaker.testing import LocalClients
    from plugin.config import Config, LocalConfig
    from plugin.jobs.training_job import TrainingJobPlugin

    settings = LocalSettings(execution="simulate", requests_per_second={"CreateTrainingJob": args.rate})
    burst = max(1.0, args.rate)  # what the local SageMaker lets through at once
    data_dir = args.data_root / "server" if args.data_root else None
    with LocalSageMaker(settings, data_dir=data_dir) as server:
        data = LocalClients(server.url).put_data("burst/train")
        config = Config(backend="local", region=REGION, local=LocalConfig(endpoint_url=server.url),
                        role_arn="arn:aws:iam::123456789012:role/SageMakerRole",
                        rate_limits=RateLimits(create_per_second=args.rate, read_per_second=0))
        plugin = TrainingJobPlugin(config)
        client = plugin.client()
        client.list_training_jobs(MaxResults=1)  # connect first: the burst measures creates, not a TCP handshake
        tasks = [task(i, f"r{int(time.time())}", data) for i in range(args.jobs)]
        for item in tasks[:1]:
            plugin.render(item)  # fail fast on a bad task, before starting the clock
        server.reset_counts()
        created: list[str] = []
        failures: list[str] = []
        lock = threading.Lock()

        def submit(item: dict[str, Any]) -> None:
            try:
                meta = plugin.create(item)
            except Exception as error:  # counted and reported: a failed create is the result being measured
                with lock:
                    failures.append(f"{type(error).__name__}: {error}")
                return
            with lock:
                (failures if meta.queued else created).append(meta.job_name)

        threads = [threading.Thread(target=submit, args=(item,)) for item in tasks]
        start = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        seconds = time.monotonic() - start
        throttled = server.throttled_counts().get("CreateTrainingJob", 0)
        requests = server.call_counts().get("CreateTrainingJob", 0)
        listed = _count_jobs(client)
    floor = max(0.0, (args.jobs - burst) / args.rate)
    return {
        "jobs": args.jobs,
        "created": len(created),
        "failed": len(failures),
        "throttled_responses": throttled,
        "seconds": round(seconds, 2),
        "floor_seconds": round(floor, 2),
        "over_floor": round(seconds / floor - 1, 4) if floor else None,
        "create_requests": requests,
        "jobs_listed": listed,
        "rate_per_second": args.rate,
        "data_folder_mb": data_folder.size_mb(data_dir),
        "errors": failures[:3],
    }


def _count_jobs(client: Any) -> int:
    """Jobs the local SageMaker holds, all pages."""
    pages = client.pages("sagemaker", "ListTrainingJobs", {"MaxResults": 100})
    return sum(len(page.get("TrainingJobSummaries", [])) for page in pages)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--rate", type=float, default=2.0,
                        help="CreateTrainingJob requests per second: the local quota and the client's limit")
    parser.add_argument("--quick", action="store_true", help="a small burst of a few seconds (CI)")
    data_folder.add_arguments(parser)
    args = parser.parse_args(argv)
    if args.quick:
        args.jobs, args.rate = 16, 8.0
    if args.jobs < 1 or args.rate <= 0:
        parser.error("--jobs and --rate must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    with data_folder.root(args) as args.data_root:
        result = run(args)
    print(json.dumps(result, separators=(",", ":")), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
