"""What the local runner adds to a training job: time from CreateTrainingJob to Completed, minus the script's own.

    python benchmarks/local_runner.py           # 20 jobs, 4 at a time, each sleeping 2 s: about 15 s
    python benchmarks/local_runner.py --quick   # 4 jobs, 2 at a time, 0.5 s each (CI)

A local SageMaker with `execution: run` runs each job's script (it sleeps, then writes a model file) as a real
process: host folder and config files, a channel downloaded from the local S3, the process started, its exit seen,
model.tar.gz packed and put to S3. A client creates the jobs, `--parallel` at a time, and describes each one every
`--poll` seconds until it ends; the overhead is the wall time from the create call to the first Describe that says
Completed, minus the sleep. Statuses follow what really happens, so nothing here waits on a timer.

Prints one JSON line: {"jobs", "parallel", "sleep_seconds", "overhead_seconds_p50", "overhead_seconds_p99",
"overhead_seconds_max", "seconds"}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

SCRIPT = """\
import os, sys, time
time.sleep(float(sys.argv[1]))
with open(os.path.join(os.environ["SM_MODEL_DIR"], "model.txt"), "w") as out:
    out.write("done")
"""


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument("--sleep", type=float, default=2.0, help="seconds each job's script sleeps")
    parser.add_argument("--poll", type=float, default=0.05, help="seconds between a client's Describe calls")
    parser.add_argument("--quick", action="store_true", help="4 jobs, 2 at a time, 0.5 s each (CI)")
    args = parser.parse_args(argv)
    if args.quick:
        args.jobs, args.parallel, args.sleep = 4, 2, 0.5

    from local_sagemaker import LocalSageMaker, LocalSettings
    from local_sagemaker.testing import CUSTOM_IMAGE, LocalClients, unique_name

    overheads: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    with tempfile.TemporaryDirectory() as folder, LocalSageMaker(LocalSettings(execution="run")) as server:
        script = Path(folder) / "sleep.py"
        script.write_text(SCRIPT, encoding="utf-8")
        aws = LocalClients(server.url)
        data = aws.put_data("benchmark/train")
        # The server's first CreateTrainingJob loads botocore's service model to check requests (~0.5 s): once per
        # server, not per job, so one job is run before the measured ones.
        warm = aws.training_request(unique_name("warmup"), image=CUSTOM_IMAGE, channels={"train": data})
        warm["AlgorithmSpecification"]["ContainerEntrypoint"] = ["python", str(script), "0"]
        aws.sagemaker.create_training_job(**warm)
        aws.wait(warm["TrainingJobName"], timeout=120, interval=args.poll)
        names = iter([unique_name("bench") for _ in range(args.jobs)])
        names_lock = threading.Lock()

        def worker() -> None:
            clients = LocalClients(server.url)  # one client per thread: boto3 clients are not shared across threads
            while True:
                with names_lock:
                    name = next(names, None)
                if name is None:
                    return
                request = clients.training_request(name, image=CUSTOM_IMAGE, channels={"train": data})
                request["AlgorithmSpecification"]["ContainerEntrypoint"] = [
                    "python", str(script), str(args.sleep)]
                started = time.monotonic()
                clients.sagemaker.create_training_job(**request)
                job = clients.wait(name, timeout=120, interval=args.poll)
                took = time.monotonic() - started
                with lock:
                    if job["TrainingJobStatus"] == "Completed":
                        overheads.append(took - args.sleep)
                    else:
                        failures.append(f"{name}: {job['TrainingJobStatus']} {job.get('FailureReason', '')}")

        began = time.monotonic()
        threads = [threading.Thread(target=worker) for _ in range(args.parallel)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        seconds = time.monotonic() - began
    if failures or not overheads:
        print(json.dumps({"jobs": args.jobs, "failed": failures}), flush=True)
        return 1
    print(json.dumps({
        "jobs": len(overheads),
        "parallel": args.parallel,
        "sleep_seconds": args.sleep,
        "overhead_seconds_p50": round(statistics.median(overheads), 3),
        "overhead_seconds_p99": round(percentile(overheads, 0.99), 3),
        "overhead_seconds_max": round(max(overheads), 3),
        "seconds": round(seconds, 1),
    }), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
