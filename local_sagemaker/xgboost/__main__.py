"""`python -m local_sagemaker.xgboost --root <host folder> --version <algorithm version>`"""

from __future__ import annotations

import os
import sys

# xgboost imports scikit-learn for its estimator API when it is installed; the algorithm never uses that API, and the
# import costs each host more than a second of start-up. A None entry makes `import sklearn` fail, which xgboost
# handles by leaving the estimators out.
sys.modules.setdefault("sklearn", None)  # type: ignore[arg-type]

# OpenMP's threads spin while they wait for work; with several jobs (a tuning job's parallel trials) sharing the
# machine's cores they spun against one another, and a 400-row job of 200 rounds took 20 s instead of 0.2 s. Set
# before xgboost loads its OpenMP runtime, which reads it once; a job's own Environment may still choose otherwise.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from local_sagemaker.xgboost.run import main  # noqa: E402

sys.exit(main())
