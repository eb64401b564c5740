"""`python -m local_sagemaker --port N`: serve a local SageMaker until interrupted."""

from __future__ import annotations

import sys

from local_sagemaker.api.server import main

sys.exit(main())
