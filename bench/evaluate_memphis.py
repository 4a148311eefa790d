"""Forecasts chosen on the past with small counts: Memphis personal robberies, 2019.

The protocol of bench/evaluate_chicago.py (choose on January–June only, score once on
July–December against 12-week naive counts, 5% of the cells, 250 m and 150 m) on the 2,245
robberies of the sfhotspot package (../shared/data/memphis-robberies-2019): about 43 a week over
the city, so few per cell that the paired interval is the point. The study area is the union of
the nine police precincts (repaired with make_valid: one is stored invalid). The times are the
local wall-clock times stored as UTC (see SOURCE.md), so they are read as Memphis local time
(America/Chicago); coordinates in UTM 16N. The test weeks start on Monday 1 July 2019. Usage:

    .venv/bin/python bench/evaluate_memphis.py DATA_DIR [--out bench/results/memphis]

DATA_DIR holds memphis_robberies_2019.csv and memphis_precincts.geojson.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from evaluate_chicago import CELL_SIZES_M, CHICAGO_TZ, UTM_16N, Incidents, protocol
from pyproj import Transformer

TEST_FROM, TEST_TO = "2019-07-01", "2020-01-01"  # the Monday of ISO week 27; the year's end


def read_robberies(folder: Path) -> tuple[Incidents, shapely.Geometry]:
    """The robberies in UTM 16N metres with aware local times, and the precincts' union."""
    table = pd.read_csv(folder / "memphis_robberies_2019.csv")
    wall = pd.DatetimeIndex(pd.to_datetime(table["date"], utc=True).dt.tz_localize(None))
    times = wall.tz_localize(
        CHICAGO_TZ, ambiguous=np.zeros(len(wall), dtype=bool), nonexistent="shift_forward"
    )
    to_utm = Transformer.from_crs(4326, UTM_16N, always_xy=True)
    x, y = to_utm.transform(table["lon"].to_numpy(), table["lat"].to_numpy())
    category = table["offense_type"].to_numpy(dtype=object)
    precincts = gpd.read_file(folder / "memphis_precincts.geojson").to_crs(UTM_16N)
    area = shapely.union_all(shapely.make_valid(precincts.geometry.values))
    return Incidents(np.column_stack([x, y]), times, category), area


def main() -> None:
    """Run the protocol at both cell sizes."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--out", type=Path, default=Path("bench/results/memphis"))
    args = parser.parse_args()
    started = time.perf_counter()
    robberies, area = read_robberies(args.data_dir)
    print(f"{len(robberies.xy):,} robberies read in {time.perf_counter() - started:.1f} s")
    for cell in CELL_SIZES_M:
        protocol(
            "memphis robberies", robberies, cell, args.out, tz=CHICAGO_TZ, area=area,
            test_from=TEST_FROM, test_to=TEST_TO,
        )  # fmt: skip


if __name__ == "__main__":
    main()
