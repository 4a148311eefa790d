"""Benchmark: our Gi* (with FDR) against esda's G_Local(star=True) on libpysal DistanceBand weights.

The points are clustering.synthetic.benchmark_points(n) kept inside the 60 × 60 km square, so
binned to 100 m cells they fill exactly a 600 × 600 grid (360,000 study cells, the points'
window); the distance band is 300 m (29 neighbours per cell, self included). Every
implementation runs in its own process so that its peak RSS (the process's own ru_maxrss) is its
own; the points are generated once and read from disk by both. Ours is
GiStar(cell_size_m=100, distance_band_m=300, fdr=True).fit(points): binning, z, p,
Benjamini–Hochberg and bins, timed warm (best of --repeat). The peer gets the same cell counts
(binned untimed) and we time, separately, libpysal.weights.DistanceBand(centres, threshold=300,
binary=True) and esda.G_Local(counts, w, transform="B", star=True, permutations=0). The z column
compares our z with esda's Zs. Usage:

    .venv/bin/python bench/bench_gistar.py [--sizes 1000000] [--repeat 3]
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
from pathlib import Path
from typing import Any

import numpy as np

CELL_M = 100.0
SIZE_M = 60_000.0
BAND_M = 300.0


def main() -> None:
    """Parse the arguments and run either the whole benchmark or one worker."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--worker", choices=["ours", "esda"], help=argparse.SUPPRESS)
    parser.add_argument("--points", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        report = run_ours(args) if args.worker == "ours" else run_esda(args)
        report["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(report))
        return
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    print(f"grid 600 × 600 cells of {CELL_M:g} m, distance band {BAND_M:g} m, FDR on (ours)")
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            run_size(n, Path(tmp), args.repeat)


def run_size(n: int, tmp: Path, repeat: int) -> None:
    """Measure both implementations on n points and print their table."""
    from clustering.synthetic import benchmark_points

    xy = benchmark_points(n)
    inside = ((xy >= 0) & (xy < SIZE_M)).all(axis=1)
    points = tmp / "points.npy"
    np.save(points, xy[inside])
    ours = worker("ours", points, tmp / "ours.npy", repeat)
    esda = worker("esda", points, tmp / "esda.npy", repeat)
    z_diff = float(np.nanmax(np.abs(np.load(tmp / "ours.npy") - np.load(tmp / "esda.npy"))))
    peer_s = esda["weights_s"] + esda["g_local_s"]
    print(
        f"\n{int(inside.sum()):,} points in the square ({n:,} generated), {ours['cells']:,} cells"
    )
    print(f"{'':28} {'time s':>9} {'peak RSS MB':>12}")
    print(f"{'ours GiStar.fit (FDR)':28} {ours['fit_s']:>9.3f} {ours['peak_rss_mb']:>12.0f}")
    print(f"{'esda DistanceBand weights':28} {esda['weights_s']:>9.2f}")
    print(f"{'esda G_Local(star=True)':28} {esda['g_local_s']:>9.2f}")
    print(f"{'esda total':28} {peer_s:>9.2f} {esda['peak_rss_mb']:>12.0f}")
    print(f"ratio esda total / ours: {peer_s / ours['fit_s']:.0f}×  "
          f"(G_Local alone: {esda['g_local_s'] / ours['fit_s']:.0f}×); "
          f"max |z ours - Zs esda| = {z_diff:.1e}; ours: {ours['hot']:,} cells in bin 3, "
          f"{ours['cold']:,} in bin -3")  # fmt: skip


def worker(name: str, points: Path, out: Path, repeat: int) -> dict[str, Any]:
    """Run one implementation in a fresh process and return what it reported."""
    command = [
        sys.executable,
        __file__,
        "--worker",
        name,
        "--points",
        str(points),
        "--out",
        str(out),
    ]
    command += ["--repeat", str(repeat)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{name} worker failed:\n{done.stderr}")
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


def run_ours(args: argparse.Namespace) -> dict[str, Any]:
    """Fit our Gi* --repeat times; save z (row-major over the window) and report the best time."""
    from clustering.gistar import GiStar

    xy = np.load(args.points)
    # Warm the imports and caches, untimed.
    GiStar(cell_size_m=CELL_M, distance_band_m=BAND_M).fit(xy[:10_000])
    best = np.inf
    for _ in range(args.repeat):
        start = time.perf_counter()
        gi = GiStar(cell_size_m=CELL_M, distance_band_m=BAND_M, fdr=True).fit(xy)
        best = min(best, time.perf_counter() - start)
    assert gi.window_.shape == (600, 600), gi.window_
    np.save(args.out, gi.z_.ravel())
    hot, cold = int((gi.bins_ == 3).sum()), int((gi.bins_ == -3).sum())
    return {"fit_s": best, "cells": int(gi.cell_mask_.sum()), "hot": hot, "cold": cold}


def run_esda(args: argparse.Namespace) -> dict[str, Any]:
    """Build DistanceBand weights and run G_Local once, timing each; save Zs."""
    import esda
    import libpysal

    from geo.grid import GridWindow

    xy = np.load(args.points)
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    window = GridWindow.from_bounds((lo[0], lo[1], hi[0], hi[1]), CELL_M)
    counts = window.bin(xy[:, 0], xy[:, 1]).ravel()
    cx, cy = window.centres()
    centres = np.column_stack([cx.ravel(), cy.ravel()])
    start = time.perf_counter()
    w = libpysal.weights.DistanceBand(centres, threshold=BAND_M, binary=True, silence_warnings=True)
    weights_s = time.perf_counter() - start
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        g = esda.G_Local(counts, w, transform="B", star=True, permutations=0)
        g_local_s = time.perf_counter() - start
    np.save(args.out, np.asarray(g.Zs))
    return {"weights_s": weights_s, "g_local_s": g_local_s, "cells": int(counts.size)}


if __name__ == "__main__":
    main()
