"""Benchmark: our grid DBSCAN against scikit-learn's DBSCAN on benchmark_points(n).

Every measurement runs in its own process, so that peak RSS (the process's own ru_maxrss) belongs
to one method, and every process runs under an address-space limit (RLIMIT_AS), so that
scikit-learn fails with a MemoryError instead of taking the machine down. Ours is measured
cold with an empty numba cache (the first call compiles), cold with the cache on disk, and warm
(median of --repeat calls after the first). The points are generated once and read from disk
by every process. Usage:

    .venv/bin/python bench/bench_dbscan.py [--sizes 100000 1000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

GB = 1024**3


@dataclass
class Measurement:
    """What one worker process reported."""

    first_s: float | None
    later_s: list[float]
    import_s: float
    peak_rss_mb: float
    error: str | None


def main() -> None:
    """Parse the arguments and run either the whole benchmark or one worker."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--eps-m", type=float, default=150.0)
    parser.add_argument("--min-samples", type=int, default=10)
    parser.add_argument("--limit-gb", type=float, default=16.0)
    parser.add_argument("--worker", choices=["ours", "sklearn"], help=argparse.SUPPRESS)
    parser.add_argument("--points", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        run_worker(args)
    else:
        run_benchmark(args)


def run_worker(args: argparse.Namespace) -> None:
    """Fit one method 1 + repeat times on the saved points; print a JSON report, save labels."""
    limit = int(args.limit_gb * GB)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    started = time.perf_counter()
    if args.worker == "ours":
        from clustering.dbscan import DBSCAN

        def fit(xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            model = DBSCAN(eps_m=args.eps_m, min_samples=args.min_samples).fit(xy)
            return model.labels_, model.core_mask_
    else:
        from sklearn import cluster as sklearn_cluster

        def fit(xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            model = sklearn_cluster.DBSCAN(eps=args.eps_m, min_samples=args.min_samples).fit(xy)
            core = np.zeros(len(xy), dtype=bool)
            core[model.core_sample_indices_] = True
            return model.labels_, core

    import_s = time.perf_counter() - started
    xy = np.load(args.points)
    times: list[float] = []
    error = None
    try:
        for _ in range(1 + args.repeat):
            t0 = time.perf_counter()
            labels, core = fit(xy)
            times.append(time.perf_counter() - t0)
        np.savez(args.out, labels=labels, core=core)
    except MemoryError:
        failed_after_s = time.perf_counter() - t0
        error = f"MemoryError under a {args.limit_gb:g} GB limit after {failed_after_s:.0f} s"
    report = {
        "first_s": times[0] if times else None,
        "later_s": times[1:],
        "import_s": import_s,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "error": error,
    }
    print(json.dumps(report))


def spawn(
    method: str, points: Path, out: Path, repeat: int, args: argparse.Namespace, env: dict
) -> Measurement:
    """Run one worker process and return its report (or the way it failed)."""
    command = [
        sys.executable,
        __file__,
        "--worker",
        method,
        "--points",
        str(points),
        "--out",
        str(out),
        "--repeat",
        str(repeat),
        "--eps-m",
        str(args.eps_m),
        "--min-samples",
        str(args.min_samples),
        "--limit-gb",
        str(args.limit_gb),
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return Measurement(None, [], 0.0, float("nan"), f"exit code {done.returncode}: {last}")
    return Measurement(**json.loads(done.stdout.strip().splitlines()[-1]))


def agreement(ours_file: Path, peer_file: Path) -> str:
    """Describe how the two label sets agree: ARI on core points, identical masks and labels."""
    from sklearn.metrics import adjusted_rand_score

    ours, peer = np.load(ours_file), np.load(peer_file)
    same_core = bool((ours["core"] == peer["core"]).all())
    core = peer["core"]
    ari = adjusted_rand_score(peer["labels"][core], ours["labels"][core]) if core.any() else 1.0
    same_labels = bool((ours["labels"] == peer["labels"]).all())
    return (
        f"ARI(core) {ari:.6f}, core masks {'identical' if same_core else 'DIFFER'}, "
        f"labels {'identical' if same_labels else 'differ'}"
    )


def run_benchmark(args: argparse.Namespace) -> None:
    """Measure both methods at every size and print one table."""
    import numba
    import sklearn

    from clustering.synthetic import benchmark_points

    print(
        f"DBSCAN eps {args.eps_m:g} m, min_samples {args.min_samples}; "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, numpy {np.__version__}, "
        f"numba {numba.__version__}, scikit-learn {sklearn.__version__}; "
        f"each process under RLIMIT_AS {args.limit_gb:g} GB"
    )
    rows: list[list[str]] = []
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-dbscan-") as tmp:
        for n in args.sizes:
            points = Path(tmp) / f"points-{n}.npy"
            np.save(points, benchmark_points(n))
            # A fresh numba cache per size: the first process compiles, the second loads.
            env = dict(os.environ, NUMBA_CACHE_DIR=str(Path(tmp) / f"numba-cache-{n}"))
            ours_out, peer_out = Path(tmp) / f"ours-{n}.npz", Path(tmp) / f"sklearn-{n}.npz"
            compiling = spawn("ours", points, ours_out, 0, args, env)
            cached = spawn("ours", points, ours_out, args.repeat, args, env)
            peer = spawn("sklearn", points, peer_out, args.repeat, args, env)

            warm = statistics.median(cached.later_s) if cached.later_s else None
            rows.append(_row("ours, cold (compiling)", n, compiling.first_s, compiling))
            rows.append(_row("ours, cold (numba cache)", n, cached.first_s, cached))
            rows.append(_row(f"ours, warm (median of {args.repeat})", n, warm, cached))
            if peer.error or not peer.later_s:
                rows.append(_row("scikit-learn", n, None, peer))
            else:
                peer_s = statistics.median(peer.later_s)
                ratio = f"{peer_s / warm:.1f}x" if warm else "-"
                agrees = agreement(ours_out, peer_out) if ours_out.exists() else "-"
                label = f"scikit-learn (median of {args.repeat})"
                rows.append(_row(label, n, peer_s, peer, ratio, agrees))
            notes.append(
                f"n={n}: imports not timed above: ours {cached.import_s:.2f} s, "
                f"scikit-learn {peer.import_s:.2f} s"
            )
    _print_table(rows)
    for note in notes:
        print(note)


def _row(
    method: str,
    n: int,
    seconds: float | None,
    measured: Measurement,
    ratio: str = "-",
    agrees: str = "-",
) -> list[str]:
    """One table row; a failed run shows its error instead of a time."""
    wall = f"{seconds:.2f}" if seconds is not None else f"failed: {measured.error}"
    rss = "?" if math.isnan(measured.peak_rss_mb) else f"{measured.peak_rss_mb:.0f}"
    return [method, f"{n:,}", wall, rss, ratio, agrees]


def _print_table(rows: list[list[str]]) -> None:
    """Print rows under a header, columns padded to their widest cell."""
    header = ["method", "n", "wall s", "peak RSS MB", "peer/ours (warm)", "labels agree"]
    table: list[list[Any]] = [header, *rows]
    widths = [max(len(str(r[i])) for r in table) for i in range(len(header))]
    for i, r in enumerate(table):
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))


if __name__ == "__main__":
    main()
