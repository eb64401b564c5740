"""A job's metric curves (and, live, its status and logs) as one self-contained HTML page: the file of
`sagemaker-plugin metrics JOB --plot x.html` (plugin/cli/charts.py) and the local SageMaker's live job page
(local_sagemaker/pages/job_page.py) are the same page, so it lives on the floor both stand on.

The page is a file of its own (data/curves.html): its script draws one SVG panel per metric, a line per host, from
the JSON embedded in the page, and in a live page polls a JSON address of the same origin for more. Nothing is ever
fetched from elsewhere: its Content-Security-Policy allows no other source, so it renders offline as it does served.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from importlib import resources
from typing import Any


def template() -> str:
    return resources.files("handlers").joinpath("data/curves.html").read_text(encoding="utf-8")


def render(data: Mapping[str, Any], title: str, live_data_url: str | None = None, interval_ms: int = 1000) -> str:
    """The page for `data` ({"metrics": JobMetrics.as_dict(), "job": ..., "logs": ...}); with `live_data_url`
    (same origin), the page polls it for fresh data."""
    state = dict(data)
    if live_data_url is not None:
        state["live"] = {"data": live_data_url, "interval_ms": interval_ms}
    return (template().replace("__CONNECT__", "'self'" if live_data_url else "'none'")
            .replace("__TITLE__", html.escape(title)).replace("__DATA__", json_for_script(state)))


#: What a <script> element's text must not contain, as JSON writes the same characters: `<` (no `</script>`, `<!--`
#: or `<script` can end the element early or open an HTML comment), `>` and `&` as is customary, and the two line
#: separators older JavaScript took for line ends (already escaped by json's default ensure_ascii: kept for safety).
_SCRIPT_SAFE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def json_for_script(value: Any) -> str:
    """`value` as JSON that can sit inside a <script> element of an HTML page and still parse back to `value`."""
    return json.dumps(value, default=str, separators=(",", ":")).translate(_SCRIPT_SAFE)

