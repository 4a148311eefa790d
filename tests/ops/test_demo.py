"""The demo: deterministic, inside its kommuner, with hotspots where the places are."""

from __future__ import annotations

import gzip
from collections import Counter
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from pyproj import Transformer
from sqlalchemy import Engine, text

from app.core.taxonomy import load_taxonomy
from app.ingest.mapping import load_mapping
from app.ingest.readers import parse_polisen_time, read_batches
from app.ops.demo import (
    demo_period,
    load_demo,
    load_demo_plan,
)
from app.settings import Settings

TODAY = date(2026, 11, 18)  # a Wednesday in ISO week 47


def test_the_demo_period_is_26_complete_iso_weeks_before_this_week() -> None:
    start, end = demo_period(TODAY)
    assert start.isocalendar()[1:] == (21, 1) and start.hour == 0
    assert end.date() == date(2026, 11, 16) and end.weekday() == 0
    assert (end.date() - start.date()) == timedelta(weeks=26)


def test_demo_loads_five_kommuner_deterministically_and_a_rerun_changes_nothing(
    system_engine: Engine, settings: Settings
) -> None:
    taxonomy = load_taxonomy()
    kommuner, _ = load_demo_plan()
    with system_engine.connect() as conn:
        first = load_demo(conn, settings, taxonomy, TODAY, seed=1)
        again = load_demo(conn, settings, taxonomy, TODAY, seed=1)
        outside = conn.scalar(
            text("""
            SELECT count(*) FROM est.incident i
            JOIN est.organisation o ON o.id = i.organisation_id
            WHERE i.source = 'demo' AND NOT EXISTS (
                SELECT 1 FROM est.incident_area ia JOIN est.area a ON a.id = ia.area_id
                WHERE ia.incident_id = i.id AND 'kommun-' || a.code = o.code)
        """)
        )
        near_places = conn.scalar(
            text("""
            SELECT avg((ST_Distance(i.geom, c.geom) < 400)::int) FROM est.incident i
            JOIN est.organisation o ON o.id = i.organisation_id AND o.code = 'kommun-1285'
            CROSS JOIN LATERAL (SELECT ST_Transform(ST_SetSRID(ST_MakePoint(13.3085, 55.8378),
                                4326), 3006) AS geom) c
            WHERE i.source = 'demo'
        """)
        )
        lpo = conn.scalar(text("SELECT kind FROM est.area WHERE code = 'lpo-klippan'"))
        conn.rollback()
    assert set(first) == {k.name for k in kommuner}
    assert {name: r.created for name, r in first.items()} == {k.name: k.incidents for k in kommuner}
    assert {name: (r.created, r.updated, r.unchanged) for name, r in again.items()} == {
        name: (0, 0, r.created) for name, r in first.items()
    }
    assert outside == 0
    assert near_places > 0.1  # the station hotspot of Eslöv is there
    assert lpo == "union"


def test_polisen_times_with_unpadded_hours_parse_with_their_offset() -> None:
    t = parse_polisen_time("2023-03-25 9:43:15 +01:00")
    assert t == datetime(2023, 3, 25, 9, 43, 15, tzinfo=timezone(timedelta(hours=1)))
    assert parse_polisen_time("2026-08-22 19:51:41 +02:00").utcoffset() == timedelta(hours=2)


def test_polisen_events_become_area_centroid_incidents_and_summaries_are_skipped(
    tmp_path: Path,
) -> None:
    path = tmp_path / "events.csv.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write("id,datetime,type,location_name,lat,lon,name,summary,url\n")
        f.write('1,2024-05-01 22:10:00 +02:00,Misshandel,Eslöv,55.839,13.303,"x","Bråk.",/a\n')
        f.write('2,2024-05-02 6:00:00 +02:00,Sammanfattning natt,Skåne län,55.99,13.59,"y","",/b\n')
    # `est demo --polisen` imports the archive with this preset
    (read,) = read_batches(path, load_mapping("polisen-csv"))
    b = read.batch
    assert len(b) == 1 and read.not_incident == Counter({"Sammanfattning natt": 1})
    assert read.source == "polisen.se"
    assert list(b.location_precision) == ["area_centroid"] and list(b.external_id) == ["1"]
    assert b.category[0].startswith("vald.")
    x, y = Transformer.from_crs(b.crs, 3006, always_xy=True).transform(b.x[0], b.y[0])
    assert 390_000 < x < 410_000 and 6_180_000 < y < 6_200_000
