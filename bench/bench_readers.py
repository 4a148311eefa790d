"""Benchmark: reading the Chicago 2017 crimes CSV with the chicago mapping, against pandas.read_csv.

Ours: read_batches(path, load_mapping("chicago")) to the end, in batches of 50,000: gunzip, cut
the records and count their fields (numpy), parse the 7 mapped columns (pandas' C parser), the
local times with America/Chicago's DST rules, the category map, lon/lat and the description
template into RawBatch objects. The peer is the floor: pandas.read_csv(path, dtype=str,
keep_default_na=False) of the same file, all 19 columns as text and nothing parsed. For
reference, the same call with usecols= the 7 mapped columns is timed too (ours reads only those).
Each is timed --repeat times, alternating, and the best is reported. Usage:

    .venv/bin/python bench/bench_readers.py chicago_crimes_2017.csv.gz [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from app.ingest.mapping import load_mapping
from app.ingest.readers import ReadTotals, read_batches


def main() -> None:
    """Time ours and the peers on one file and print rows/s and the ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    mapping = load_mapping("chicago")
    columns = mapping.columns()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    print(f"file: {args.path.name}, {args.path.stat().st_size / 1e6:.1f} MB")

    summary: list[str] = []

    def ours() -> int:
        totals = ReadTotals()
        stored = errors = 0
        for batch in read_batches(args.path, mapping):
            totals.add(batch)
            stored += len(batch.batch)
            errors += len(batch.batch.errors)
        summary[:] = [
            f"ours: {totals.rows_read:,} rows read, {stored:,} in batches ({errors} with reader "
            f"errors), {sum(totals.not_incident.values())} not incidents",
            *totals.warnings,
        ]
        return totals.rows_read

    def floor() -> int:
        return len(pd.read_csv(args.path, dtype=str, keep_default_na=False))

    def mapped_columns() -> int:
        return len(pd.read_csv(args.path, dtype=str, keep_default_na=False, usecols=columns))

    runs: dict[str, Callable[[], int]] = {
        "ours (read_batches, chicago mapping)": ours,
        "pandas.read_csv dtype=str (floor)": floor,
        "pandas.read_csv dtype=str, usecols=7": mapped_columns,
    }
    best = {name: float("inf") for name in runs}
    rows = dict.fromkeys(runs, 0)
    for _ in range(args.repeat):
        for name, run in runs.items():
            start = time.perf_counter()
            rows[name] = run()
            best[name] = min(best[name], time.perf_counter() - start)
    print("\n".join(summary))
    ours_rate = rows["ours (read_batches, chicago mapping)"] / best[next(iter(runs))]
    print(f"{'':38} {'rows':>9} {'best s':>7} {'rows/s':>10} {'ours ×':>7}")
    for name in runs:
        rate = rows[name] / best[name]
        print(
            f"{name:38} {rows[name]:>9,} {best[name]:>7.3f} {rate:>10,.0f} {ours_rate / rate:>7.2f}"
        )


if __name__ == "__main__":
    main()
