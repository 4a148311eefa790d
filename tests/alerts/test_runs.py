"""Alerts from real runs: the week's recompute of Hörby tells both subscribers of a new hotspot
and of a rise once, and not again the next night, nor when the week is computed again."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import shapely
from sqlalchemy import Engine, text

from app.ingest.store import IncidentRecord, upsert_incidents
from app.ops.demo import ensure_organisation
from app.runs import recompute as runs
from app.runs.inputs import load_area
from app.settings import Settings
from clustering.synthetic import HotspotSpec, generate_incidents
from tests.alerts.conftest import KOMMUN, POLICE, subscribe
from tests.alerts.test_events import COMMON_FIELDS, HOTSPOT_FIELDS

TZ = "Europe/Stockholm"
AREA = "1266"  # Hörby: no other test stores incidents there
W47 = date(2026, 11, 16)
NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)


def _records(xy: Any, times: Any, categories: Any, prefix: str) -> list[IncidentRecord]:
    return [
        IncidentRecord(
            source="alert-test",
            external_id=f"{prefix}-{i}",
            category_code=str(c),
            occurred_from=t,
            occurred_to=None,
            x=float(x),
            y=float(y),
            location_precision="address",
            description="Cykel stulen vid porten",  # no alert may carry it
        )
        for i, ((x, y), t, c) in enumerate(zip(xy, times, categories, strict=True))
    ]


def _places(area: shapely.Geometry) -> list[tuple[float, float]]:
    """Points of the area far apart: a hotspot's, a fresh cluster's, a lone incident's."""
    inner = area.buffer(-600)
    centre = shapely.point_on_surface(inner)
    chosen = [(centre.x, centre.y)]
    for dx, dy in ((3000, 0), (-3000, 0), (0, 3000), (0, -3000), (5000, 5000), (-5000, -5000)):
        x, y = centre.x + dx, centre.y + dy
        if inner.contains(shapely.Point(x, y)):
            chosen.append((x, y))
    assert len(chosen) >= 3
    return chosen


@pytest.fixture(scope="module")
def hoerby(settings: Settings) -> dict[str, Any]:
    """Hörby with 16 weeks of incidents around a persisting hotspot up to the end of week 47."""
    from sqlalchemy import create_engine, pool

    engine = create_engine(settings.role_url("est_system"), poolclass=pool.NullPool)
    with engine.begin() as conn:
        area = load_area(conn, AREA).geom
        places = _places(area)
        made = generate_incidents(
            [
                HotspotSpec(
                    *places[0],
                    sigma_m=60,
                    trend="persisting",
                    categories={"skadegorelse.klotter": 1},
                ),
            ],
            900,
            start=datetime(2026, 11, 23, tzinfo=ZoneInfo(TZ)) - timedelta(weeks=16),
            weeks=16,
            background_share=0.2,
            background_area=area.buffer(-200),
            background_categories={"skadegorelse.klotter": 1, "tillgrepp.cykelstold": 1},
            seed=11,
        )
        org = ensure_organisation(conn, "alert-test", "Hörby kommun (test)", "kommun")
        times = [t.astype("datetime64[us]").item().replace(tzinfo=UTC) for t in made.time]
        upsert_incidents(conn, org, 3006, _records(made.xy, times, made.category, "s"))
    engine.dispose()
    return {"organisation": org, "places": places}


def _run(engine: Engine, monday: date, force: bool = False) -> runs.Outcome:
    with engine.connect() as conn:
        profile = runs.default_profile(conn, AREA)
    return runs.recompute(
        engine, AREA, profile, runs.RunPeriod.week(monday, TZ), force=force, now=NOW
    )


def _events(engine: Engine, run_id: int | None) -> list[Any]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                text(
                    "SELECT e.kind, e.subject, e.payload, (SELECT count(*) "
                    "FROM est.alert_delivery d WHERE d.event_id = e.id) AS deliveries "
                    "FROM est.alert_event e "
                    "WHERE e.run_id = :run ORDER BY e.id"
                ),
                {"run": run_id},
            ).all()
        )


