"""`python -m local_sagemaker.xgboost --root <host folder> --version <algorithm version>`"""

from __future__ import annotations

import sys

# xgboost imports scikit-learn for its estimator API when it is installed; the algorithm never uses that API, and the
# import costs each host more than a second of start-up. A None entry makes `import sklearn` fail, which xgboost
# handles by leaving the estimators out.
sys.modules.setdefault("sklearn", None)  # type: ignore[arg-type]

from local_sagemaker.xgboost.run import main  # noqa: E402

sys.exit(main())
