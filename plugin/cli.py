"""The `sagemaker-plugin` command line (SPEC 7).

Exit codes: 0 success, 1 the job ended in another phase, 2 invalid input or usage, 3 AWS or network error that
outlasted the retries, 130 interrupted. Bad input never shows a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

from handlers.errors import AwsError, InputError
from image_registry import ImageLookupError, ImageRegistry, format_images
from plugin.config import Config, load_config
from plugin.render import check

EXIT_OK, EXIT_JOB_FAILED, EXIT_INPUT, EXIT_AWS, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
MASK = "****"


class UsageError(Exception):
    """Bad arguments found after parsing (argparse reports its own with exit 2)."""


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", help="config file (default: $SAGEMAKER_PLUGIN_CONFIG, else "
                        "./config.yaml if present, else built-in defaults)")
    parser.add_argument("--region", help="AWS region (default: from config)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sagemaker-plugin", description="Run Amazon SageMaker training jobs from "
                                     "typed task files, on AWS or on a local SageMaker.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = commands.add_parser("validate", help="check a task file; exit 2 with every problem")
    _common(p)
    p.add_argument("task_file", metavar="TASK_FILE")
    p.set_defaults(handler=cmd_validate)

    p = commands.add_parser("render", help="print the CreateTrainingJob request (no AWS call)")
    _common(p)
    p.add_argument("task_file", metavar="TASK_FILE")
    p.add_argument("--show-secrets", action="store_true", help="show container environment values unmasked")
    p.set_defaults(handler=cmd_render)

    p = commands.add_parser("images", help="list the built-in algorithm images")
    _common(p)
    p.add_argument("--algorithm", default=None)
    p.add_argument("--version", default=None)
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(handler=cmd_images)

    _add_job_commands(commands)
    return parser


def _add_job_commands(commands: Any) -> None:
    """Commands that talk to SageMaker; they live in plugin.cli_jobs so that this module stays import-light."""
    try:
        from plugin import cli_jobs, cli_metrics
    except ImportError:  # pragma: no cover - during partial installs only
        return
    cli_jobs.add_commands(commands, _common)
    cli_metrics.add_commands(commands, _common)


def cmd_validate(args: argparse.Namespace, config: Config) -> int:
    task, rendered = check(args.task_file, config, region=args.region)
    resources = rendered.request["ResourceConfig"]
    print(f"{args.task_file}: valid {task.task_type} (job {rendered.job_name}, "
          f"{resources['InstanceCount']} x {resources['InstanceType']}, region {rendered.region})")
    return EXIT_OK


def cmd_render(args: argparse.Namespace, config: Config) -> int:
    _, rendered = check(args.task_file, config, region=args.region)
    request = rendered.request if args.show_secrets else mask_secrets(rendered.request)
    print(json.dumps(request, indent=2))
    return EXIT_OK


def mask_secrets(request: dict[str, Any]) -> dict[str, Any]:
    """Environment values often hold tokens; show their names, not their values."""
    if "Environment" not in request:
        return request
    return {**request, "Environment": {key: MASK for key in request["Environment"]}}


def cmd_images(args: argparse.Namespace, config: Config) -> int:
    registry = ImageRegistry.default().with_overrides(config.prebuilt_algorithms)
    infos = registry.images(algorithm=args.algorithm, region=args.region, version=args.version)
    if args.json:
        for info in infos:
            print(json.dumps({"algorithm": info.algorithm, "version": info.version, "region": info.region,
                              "uri": info.uri, "legacy": info.legacy}))
    else:
        print(format_images(infos))
    return EXIT_OK


def run_command(handler: Callable[[argparse.Namespace, Config], int], args: argparse.Namespace) -> int:
    """Runs one command, turning every expected failure into a message and an exit code."""
    try:
        config = load_config(args.config)
        return handler(args, config)
    except InputError as error:
        _print_problems(error)
        return EXIT_INPUT
    except ImageLookupError as error:
        print(f"error: {error.field}: {error}", file=sys.stderr)
        return EXIT_INPUT
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_INPUT
    except AwsError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_AWS
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_OK


def _print_problems(error: InputError) -> None:
    count = len(error.problems)
    print(f"error: {count} problem{'s' if count != 1 else ''} found:", file=sys.stderr)
    for problem in error.problems:
        print(f"  {problem}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return run_command(args.handler, args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
