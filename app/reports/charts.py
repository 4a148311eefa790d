"""Backtest output for people: a PNG of PAI per method over the test weeks, and CSV tables.

Call sequence for `est evaluate` (the CLI command builds on these; see clustering.evaluation):

    from app.reports.charts import backtest_chart, results_table_csv
    from clustering.evaluation import Backtest

    backtest = Backtest(train_weeks=12, test_weeks=1, coverage=0.05, cell_size_m=150)
    backtest.fit(xy_m, times, area=area_polygon_or_None)
    results_table_csv(backtest.summary_, out_dir / "summary.csv")   # method × metrics
    results_table_csv(backtest.results_, out_dir / "weeks.csv")     # method × week rows
    backtest_chart(backtest.results_, out_dir / "pai.png")

The chart is drawn with matplotlib's Agg canvas directly (no pyplot), so it needs no display and
leaves matplotlib's global state alone, which matters inside a web worker or a test run. It is
imported when a chart is drawn, not with this module: it takes a while to import.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd


def backtest_chart(
    results_by_week: pd.DataFrame,
    path: str | Path,
    title: str = "",
    apart: dict[str, str] | None = None,
) -> Path:
    """Draw PAI per method over the test weeks (Backtest.results_) as a PNG at path.

    Weeks a method could not be evaluated are gaps in its line; the dashed line at PAI = 1 is
    what flagging cells at random achieves on average. Methods in `apart` (method -> what to
    add to its label, e.g. its own coverage) are drawn dotted: their PAI is not comparable.
    """
    apart = apart or {}
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    needed = {"method", "week_start", "pai"}
    missing = needed - set(results_by_week.columns)
    if missing:
        raise ValueError(f"results_by_week lacks columns {sorted(missing)}")
    path = Path(path)
    figure = Figure(figsize=(10, 5), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    weeks = pd.to_datetime(results_by_week["week_start"])
    for method in dict.fromkeys(results_by_week["method"]):  # first-seen order, no duplicates
        rows = results_by_week["method"] == method
        series = pd.Series(
            results_by_week.loc[rows, "pai"].to_numpy(dtype=float), index=weeks[rows]
        ).sort_index()
        label, style = (f"{method} ({apart[method]})", ":") if method in apart else (method, "-")
        axes.plot(
            series.index,
            series.to_numpy(),
            marker="o",
            markersize=3,
            label=str(label),
            linestyle=style,
        )
    axes.axhline(1.0, color="grey", linestyle="--", linewidth=1)
    axes.set_xlabel("test week (starting Monday)")
    axes.set_ylabel("PAI (hit rate / area share)")
    coverage = results_by_week.get("coverage")
    if coverage is not None:  # the flagged share of the comparable methods
        coverage = coverage[~results_by_week["method"].isin(list(apart))]
    share = "" if coverage is None else _coverage_text(coverage)
    axes.set_title(title or f"Prediction Accuracy Index per test week{share}")
    axes.legend(loc="upper left", fontsize="small", ncols=3)
    axes.grid(True, alpha=0.3)
    figure.autofmt_xdate()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
    return path


def results_table_csv(df: pd.DataFrame, path: str | Path) -> Path:
    """Write a results or summary table as UTF-8 CSV (index kept when it is named) at path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    keep_index = df.index.name is not None
    df.to_csv(path, index=keep_index, float_format="%.6g", encoding="utf-8")
    return path


def _coverage_text(coverage: pd.Series) -> str:
    """Return ', coverage 5%' for the median coverage of the grid rows, or '' if undefined."""
    median = float(pd.to_numeric(coverage, errors="coerce").median())
    return "" if math.isnan(median) else f", flagged area ≈ {median:.0%} of the study area"
