"""Retention: what is older than the retention period is archived (GPKG + CSV), then deleted."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from pathlib import Path

import geopandas as gpd
from sqlalchemy import Engine, text

from app.ingest.store import IncidentRecord, upsert_incidents
from app.ops.demo import ensure_organisation
from app.runs.profiles import ensure_default_profiles
from app.runs.purge import purge, retention_cutoff
from tests.conftest import ESLOV

NOW = datetime(2026, 11, 22, 12, tzinfo=UTC)


def test_the_cutoff_is_whole_calendar_months_back() -> None:
    assert retention_cutoff(NOW, 36) == datetime(2023, 11, 22, 12, tzinfo=UTC)
    assert retention_cutoff(datetime(2026, 3, 31, tzinfo=UTC), 1) == datetime(
        2026, 2, 28, tzinfo=UTC
    )


def test_purge_archives_then_deletes_only_what_ended_before_the_cutoff(
    system_engine: Engine, tmp_path: Path
) -> None:
    def record(i: int, start: datetime, end: datetime | None = None) -> IncidentRecord:
        return IncidentRecord(
            source="purge",
            external_id=str(i),
            category_code="skadegorelse.klotter",
            occurred_from=start,
            occurred_to=end,
            x=ESLOV[0] + i,
            y=ESLOV[1],
            location_precision="address",
            description=f"=old {i}",
        )

    cutoff = retention_cutoff(NOW, 36)
    old = [record(i, cutoff - timedelta(days=10 + i)) for i in range(4)]
    straddling = [record(10, cutoff - timedelta(days=5), cutoff + timedelta(days=1))]
    recent = [record(20, NOW - timedelta(days=3))]
    with system_engine.connect() as conn:
        org = ensure_organisation(conn, "purge-test", "Purge test", "kommun")
        upsert_incidents(conn, org, 3006, old + straddling + recent)
        dry = purge(conn, 36, tmp_path, now=NOW, dry_run=True)
        mine = "SELECT external_id FROM est.incident WHERE organisation_id = :o ORDER BY 1"
        before = conn.scalars(text(mine), {"o": org}).all()
        result = purge(conn, 36, tmp_path, now=NOW)
        left = conn.scalars(text(mine), {"o": org}).all()
        logged = conn.execute(
            text(
                "SELECT row_count, filters FROM est.audit_log WHERE action = 'purge' "
                "ORDER BY id DESC LIMIT 1"
            )
        ).one()
        conn.rollback()
    assert dry.incidents >= 4 and dry.files == () and len(before) == 6
    assert left == ["10", "20"]
    assert result.incidents == logged.row_count >= 4
    gpkg, csv_path = result.files
    archived = gpd.read_file(gpkg)
    assert archived.crs.to_epsg() == 3006
    assert {"0", "1", "2", "3"} <= set(archived["external_id"])
    rows = list(csv.DictReader(csv_path.open(encoding="utf-8-sig"), delimiter=";"))
    assert {r["external_id"] for r in rows} == set(archived["external_id"])
    assert all(r["description"].startswith("'=") for r in rows if r["source"] == "purge")
    assert set(logged.filters["archive"]) == {str(gpkg), str(csv_path)}


def test_purge_deletes_runs_older_than_the_cutoff_but_not_a_published_one(
    system_engine: Engine, tmp_path: Path
) -> None:
    cutoff = retention_cutoff(NOW, 36)
    with system_engine.begin() as conn:
        ensure_default_profiles(conn)
        area, profile = conn.execute(
            text(
                "SELECT a.id, p.id FROM est.area a JOIN est.analysis_profile p "
                "ON p.area_id = a.id WHERE a.code = '1290' AND p.organisation_id IS NULL"
            )
        ).one()

        def run(end: datetime) -> int:
            run_id = conn.scalar(
                text("""
                INSERT INTO est.hotspot_run (area_id, profile_id, status, parameters, window_start,
                                             window_end, code_version, period_label)
                VALUES (:a, :p, 'succeeded', '{}', :s, :e, 'test', 'old') RETURNING id
            """),
                {"a": area, "p": profile, "s": end - timedelta(days=28), "e": end},
            )
            conn.execute(
                text(
                    "INSERT INTO est.hotspot (run_id, hotspot_key, method, change_label, "
                    "incident_count, area_m2, stats) VALUES (:r, 'k', 'dbscan', 'new', 5, 1, '{}')"
                ),
                {"r": run_id},
            )
            for table in ("density", "gistar", "emerging", "forecast", "viewer"):
                columns = {
                    "density": "density",
                    "gistar": "incident_count, z, p, bin",
                    "emerging": "pattern, hot_steps, cold_steps",
                    "forecast": "risk, rank, flagged",
                    "viewer": "layer",
                }[table]
                values = {
                    "density": "1",
                    "gistar": "5, 1, 0.5, 0",
                    "emerging": "'no_pattern', 0, 0",
                    "forecast": "1, 1, true",
                    "viewer": "'counts'",
                }[table]
                conn.execute(
                    text(
                        f"INSERT INTO est.{table}_cell (run_id, cell_size_m, ix, iy, {columns}) "
                        f"VALUES (:r, 250, 1, 2, {values})"
                    ),
                    {"r": run_id},
                )
            return int(run_id)

        old, published, recent = (
            run(cutoff - timedelta(days=30)),
            run(cutoff - timedelta(days=20)),
            run(cutoff + timedelta(days=5)),
        )
        conn.execute(
            text(
                "INSERT INTO est.layer_current (area_id, profile_id, layer, run_id) "
                "VALUES (:a, :p, 'hotspots', :r)"
            ),
            {"a": area, "p": profile, "r": published},
        )
        events = [
            conn.scalar(
                text(
                    "INSERT INTO est.alert_event (area_id, profile_id, kind, subject, "
                    "period_label, payload, created_at) VALUES (:a, :p, 'new_hotspot', :s, "
                    "'old', '{}', :t) RETURNING id"
                ),
                {"a": area, "p": profile, "s": f"h{n}", "t": t},
            )
            for n, t in enumerate((cutoff - timedelta(days=1), cutoff + timedelta(days=1)))
        ]
        result = purge(conn, 36, tmp_path, now=NOW)
        events_left = list(
            conn.scalars(
                text("SELECT id FROM est.alert_event WHERE id = ANY(:ids)"), {"ids": events}
            )
        )
        left = set(
            conn.scalars(
                text("SELECT id FROM est.hotspot_run WHERE id = ANY(:ids)"),
                {"ids": [old, published, recent]},
            )
        )
        hulls = conn.scalar(text("SELECT count(*) FROM est.hotspot WHERE run_id = :r"), {"r": old})
        cells = {  # the cells of a deleted run go with it, those of a kept one stay
            r: sum(
                conn.scalar(text(f"SELECT count(*) FROM est.{t}_cell WHERE run_id = :r"), {"r": r})
                for t in ("density", "gistar", "emerging", "forecast", "viewer")
            )
            for r in (old, published)
        }
        conn.execute(text("DELETE FROM est.layer_current WHERE run_id = :r"), {"r": published})
    assert result.runs >= 1 and left == {published, recent} and hulls == 0
    assert cells == {old: 0, published: 5}
    assert events_left == events[1:]  # alerts made before the cutoff go too
