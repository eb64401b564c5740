"""Hyperparameter tuning jobs on the local SageMaker: each trial a real training job of the engine.

plan.py checks a CreateHyperParameterTuningJob request and makes each trial's request; ranges.py the search space;
strategies.py the searches (Random, Bayesian with optuna's TPE, Grid; Hyperband samples randomly); series.py and
early_stopping.py follow the trials' objective per round and stop laggards; job.py is a tuning job's life;
listing.py the two List operations; service.py the operations and the drivers that move the jobs.
"""
