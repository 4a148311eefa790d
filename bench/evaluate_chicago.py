"""Forecasts chosen on the past: does the choice beat 12-week naive counts in Chicago, 2017?

Reads the City of Chicago crimes of 2017 (csv.gz with columns Date "MM/DD/YYYY hh:mm:ss AM/PM" in
Chicago local time, Primary Type, Latitude, Longitude; rows without coordinates dropped) and
projects them to UTM 16N (EPSG:26916, metres). Local times that occur twice (the night summer time
ends) are read as standard time; those that do not exist (the night it starts) are moved forward.

The protocol, the same for every incident set and cell size (250 m, a viewer size, and 150 m):

1. choose (clustering.choice.ForecastChoice) on January–June only: the incidents from Monday
   3 July on are not even handed to it. Each candidate of the fixed search space is scored on the
   last 8 weeks of June's half-year, trained on the weeks before each of them;
2. score the chosen setting once on July–December (26 test weeks, each trained on the weeks
   before it), next to the peer, naive counts over 12 weeks, and every method at its fixed
   default (clustering.choice.score_choice); 5% of the study cells flagged; the study area is
   every cell where a 2017 incident of any category fell;
3. print every row, the chosen one's PAI and PEI* as ratios to the peer's, and the paired
   bootstrap interval (over the test weeks) of its PAI minus the peer's.

Incident sets: all incidents, then burglary and robbery (fixed here before any was scored).
Then the timing goals: the choice on all 265k incidents (under 5 minutes) and a plain 40-week
backtest of the learned method, retrained every 4 weeks (under 60 s). Usage:

    .venv/bin/python bench/evaluate_chicago.py PATH_TO_CSV_GZ [--out bench/results/chicago]

Writes choice.csv, summary.csv, weeks.csv and pai.png per set and cell size under --out.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer

from app.reports.charts import backtest_chart, results_table_csv
from clustering.choice import BASELINE, ForecastChoice, score_choice
from clustering.evaluation import POLYGON_METHODS, Backtest

CHICAGO_TZ = "America/Chicago"
UTM_16N = 26916
TEST_FROM, TEST_TO = "2017-07-03", "2018-01-01"  # Monday of ISO week 27; the year's end
CELL_SIZES_M = (250.0, 150.0)
COVERAGE = 0.05
SETS = ("all", "BURGLARY", "ROBBERY")
GOAL_PAI_RATIO = 1.2


@dataclass
class Incidents:
    """Incidents in metres with aware local times and their categories."""

    xy: np.ndarray
    times: pd.DatetimeIndex
    category: np.ndarray

    def subset(self, keep: np.ndarray) -> Incidents:
        """The incidents where keep is True."""
        return Incidents(self.xy[keep], self.times[keep], self.category[keep])


def read_incidents(path: Path) -> Incidents:
    """Return the incidents with coordinates as UTM 16N metres, aware local times and types."""
    table = pd.read_csv(path, usecols=["Date", "Primary Type", "Latitude", "Longitude"])
    table = table.dropna(subset=["Latitude", "Longitude", "Date"])
    naive = pd.DatetimeIndex(pd.to_datetime(table["Date"], format="%m/%d/%Y %I:%M:%S %p"))
    times = naive.tz_localize(
        CHICAGO_TZ, ambiguous=np.zeros(len(naive), dtype=bool), nonexistent="shift_forward"
    )
    to_utm = Transformer.from_crs(4326, UTM_16N, always_xy=True)
    x, y = to_utm.transform(table["Longitude"].to_numpy(), table["Latitude"].to_numpy())
    category = table["Primary Type"].to_numpy(dtype=object)
    return Incidents(np.column_stack([x, y]), times, category)


def protocol(
    name: str,
    incidents: Incidents,
    cell_size_m: float,
    out: Path,
    *,
    tz: str,
    study: Incidents | None = None,
    area: shapely.Geometry | None = None,
    test_from: str = TEST_FROM,
    test_to: str = TEST_TO,
) -> float:
    """Choose on the first half-year, score on the second, print; return the choice's seconds."""
    first_half = np.asarray(incidents.times < pd.Timestamp(test_from, tz=tz))
    past = incidents.subset(first_half)
    study_past = None
    if study is not None:
        study_past = study.subset(np.asarray(study.times < pd.Timestamp(test_from, tz=tz)))
    started = time.perf_counter()
    choice = ForecastChoice(cell_size_m=cell_size_m, coverage=COVERAGE, tz=tz, before=test_from)
    choice.fit(
        past.xy,
        past.times,
        area=area,
        categories=past.category,
        study_points=None if study_past is None else study_past.xy,
        study_times=None if study_past is None else study_past.times,
    )
    choice_s = time.perf_counter() - started
    eligible = int(choice.table_["eligible"].sum())
    print(
        f"\n== {name}, {cell_size_m:g} m cells: {len(past.xy):,} incidents before {test_from}, "
        f"{len(incidents.xy) - len(past.xy):,} from it on"
    )
    print(
        f"choice: {eligible} of {len(choice.table_)} candidates fit the first half-year, "
        f"scored on {len(choice.selection_weeks_)} weeks, in {choice_s:.0f} s; the best ten:"
    )
    columns = ["pai", "pei_star", "hit_rate", "weeks_evaluated"]
    print(choice.table_.head(10)[columns].to_string(float_format="{:.3f}".format))
    print(f"chosen: {choice.chosen_.label} ({choice.reason_})")

    started = time.perf_counter()
    test = score_choice(
        choice.chosen_,
        incidents.xy,
        incidents.times,
        test_from=test_from,
        test_to=test_to,
        area=area,
        categories=incidents.category,
        study_points=None if study is None else study.xy,
        cell_size_m=cell_size_m,
        coverage=COVERAGE,
        tz=tz,
    )
    test_s = time.perf_counter() - started
    table = test.table.copy()
    peer = table.loc[BASELINE.label]
    table["pai × peer"] = table["pai"] / peer["pai"]
    table["pei* × peer"] = table["pei_star"] / peer["pei_star"]
    shown = ["role", "hit_rate", "pai", "pei_star", "coverage", "weeks_evaluated"]
    shown += ["pai × peer", "pei* × peer", "pai_minus_baseline", "low", "high"]
    print(f"test: {len(test.test_weeks)} weeks from {test_from}, scored once in {test_s:.0f} s")
    with pd.option_context("display.width", 200, "display.max_colwidth", 40):
        print(table[shown].to_string(float_format="{:.3f}".format))
    chosen = table.loc[choice.chosen_.label]
    met = (
        chosen["pai × peer"] >= GOAL_PAI_RATIO and chosen["pei* × peer"] > 1.0 and chosen["low"] > 0
    )
    print(
        f"chosen against the peer (naive 12 weeks) on the test weeks: PAI × "
        f"{chosen['pai × peer']:.3f}, PEI* × {chosen['pei* × peer']:.3f}, PAI difference "
        f"{chosen['pai_minus_baseline']:+.3f} (paired 95% interval {chosen['low']:+.3f} to "
        f"{chosen['high']:+.3f}); goal (PAI × {GOAL_PAI_RATIO}, PEI* above, interval above 0) "
        + ("met" if met else "not met")
    )
    folder = out / f"{name.lower().replace(' ', '-')}-{cell_size_m:g}m"
    write(choice, test, folder, f"{name}, {cell_size_m:g} m cells: PAI per test week")
    return choice_s


