"""The `sagemaker-plugin` command line.

Exit codes: 0 success, 1 the job ended in another phase, 2 invalid input or usage, 3 AWS or network error that
outlasted the retries, 130 interrupted. Bad input never shows a traceback.

Import-light on purpose: boto3 and the plugin are imported inside `main`, so that a Ctrl-C while they load is an
interruption (exit 130), not a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from handlers.errors import AwsError, InputError
from plugin.cli.exit_codes import EXIT_AWS, EXIT_CODES, EXIT_INPUT, EXIT_INTERRUPTED, EXIT_OK

if TYPE_CHECKING:
    from plugin.config import Config
    from plugin.jobs.pipeline import Rendered

RETRY_LOGGER = "handlers.client"
MASK = "****"


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("sagemaker-plugin")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", help="config file (default: $SAGEMAKER_PLUGIN_CONFIG, else "
                        "./config.yaml if present, else built-in defaults; docs/config.md lists its keys)")
    parser.add_argument("--region", help="AWS region (default: the config's region)")


def command_parser(commands: Any, name: str, help: str, description: str | None = None) -> argparse.ArgumentParser:
    """A subcommand whose --help lists the exit codes too."""
    parser: argparse.ArgumentParser = commands.add_parser(
        name, help=help, description=description or help[0].upper() + help[1:] + ".", epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sagemaker-plugin", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EXIT_CODES + """

`sagemaker-plugin COMMAND --help` describes a command's arguments. Task files: docs/task-file.md;
config: docs/config.md; phases: docs/phases.md.""",
        description="Run Amazon SageMaker training jobs from typed task files, on AWS or on a local SageMaker.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = command_parser(commands, "validate", "check a task file; exit 2 with every problem")
    _common(p)
    p.add_argument("task_file", metavar="TASK_FILE", help="the task, YAML or JSON (docs/task-file.md)")
    p.set_defaults(handler=cmd_validate)

    p = command_parser(commands, "render", "print the CreateTrainingJob request (no AWS call)")
    _common(p)
    p.add_argument("task_file", metavar="TASK_FILE", help="the task, YAML or JSON (docs/task-file.md)")
    p.add_argument("--show-secrets", action="store_true", help="show container environment values unmasked")
    p.set_defaults(handler=cmd_render)

    p = command_parser(commands, "images", "list the built-in algorithm images")
    _common(p)
    p.add_argument("--algorithm", default=None, help="only this algorithm (e.g. xgboost)")
    p.add_argument("--version", default=None, help="only this algorithm version (e.g. 1.7-1)")
    p.add_argument("--all-regions", action="store_true", help="every region, not only --region's")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(handler=cmd_images)

    _add_job_commands(commands)
    return parser


def _add_job_commands(commands: Any) -> None:
    """Commands that talk to SageMaker; they live in plugin.cli.jobs so that this module stays import-light."""
    from plugin.cli import events, jobs, metrics

    jobs.add_commands(commands, _common, command_parser)
    jobs.add_list_command(commands, _common, command_parser)
    metrics.add_commands(commands, _common, command_parser)
    events.add_commands(commands, _common, command_parser)


def cmd_validate(args: argparse.Namespace, config: Config) -> int:
    from plugin.jobs.requests import check

    task, rendered = check(args.task_file, config, region=args.region)
    print_warnings(rendered)
    request = rendered.request
    resources = (request.get("TrainingJobDefinition") or request)["ResourceConfig"]  # a tuning job's: per trial
    limits = (request.get("HyperParameterTuningJobConfig") or {}).get("ResourceLimits")
    trials = f"{limits['MaxNumberOfTrainingJobs']} trials, {limits['MaxParallelTrainingJobs']} at a time, each " \
        if limits else ""
    print(f"{args.task_file}: valid {task.task_type} (job {rendered.job_name}, {trials}"
          f"{resources['InstanceCount']} x {resources['InstanceType']}, region {rendered.region})")
    return EXIT_OK


def cmd_render(args: argparse.Namespace, config: Config) -> int:
    from plugin.jobs.requests import check

    _, rendered = check(args.task_file, config, region=args.region)
    print_warnings(rendered)
    request = rendered.request if args.show_secrets else mask_secrets(rendered.request)
    print(json.dumps(request, indent=2))
    return EXIT_OK


def print_warnings(rendered: Rendered) -> None:
    """What the request leaves out of the task on purpose, on stderr: the exit code stays 0."""
    for line in rendered.warning_lines():
        print(line, file=sys.stderr)


def mask_secrets(request: dict[str, Any]) -> dict[str, Any]:
    """Environment values often hold tokens; show their names, not their values."""
    if "Environment" not in request:
        return request
    return {**request, "Environment": {key: MASK for key in request["Environment"]}}


def cmd_images(args: argparse.Namespace, config: Config) -> int:
    from image_registry import ImageRegistry, format_images

    registry = ImageRegistry.default().with_overrides(config.prebuilt_algorithms)
    region = None if args.all_regions else (args.region or config.region)
    infos = registry.images(algorithm=args.algorithm, region=region, version=args.version)
    if args.json:
        for info in infos:
            print(json.dumps({"algorithm": info.algorithm, "version": info.version, "region": info.region,
                              "uri": info.uri, "legacy": info.legacy}))
    else:
        print(format_images(infos))
    return EXIT_OK


def run_command(handler: Callable[[argparse.Namespace, Config], int], args: argparse.Namespace) -> int:
    """Runs one command, turning every expected failure into a message and an exit code."""
    from image_registry import ImageLookupError
    from plugin.config import load_config

    retries = _show_retries()
    try:
        config = load_config(args.config)
        return handler(args, config)
    except InputError as error:
        _print_problems(error)
        return EXIT_INPUT
    except ImageLookupError as error:
        print(f"error: {error.field}: {error}", file=sys.stderr)
        return EXIT_INPUT
    except AwsError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_AWS
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_OK
    finally:
        logger = logging.getLogger(RETRY_LOGGER)
        logger.removeHandler(retries[0])
        logger.setLevel(retries[1])


def _show_retries() -> tuple[logging.Handler, int]:
    """Each retry of an AWS call is said on stderr as it happens (handlers.client logs it), not after the silence.

    Returns the handler and the logger's level before, to put back."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger(RETRY_LOGGER)
    previous = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    return handler, previous


def _print_problems(error: InputError) -> None:
    count = len(error.problems)
    print(f"error: {count} problem{'s' if count != 1 else ''} found:", file=sys.stderr)
    for problem in error.problems:
        print(f"  {problem}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        parser = build_parser()  # imports the commands' modules, boto3 among them
        args = parser.parse_args(argv)
        return run_command(args.handler, args)
    except KeyboardInterrupt:  # before a command started, e.g. while boto3 loads
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED

