"""docs/sdk.md's snippets run as a user runs them: in a fresh folder, in a Python process of its own, with the
`export` lines of `local serve` in its environment (and the SDK's telemetry off, as the page says)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from local_serve import ROOT, Served
from sdk_v3_setup import SDK_CONFIG, require_sdk_v3

require_sdk_v3()

PAGE = ROOT / "docs" / "sdk.md"


def _snippets() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```$", PAGE.read_text(encoding="utf-8"), flags=re.MULTILINE | re.DOTALL)


def _run(served: Served, folder: Path, code: str) -> str:
    (folder / "sdk-config.yaml").write_text(SDK_CONFIG, encoding="utf-8")
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "SAGEMAKER_"))}
    env.update(served.env(), AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull,
               SAGEMAKER_USER_CONFIG_OVERRIDE=str(folder / "sdk-config.yaml"))
    done = subprocess.run([sys.executable, "-c", code], cwd=folder, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def test_the_page_has_its_two_snippets() -> None:
    assert [("xgboost.train(" in code, "SourceCode(source_dir=" in code) for code in _snippets()] == [
        (True, False), (False, True)]


def test_the_xgboost_snippet_trains(served: Served, tmp_path: Path) -> None:
    printed = _run(served, tmp_path, _snippets()[0])
    assert re.search(r"XGBoost model: s3://my-training-bucket/output/[\w-]+/output/model\.tar\.gz", printed)
    assert "train-rmse:" in printed  # the job's own log lines, streamed


def test_the_source_code_snippet_trains(served: Served, tmp_path: Path) -> None:
    printed = _run(served, tmp_path, "\n".join(_snippets()))
    assert re.search(r"script model: s3://my-training-bucket/output/[\w-]+/output/model\.tar\.gz", printed)
    assert "training with" in printed
