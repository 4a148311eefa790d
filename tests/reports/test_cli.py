"""`est report` against the test database: the document, the texts, a hotspot's name."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from app.cli import app
from tests.reports.conftest import AREA, Perstorp

runner = CliRunner()


def _run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["report", *args])
    return result.exit_code, " ".join(result.output.split())


def test_est_report_writes_the_pdf_and_the_html(
    cli_env: None, perstorp: Perstorp, tmp_path: Path
) -> None:
    target = tmp_path / "perstorp.pdf"
    code, out = _run("--area", AREA, "--week", "2026-W48", "-o", str(target))
    assert code == 0, out
    assert f"the viewer report of Perstorp 2026-W48 (run {perstorp.runs['2026-W48']}" in out
    assert target.read_bytes().startswith(b"%PDF")
    page = tmp_path / "perstorp.html"
    code, out = _run(
        "--area",
        AREA,
        "--week",
        "2026-W48",
        "--format",
        "html",
        "--audience",
        "analyst",
        "-o",
        str(page),
    )
    assert code == 0, out
    assert "Analytikerversion" in page.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("--area", AREA), "give either --week 2026-W48 or --tertial 2026-T3"),
        (("--area", AREA, "--week", "2026-W60"), "--week: week 2026-W60 does not exist"),
        (("--area", AREA, "--week", "2026-W30"), "no published run of week 2026-W30"),
        (("--area", AREA, "--week", "2026-W48", "--format", "docx"), "--format must be pdf"),
        (("--area", "9999", "--week", "2026-W48"), "no area '9999'"),
    ],
)
def test_est_report_says_what_is_wrong(
    cli_env: None, perstorp: Perstorp, args: tuple[str, ...], said: str
) -> None:
    code, out = _run(*args)
    assert code == 1 and said in out, out


def test_est_report_texts_and_name(
    cli_env: None, perstorp: Perstorp, tmp_path: Path, system_engine: Engine
) -> None:
    note = tmp_path / "bedomning.txt"
    note.write_text("Lugnt i centrum.", encoding="utf-8")
    code, out = _run("texts", "--area", AREA, "--week", "2026-W47", "--assessment-file", str(note))
    assert code == 0 and "Lugnt i centrum." in out, out
    code, out = _run("texts", "--area", AREA, "--week", "2026-W47")
    assert "Lugnt i centrum." in out and "cli" in out
    with system_engine.connect() as conn:
        key = conn.scalar(
            text("SELECT hotspot_key FROM est.hotspot WHERE run_id = :r LIMIT 1"),
            {"r": perstorp.runs["2026-W47"]},
        )
    code, out = _run("name", str(key), "Torget", "--area", AREA, "--week", "2026-W47")
    assert code == 0 and "'Torget' from 2026-W47 on" in out, out
    code, out = _run("name", str(key), "--area", AREA, "--remove")
    assert code == 0 and "has no name now" in out
