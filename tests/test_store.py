"""Storing incidents: keyed upserts that count honestly and place incidents in their areas."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, Engine, text

from app.demo import ensure_organisation
from app.ingest.store import IncidentRecord, upsert_incidents

ESLOV_TORG = (393_760.0, 6_189_485.0)  # SWEREF 99 TM, inside Eslöv kommun


def _record(i: int, **changes: object) -> IncidentRecord:
    base = IncidentRecord(
        source="test",
        external_id=f"r{i}",
        category_code="skadegorelse.klotter",
        occurred_from=datetime(2026, 3, 1, 12, tzinfo=UTC) + timedelta(hours=i),
        occurred_to=None,
        x=ESLOV_TORG[0] + i,
        y=ESLOV_TORG[1],
        location_precision="address",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def _org(conn: Connection) -> int:
    return ensure_organisation(conn, "test-store", "Test store", "kommun")


def test_resending_records_updates_changed_ones_and_leaves_the_rest(
    system_engine: Engine,
) -> None:
    with system_engine.connect() as conn:
        org = _org(conn)
        first = upsert_incidents(conn, org, 3006, [_record(i) for i in range(10)])
        again = upsert_incidents(conn, org, 3006, [_record(i) for i in range(10)])
        changed = [_record(i) for i in range(10)]
        changed[3] = _record(3, category_code="tillgrepp.cykelstold")
        changed[7] = _record(7, x=ESLOV_TORG[0] + 500)
        third = upsert_incidents(conn, org, 3006, [*changed, _record(10)])
        stored = conn.scalar(
            text("SELECT count(*) FROM est.incident WHERE organisation_id = :o"), {"o": org}
        )
        category = conn.scalar(
            text(
                "SELECT category_code FROM est.incident WHERE organisation_id = :o "
                "AND external_id = 'r3'"
            ),
            {"o": org},
        )
        conn.rollback()
    assert (first.created, first.updated, first.unchanged) == (10, 0, 0)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 10)
    assert (third.created, third.updated, third.unchanged) == (1, 2, 8)
    assert stored == 11
    assert category == "tillgrepp.cykelstold"


def test_the_last_of_two_records_with_one_key_in_a_batch_wins(system_engine: Engine) -> None:
    with system_engine.connect() as conn:
        org = _org(conn)
        result = upsert_incidents(
            conn, org, 3006, [_record(1), _record(1, category_code="brand.anlagd")]
        )
        category = conn.scalar(
            text("SELECT category_code FROM est.incident WHERE organisation_id = :o"), {"o": org}
        )
        conn.rollback()
    assert (result.created, result.updated, result.unchanged) == (1, 0, 0)
    assert category == "brand.anlagd"


def test_incidents_are_placed_in_every_area_they_lie_in(system_engine: Engine) -> None:
    with system_engine.connect() as conn:
        org = _org(conn)
        upsert_incidents(conn, org, 3006, [_record(0)])
        areas = conn.scalars(
            text("""
            SELECT a.code FROM est.incident_area ia
            JOIN est.area a ON a.id = ia.area_id
            JOIN est.incident i ON i.id = ia.incident_id
            WHERE i.organisation_id = :o ORDER BY a.code
        """),
            {"o": org},
        ).all()
        conn.rollback()
    assert areas == ["12", "1285"]  # Skåne län and Eslöv kommun
