"""The built-in SageMaker XGBoost algorithm, run on this machine with the `xgboost` library.

`python -m local_sagemaker.xgboost --root <host folder> --version <algorithm version>` is what the local SageMaker
starts on every host of a built-in XGBoost job. The host folder stands in for the container's /opt/ml; the program
behaves as the algorithm's container does (aws/sagemaker-xgboost-container, per version): the same checks, content
types, log lines, metrics, checkpoints, model file and distributed training. Where it cannot or does not,
docs/xgboost.md ("Local XGBoost compared with SageMaker's") says so.

Importing this package does not import xgboost; the modules that train do.
"""
