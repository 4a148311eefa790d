"""Benchmark: our emerging hot spot analysis against esda's G_Local on one week of the same cube.

1,000,000 incidents from clustering.synthetic.generate_incidents over a 60 × 60 km square and 12
ISO weeks (Europe/Stockholm) from Monday 5 January 2026: 300 Gaussian hotspots of 50–400 m spread,
each persisting, emerging or fading, and 30% uniform background; incidents outside the square are
dropped, so 100 m cells fill exactly a 600 × 600 grid (360,000 cells × 12 steps). Ours is
EmergingHotspots(cell_size_m=100, distance_band_m=300, neighbourhood_time_step=1,
window_steps=12).fit(points, times): weekly binning, space-time Gi* over all 4.32 million
bins, FDR per week, Mann–Kendall per cell and the ArcGIS classes, timed warm (best of --repeat).

No Python library computes the space-time statistic itself, so the peer is what a Python user
would pay per time slice: libpysal.weights.DistanceBand(centres, threshold=300, binary=True) and
esda.G_Local(counts, w, transform="B", star=True, permutations=0) on the first week's 360,000
cell counts (binned untimed), each timed once. That is one slice of twelve with a spatial-only
neighbourhood, no FDR, trend or classes: a lower bound on the peer's cost for the same job, and
its z-scores are not ours (a different neighbourhood), so they are not compared. Each side runs
in its own process so that its peak RSS (ru_maxrss) is its own. Usage:

    .venv/bin/python bench/bench_emerging.py [--n 1000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

CELL_M = 100.0
SIZE_M = 60_000.0
BAND_M = 300.0
WEEKS = 12
START = datetime(2026, 1, 5, tzinfo=ZoneInfo("Europe/Stockholm"))  # a Monday
END = datetime(2026, 3, 30, tzinfo=ZoneInfo("Europe/Stockholm"))  # 12 weeks later


def main() -> None:
    """Parse the arguments and run either the whole benchmark or one worker."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--worker", choices=["ours", "esda"], help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        report = run_ours(args) if args.worker == "ours" else run_esda(args)
        report["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(report))
        return
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "incidents.npz"
        kept = write_incidents(args.n, data)
        ours = worker("ours", data, args.repeat)
        esda = worker("esda", data, args.repeat)
    peer_s = esda["weights_s"] + esda["g_local_s"]
    print(
        f"{kept:,} incidents in the square ({args.n:,} generated) over {WEEKS} weeks; "
        f"{ours['cells']:,} cells × {ours['steps']} steps, distance band {BAND_M:g} m, "
        "one previous week in each neighbourhood, FDR per week (ours)"
    )
    print(f"{'':40} {'time s':>9} {'peak RSS MB':>12}")
    print(
        f"{'ours EmergingHotspots.fit (12 weeks)':40} {ours['fit_s']:>9.2f} "
        f"{ours['peak_rss_mb']:>12.0f}"
    )
    print(f"{'esda DistanceBand weights (1 week)':40} {esda['weights_s']:>9.2f}")
    print(f"{'esda G_Local(star=True) (1 week)':40} {esda['g_local_s']:>9.2f}")
    print(f"{'esda total (1 week)':40} {peer_s:>9.2f} {esda['peak_rss_mb']:>12.0f}")
    print(
        f"ratio esda one week / ours twelve weeks: {peer_s / ours['fit_s']:.1f}×  "
        f"(G_Local alone: {esda['g_local_s'] / ours['fit_s']:.1f}×)"
    )
    patterns = ", ".join(f"{name} {count:,}" for name, count in ours["patterns"].items())
    print(f"ours, cells per pattern: {patterns}")


def write_incidents(n: int, path: Path) -> int:
    """Generate the incidents, keep those inside the square and save them; return how many."""
    from clustering.synthetic import TRENDS, HotspotSpec, generate_incidents

    rng = np.random.default_rng(0)
    margin = 800.0
    specs = [
        HotspotSpec(
            x_m=float(rng.uniform(margin, SIZE_M - margin)),
            y_m=float(rng.uniform(margin, SIZE_M - margin)),
            sigma_m=float(rng.uniform(50.0, 400.0)),
            weight=float(rng.pareto(1.5) + 1.0),
            trend=TRENDS[i % len(TRENDS)],
        )
        for i in range(300)
    ]
    incidents = generate_incidents(
        specs,
        n,
        start=START,
        weeks=WEEKS,
        background_share=0.3,
        bounds=(0.0, 0.0, SIZE_M, SIZE_M),
        seed=1,
    )
    xy = incidents.xy
    inside = ((xy >= 0) & (xy < SIZE_M)).all(axis=1)
    np.savez(path, xy=xy[inside], time=incidents.time[inside])
    return int(inside.sum())


def worker(name: str, data: Path, repeat: int) -> dict[str, Any]:
    """Run one side in a fresh process and return what it reported."""
    command = [sys.executable, __file__, "--worker", name, "--data", str(data)]
    command += ["--repeat", str(repeat)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{name} worker failed:\n{done.stderr}")
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


def run_ours(args: argparse.Namespace) -> dict[str, Any]:
    """Fit our analysis --repeat times and report the best time and the pattern counts."""
    from clustering.emerging import PATTERNS, EmergingHotspots

    data = np.load(args.data)
    xy, times = data["xy"], data["time"]
    warm = EmergingHotspots(cell_size_m=CELL_M, distance_band_m=BAND_M)
    warm.fit(xy[:20_000], times[:20_000], end=END)  # warm, untimed
    best = np.inf
    for _ in range(args.repeat):
        start = time.perf_counter()
        fitted = EmergingHotspots(
            cell_size_m=CELL_M,
            distance_band_m=BAND_M,
            neighbourhood_time_step=1,
            window_steps=WEEKS,
        )
        fitted.fit(xy, times, end=END)
        best = min(best, time.perf_counter() - start)
    assert fitted.window_.shape == (600, 600), fitted.window_
    names, counts = np.unique(fitted.pattern_[fitted.cell_mask_], return_counts=True)
    found = dict(zip(names.tolist(), counts.tolist(), strict=True))
    patterns = {name: found[name] for name in PATTERNS if name in found}
    return {
        "fit_s": best,
        "cells": int(fitted.cell_mask_.sum()),
        "steps": int(fitted.counts_.shape[0]),
        "patterns": patterns,
    }


def run_esda(args: argparse.Namespace) -> dict[str, Any]:
    """Bin the first week, build DistanceBand weights and run G_Local once, timing each."""
    import esda
    import libpysal
    import pandas as pd

    from geo.grid import GridWindow

    data = np.load(args.data)
    xy, times = data["xy"], data["time"]
    first_week = pd.to_datetime(times, utc=True) < pd.Timestamp(START) + pd.Timedelta(weeks=1)
    window = GridWindow.from_bounds((0.0, 0.0, SIZE_M - 1e-6, SIZE_M - 1e-6), CELL_M)
    counts = window.bin(xy[first_week, 0], xy[first_week, 1]).ravel()
    cx, cy = window.centres()
    centres = np.column_stack([cx.ravel(), cy.ravel()])
    start = time.perf_counter()
    w = libpysal.weights.DistanceBand(centres, threshold=BAND_M, binary=True, silence_warnings=True)
    weights_s = time.perf_counter() - start
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        esda.G_Local(counts, w, transform="B", star=True, permutations=0)
        g_local_s = time.perf_counter() - start
    return {"weights_s": weights_s, "g_local_s": g_local_s, "cells": int(counts.size)}


if __name__ == "__main__":
    main()
