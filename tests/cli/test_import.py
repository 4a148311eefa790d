"""`est import`: all or nothing by default, --accept-valid with a rejects file, repeatable, and
a kill halfway loses nothing and doubles nothing."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from app.cli import app
from app.core import MAPPINGS_DIR
from app.settings import Settings, get_settings
from tests.ingest.test_foreign_exports import STREET_MAPPING, incident_collection, street_file

runner = CliRunner()
HEADER = "external_id;category;occurred_from;occurred_to;lon;lat;location_precision;description"


def _rows(n: int, prefix: str, bad_every: int = 0) -> list[str]:
    rows = []
    for i in range(n):
        lon = 14.10 + (i % 500) * 0.0002  # in Älmhult
        lat = 56.52 + (i // 500 % 100) * 0.0003
        category = "nope" if bad_every and i % bad_every == 7 else "skadegorelse.klotter"
        rows.append(
            f"{prefix}{i};{category};2026-10-0{1 + i % 7}T12:00:00+02:00;;"
            f"{lon:.6f};{lat:.6f};address;rad {i}"
        )
    return rows


def _write(path: Path, rows: list[str]) -> Path:
    path.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    return path


@pytest.fixture()
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """Point the CLI (in process and in subprocesses) at the session's database."""
    env = {"EST_DATABASE_URL": settings.database_url}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    yield env
    get_settings.cache_clear()


def _count(engine: Engine, source: str) -> int:
    with engine.connect() as conn:
        return int(
            conn.scalar(text("SELECT count(*) FROM est.incident WHERE source = :s"), {"s": source})
            or 0
        )


def test_an_import_with_a_bad_row_stores_nothing_and_lists_every_reject(
    cli_env: dict[str, str], tmp_path: Path, system_engine: Engine, world: object
) -> None:
    path = _write(tmp_path / "bad.csv", _rows(100, "x", bad_every=30))
    result = runner.invoke(app, ["import", str(path), "--org", "ingest-test", "--source", "imp-a"])
    assert result.exit_code == 1
    said = " ".join(result.output.split())  # the console wraps long lines
    assert "nothing was imported" in said and "row 8, category: unknown category 'nope'" in said
    assert _count(system_engine, "imp-a") == 0
    rejects = list(
        csv.reader((tmp_path / "bad.csv.rejects.csv").open(encoding="utf-8-sig"), delimiter=";")
    )
    assert rejects[0] == ["row", "field", "reason", "value"]
    assert [r[0] for r in rejects[1:]] == ["8", "38", "68", "98"]
    assert rejects[1][1:] == ["category", "unknown category 'nope'", "nope"]
    with system_engine.connect() as conn:
        status = conn.scalar(text("SELECT status FROM est.import_job WHERE source = 'imp-a'"))
    assert status == "failed"


