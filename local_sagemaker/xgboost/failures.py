"""The two ways the algorithm fails, as the container reports them in /opt/ml/output/failure.

ClientError: the user can fix it (a hyperparameter, a channel, the data); the container's UserError.
AlgorithmError: anything else, e.g. the xgboost library refusing in the middle of training.
"""

from __future__ import annotations

from pathlib import Path


class AlgorithmFailure(Exception):
    """A failure with the kind SageMaker shows in front of the reason."""

    kind = "AlgorithmError"

    def reason(self) -> str:
        return f"{self.kind}: {self}"


class ClientError(AlgorithmFailure):
    kind = "ClientError"


class AlgorithmError(AlgorithmFailure):
    kind = "AlgorithmError"


# Parts of xgboost's own messages that mean the user's data or settings are at fault: the container turns these into
# a UserError (xgb_constants.CUSTOMER_ERRORS) and every other training exception into an AlgorithmError.
CUSTOMER_ERRORS = (
    "label must be in [0,1] for logistic regression",
    "label must be in [0, num_class)",
    "Target is multiclass but average='binary'",
    "feature_names mismatch",
    "Check failed: preds.size() == info.labels_.size()",
    "Check failed: !auc_error AUC: the dataset only contains pos or neg samples",
    "base_score must be in (0,1) for logistic loss",
    "label must be nonnegative",
    "Parameter reg_lambda should be greater equal to 0",
)


def from_training_exception(error: Exception) -> AlgorithmFailure:
    """Classify an exception raised by xgboost.train as the container does."""
    text = str(error)
    if any(marker in text for marker in CUSTOMER_ERRORS):
        return ClientError(text)
    return AlgorithmError(f"XGB train call failed with exception:\n {text}")


def write_failure(failure_file: Path, failure: AlgorithmFailure) -> None:
    """`output/failure`: the local SageMaker makes it the job's FailureReason, as SageMaker does."""
    failure_file.parent.mkdir(parents=True, exist_ok=True)
    failure_file.write_text(failure.reason())
