"""`est evaluate`: a rolling backtest from a file, as a table, a CSV and a chart."""

from __future__ import annotations

import csv
from pathlib import Path

from typer.testing import CliRunner

from app.cli import app
from tests.cli.test_analyze import _write_est_csv

runner = CliRunner()


def test_evaluate_writes_the_table_csv_and_chart(tmp_path: Path) -> None:
    src, out = tmp_path / "in.csv", tmp_path / "eval"
    _write_est_csv(src, 3000)  # two persistent hotspots over 8 weeks
    result = runner.invoke(
        app,
        [
            "evaluate",
            str(src),
            "--train-weeks",
            "3",
            "--coverage",
            "0.05",
            "--cell-size-m",
            "100",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    rows = {r["method"]: r for r in csv.DictReader((out / "summary.csv").open())}
    assert set(rows) >= {"naive", "kde", "gistar", "dbscan", "prospective", "random"}
    # the hotspots persist: counting last weeks' incidents beats flagging at random by far
    assert float(rows["naive"]["pai"]) > 3 * float(rows["random"]["pai"])
    assert (out / "pai.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "naive" in result.output and "pai" in result.output
