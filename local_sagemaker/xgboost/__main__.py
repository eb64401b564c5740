"""`python -m local_sagemaker.xgboost --root <host folder> --version <algorithm version>`"""

from __future__ import annotations

import sys

from local_sagemaker.xgboost.run import main

sys.exit(main())
