"""Pipe mode against File mode on the local SageMaker: one channel of `--mb` megabytes read by a script, end to end.

    python benchmarks/local_pipe.py           # a 200 MB channel (8 objects), each mode once: about 10-20 s
    python benchmarks/local_pipe.py --quick   # a 20 MB channel (CI)

A local SageMaker with `execution: run` gets the channel's objects in its S3; then two jobs run the same script, one
with the channel in File mode (downloaded into input/data/train/, the script reads every file) and one in Pipe mode
(the script reads the FIFO input/data/train_0 to its end). Each job's time is the wall time from CreateTrainingJob to
the first Describe that says Completed; the Pipe job's script also times its own read, from opening the FIFO to EOF,
which gives the streaming rate. A first job, not measured, loads botocore's service model.

Prints one JSON line: {"mb", "file_mode_seconds", "pipe_mode_seconds", "pipe_mb_per_second"}.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

MB = 1_000_000
OBJECTS = 8
#: Reads the train channel as its mode has it, 1 MiB at a time, and prints the bytes and the seconds the read took.
SCRIPT = """\
import json, os, time
channel = os.environ["SM_CHANNEL_TRAIN"]
config = json.load(open(os.path.join(os.environ["SM_INPUT_CONFIG_DIR"], "inputdataconfig.json")))
if config["train"]["TrainingInputMode"] == "Pipe":
    paths = [channel + "_0"]
else:
    paths = sorted(os.path.join(folder, name) for folder, _, names in os.walk(channel) for name in names)
size, began = 0, time.monotonic()
for path in paths:
    with open(path, "rb", buffering=0) as data:
        while chunk := data.read(1 << 20):
            size += len(chunk)
print("read", size, time.monotonic() - began, flush=True)
"""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=int, default=200, help="the channel's size in megabytes (10^6 bytes)")
    parser.add_argument("--quick", action="store_true", help="a 20 MB channel (CI)")
    args = parser.parse_args(argv)
    if args.quick:
        args.mb = 20

    from local_sagemaker import LocalSageMaker, LocalSettings
    from local_sagemaker.testing import CUSTOM_IMAGE, DATA_BUCKET, LocalClients, unique_name

    with tempfile.TemporaryDirectory() as folder, LocalSageMaker(LocalSettings(execution="run")) as server:
        script = Path(folder) / "read.py"
        script.write_text(SCRIPT, encoding="utf-8")
        aws = LocalClients(server.url)
        aws.put_data("pipe-benchmark/warm")
        size = args.mb * MB
        for index in range(OBJECTS):
            part = size // OBJECTS + (size % OBJECTS if index == OBJECTS - 1 else 0)
            aws.s3.put_object(Bucket=DATA_BUCKET, Key=f"pipe-benchmark/train/part-{index}", Body=os.urandom(part))

        def run(mode: str, prefix: str) -> tuple[float, list[str]]:
            name = unique_name(f"bench-{mode.lower()}")
            request = aws.training_request(name, image=CUSTOM_IMAGE,
                                           channels={"train": f"s3://{DATA_BUCKET}/pipe-benchmark/{prefix}/"})
            request["AlgorithmSpecification"].update(TrainingInputMode=mode,
                                                     ContainerEntrypoint=["python", str(script)])
            del request["InputDataConfig"][0]["InputMode"]  # the job's mode
            began = time.monotonic()
            aws.sagemaker.create_training_job(**request)
            job = aws.wait(name, timeout=600, interval=0.05)
            took = time.monotonic() - began
            if job["TrainingJobStatus"] != "Completed":
                reason = job.get("FailureReason", job["TrainingJobStatus"])
                raise SystemExit(json.dumps({"mb": args.mb, "mode": mode, "failed": reason}))
            return took, [line for lines in aws.log_messages(name).values() for line in lines]

        run("File", "warm")
        file_seconds, _ = run("File", "train")
        pipe_seconds, lines = run("Pipe", "train")
    read = next(line.split() for line in lines if line.startswith("read "))
    if int(read[1]) != size:
        print(json.dumps({"mb": args.mb, "failed": f"the Pipe job read {read[1]} bytes of {size}"}), flush=True)
        return 1
    print(json.dumps({
        "mb": args.mb,
        "file_mode_seconds": round(file_seconds, 2),
        "pipe_mode_seconds": round(pipe_seconds, 2),
        "pipe_mb_per_second": round(args.mb / float(read[2]), 1),
    }), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
