"""What a run reads: an incident known only to within more than `max_interval_days` (a month
from an open-data export) belongs to no one week, so it is left out of the methods, and counted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from app.access import admin
from app.ingest.store import IncidentRecord, upsert_incidents
from app.runs.inputs import load_area, load_incidents
from app.runs.profiles import ProfileSettings, parse_settings
from geo.crs import from_lonlat

AREA = "2584"  # Kiruna: no other test stores incidents there
TZ = "Europe/Stockholm"
SINCE = datetime(2026, 5, 25, tzinfo=UTC)
UNTIL = datetime(2026, 7, 13, tzinfo=UTC)


def _records() -> list[IncidentRecord]:
    x, y = (float(v[0]) for v in from_lonlat([20.2253], [67.8558], 3006))
    start, day = datetime(2026, 6, 30, 22, tzinfo=UTC), timedelta(days=1)
    spans = {
        "instant": (start, None),
        "a-day": (start, start + day),
        "a-weekend": (start, start + 3 * day),
        "a-week": (start, start + 7 * day),  # not more than a week: kept
        "june": (datetime(2026, 5, 31, 22, tzinfo=UTC), start),  # "2026-06" in Stockholm
        "july": (start, datetime(2026, 7, 31, 22, tzinfo=UTC)),
    }
    return [
        IncidentRecord(
            source="inputs-test",
            external_id=name,
            category_code="skadegorelse.klotter",
            occurred_from=begin,
            occurred_to=end,
            x=x + i,
            y=y,
            location_precision="address",
        )
        for i, (name, (begin, end)) in enumerate(spans.items())
    ]


def test_incidents_known_only_to_within_a_month_are_left_out_and_counted(
    system_engine: Engine, world: object
) -> None:
    with system_engine.connect() as conn, conn.begin() as transaction:
        org = admin.organisation_id(conn, "ingest-test")
        upsert_incidents(conn, org, 3006, _records())
        area = load_area(conn, AREA)
        weekly = load_incidents(conn, area.id, SINCE, UNTIL, ProfileSettings(), TZ)
        every = load_incidents(
            conn, area.id, SINCE, UNTIL, ProfileSettings(max_interval_days=None), TZ
        )
        transaction.rollback()
    # a day, a weekend and a week are placed in their week; the months are not
    assert len(weekly.xy) == 4 and weekly.left_out["long_interval"] == 2
    assert len(every.xy) == 6 and every.left_out["long_interval"] == 0


def test_a_profile_document_without_the_rule_gets_the_default_week() -> None:
    assert parse_settings({}).max_interval_days == 7
    assert parse_settings({"max_interval_days": None}).max_interval_days is None
