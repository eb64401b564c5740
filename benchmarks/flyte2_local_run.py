"""What a Flyte 2 user's local run of the XGBoost example costs over `sagemaker-plugin run` of the same task.

    python benchmarks/flyte2_local_run.py            # 3 rounds of each, alternating
    python benchmarks/flyte2_local_run.py --quick    # 1 round (CI)

The same training job (examples/xgboost.yaml's TrainingJob, data and hyperparameters: examples/flyte2_workflow.py's
XGBoost step), each a fresh process from start to exit, as a user runs it, each on a data folder of its own:
- cli: `sagemaker-plugin run examples/xgboost.yaml` (starts its own local SageMaker, uploads, trains, prints);
- flyte2: `flyte.init()` + `flyte.run(...)` of an async task awaiting the example's train_xgboost (imports flyte,
  starts this process's local SageMaker, uploads, trains, returns the metrics).

Prints one JSON line: {"rounds", "cli_seconds", "flyte2_seconds" (medians), "extra_seconds", "all": {...}}; the target
is extra_seconds <= 2.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

FLYTE2_RUN = """
import sys
sys.path.insert(0, {root!r})
sys.path.insert(0, {examples!r})
import flyte, flyte.io
import flyte2_workflow as example

bench = flyte.TaskEnvironment(name="bench", depends_on=[example.xgboost_env])

@bench.task
async def xgboost_only() -> dict[str, float]:
    _, metrics = await example.train_xgboost(
        train=await flyte.io.Dir.from_local(str(example.DATA / "train")),
        validation=await flyte.io.Dir.from_local(str(example.DATA / "validation")),
        static_hyperparameters=example.XGBOOST_HYPERPARAMETERS)
    return metrics

flyte.init()
print(flyte.run(xgboost_only).outputs()[0])
"""


def timed(command: list[str], cwd: Path, data: Path) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAGEMAKER_PLUGIN_")}
    env["XDG_DATA_HOME"] = str(data)
    started = time.monotonic()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    seconds = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"{command[:2]} failed:\n{done.stderr[-3000:]}")
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="one round of each")
    args = parser.parse_args()
    if args.quick:
        args.rounds = 1
    cli = str(Path(sys.executable).with_name("sagemaker-plugin"))
    times: dict[str, list[float]] = {"cli": [], "flyte2": []}
    with tempfile.TemporaryDirectory(prefix="flyte2-bench-") as tmp:
        script = Path(tmp) / "flyte2_run.py"
        script.write_text(FLYTE2_RUN.format(root=str(ROOT), examples=str(ROOT / "examples")))
        for n in range(args.rounds):
            times["cli"].append(timed([cli, "run", "examples/xgboost.yaml"], ROOT, Path(tmp) / f"cli{n}"))
            times["flyte2"].append(timed([sys.executable, str(script)], Path(tmp), Path(tmp) / f"flyte2{n}"))
    cli_s, flyte2_s = statistics.median(times["cli"]), statistics.median(times["flyte2"])
    print(json.dumps({"rounds": args.rounds, "cli_seconds": round(cli_s, 2), "flyte2_seconds": round(flyte2_s, 2),
                      "extra_seconds": round(flyte2_s - cli_s, 2),
                      "all": {k: [round(v, 2) for v in vs] for k, vs in times.items()}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
