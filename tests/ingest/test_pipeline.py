"""One batch through validation and the store, as the service does it under the app role."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, text

from app.access.admin import organisation_id
from app.ingest.pipeline import ingest_batch, ingest_context, record_results
from app.settings import Settings
from tests.access.test_rls import as_caller
from tests.ingest.test_validate import batch

NOW = datetime(2026, 11, 22, 12, tzinfo=UTC)


def test_a_batch_is_stored_under_row_level_security_as_an_ingest_client(
    app_engine: Engine, settings: Settings, world: object
) -> None:
    with as_caller(app_engine, "kommun-1285", "ingest") as conn:
        org = organisation_id(conn, "kommun-1285")
        ctx = ingest_context(conn, settings, now=NOW)
        first = ingest_batch(
            conn, ctx, org, "key:test", batch({}, {}, {"x": 55.8, "y": 13.3}), source="batch-test"
        )
        again = ingest_batch(
            conn,
            ctx,
            org,
            "key:test",
            batch({}, {"category": "tillgrepp.cykelstold"}, {}),
            source="batch-test",
        )
        areas = conn.scalars(
            text("""
            SELECT a.code FROM est.incident_area ia JOIN est.area a ON a.id = ia.area_id
            JOIN est.incident i ON i.id = ia.incident_id
            WHERE i.source = 'batch-test' AND i.external_id = 'r1' ORDER BY 1
        """)
        ).all()
    assert (first.stored.created, first.stored.updated, first.stored.unchanged) == (2, 0, 0)
    assert [(r["row"], r["status"]) for r in record_results(first)] == [
        (1, "created"),
        (2, "created"),
        (3, "rejected"),
    ]
    assert "look swapped" in record_results(first)[2]["reason"]
    # r3 is valid now: created; r2 changed category: updated; r1 as before: unchanged
    assert [(r["row"], r["status"]) for r in record_results(again)] == [
        (1, "unchanged"),
        (2, "updated"),
        (3, "created"),
    ]
    assert areas == ["12", "1285"]


def test_the_centroids_of_loaded_areas_are_default_locations(
    app_engine: Engine, settings: Settings, world: object
) -> None:
    with as_caller(app_engine, "kommun-1285", "ingest") as conn:
        ctx = ingest_context(conn, settings, now=NOW)
        names = {p.name for p in ctx.default_locations}
    assert "the centroid of Eslöv kommun" in names and "the centroid of Skåne län" in names
    assert len(names) == 290 + 21 + 1  # kommuner, län and 0/0


def test_many_records_on_one_point_are_kept_with_a_warning(
    app_engine: Engine, settings: Settings, world: object
) -> None:
    with as_caller(app_engine, "kommun-1285", "ingest") as conn:
        org = organisation_id(conn, "kommun-1285")
        ctx = ingest_context(conn, settings, now=NOW)
        outcome = ingest_batch(
            conn,
            ctx,
            org,
            "key:test",
            batch({}, {}, {}, {"x": 13.2}),
            source="shared-test",
            shared_point_warning=3,
        )
    assert outcome.stored.created == 4
    warnings = [n for n in outcome.notes if n.startswith("warning: 3 records share the point")]
    assert len(warnings) == 1 and "lon 13.30350, lat 55.83920" in warnings[0]
