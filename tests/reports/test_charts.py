"""Backtest output for people: the PAI chart as a PNG and the tables as CSV."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from app.reports.charts import backtest_chart, results_table_csv
from clustering.evaluation import Backtest
from tests.clustering.test_evaluation import hand_case


def test_chart_and_tables_are_written(tmp_path: Path) -> None:
    xy, times = hand_case()
    bt = Backtest(train_weeks=2, coverage=0.1, cell_size_m=100, tz="UTC", methods=("naive",))
    bt.fit(xy, times)
    png = backtest_chart(bt.results_, tmp_path / "out" / "pai.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary_csv = results_table_csv(bt.summary_, tmp_path / "summary.csv")
    weeks_csv = results_table_csv(bt.results_, tmp_path / "weeks.csv")
    back = pd.read_csv(summary_csv, index_col="method")
    assert back.loc["naive", "weeks_evaluated"] == 2
    assert back.loc["naive", "pai"] == pytest.approx(bt.summary_.loc["naive", "pai"], rel=1e-5)
    assert len(pd.read_csv(weeks_csv)) == 2
    with pytest.raises(ValueError, match="lacks columns"):
        backtest_chart(bt.summary_, tmp_path / "bad.png")


def test_importing_the_charts_leaves_matplotlib_unloaded() -> None:
    code = "import sys, app.reports.charts; print('matplotlib' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
