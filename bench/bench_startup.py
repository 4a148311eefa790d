"""Benchmark: how long `est --help` takes to start, against the bare interpreter and Typer.

The peers are measured in the same run: `python -c pass` (the floor) and a Typer app of one
command (what any Typer CLI costs). Each is run --repeat times in a fresh process; the median
and the minimum are printed, and the ratio of ours to the Typer floor. Usage:

    .venv/bin/python bench/bench_startup.py [--repeat 15]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TYPER_ONE = (
    "import typer\napp = typer.Typer()\n@app.command()\ndef hello() -> None: pass\n"
    "import sys; sys.argv = ['x', '--help']\ntry:\n    app()\nexcept SystemExit:\n    pass\n"
)
CASES = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "typer, one command, --help": [sys.executable, "-c", TYPER_ONE],
    "est --help": [sys.executable, "-m", "app.cli", "--help"],
    "est import --help": [sys.executable, "-m", "app.cli", "import", "--help"],
}


def measure(command: list[str], repeat: int) -> list[float]:
    """Wall-clock seconds of `repeat` runs of a command, output discarded."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(command, cwd=ROOT, stdout=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    """Measure every case and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    measure(CASES["est --help"], 2)  # warm the file cache and the bytecode
    medians = {}
    print(f"{'case':<30} {'median s':>9} {'min s':>7}")
    for name, command in CASES.items():
        times = measure(command, args.repeat)
        medians[name] = statistics.median(times)
        print(f"{name:<30} {medians[name]:>9.3f} {min(times):>7.3f}")
    ratio = medians["est --help"] / medians["typer, one command, --help"]
    print(f"est --help / one-command Typer app: {ratio:.2f}x (goal: est --help under 0.5 s)")


if __name__ == "__main__":
    main()