def _deliveries(engine: Engine, subscriptions: list[int]) -> int:
    with engine.connect() as conn:
        return int(
            conn.scalar(
                text("SELECT count(*) FROM est.alert_delivery WHERE subscription_id = ANY(:s)"),
                {"s": subscriptions},
            )
            or 0
        )


def _store(engine: Engine, org: int, records: list[IncidentRecord]) -> None:
    with engine.begin() as conn:
        upsert_incidents(conn, org, 3006, records)


def test_a_run_tells_each_subscriber_once_on_entering_and_not_the_next_night(
    system_engine: Engine,
    alert_orgs: dict[str, int],
    unsubscribe: list[int],
    hoerby: dict[str, Any],
) -> None:
    assert _run(system_engine, W47 - timedelta(7), force=True).published  # week 46
    for org in (KOMMUN, POLICE):
        unsubscribe.append(subscribe(system_engine, alert_orgs[org], AREA, email="lg@x.se"))
    quiet = _run(system_engine, W47, force=True)
    assert quiet.published
    before = _deliveries(system_engine, unsubscribe)

    # 25 fires at one address in week 47: a new hotspot, and a rise of the group brand
    x, y = hoerby["places"][1]
    x, y = x // 250 * 250 + 40, y // 250 * 250 + 40  # inside one 125 m cell
    stamp = datetime(2026, 11, 17, 17, tzinfo=UTC)
    fires = _records(
        [(x + (i % 5) * 10, y + (i // 5) * 10) for i in range(25)],
        [stamp + timedelta(hours=i) for i in range(25)],
        ["brand.container"] * 25,
        "fire",
    )
    _store(system_engine, hoerby["organisation"], fires)
    fired = _run(system_engine, W47)
    assert fired.status == "succeeded" and fired.published
    events = _events(system_engine, fired.run_id)
    with system_engine.connect() as conn:
        fresh = conn.scalar(
            text(
                "SELECT hotspot_key FROM est.hotspot WHERE run_id = :id "
                "AND ST_Contains(geom, ST_SetSRID(ST_Point(:x, :y), 3006))"
            ),
            {"id": fired.run_id, "x": x + 20, "y": y + 20},
        )
    told = {(e.kind, e.subject): e.deliveries for e in events}
    assert told[("new_hotspot", fresh)] == 2  # the kommun's and the police area's
    assert told[("rise", "brand")] == 2
    for e in events:
        assert set(e.payload) - {"hotspot", "group"} == COMMON_FIELDS
        if "hotspot" in e.payload:
            assert set(e.payload["hotspot"]) == HOTSPOT_FIELDS
        assert "Cykel" not in str(e.payload) and "fire-" not in str(e.payload)
    made = _deliveries(system_engine, unsubscribe)
    assert made == before + 2 * len(events)

    # the next night: one more incident, alone far away; the run is new, the classes are not
    lone = hoerby["places"][2]
    _store(system_engine, hoerby["organisation"], _records([lone], [stamp], ["ovrigt"], "lone"))
    next_night = _run(system_engine, W47)
    assert next_night.status == "succeeded" and next_night.run_id != fired.run_id
    assert next_night.published and _events(system_engine, next_night.run_id) == []
    again = _run(system_engine, W47, force=True)  # computed again: still nothing
    assert again.published and _events(system_engine, again.run_id) == []
    assert _deliveries(system_engine, unsubscribe) == made

    # the week after, the fire hotspot is no longer new and brand no longer rising
    w48 = _run(system_engine, W47 + timedelta(7), force=True)
    later = {(e.kind, e.subject) for e in _events(system_engine, w48.run_id)}
    assert ("new_hotspot", fresh) not in later and ("rise", "brand") not in later
