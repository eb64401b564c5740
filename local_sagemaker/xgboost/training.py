"""One host's part of training: xgboost.train with the container's callbacks, then the model file on the master.

The model file `model/xgboost-model` is what the version's container writes: a pickled Booster up to 1.2-2, from
1.3-1 the Booster's own format (xgboost's UBJSON here; docs/xgboost.md says how to load either).
"""

from __future__ import annotations

import os
import pickle
import signal
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import xgboost as xgb

from local_sagemaker.xgboost import checkpoints
from local_sagemaker.xgboost.checkpoints import Resume
from local_sagemaker.xgboost.failures import from_training_exception
from local_sagemaker.xgboost.logs import LOG, print_round
from local_sagemaker.xgboost.metrics import MAXIMIZED, custom_metric
from local_sagemaker.xgboost.params import Settings
from local_sagemaker.xgboost.versions import Behaviour

MODEL_NAME = "xgboost-model"


def train(
    settings: Settings,
    behaviour: Behaviour,
    train_data: xgb.DMatrix,
    validation_data: xgb.DMatrix | None,
    model_dir: Path,
    checkpoint_dir: Path | None,
    resume: Resume,
    is_master: bool,
) -> None:
    LOG.info("Train matrix has %d rows and %d columns", train_data.num_row(), train_data.num_col())
    if validation_data is not None:
        LOG.info("Validation matrix has %d rows", validation_data.num_row())
    evals = [(train_data, "train")]
    if validation_data is not None:
        evals.append((validation_data, "validation"))
    callbacks: list[xgb.callback.TrainingCallback] = []
    if is_master:
        callbacks.append(EachRound(lambda _, index, evals_log: print_round(index, evals_log), resume.first_round))
        if checkpoint_dir is not None:
            folder = checkpoint_dir
            callbacks.append(EachRound(lambda model, index, _: checkpoints.save(folder, model, index),
                                       resume.first_round))
        if settings.save_model_on_termination:  # the model file is rewritten after every round: a stop leaves one
            callbacks.append(EachRound(lambda model, _, __: save_model(model, model_dir, behaviour)))
            _stop_on_sigterm(model_dir)
    stopping = _early_stopping(settings, behaviour, validation_data is not None)
    if stopping is not None:
        callbacks.append(stopping)
    feval = custom_metric(settings.custom_metrics, settings.objective) if settings.custom_metrics else None
    start = xgb.Booster(model_file=bytearray(resume.model)) if resume.model is not None else None
    try:
        booster = xgb.train(
            dict(settings.params),
            train_data,
            num_boost_round=max(0, settings.num_round - resume.first_round),
            evals=evals,
            custom_metric=feval,
            callbacks=callbacks,
            xgb_model=start,
            verbose_eval=False,
        )
    except Exception as error:
        raise from_training_exception(error) from None
    if is_master:
        save_model(booster, model_dir, behaviour)


def _early_stopping(settings: Settings, behaviour: Behaviour, has_validation: bool) -> Any:
    """From 1.3-1 the container stops early only with a validation channel and an eval_metric (the last one named),
    keeping the best round; before, xgboost watched the last metric of the last dataset and kept every round."""
    rounds = settings.early_stopping_rounds
    if not rounds:
        return None
    if behaviour.early_stopping_keeps_best_only:
        metric = settings.early_stopping_metric
        if not has_validation or metric is None:
            return None
        return xgb.callback.EarlyStopping(
            rounds=rounds, data_name="validation", metric_name=metric, maximize=metric in MAXIMIZED, save_best=True
        )
    return xgb.callback.EarlyStopping(rounds=rounds, data_name="validation" if has_validation else "train")


def save_model(booster: xgb.Booster, model_dir: Path, behaviour: Behaviour) -> None:
    model_dir.mkdir(parents=True, exist_ok=True)
    if behaviour.pickles_model:
        data = pickle.dumps(booster, protocol=behaviour.pickle_protocol)
    else:
        data = bytes(booster.save_raw("ubj"))
    checkpoints.write_atomically(model_dir / MODEL_NAME, data)


class EachRound(xgb.callback.TrainingCallback):
    """Runs `act(model, round, evaluation log)` after each round, rounds numbered from `first_round` (a resumed job
    counts on from its checkpoint); never stops training."""

    def __init__(self, act: Callable[[Any, int, Any], None], first_round: int = 0) -> None:
        super().__init__()
        self.act = act
        self.first_round = first_round

    def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
        self.act(model, self.first_round + epoch, evals_log)
        return False


def _stop_on_sigterm(model_dir: Path) -> None:
    """As the container: on SIGTERM the latest saved model stays (anything else in model/, such as a model being
    written, goes) and the process ends successfully."""

    def stop(signum: int, frame: FrameType | None) -> None:
        for path in model_dir.iterdir():
            if path.is_file() and not path.name.startswith(MODEL_NAME):
                path.unlink(missing_ok=True)
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