def test_accept_valid_stores_the_rest_and_a_second_run_changes_nothing(
    cli_env: dict[str, str], tmp_path: Path, system_engine: Engine, world: object
) -> None:
    path = _write(tmp_path / "mixed.csv", _rows(100, "y", bad_every=30))
    args = ["import", str(path), "--org", "ingest-test", "--source", "imp-b", "--accept-valid"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert _count(system_engine, "imp-b") == 96
    second = runner.invoke(app, args)
    assert second.exit_code == 0
    with system_engine.connect() as conn:
        counts = conn.execute(
            text(
                "SELECT counts, file_sha256, status FROM est.import_job WHERE source = 'imp-b' "
                "ORDER BY id"
            )
        ).all()
    assert [c.counts["created"] for c in counts] == [96, 0]
    assert [c.counts["unchanged"] for c in counts] == [0, 96]
    assert counts[0].file_sha256 == counts[1].file_sha256 and len(counts[0].file_sha256) == 64
    assert {c.status for c in counts} == {"succeeded"}


def test_a_killed_import_leaves_nothing_and_a_rerun_completes_it(
    cli_env: dict[str, str], tmp_path: Path, system_engine: Engine, world: object
) -> None:
    n = 300_000
    path = _write(tmp_path / "big.csv", _rows(n, "k"))
    cmd = [
        sys.executable,
        "-m",
        "app.cli",
        "import",
        str(path),
        "--org",
        "ingest-test",
        "--source",
        "imp-kill",
        "--batch-size",
        "20000",
    ]
    env = {**os.environ, **cli_env}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # wait until the import is under way: its record exists and rows are being staged
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with system_engine.connect() as conn:
            started = conn.scalar(
                text("SELECT count(*) FROM est.import_job WHERE source = 'imp-kill'")
            )
        if started:
            break
        time.sleep(0.05)
    time.sleep(1.5)
    assert proc.poll() is None, "the import finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert _count(system_engine, "imp-kill") == 0
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert _count(system_engine, "imp-kill") == n
    with system_engine.connect() as conn:
        jobs = conn.execute(
            text("SELECT status, counts FROM est.import_job WHERE source = 'imp-kill' ORDER BY id")
        ).all()
    assert [j.status for j in jobs] == ["running", "succeeded"]  # the killed one stays on record
    assert jobs[1].counts["created"] == n
    with system_engine.begin() as conn:  # the other tests need not page through these
        conn.execute(text("DELETE FROM est.incident WHERE source = 'imp-kill'"))


def test_a_key_repeated_in_the_file_counts_as_records_stored_in_file_order(
    cli_env: dict[str, str], tmp_path: Path, system_engine: Engine, world: object
) -> None:
    """Rows 1,001 to 1,500 fall in a second batch; some repeat keys of the first batch, one
    repeats a key of its own batch."""
    rows = _rows(1500, "d")
    rows[1100] = rows[10].replace("skadegorelse.klotter", "brand.anlagd")  # changes d10
    rows[1200] = rows[20]  # says d20 again
    rows[1300] = rows[1250].replace("rad 1250", "rad 1250, rättad")  # changes d1250 again
    path = _write(tmp_path / "repeats.csv", rows)
    args = ["import", str(path), "--org", "ingest-test", "--source", "imp-d", "--batch-size"]
    result = runner.invoke(app, [*args, "1000"])
    assert result.exit_code == 0, result.output
    with system_engine.connect() as conn:
        counts = conn.scalar(text("SELECT counts FROM est.import_job WHERE source = 'imp-d'"))
        stored = conn.execute(
            text(
                "SELECT external_id, category_code, description FROM est.incident "
                "WHERE source = 'imp-d' AND external_id IN ('d10', 'd1250')"
                " ORDER BY external_id"
            )
        ).all()
    assert (counts["created"], counts["updated"], counts["unchanged"]) == (1497, 2, 1)
    assert _count(system_engine, "imp-d") == 1497
    assert [tuple(r) for r in stored] == [
        ("d10", "brand.anlagd", "rad 10"),
        ("d1250", "skadegorelse.klotter", "rad 1250, rättad"),
    ]


def test_rejects_go_where_asked_and_an_unwritable_place_stops_the_import_before_it_starts(
    cli_env: dict[str, str], tmp_path: Path, system_engine: Engine, world: object
) -> None:
    path = _write(tmp_path / "some.csv", _rows(40, "r", bad_every=30))
    args = ["import", str(path), "--org", "ingest-test", "--source", "imp-r", "--accept-valid"]
    missing = tmp_path / "no-such-folder" / "rejects.csv"
    refused = runner.invoke(app, [*args, "--rejects", str(missing)])
    assert refused.exit_code == 1
    assert "cannot write the rejects to" in " ".join(refused.output.split())
    assert _count(system_engine, "imp-r") == 0
    chosen = tmp_path / "elsewhere.csv"
    result = runner.invoke(app, [*args, "--rejects", str(chosen)])
    assert result.exit_code == 0, result.output
    assert _count(system_engine, "imp-r") == 38
    assert chosen.read_text(encoding="utf-8-sig").splitlines()[1].startswith("8;category;")
    assert not (tmp_path / "some.csv.rejects.csv").exists()


def test_the_import_record_spans_the_import_and_a_failure_says_why(
    cli_env: dict[str, str], tmp_path: Path, system_engine: Engine, world: object
) -> None:
    good = _write(tmp_path / "span.csv", _rows(40_000, "span"))
    started = time.time()
    assert runner.invoke(app, ["import", str(good), "--org", "ingest-test", "--source", "imp-t"])
    took = time.time() - started
    bad = _write(tmp_path / "why.csv", _rows(100, "why", bad_every=30))
    runner.invoke(app, ["import", str(bad), "--org", "ingest-test", "--source", "imp-why"])
    with system_engine.begin() as conn:
        span = conn.execute(
            text(
                "SELECT status, extract(epoch FROM finished_at - started_at) AS seconds, "
                "heartbeat_at FROM est.import_job WHERE source = 'imp-t'"
            )
        ).one()
        why = conn.execute(
            text("SELECT status, error, finished_at FROM est.import_job WHERE source = 'imp-why'")
        ).one()
        conn.execute(text("DELETE FROM est.incident WHERE source = 'imp-t'"))
    # wall-clock times, not the transaction's: the record spans most of what the command took
    assert span.status == "succeeded" and 0.3 * took < float(span.seconds) <= took
    assert span.heartbeat_at is not None
    assert why.status == "failed" and why.finished_at is not None
    assert "row 8, category: unknown category 'nope'" in why.error


def test_times_without_an_offset_are_read_in_est_timezone(
    cli_env: dict[str, str],
    tmp_path: Path,
    system_engine: Engine,
    world: object,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EST_TIMEZONE", "America/Chicago")
    get_settings.cache_clear()
    path = tmp_path / "naive.csv"
    path.write_text(
        f"{HEADER}\nn1;skadegorelse.klotter;2026-10-04T23:30:00;;14.1375;56.551;address;x\n",
        encoding="utf-8",
    )
    # the est format without its own zone (the shipped preset says Europe/Stockholm)
    est = (MAPPINGS_DIR / "est.yaml").read_text(encoding="utf-8")
    mapping = tmp_path / "est-no-zone.yaml"
    mapping.write_text(est.replace("  timezone: Europe/Stockholm\n", ""), encoding="utf-8")
    assert "timezone" not in mapping.read_text(encoding="utf-8")
    args = ["import", str(path), "--org", "ingest-test", "--source", "imp-n", "--mapping"]
    result = runner.invoke(app, [*args, str(mapping)])
    assert result.exit_code == 0, result.output
    with system_engine.begin() as conn:
        stored = conn.scalar(text("SELECT occurred_from FROM est.incident WHERE source = 'imp-n'"))
        conn.execute(text("DELETE FROM est.incident WHERE source = 'imp-n'"))
    assert stored == datetime(2026, 10, 5, 4, 30, tzinfo=UTC)  # 23:30 CDT is 04:30 UTC


# --- foreign exports -------------------------------------------------------------------------


def _mapping_file(path: Path, mapping: dict[str, object]) -> Path:
    path.write_text(yaml.safe_dump(mapping, allow_unicode=True), encoding="utf-8")
    return path


def test_a_file_without_ids_keeps_every_report_and_a_second_import_is_all_unchanged(
    cli_env: dict[str, str], tmp_path: Path, system_engine: Engine, world: object
) -> None:
    path = street_file(tmp_path / "street.csv")
    mapping = _mapping_file(tmp_path / "street.yaml", {**STREET_MAPPING, "source": "imp-uk"})
    args = ["import", str(path), "--org", "ingest-test", "--mapping", str(mapping)]
    first = runner.invoke(app, args)
    again = runner.invoke(app, args)
    assert first.exit_code == again.exit_code == 0, first.output
    with system_engine.begin() as conn:
        counts = conn.scalars(
            text("SELECT counts FROM est.import_job WHERE source = 'imp-uk' ORDER BY id")
        ).all()
        stored = conn.execute(
            text(
                "SELECT i.external_id, c.sensitive, i.occurred_from, i.occurred_to "
                "FROM est.incident i JOIN est.category c ON c.code = i.category_code "
                "WHERE i.source = 'imp-uk' ORDER BY i.external_id"
            )
        ).all()
        conn.execute(text("DELETE FROM est.incident WHERE source = 'imp-uk'"))
    assert [(c["created"], c["unchanged"]) for c in counts] == [(6, 0), (0, 6)]
    assert len(stored) == 6  # the three identical reports are three incidents
    by_id = {r.external_id: r for r in stored}
    assert by_id["a1f9"].sensitive  # "Violence and sexual offences" is never shown to viewers
    assert not by_id["b2c7"].sensitive
    assert {(r.occurred_from, r.occurred_to) for r in stored} == {
        (datetime(2018, 6, 30, 23, tzinfo=UTC), datetime(2018, 7, 31, 23, tzinfo=UTC))
    }


def test_ids_repeated_in_a_file_are_reported_on_every_import(
    cli_env: dict[str, str], tmp_path: Path, system_engine: Engine, world: object
) -> None:
    rows = _rows(20, "rep")
    rows[8] = rows[2].replace("rad 2", "rad 2, igen")  # rep2 again, saying something else
    rows[15] = rows[2]  # and once more as the first said
    path = _write(tmp_path / "repeats.csv", rows)
    args = ["import", str(path), "--org", "ingest-test", "--source", "imp-rep"]
    first, again = runner.invoke(app, args), runner.invoke(app, args)
    assert first.exit_code == again.exit_code == 0, first.output
    for result in (first, again):
        said = " ".join(result.output.split())
        assert "warning: 1 id appears more than once (2 rows repeat an earlier row's id)" in said
        assert "'rep2' in rows 3, 9 and 16" in said
    with system_engine.begin() as conn:
        counts = conn.scalars(
            text("SELECT counts FROM est.import_job WHERE source = 'imp-rep' ORDER BY id")
        ).all()
        conn.execute(text("DELETE FROM est.incident WHERE source = 'imp-rep'"))
    assert [(c["created"], c["updated"], c["repeated_ids"]) for c in counts] == [
        (18, 2, 1),
        (0, 2, 1),  # the same file again: rep2 changes twice, as the file says
    ]


def test_many_shared_points_are_summarised_and_every_one_is_in_the_notes_file(
    cli_env: dict[str, str],
    tmp_path: Path,
    system_engine: Engine,
    world: object,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EST_SHARED_POINT_WARNING", "3")
    get_settings.cache_clear()
    rows = [
        f"sp{p}-{k};skadegorelse.klotter;2026-10-01T12:00:00+02:00;;"
        f"{14.10 + p * 0.001:.4f};56.5400;address;x"
        for p in range(12)
        for k in range(3 + p)
    ]
    path = _write(tmp_path / "shared.csv", rows)
    result = runner.invoke(app, ["import", str(path), "--org", "ingest-test", "--source", "imp-sp"])
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert "warning: 12 points are each shared by 3 or more records" in said
    assert "The busiest: 14 records at lon 14.11100, lat 56.54000;" in said
    assert said.count(" records at lon ") == 10 and "; and 2 more" in said
    notes = (tmp_path / "shared.csv.notes.txt").read_text(encoding="utf-8").splitlines()
    shared = [n for n in notes if n.startswith("shared point: ")]
    assert (
        len(shared) == 12 and shared[-1] == "shared point: 3 records at lon 14.10000, lat 56.54000"
    )
    with system_engine.begin() as conn:
        conn.execute(text("DELETE FROM est.incident WHERE source = 'imp-sp'"))


def test_a_geojson_is_imported_as_geojson_without_a_mapping(
    cli_env: dict[str, str], tmp_path: Path, system_engine: Engine, world: object
) -> None:
    path = tmp_path / "incidenter.geojson"
    collection = incident_collection()
    collection["features"][0]["geometry"]["coordinates"] = [14.1375, 56.551]  # in Älmhult
    path.write_text(json.dumps(collection), encoding="utf-8")
    args = ["import", str(path), "--org", "ingest-test", "--source", "imp-geojson"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert _count(system_engine, "imp-geojson") == 1
