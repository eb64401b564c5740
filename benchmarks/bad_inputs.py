"""How long refusing a bad task file takes: the corpus in tests/data/bad and large generated files.

    python benchmarks/bad_inputs.py            # the corpus and every generated file, ~10 s
    python benchmarks/bad_inputs.py --quick    # the generated files only, a few seconds (CI)
    python benchmarks/bad_inputs.py --pure-python   # PyYAML without libyaml

Each file goes through `sagemaker-plugin validate` in this process (the network is refused: validation makes no
call), and the CPU time of each refusal is measured. The test suite only checks that every refusal stays under a
generous bound (tests/security/test_bad_inputs.py); the figures are here.

Prints one JSON line: {"files", "refused", "not_refused" (names: valid under the benchmark's config, which the corpus
pairs with another config), "libyaml", "max_values", "max_cpu_seconds", "median_cpu_seconds",
"total_cpu_seconds", "slowest": [{"name", "cpu_seconds", "exit"}], "peak_rss_mb"}.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

BAD = ROOT / "tests" / "data" / "bad"
CONFIG = BAD / "configs" / "local.yaml"

VALID = """task_type: sagemaker_training_job_task
training_job:
  algorithm_specification: {algorithm_name: XGBOOST, algorithm_version: "1.7-1"}
  training_job_resource_config: {instance_count: 1, instance_type: ml.m5.xlarge, volume_size_in_gb: 10}
inputs:
  train: s3://bucket/data/train/
  static_hyperparameters: {num_round: 10, objective: "reg:squarederror"}
output_prefix: s3://bucket/outputs
"""


def generated() -> dict[str, str]:
    """The large inputs: each near the file size limit (1 MiB) or far beyond the value limit."""
    return {
        "many_values.yaml": VALID + "x: {" + ", ".join(f"h{i}: {i}" for i in range(60000)) + "}\n",
        "many_list_items.yaml": VALID + "x: [" + ", ".join("1" for _ in range(300000)) + "]\n",
        "forty_thousand_tags.yaml": VALID + "tags: {" + ", ".join(f"k{i}: v" for i in range(40000)) + "}\n",
        "block_style_values.yaml": VALID + "x:\n" + "".join(f"  h{i}: {i}\n" for i in range(60000)),
        "deep_lists.yaml": VALID + "tags: " + "[" * 400000 + "]" * 400000 + "\n",
        "deep_maps.yaml": VALID + "tags: " + "{a: " * 200000 + "x" + "}" * 200000 + "\n",
        "one_megabyte_job_name.yaml": VALID + "job_name: " + "a" * ((1 << 20) - len(VALID) - 20) + "\n",
        "long_unquoted_key.yaml": VALID + "tags: {" + "k" * 900_000 + ": v}\n",
        "alias_bomb.yaml": VALID + "bomb:\n  a0: &a0 [x, x, x, x]\n" + "".join(
            f"  a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 4) + "]\n" for i in range(1, 16)),
    }


def refuse_network() -> None:
    import botocore.httpsession

    def refuse(self: Any, request: Any) -> Any:
        raise RuntimeError(f"validation made a network call: {request.url}")

    botocore.httpsession.URLLib3Session.send = refuse  # type: ignore[method-assign]


def measure(paths: Sequence[Path]) -> list[dict[str, Any]]:
    from plugin.cli import main

    results = []
    for path in paths:
        out, err = io.StringIO(), io.StringIO()
        cpu = time.process_time()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["validate", "--config", str(CONFIG), str(path)])
        results.append({"name": path.name, "cpu_seconds": round(time.process_time() - cpu, 4), "exit": code})
    return results


def run(args: argparse.Namespace) -> dict[str, Any]:
    import yaml

    from plugin import yamlfile

    refuse_network()
    if args.pure_python:
        yamlfile._StrictLoader = yamlfile._StrictPyLoader
    with tempfile.TemporaryDirectory() as folder:
        paths = []
        for name, text in generated().items():
            paths.append(Path(folder) / name)
            paths[-1].write_text(text, encoding="utf-8")
        if not args.quick:
            paths += sorted(p for p in BAD.iterdir() if p.is_file())
        measure(paths[:1])  # imports and caches (the service model) are not what is measured
        results = measure(paths)
    cpu = [r["cpu_seconds"] for r in results]
    return {
        "files": len(results),
        "refused": sum(r["exit"] == 2 for r in results),
        "not_refused": [r["name"] for r in results if r["exit"] != 2],
        "libyaml": bool(yaml.__with_libyaml__) and not args.pure_python,
        "max_values": yamlfile.MAX_VALUES,
        "max_cpu_seconds": max(cpu),
        "median_cpu_seconds": statistics.median(cpu),
        "total_cpu_seconds": round(sum(cpu), 3),
        "slowest": sorted(results, key=lambda r: -r["cpu_seconds"])[:args.top],
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="the generated files only")
    parser.add_argument("--pure-python", action="store_true",
                        help="PyYAML's own parser, as an install without libyaml has it")
    parser.add_argument("--top", type=int, default=5, help="how many of the slowest files to list")
    print(json.dumps(run(parser.parse_args(argv))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
