"""The algorithm's entry on one host, in the container's order: hyperparameters, channels, data, then training alone
or with the other hosts. Any failure ends in `output/failure` (`ClientError: ...` or `AlgorithmError: ...`) and exit 1.
"""

from __future__ import annotations

import argparse
import traceback
from collections.abc import Sequence
from pathlib import Path

import xgboost as xgb

from handlers import xgboost_algorithm
from local_sagemaker.runner.hostdirs import OptMl
from local_sagemaker.xgboost import checkpoints, data, distributed, logs, params, training, versions
from local_sagemaker.xgboost.failures import AlgorithmError, AlgorithmFailure, ClientError, write_failure
from local_sagemaker.xgboost.host import Host, read_host
from local_sagemaker.xgboost.logs import LOG

FAILED = 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m local_sagemaker.xgboost", description="Run SageMaker's built-in XGBoost on one host's folder."
    )
    parser.add_argument("--root", required=True, type=Path, help="the host's folder, standing in for /opt/ml")
    parser.add_argument("--version", required=True, help="the algorithm version, e.g. 1.7-1")
    args = parser.parse_args(argv)
    logs.configure()
    try:
        host = read_host(args.root)
        run(host, args.version)
    except distributed.LeaveCluster:
        return 0
    except AlgorithmFailure as failure:
        return _fail(args.root, failure)
    except Exception as error:  # a bug here or in a library: said as the container's framework error says it
        LOG.error("Reporting training FAILURE\n%s", traceback.format_exc())
        return _fail(args.root, AlgorithmError(f"framework error: {type(error).__name__}: {error}"))
    return 0


def _fail(root: Path, failure: AlgorithmFailure) -> int:
    LOG.error(failure.reason())
    write_failure(OptMl(root).failure_file, failure)
    return FAILED


def run(host: Host, version: str) -> None:
    behaviour = versions.behaviour(version)
    check_hyperparameters(version, host)
    settings = params.settings(host.hyperparameters, behaviour, hosts_here=len(host.hosts))
    config = data.check_channels(host.channels, version)
    train_dir, validation_dir = host.channel_dir("train"), host.channel_dir("validation")
    train_data = data.load(train_dir, config, settings.csv_weights)
    validation_data = data.load(validation_dir, config, settings.csv_weights)
    missing_validation = config.has_validation and validation_data is None

    def fit(train_data: xgb.DMatrix, resume: checkpoints.Resume, is_master: bool) -> None:
        training.train(
            settings, behaviour, train_data, validation_data, host.dirs.model_dir, host.checkpoint_dir, resume,
            is_master,
        )

    if len(host.hosts) == 1:
        if train_data is None:
            raise ClientError(f"No data in training channel path {train_dir}")
        if missing_validation:
            raise ClientError(f"No data in validation channel path {validation_dir}")
        LOG.info("Single node training.")
        fit(train_data, checkpoints.latest(host.checkpoint_dir), is_master=True)
        return
    if train_data is None:
        LOG.warning("Host %s does not have training data: it takes no part in training.", host.current_host)
    if missing_validation:
        LOG.warning("Host %s does not have validation data: it takes no part in training.", host.current_host)
    with distributed.cluster(host, has_data=train_data is not None and not missing_validation) as member:
        assert train_data is not None  # a host without data has left the cluster
        resume = distributed.from_master(checkpoints.latest(host.checkpoint_dir) if member.is_master else None, member)
        fit(train_data, resume, member.is_master)


def check_hyperparameters(version: str, host: Host) -> None:
    """The algorithm version's own checks, as the container validates at start (it names the first problem; all are
    named here)."""
    problems = xgboost_algorithm.check_hyperparameters(version, host.hyperparameters)
    if problems:
        raise ClientError("; ".join(f"Hyperparameter {p.path}: {p.message}" for p in problems))
