"""Headless Chromium for the tests that look at pages: the DOM after the page's scripts ran, and screenshots.

Each run gets a fresh profile folder, no network of its own (no background fetches, no component updates) and no
sandbox (tests may run as root). `require()` skips a test, saying why, where no Chromium is installed
(.ci/run installs Debian's `chromium`).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--enable-logging=stderr", "--v=0")


def find() -> str | None:
    return next((path for path in map(shutil.which, NAMES) if path), None)


def require() -> str:
    path = find()
    if path is None:
        pytest.skip(f"no headless browser found (looked for {', '.join(NAMES)}): apt-get install chromium")
    return path


def _run(url: str, *extra: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    try:
        return subprocess.run([require(), *FLAGS, f"--user-data-dir={profile}", *extra, url], capture_output=True,
                              text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def dump_dom(url: str, budget_ms: int = 3000) -> tuple[str, list[str]]:
    """The DOM once the page's timers have run for `budget_ms` of virtual time, and its console's error lines."""
    done = _run(url, f"--virtual-time-budget={budget_ms}", "--dump-dom")
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout, console_errors(done.stderr)


def screenshot(url: str, path: Path, width: int = 1200, height: int = 900, budget_ms: int = 2000) -> Path:
    done = _run(url, f"--window-size={width},{height}", f"--virtual-time-budget={budget_ms}",
                f"--screenshot={path}")
    assert done.returncode == 0 and path.exists(), done.stderr[-2000:]
    return path


def console_errors(stderr: str) -> list[str]:
    """Lines of Chromium's log that report a page's script error or a refused fetch."""
    return [line for line in stderr.splitlines()
            if "Uncaught" in line or ("CONSOLE" in line and re.search(r"error|refused|failed", line, re.I))]


def body_data(dom: str) -> dict[str, str]:
    """The data-* attributes of <body> (the page counts its polls and script errors there)."""
    match = re.search(r"<body([^>]*)>", dom)
    return dict(re.findall(r'data-([a-z-]+)="([^"]*)"', match.group(1))) if match else {}


def without_scripts(dom: str) -> str:
    """The DOM less its <script> elements: what the page drew, not the code that draws it."""
    return re.sub(r"<script\b.*?</script>", "", dom, flags=re.S)
