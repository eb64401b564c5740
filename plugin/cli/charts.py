"""A job's metrics for people: the final values as a table, each metric's curve drawn in the terminal (uniplot), and
pictures (a PNG with matplotlib, or a self-contained HTML page). One panel per metric, one line per host.

The plotting libraries come with the `plots` extra (also in `local` and `test`); without them the table still prints
and a chart says how to get them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path

from handlers.curves_html import render
from handlers.errors import InputError
from handlers.metric_series import JobMetrics, Series

PICTURE_SUFFIXES = (".png", ".html")
INSTALL_HINT = "pip install 'sagemaker-plugin[plots]'"
X_LABEL = "seconds since the job started (TrainingStartTime)"
_STYLES = ("-", "--", ":", "-.")


def metrics_page(metrics: JobMetrics) -> str:
    """A static page of a job's curves and final values (`sagemaker-plugin metrics JOB --plot FILE.html`)."""
    job = {"name": metrics.job_name, "status": metrics.status}
    return render({"job": job, "metrics": metrics.as_dict()}, f"{metrics.job_name} metrics")


def table(metrics: JobMetrics) -> str:
    """Final value (FinalMetricDataList) per metric, with each host's last value and its number of points."""
    rows = [["metric", "final", *(f"{host} last" for host in metrics.hosts), "points"]]
    for name in metrics.metrics:
        final = metrics.final.get(name)
        series = {s.host: s for s in metrics.of(name)}
        if final is None and not series:
            continue
        lasts = [_number(series[h].values[-1]) if h in series else "-" for h in metrics.hosts]
        rows.append([name, _number(final) if final is not None else "-", *lasts,
                     str(sum(len(s.values) for s in series.values()))])
    if len(rows) == 1:
        defined = ", ".join(metrics.metrics) or "none defined"
        return f"{metrics.job_name}: no metric values yet ({defined})"
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) if i == 0 else cell.rjust(width) for i, (cell, width)
                       in enumerate(zip(row, widths, strict=True))).rstrip() for row in rows]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:]])


def terminal_charts(metrics: JobMetrics, width: int = 72, height: int = 12, color: bool = False) -> str:
    """One uniplot chart per metric that has points, hosts as lines, x in seconds since training started."""
    try:
        from uniplot import plot_to_string
    except ImportError:
        return f"(no terminal charts: the plotting libraries are missing: {INSTALL_HINT})"
    charts = []
    for name in metrics.with_points:
        lines = metrics.of(name)
        xs = [_seconds(metrics, s) for s in lines]
        ys = [list(s.values) for s in lines]
        (left, right), (low, high) = _span(v for x in xs for v in x), _span(v for y in ys for v in y)
        drawn = plot_to_string(ys, xs=xs, title=name, legend_labels=[s.host for s in lines], lines=True,
                               width=width, height=height, color=color, x_min=left, x_max=right, y_min=low,
                               y_max=high, x_labels=False, y_labels=False)
        charts.append(_labelled(drawn, f"{left:.4g} s", f"{right:.4g} s", _number(low), _number(high)))
    if not charts:
        return ""
    return "\n".join(charts) + f"\n{_where(metrics)}"


def _span(values: Iterable[float]) -> tuple[float, float]:
    """The lowest and highest value, apart (a flat line gets room around it)."""
    listed = list(values)
    low, high = min(listed), max(listed)
    if low == high:
        pad = abs(low) / 10 or 1.0
        low, high = low - pad, high + pad
    return low, high


def _labelled(chart: str, left: str, right: str, low: str, high: str) -> str:
    """uniplot's chart with the exact ends of its axes written at its edges, instead of its own tick labels (which
    can round wrongly: 0.5 and 1.5 shown as 0 and 2)."""
    lines = chart.splitlines()
    rows = [index for index, line in enumerate(lines) if line.startswith("│")]
    bottom = next((index for index, line in enumerate(lines) if line.startswith("└")), None)
    if not rows or bottom is None:
        return chart
    lines[rows[0]] += f" {high}"
    lines[rows[-1]] += f" {low}"
    inner = len(lines[bottom]) - 2
    lines.insert(bottom + 1, " " + left + right.rjust(max(1, inner - len(left))))
    return "\n".join(lines)


def write_picture(metrics: JobMetrics, path: str) -> Path:
    """`path` ending .png (matplotlib) or .html (self-contained page); InputError naming --plot when it cannot be."""
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in PICTURE_SUFFIXES:
        raise InputError(f"must end with {' or '.join(PICTURE_SUFFIXES)}, not {target.name!r}", "--plot")
    if target.is_dir():
        raise InputError(f"{path} is a folder; give a file name ending {suffix}", "--plot")
    if not target.parent.is_dir():
        raise InputError(f"the folder {target.parent} does not exist", "--plot")
    try:
        if suffix == ".html":
            target.write_text(metrics_page(metrics), encoding="utf-8")
        else:
            _write_png(metrics, target)
    except OSError as error:
        raise InputError(f"cannot write {path}: {error.strerror or error}", "--plot") from None
    return target


def _write_png(metrics: JobMetrics, target: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only: no display, no GUI toolkit
        from matplotlib import pyplot
    except ImportError:
        raise InputError(f"a PNG needs matplotlib: {INSTALL_HINT} (or write .html)", "--plot") from None
    names = metrics.with_points or list(metrics.metrics[:1])
    columns = 1 if len(names) == 1 else 2
    rows = max(1, math.ceil(len(names) / columns))
    figure, axes = pyplot.subplots(rows, columns, figsize=(6.4 * columns, 3.8 * rows), squeeze=False)
    try:
        for index, axis in enumerate(axes.flat):
            if index >= len(names):
                axis.set_visible(False)
                continue
            name = names[index]
            for number, series in enumerate(metrics.of(name)):
                # hosts with the same values still show as separate lines: solid, dashed, dotted...
                axis.plot(_seconds(metrics, series), series.values, marker="o" if len(series.values) < 40 else None,
                          markersize=3, linewidth=1.8, label=series.host, linestyle=_STYLES[number % len(_STYLES)])
            axis.set_title(name)
            axis.set_xlabel(X_LABEL)
            axis.grid(True, alpha=0.3)
            if metrics.of(name):
                axis.legend(loc="best", fontsize="small")
            else:
                axis.text(0.5, 0.5, "no values yet", ha="center", va="center", transform=axis.transAxes)
        figure.suptitle(f"{metrics.job_name} ({metrics.status})")
        figure.tight_layout()
        # what the picture shows, in words, for whoever reads the file rather than looks at it (PNG text chunks)
        about = {"Title": f"{metrics.job_name} metrics",
                 "Description": f"panels: {', '.join(names)}; hosts: {', '.join(metrics.hosts)}"}
        figure.savefig(target, dpi=100, metadata=about)
    finally:
        pyplot.close(figure)


def _seconds(metrics: JobMetrics, series: Series) -> list[float]:
    origin = metrics.start or (series.timestamps[0] if series.timestamps else None)
    if origin is None:
        return []
    return [(t - origin).total_seconds() for t in series.timestamps]


def _where(metrics: JobMetrics) -> str:
    if metrics.source == "logs":
        return "(points from the log lines: CloudWatch keeps one point per second, and these values came faster)"
    return f"(points from CloudWatch metrics, one per {metrics.period} s)"


def _number(value: float) -> str:
    return f"{value:.6g}"
