"""handlers/curves_html.py: the JSON a page embeds in its <script> parses back to exactly what was given, whatever
text a job carries (nothing in it can end the element, open an HTML comment or start a script)."""

from __future__ import annotations

import json
import re

import pytest

from handlers.curves_html import json_for_script, render
from handlers.metric_series import JobMetrics
from plugin.cli.charts import metrics_page

HOSTILE = ["<!--", "</script>", "<script>alert(1)</script>", "-->", "</SCRIPT >", "<!-- <script>", "&amp; & &lt;",
           "]]>", "\u2028 \u2029", "'\"`", "\\u003c", "<\\/script>", "é 🙂 \x00"]
OPEN = '<script id="initial" type="application/json">'


def embedded(page: str) -> str:
    """The initial element's text as a browser takes it: up to the first `</script` in any case."""
    start = page.index(OPEN) + len(OPEN)
    return page[start:re.search(r"</script", page[start:], re.IGNORECASE).start() + start]  # type: ignore[union-attr]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_parses_back_exactly(text: str) -> None:
    state = {"job": {"name": "job", "status": "Failed", "failure_reason": text, "transitions": [
        {"status": "Training", "message": text}]},
             "metrics": {"metrics": [text], "series": [], "final": {text: 1.0}}}
    page = render(state, f"job {text}", live_data_url="/~jobs/job/data?token=t")
    script = embedded(page)
    assert json.loads(script) == {**state, "live": {"data": "/~jobs/job/data?token=t", "interval_ms": 1000}}
    assert not re.search(r"<|>|&|\u2028|\u2029", script)


def test_the_static_metrics_page_carries_hostile_names_exactly() -> None:
    name = "<!-- </script><script>alert(1)</script>"
    page = metrics_page(JobMetrics("job", "Completed", (name,), ("algo-1",), {name: 2.0}))
    data = json.loads(embedded(page))
    assert data["metrics"]["metrics"] == [name] and data["metrics"]["final"] == {name: 2.0}


def test_json_for_script_is_json() -> None:
    value = {"a": ["<", ">", "&", "\u2028", "x</script>"], "n": 1.5}
    assert json.loads(json_for_script(value)) == value
