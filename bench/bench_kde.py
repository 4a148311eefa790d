"""Benchmark: our kernel density against scikit-learn's KernelDensity at the same cell centres.

Points come from clustering.synthetic.benchmark_points(n) (60 × 60 km); the grid is 600 × 600
cells of 100 m over that square; the kernel is a Gaussian of 250 m. Ours fits on the points'
window (their extent padded by 5 bandwidths, a superset of the 600 × 600 cells) and is timed warm
(numba compiled; median and best of --repeat calls, the ratio on the median). The peer is
sklearn.neighbors.KernelDensity(bandwidth=250, kernel="gaussian") with its defaults (exact:
atol = rtol = 0), fitted on the same points and asked for score_samples at the cell centres.
Exact evaluation cost it ~4 ms per centre at 100k points on a 2-core test machine and ~25× that
at 1M: hours for all 360,000 centres. So by default it runs on a fixed random subset of
--peer-cells centres (2,000), its time scaled to all 360,000, as the output says (--peer-cells
360000 runs it in full; --peer-cells 0 skips it, timing ours alone). The error column is the
largest relative difference to the peer on those centres where the density is above 1% of the
grid's maximum (taken from ours over all 360,000 cells). Usage:

    .venv/bin/python bench/bench_kde.py [--sizes 100000 1000000] [--peer-cells N] [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
from sklearn.neighbors import KernelDensity as SklearnKernelDensity

from clustering.kde import KernelDensity, _gaussian_plan
from clustering.synthetic import benchmark_points

CELL_M = 100.0
GRID_CELLS = 600
BANDWIDTH_M = 250.0


def main() -> None:
    """Run the benchmark for every size and print one table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--peer-cells", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()

    subdivision, order = _gaussian_plan(CELL_M, BANDWIDTH_M)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    print(
        f"grid {GRID_CELLS} × {GRID_CELLS} cells of {CELL_M:g} m, Gaussian bandwidth "
        f"{BANDWIDTH_M:g} m; ours: Hermite moments of order {order} on cell/{subdivision}"
    )
    centres = cell_centres_of_grid()
    peer_rows = np.arange(len(centres))
    if 0 < args.peer_cells < len(centres):
        peer_rows = np.sort(np.random.default_rng(0).choice(len(centres), args.peer_cells, False))
        print(f"peer evaluated on {len(peer_rows):,} fixed random cell centres; 'sklearn all s' "
              f"is its measured time × {len(centres) / len(peer_rows):.0f}, scaled to all "
              f"{len(centres):,}; 'compared': those centres above 1% of the maximum")  # fmt: skip

    # Compile once, untimed.
    KernelDensity(cell_size_m=CELL_M, bandwidth_m=BANDWIDTH_M).fit(benchmark_points(1000))
    header = (
        f"{'points':>10} {'ours median s':>14} {'ours min s':>11} {'sklearn measured s':>19} "
        f"{'sklearn all s':>14} {'ratio':>8} {'max rel err':>12} {'compared':>9}"
    )
    print(header, flush=True)
    for n in args.sizes:
        xy = benchmark_points(n)
        times, density = time_ours(xy, args.repeat)
        ours_s = float(np.median(times))
        row = f"{n:>10,} {ours_s:>14.4f} {min(times):>11.4f}"
        if args.peer_cells > 0:
            measured_s, peer = time_peer(xy, centres[peer_rows])
            peer_s = measured_s * len(centres) / len(peer_rows)
            ours_at_peer = density.ravel()[peer_rows]
            big = peer > 0.01 * float(np.nanmax(density))
            error = float((np.abs(ours_at_peer[big] - peer[big]) / peer[big]).max())
            row += (
                f" {measured_s:>19.2f} {peer_s:>14.0f} {peer_s / ours_s:>7.0f}× "
                f"{error:>12.2e} {int(big.sum()):>9,}"
            )
        print(row, flush=True)


def cell_centres_of_grid() -> np.ndarray:
    """The 600 × 600 cell centres, row by row from the south-west corner, as (n, 2) metres."""
    c = (np.arange(GRID_CELLS) + 0.5) * CELL_M
    cx, cy = np.meshgrid(c, c)
    return np.column_stack([cx.ravel(), cy.ravel()])


def time_ours(xy: np.ndarray, repeat: int) -> tuple[list[float], np.ndarray]:
    """Wall times of `repeat` fits, and the density on the 600 × 600 cells (per km²)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        kde = KernelDensity(cell_size_m=CELL_M, bandwidth_m=BANDWIDTH_M).fit(xy)
        times.append(time.perf_counter() - start)
    w = kde.window_
    r0, c0 = -w.iy0, -w.ix0
    return times, kde.density_[r0 : r0 + GRID_CELLS, c0 : c0 + GRID_CELLS]


def time_peer(xy: np.ndarray, centres: np.ndarray) -> tuple[float, np.ndarray]:
    """Wall time of scikit-learn's fit + score_samples, and its density per km² at the centres."""
    start = time.perf_counter()
    peer = SklearnKernelDensity(bandwidth=BANDWIDTH_M, kernel="gaussian").fit(xy)
    log_density = peer.score_samples(centres)
    elapsed = time.perf_counter() - start
    # scikit-learn's density integrates to 1; ours counts incidents per km².
    return elapsed, np.exp(log_density) * len(xy) * 1e6


if __name__ == "__main__":
    main()
