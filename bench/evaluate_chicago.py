"""Backtest: which hotspot method best predicts next week's crime in Chicago, 2017?

Reads the City of Chicago crimes of 2017 (csv.gz with columns Date "MM/DD/YYYY hh:mm:ss AM/PM" in
Chicago local time, Latitude, Longitude; rows without coordinates dropped), projects them to UTM
16N (EPSG:26916, metres) and runs clustering.evaluation.Backtest: Monday-based weeks in Chicago
time, train on the 12 weeks before each test week, test on 1 week, flag 5% of the study cells
(150 m; the study area is every cell where a 2017 incident fell). Methods: naive counts, kernel
density (quartic, 400 m), Gi* z-scores (400 m band), DBSCAN polygons (eps 150 m, min_samples
from the data), prospective hotspotting (400 m, 8 weeks) and a random ranking, the peer every
method is measured against in the same run ("× random" columns). Local times that occur twice
(the night summer time ends) are read as standard time; those that do not exist (the night it
starts) are moved forward to 03:00. Usage:

    .venv/bin/python bench/evaluate_chicago.py PATH_TO_CSV_GZ [--out bench/results/]
        [--step-weeks 1]

Writes summary.csv (method × metrics), weeks.csv (method × test week) and pai.png to --out.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd
from pyproj import Transformer

from app.reports.charts import backtest_chart, results_table_csv
from clustering.evaluation import Backtest
from clustering.weeks import week_label

CHICAGO_TZ = "America/Chicago"
UTM_16N = 26916
# A full year takes about this long here; above the budget, every 4th week is tested instead.
TIME_BUDGET_S = 300.0


def read_incidents(path: Path) -> tuple[np.ndarray, pd.DatetimeIndex]:
    """Return the incidents with coordinates as (n, 2) UTM 16N metres and aware local times."""
    table = pd.read_csv(path, usecols=["Date", "Latitude", "Longitude"])
    table = table.dropna(subset=["Latitude", "Longitude", "Date"])
    naive = pd.DatetimeIndex(pd.to_datetime(table["Date"], format="%m/%d/%Y %I:%M:%S %p"))
    times = naive.tz_localize(
        CHICAGO_TZ, ambiguous=np.zeros(len(naive), dtype=bool), nonexistent="shift_forward"
    )
    to_utm = Transformer.from_crs(4326, UTM_16N, always_xy=True)
    x, y = to_utm.transform(table["Longitude"].to_numpy(), table["Latitude"].to_numpy())
    return np.column_stack([x, y]), times


def main() -> None:
    """Run the backtest and print, write and draw its results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv_gz", type=Path)
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    parser.add_argument("--step-weeks", type=int, default=None)
    args = parser.parse_args()

    started = time.perf_counter()
    xy, times = read_incidents(args.csv_gz)
    read_s = time.perf_counter() - started
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    print(f"{len(xy):,} incidents with coordinates read in {read_s:.1f} s")

    step = args.step_weeks
    if step is None:
        step = choose_step(xy, times)
    backtest = make_backtest(step)
    started = time.perf_counter()
    backtest.fit(xy, times)
    fit_s = time.perf_counter() - started

    weeks = backtest.test_weeks_
    print(
        f"study area: {backtest.study_cells_.n_cells:,} cells of 150 m "
        f"({backtest.study_cells_.area_m2 / 1e6:.0f} km²); test weeks {week_label(weeks[0])} to "
        f"{week_label(weeks[-1])}, {len(weeks)} evaluated"
        + ("" if step == 1 else f" (every {step}th test week, to stay within the time budget)")
    )
    print(f"backtest took {fit_s:.0f} s ({fit_s / len(weeks):.1f} s per test week)")
    summary = backtest.summary_.copy()
    random_pai = summary.loc["random", "pai"]
    random_hits = summary.loc["random", "hit_rate"]
    summary["pai × random"] = summary["pai"] / random_pai
    summary["hit_rate × random"] = summary["hit_rate"] / random_hits
    with pd.option_context("display.width", 120, "display.float_format", "{:.3f}".format):
        print(summary.to_string())

    args.out.mkdir(parents=True, exist_ok=True)
    results_table_csv(backtest.summary_, args.out / "summary.csv")
    results_table_csv(backtest.results_, args.out / "weeks.csv")
    backtest_chart(
        backtest.results_,
        args.out / "pai.png",
        title="Chicago 2017: PAI per test week (train 12 weeks, 150 m cells, 5% flagged)",
    )
    print(f"wrote {args.out / 'summary.csv'}, {args.out / 'weeks.csv'}, {args.out / 'pai.png'}")


def make_backtest(step_weeks: int) -> Backtest:
    """The protocol of this benchmark, testing every step_weeks-th week."""
    return Backtest(
        train_weeks=12,
        test_weeks=1,
        coverage=0.05,
        cell_size_m=150.0,
        step_weeks=step_weeks,
        tz=CHICAGO_TZ,
    )


def choose_step(xy: np.ndarray, times: pd.DatetimeIndex) -> int:
    """Return 1 if the whole year fits the time budget, else 4, from a timed 4-week trial."""
    trial_end = times.min() + pd.Timedelta(weeks=17)  # 12 training weeks + a few test weeks
    keep = np.asarray(times < trial_end)
    started = time.perf_counter()
    trial = make_backtest(1).fit(xy[keep], times[keep])
    per_week_s = (time.perf_counter() - started) / len(trial.test_weeks_)
    expected_s = per_week_s * 40  # a year holds 52 weeks, 40 after the first 12
    print(f"trial: {per_week_s:.1f} s per test week, ~{expected_s:.0f} s for the year")
    return 1 if expected_s <= TIME_BUDGET_S else 4


if __name__ == "__main__":
    main()
