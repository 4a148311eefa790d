"""`est evaluate`: a rolling backtest of the hotspot methods on a file, written for people.

Reads the file like `est analyze`, optionally a study-area polygon file, runs
clustering.evaluation.Backtest in the file's time zone (its weeks start at local Monday
midnight), and writes summary.csv (method × metrics), weeks.csv (method × test week) and
pai.png into a folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from app.runs.analyze import Points

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class Evaluation:
    """What a backtest wrote and its summary (one row per method)."""

    summary: pd.DataFrame
    files: list[Path]


def read_area(path: Path, points: Points) -> object:
    """The union of a polygon file's features in the points' CRS."""
    import geopandas as gpd
    import shapely

    return shapely.union_all(gpd.read_file(path).to_crs(points.crs).geometry.values)


def evaluate(
    points: Points,
    out: Path,
    *,
    train_weeks: int,
    test_weeks: int,
    coverage: float,
    cell_size_m: float,
    area: Path | None = None,
    title: str = "",
) -> Evaluation:
    """Backtest the methods on the points and write the tables and the chart into `out`."""
    from app.reports.charts import backtest_chart, results_table_csv
    from clustering.evaluation import Backtest

    polygon = read_area(area, points) if area is not None else None
    # prospective hotspotting looks 8 weeks back, but never past the training window
    backtest = Backtest(
        train_weeks=train_weeks,
        test_weeks=test_weeks,
        coverage=coverage,
        cell_size_m=cell_size_m,
        tz=points.tz,
        prospective_weeks=min(8, train_weeks),
    )
    backtest.fit(points.xy, points.time, area=polygon)
    out.mkdir(parents=True, exist_ok=True)
    files = [
        results_table_csv(backtest.summary_, out / "summary.csv"),
        results_table_csv(backtest.results_, out / "weeks.csv"),
        backtest_chart(backtest.results_, out / "pai.png", title=title),
    ]
    return Evaluation(summary=backtest.summary_, files=files)