def write(choice: ForecastChoice, test: Any, folder: Path, title: str) -> None:
    """The choice, the test summary and weeks, and the chart."""
    folder.mkdir(parents=True, exist_ok=True)
    results_table_csv(choice.table_, folder / "choice.csv")
    results_table_csv(test.table, folder / "summary.csv")
    results_table_csv(test.results, folder / "weeks.csv")
    own = test.table[test.table["method"].isin(POLYGON_METHODS)]
    apart = {label: f"flags {row['coverage']:.1%}" for label, row in own.iterrows()}
    backtest_chart(test.results, folder / "pai.png", title=title, apart=apart)


def learned_backtest(incidents: Incidents, cell_size_m: float) -> float:
    """Time a plain backtest of the learned method over the year's 40 test weeks."""
    backtest = Backtest(
        train_weeks=12, cell_size_m=cell_size_m, tz=CHICAGO_TZ, methods=("learned",)
    )
    started = time.perf_counter()
    backtest.fit(incidents.xy, incidents.times, categories=incidents.category)
    seconds = time.perf_counter() - started
    summary = backtest.summary_.loc["learned"]
    weeks, every = len(backtest.test_weeks_), backtest.learned_retrain_weeks
    print(
        f"\nlearned, plain backtest: {weeks} test weeks at {cell_size_m:g} m, retrained every "
        f"{every} weeks, in {seconds:.0f} s (goal < 60 s); PAI {summary['pai']:.3f}"
    )
    return seconds


def main() -> None:
    """Run the protocol on every set and cell size, then the timing goals."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv_gz", type=Path)
    parser.add_argument("--out", type=Path, default=Path("bench/results/chicago"))
    args = parser.parse_args()

    started = time.perf_counter()
    incidents = read_incidents(args.csv_gz)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    print(f"{len(incidents.xy):,} incidents read in {time.perf_counter() - started:.1f} s")
    timings = {}
    for name in SETS:
        chosen = incidents if name == "all" else incidents.subset(incidents.category == name)
        study = None if name == "all" else incidents
        for cell in CELL_SIZES_M:
            label = "all incidents" if name == "all" else name.lower()
            timings[name, cell] = protocol(
                label, chosen, cell, args.out, tz=CHICAGO_TZ, study=study
            )
    print(
        f"\nchoice on all {len(incidents.xy):,} incidents' first half-year: "
        + ", ".join(f"{timings['all', c]:.0f} s at {c:g} m" for c in CELL_SIZES_M)
        + " (goal < 300 s)"
    )
    learned_backtest(incidents, 150.0)


if __name__ == "__main__":
    main()
