"""Storing incidents: keyed upserts that count honestly and place incidents in their areas."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from psycopg.errors import ForeignKeyViolation, LockNotAvailable
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

from app.ingest.store import IncidentRecord, upsert_incidents
from app.ops.demo import ensure_organisation

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


def test_records_with_one_key_in_a_batch_are_stored_in_their_order(
    system_engine: Engine,
) -> None:
    with system_engine.connect() as conn:
        org = _org(conn)
        later = _record(1, category_code="brand.anlagd")
        result = upsert_incidents(conn, org, 3006, [_record(1), _record(2), later, later])
        category = conn.scalar(
            text(
                "SELECT category_code FROM est.incident "
                "WHERE organisation_id = :o AND external_id = 'r1'"
            ),
            {"o": org},
        )
        conn.rollback()
    # The first creates, the second changes it, the third says the same again.
    assert (result.created, result.updated, result.unchanged) == (2, 1, 1)
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


def _new_category(conn: Connection, code: str) -> None:
    conn.execute(
        text("INSERT INTO est.category (code, label_sv, label_en) VALUES (:c, 'Prov', 'Test')"),
        {"c": code},
    )


def test_an_incident_must_refer_to_a_known_category_and_organisation(
    owner_engine: Engine,
) -> None:
    with owner_engine.connect() as conn:
        org = _org(conn)
        conn.commit()
    for changes, org_id, message in [
        ({"category_code": "ingen.sadan"}, org, "category 'ingen.sadan', which does not exist"),
        ({}, 987_654, "organisation 987654, which does not exist"),
    ]:
        with owner_engine.connect() as conn:
            with pytest.raises(ForeignKeyViolation, match=message):
                try:
                    upsert_incidents(conn, org_id, 3006, [_record(1, **changes)])
                except DBAPIError as exc:
                    raise exc.orig from None  # type: ignore[misc]
            conn.rollback()


def test_a_category_or_organisation_in_use_cannot_be_deleted(owner_engine: Engine) -> None:
    with owner_engine.connect() as conn:
        _new_category(conn, "prov.anvand")
        org = _org(conn)
        upsert_incidents(conn, org, 3006, [_record(1, category_code="prov.anvand")])
        for statement, message in [
            ("DELETE FROM est.category WHERE code = 'prov.anvand'", "still used by incidents"),
            ("UPDATE est.category SET code = 'prov.ny' WHERE code = 'prov.anvand'", "still used"),
            (f"DELETE FROM est.organisation WHERE id = {org}", "still has incidents"),
        ]:
            conn.exec_driver_sql("SAVEPOINT s")
            with pytest.raises(DBAPIError, match=message) as caught:
                conn.exec_driver_sql(statement)
            assert isinstance(caught.value.orig, ForeignKeyViolation)
            conn.exec_driver_sql("ROLLBACK TO SAVEPOINT s")
        conn.execute(text("DELETE FROM est.incident WHERE organisation_id = :o"), {"o": org})
        conn.exec_driver_sql("DELETE FROM est.category WHERE code = 'prov.anvand'")  # now free
        conn.rollback()


def test_a_category_cannot_be_deleted_while_an_uncommitted_import_uses_it(
    owner_engine: Engine,
) -> None:
    """The inserting transaction holds its parent rows FOR KEY SHARE, as a foreign key does."""
    with owner_engine.connect() as setup:
        _new_category(setup, "prov.samtidig")
        setup.commit()
    with owner_engine.connect() as writer, owner_engine.connect() as deleter:
        org = _org(writer)
        upsert_incidents(writer, org, 3006, [_record(7, category_code="prov.samtidig")])
        deleter.exec_driver_sql("SET lock_timeout = '300ms'")
        with pytest.raises(DBAPIError) as caught:
            deleter.exec_driver_sql("DELETE FROM est.category WHERE code = 'prov.samtidig'")
        assert isinstance(caught.value.orig, LockNotAvailable)
        deleter.rollback()
        writer.commit()
        with pytest.raises(DBAPIError, match="still used by incidents"):
            deleter.exec_driver_sql("DELETE FROM est.category WHERE code = 'prov.samtidig'")
        deleter.rollback()
    with owner_engine.begin() as conn:
        conn.execute(text("DELETE FROM est.incident WHERE organisation_id = :o"), {"o": org})
        conn.exec_driver_sql("DELETE FROM est.category WHERE code = 'prov.samtidig'")


def test_two_writers_of_one_new_key_wait_for_each_other_instead_of_failing(
    system_engine: Engine,
) -> None:
    """The second writer waits on the (organisation, source) lock, then finds the record."""
    with system_engine.connect() as first, system_engine.connect() as second:
        org = _org(first)
        first.commit()
        first_result = upsert_incidents(first, org, 3006, [_record(42)])
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(upsert_incidents, second, org, 3006, [_record(42)])
            time.sleep(0.5)
            assert not pending.done()  # waiting for the first writer
            first.commit()
            second_result = pending.result(timeout=30)
        second.commit()
    with system_engine.begin() as conn:
        stored = conn.scalar(
            text(
                "SELECT count(*) FROM est.incident "
                "WHERE organisation_id = :o AND external_id = 'r42'"
            ),
            {"o": org},
        )
        conn.execute(text("DELETE FROM est.incident WHERE organisation_id = :o"), {"o": org})
    assert (first_result.created, second_result.created, second_result.unchanged) == (1, 0, 1)
    assert stored == 1


def _placements(conn: Connection, org: int) -> int:
    return int(
        conn.scalar(
            text("SELECT count(*) FROM est.incident_area WHERE organisation_id = :o"), {"o": org}
        )
        or 0
    )


def test_incident_area_refers_only_to_incidents_and_areas_that_exist(
    owner_engine: Engine,
) -> None:
    with owner_engine.connect() as conn:
        org = _org(conn)
        upsert_incidents(conn, org, 3006, [_record(1)])
        incident = conn.scalar(
            text("SELECT id FROM est.incident WHERE organisation_id = :o"), {"o": org}
        )
        area = conn.scalar(text("SELECT id FROM est.area WHERE code = '1214'"))  # Svalöv
        for pair, message in [
            ((-1, area), "refers to 1 incidents that do not exist"),
            ((incident, -1), "refers to 1 areas that do not exist"),
        ]:
            conn.exec_driver_sql("SAVEPOINT s")
            with pytest.raises(DBAPIError, match=message) as caught:
                conn.execute(
                    text("INSERT INTO est.incident_area VALUES (:i, :a, :o)"),
                    {"i": pair[0], "a": pair[1], "o": org},
                )
            assert isinstance(caught.value.orig, ForeignKeyViolation)
            conn.exec_driver_sql("ROLLBACK TO SAVEPOINT s")
        conn.exec_driver_sql("SAVEPOINT s")
        with pytest.raises(DBAPIError, match="its id cannot change"):
            conn.execute(text("UPDATE est.incident SET id = -5 WHERE id = :i"), {"i": incident})
        conn.exec_driver_sql("ROLLBACK TO SAVEPOINT s")
        conn.rollback()


def test_deleting_incidents_or_areas_deletes_their_placements(owner_engine: Engine) -> None:
    with owner_engine.connect() as conn:
        org = _org(conn)
        upsert_incidents(conn, org, 3006, [_record(1), _record(2)])
        assert _placements(conn, org) == 4  # Eslöv kommun and Skåne län, twice
        conn.execute(
            text("DELETE FROM est.incident WHERE organisation_id = :o AND external_id = 'r1'"),
            {"o": org},
        )
        assert _placements(conn, org) == 2
        conn.exec_driver_sql("DELETE FROM est.area_grant WHERE area_id IN "
                             "(SELECT id FROM est.area WHERE code = '12')")  # fmt: skip
        conn.exec_driver_sql("DELETE FROM est.area WHERE code = '12'")  # Skåne län
        assert _placements(conn, org) == 1
        conn.exec_driver_sql("TRUNCATE est.incident")
        assert conn.scalar(text("SELECT count(*) FROM est.incident_area")) == 0
        conn.rollback()
