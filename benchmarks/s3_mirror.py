"""What keeping the local S3 on disk costs: one sync of many small objects, a sync with nothing changed, a load.

    python benchmarks/s3_mirror.py            # 10,000 objects of 100 bytes
    python benchmarks/s3_mirror.py --quick    # 500 objects (CI)

The mirror (local_sagemaker/persistence.py) syncs every second while a local SageMaker runs, so a sync that finds
nothing changed must stay cheap, and a first sync of many objects must not take minutes. Objects go straight into
moto's in-process S3 (no server, no HTTP), so the figures are the mirror's own.

Prints one JSON line: {"objects", "first_sync_seconds", "first_sync_cpu_seconds" (this process' CPU time: steadier
than wall time on a busy machine), "unchanged_sync_seconds", "one_changed_sync_seconds",
"load_seconds", "loaded", "disk_bytes"}.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))


def measure(objects: int, size: int) -> dict[str, float | int]:
    from moto.s3.models import s3_backends

    from handlers.local import LOCAL_ACCOUNT_ID
    from local_sagemaker.persistence import S3Mirror

    backend = s3_backends[LOCAL_ACCOUNT_ID]["aws"]
    backend.reset()
    backend.create_bucket("bench", "us-east-1")
    for index in range(objects):  # folders of 100, as a job's outputs or a data set's shards would be
        backend.put_object("bench", f"data/part-{index // 100:03d}/object-{index:05d}.bin", b"x" * size)
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder)
        mirror = S3Mirror(data)
        started, cpu = time.perf_counter(), time.process_time()
        mirror.sync()
        first, first_cpu = time.perf_counter() - started, time.process_time() - cpu
        started = time.perf_counter()
        mirror.sync()
        unchanged = time.perf_counter() - started
        backend.put_object("bench", "data/part-000/object-00000.bin", b"y" * size)
        started = time.perf_counter()
        mirror.sync()
        one_changed = time.perf_counter() - started
        mirror.close()  # as a local SageMaker's end does
        backend.reset()
        started = time.perf_counter()
        loaded = S3Mirror(data).load()
        load = time.perf_counter() - started
        disk = sum(p.stat().st_size for p in data.rglob("*") if p.is_file())
    backend.reset()
    return {"objects": objects, "first_sync_seconds": round(first, 3),
            "first_sync_cpu_seconds": round(first_cpu, 3), "unchanged_sync_seconds": round(unchanged, 4),
            "one_changed_sync_seconds": round(one_changed, 4), "load_seconds": round(load, 3), "loaded": loaded,
            "disk_bytes": disk}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="500 objects (CI)")
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=100, help="bytes per object")
    args = parser.parse_args(argv)
    print(json.dumps(measure(500 if args.quick else args.objects, args.size)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
