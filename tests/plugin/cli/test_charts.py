"""plugin/cli/charts.py: the final values as a table, curves in the terminal (uniplot), a PNG (matplotlib), an HTML
page.

On a synthetic job of two metrics and two hosts whose values differ: the PNG has one panel per metric with its title
and one line per host (each host's colour found in its panel), the HTML fetches nothing from anywhere and carries
every point, and bad --plot paths are refused naming --plot.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from handlers.errors import InputError
from handlers.metric_series import JobMetrics, Series
from pictures import check_panels
from plugin.cli.charts import table, terminal_charts, write_picture

START = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)
ROUNDS = 12


def series(metric: str, host: str, first: float, rate: float) -> Series:
    times = tuple(START + timedelta(seconds=2 + 0.5 * n) for n in range(ROUNDS))
    return Series(metric, host, times, tuple(first * rate**n for n in range(ROUNDS)))


@pytest.fixture
def metrics() -> JobMetrics:
    return JobMetrics(job_name="demo-job", status="Completed", metrics=("train:rmse", "validation:rmse", "unused"),
                      hosts=("algo-1", "algo-2"), final={"train:rmse": 1.1, "validation:rmse": 1.4},
                      series=(series("train:rmse", "algo-1", 4.0, 0.9), series("train:rmse", "algo-2", 3.0, 0.88),
                              series("validation:rmse", "algo-1", 4.5, 0.92),
                              series("validation:rmse", "algo-2", 3.5, 0.9),
                              Series("unused", "algo-1", (), ())),
                      start=START, end=START + timedelta(seconds=20), period=1, source="logs")


def test_the_table_has_a_row_per_metric_with_values(metrics: JobMetrics) -> None:
    lines = table(metrics).splitlines()
    assert lines[0].split() == ["metric", "final", "algo-1", "last", "algo-2", "last", "points"]
    assert lines[2].split()[:2] == ["train:rmse", "1.1"] and lines[2].split()[-1] == str(2 * ROUNDS)
    assert lines[3].split()[0] == "validation:rmse" and len(lines) == 4  # "unused" has no value: no row
    empty = JobMetrics("x", "InProgress", ("a",), ("algo-1",), {})
    assert table(empty) == "x: no metric values yet (a)"


def test_the_terminal_draws_a_chart_per_metric_with_every_host(metrics: JobMetrics) -> None:
    drawn = terminal_charts(metrics, width=60, height=10)
    assert [line.strip() for line in drawn.splitlines() if line.strip() in metrics.metrics] == [
        "train:rmse", "validation:rmse"]
    assert drawn.count("algo-1") == 2 and drawn.count("algo-2") == 2
    assert re.search(r"[▀▄▖▗▘▝▚▞▌▐█]", drawn)  # drawn with the library's block characters
    assert "\x1b[" not in drawn  # no colour codes unless asked (not a terminal)
    assert "\x1b[" in terminal_charts(metrics, width=60, height=10, color=True)


def test_the_terminal_charts_axes_are_labelled_with_their_exact_ends() -> None:
    """A real XGBoost job's rmse fell from 1.52667 to 0.11353: uniplot's own labels read 2, 1, 0 (0.5 and 1.5 rounded
    to no digits), which no value reached. The axes' ends are written instead, as they are."""
    values = (1.52667, 1.1305, 0.84614, 0.64612, 0.50259, 0.39765, 0.26235, 0.17237, 0.13471, 0.11353)
    times = tuple(START + timedelta(seconds=4.008 + 0.8 * n) for n in range(len(values)))
    job = JobMetrics(job_name="real", status="Completed", metrics=("train:rmse",), hosts=("algo-1",),
                     final={"train:rmse": values[-1]}, series=(Series("train:rmse", "algo-1", times, values),),
                     start=START, end=times[-1], period=1, source="logs")
    lines = terminal_charts(job, width=60, height=12).splitlines()
    rows = [line for line in lines if line.startswith("│")]
    assert len(rows) == 12
    assert rows[0].endswith("│ 1.52667") and rows[-1].endswith("│ 0.11353")
    assert all(row.endswith("│") for row in rows[1:-1])  # no rounded tick in between
    below = lines[lines.index(next(line for line in lines if line.startswith("└"))) + 1]
    assert below.split() == ["4.008", "s", "11.21", "s"]


def test_the_png_has_a_panel_per_metric_with_a_line_per_host(metrics: JobMetrics, tmp_path: Path) -> None:
    image_module = pytest.importorskip("PIL.Image")
    path = write_picture(metrics, str(tmp_path / "curves.png"))
    image = image_module.open(path).convert("RGB")
    assert image.size == (1280, 380)  # two panels side by side, 6.4 x 3.8 inches each at 100 dpi
    check_panels(image, panels=2, hosts=2)


def test_the_html_fetches_nothing_and_carries_every_point(metrics: JobMetrics, tmp_path: Path) -> None:
    path = write_picture(metrics, str(tmp_path / "curves.html"))
    page = path.read_text()
    assert "connect-src 'none'" in page and "default-src 'none'" in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)  # no script, style or image from afar
    assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", page)
    data = json.loads(re.search(r'<script id="initial" type="application/json">(.*?)</script>', page, re.S)[1])
    assert data["metrics"]["metrics"] == ["train:rmse", "validation:rmse", "unused"]
    assert sum(len(s["values"]) for s in data["metrics"]["series"]) == 4 * ROUNDS


def test_a_name_cannot_close_the_pages_script(tmp_path: Path) -> None:
    sneaky = JobMetrics("job", "Completed", ("</script><script>alert(1)</script>",), ("algo-1",), {})
    page = write_picture(sneaky, str(tmp_path / "x.html")).read_text()
    assert "</script><script>alert(1)" not in page


@pytest.mark.parametrize(("name", "words"), [("curves.jpg", "must end with .png or .html"),
                                             ("missing/curves.png", "does not exist"),
                                             (".", "is a folder")])
def test_bad_plot_paths_are_refused_naming_the_option(metrics: JobMetrics, tmp_path: Path, name: str,
                                                      words: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    target = "." if name == "." else str(tmp_path / name)
    if name == ".":
        target = str(tmp_path / "folder.png")
        (tmp_path / "folder.png").mkdir()
    with pytest.raises(InputError) as refused:
        write_picture(metrics, target)
    assert str(refused.value).startswith("--plot: ") and words in str(refused.value)
