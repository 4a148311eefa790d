"""The events of a published run: made on entering a class that needs attention, once, for
every subscriber of the area, carrying viewer values only."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import Engine, text

from app.alerts.events import record_events
from app.runs.profiles import ProfileSettings, save_profile
from tests.alerts.conftest import KOMMUN, POLICE, Figure, Spot, subscribe

HOTSPOT_FIELDS = {"id", "viewer_count", "point"}
COMMON_FIELDS = {"kind", "area", "period", "provisional", "run_id", "suppression_k"}


def _kinds(events: list[Any]) -> list[tuple[str, str, str]]:
    return [(e.kind, e.subject, e.period_label) for e in events]


def test_a_new_hotspot_is_one_event_per_subscriber_and_not_again_the_next_night(
    system_engine: Engine, alert_orgs: dict[str, int], runs_of: Any, unsubscribe: list[int]
) -> None:
    for org in (KOMMUN, POLICE):  # the kommun's and the police area's ledningsgrupp
        unsubscribe.append(subscribe(system_engine, alert_orgs[org], "1265", email="lg@x.se"))
    runs = runs_of("1265")
    assert runs.publish(10, (Spot("old", "stable"),)) == 0
    assert runs.publish(11, (Spot("old", "stable"), Spot("h-new"))) == 1
    assert [(e.kind, e.subject, e.deliveries) for e in runs.events()] == [
        ("new_hotspot", "h-new", 2)
    ]
    # the next night of the same week the hotspot is still new: nothing more
    assert runs.publish(11, (Spot("old", "stable"), Spot("h-new"))) == 0
    # the week after it is stable, then new again is a new entering (and a new period)
    assert runs.publish(12, (Spot("h-new", "stable"),)) == 0
    assert runs.publish(13, (Spot("h-new", "new"),)) == 1
    assert _kinds(runs.events()) == [
        ("new_hotspot", "h-new", "2030-W11"),
        ("new_hotspot", "h-new", "2030-W13"),
    ]
    with system_engine.connect() as conn:
        assert (
            conn.scalar(
                text(
                    "SELECT count(*) FROM est.alert_delivery d JOIN est.alert_event e "
                    "ON e.id = d.event_id WHERE e.run_id = ANY(:ids)"
                ),
                {"ids": runs.made},
            )
            == 4
        )


def test_a_run_computed_again_makes_no_second_event(
    system_engine: Engine, alert_orgs: dict[str, int], runs_of: Any
) -> None:
    runs = runs_of("1256")
    assert runs.publish(20, (Spot("h-a"),)) == 1
    with system_engine.begin() as conn:
        assert record_events(conn, runs.made[-1]) == 0  # the same run once more
    # gone one night and back the next: it enters again, but the week's event exists already
    assert runs.publish(20, ()) == 0
    assert runs.publish(20, (Spot("h-a"),)) == 0
    assert len(runs.events()) == 1


def test_only_a_hotspot_with_a_viewer_version_alerts(
    system_engine: Engine, alert_orgs: dict[str, int], runs_of: Any
) -> None:
    runs = runs_of("1257")
    assert runs.publish(20, (Spot("hidden", viewer_count=None),)) == 0
    # once it has a viewer version it is new to the viewers
    assert runs.publish(20, (Spot("hidden"),)) == 1


def test_the_payload_holds_viewer_values_only(
    system_engine: Engine, alert_orgs: dict[str, int], runs_of: Any
) -> None:
    runs = runs_of("1270")
    runs.publish(30, (Spot("h-p", cells=((0, 0), (1, 0), (0, 1)), incident_count=23),))
    (event,) = runs.events()
    payload = event.payload
    assert set(payload) == COMMON_FIELDS | {"hotspot"}
    assert set(payload["hotspot"]) == HOTSPOT_FIELDS
    assert payload["hotspot"]["viewer_count"] == 20 and payload["suppression_k"] == 5
    assert payload["area"] == {"code": "1270", "name": "Tomelilla"}
    assert payload["period"] == "2030-W30"
    assert b"23" not in orjson.dumps(payload)  # the exact count is nowhere
    point = payload["hotspot"]["point"]
    with system_engine.connect() as conn:
        inside, vertex = conn.execute(
            text("""
            SELECT ST_Covers(h.viewer_geom, p), ST_Intersects(ST_Boundary(h.viewer_geom), p)
            FROM est.hotspot h,
                 LATERAL (SELECT ST_Transform(ST_SetSRID(ST_Point(:lon, :lat), 4326), 3006) AS p) q
            WHERE h.run_id = :run
        """),
            {"lon": point["lon"], "lat": point["lat"], "run": runs.made[-1]},
        ).one()
    assert inside and not vertex  # inside the viewer cells, not on their (or a hull's) edge


def test_entering_an_emerging_class_alerts_and_staying_in_it_does_not(
    system_engine: Engine, alert_orgs: dict[str, int], runs_of: Any
) -> None:
    runs = runs_of("1272")
    spot = Spot("h-e", "stable")
    assert runs.publish(10, (spot,)) == 0
    assert runs.publish(11, (Spot("h-e", "stable", emerging="consecutive_hot"),)) == 1
    assert runs.publish(12, (Spot("h-e", "stable", emerging="consecutive_hot"),)) == 0
    assert runs.publish(13, (Spot("h-e", "stable", emerging="intensifying_hot"),)) == 1
    # classes that need no attention, and cold spots, are no event
    assert runs.publish(14, (Spot("h-e", "stable", emerging="persistent_hot"),)) == 0
    assert runs.publish(15, (Spot("h-e", "stable", emerging="new_cold"),)) == 0
    assert _kinds(runs.events()) == [
        ("consecutive_hot", "h-e", "2030-W11"),
        ("intensifying_hot", "h-e", "2030-W13"),
    ]
    assert runs.events()[0].payload["hotspot"]["id"] == "h-e"


def test_a_new_hotspot_in_a_new_emerging_class_is_two_events(
    system_engine: Engine, alert_orgs: dict[str, int], runs_of: Any
) -> None:
    runs = runs_of("1263")
    assert runs.publish(40, (Spot("h-b", emerging="new_hot"),)) == 2
    assert {e.kind for e in runs.events()} == {"new_hotspot", "new_hot"}


def test_a_significant_rise_alerts_once_and_a_drop_or_chance_does_not(
    system_engine: Engine, alert_orgs: dict[str, int], runs_of: Any
) -> None:
    runs = runs_of("1265")
    quiet = (Figure("vald", significant=False), Figure("trafik", direction="down"))
    assert runs.publish(40, (), (Figure("brand"), *quiet)) == 1
    assert runs.publish(40, (), (Figure("brand"), *quiet)) == 0  # the next night
    (event,) = runs.events()
    assert (event.kind, event.subject) == ("rise", "brand")
    group = event.payload["group"]
    assert group["name"] == "Brand" and group["shown"]["this_week"] == 25
    assert group["tests"] == {"baseline_mean": {"p": 1e-6, "p_adjusted": 2e-5}}


def test_the_area_default_profile_tells_every_subscriber_and_an_own_profile_its_keeper_only(
    system_engine: Engine, alert_orgs: dict[str, int], runs_of: Any, unsubscribe: list[int]
) -> None:
    for org in (KOMMUN, POLICE):
        unsubscribe.append(subscribe(system_engine, alert_orgs[org], "1257", email="a@b.se"))
    with system_engine.begin() as conn:
        own, _ = save_profile(
            conn,
            "1257",
            "alert-own",
            ProfileSettings(),
            organisation_id=alert_orgs[KOMMUN],
            changed_by="test",
        )
    runs = runs_of("1257")
    assert runs.publish(50, (Spot("h-own"),), profile_id=own.id) == 1
    with system_engine.connect() as conn:
        told = conn.scalars(
            text("""
            SELECT o.code FROM est.alert_delivery d
            JOIN est.alert_subscription s ON s.id = d.subscription_id
            JOIN est.organisation o ON o.id = s.organisation_id
            JOIN est.alert_event e ON e.id = d.event_id
            WHERE e.run_id = :run
        """),
            {"run": runs.made[-1]},
        ).all()
    assert told == [KOMMUN]


def test_a_paused_subscription_or_one_without_a_grant_gets_no_delivery(
    system_engine: Engine, alert_orgs: dict[str, int], runs_of: Any, unsubscribe: list[int]
) -> None:
    paused = subscribe(system_engine, alert_orgs[KOMMUN], "1256", email="p@b.se")
    lost = subscribe(system_engine, alert_orgs[POLICE], "1256", email="l@b.se")
    unsubscribe += [paused, lost]
    with system_engine.begin() as conn:
        conn.execute(
            text("UPDATE est.alert_subscription SET active = false WHERE id = :id"), {"id": paused}
        )
        conn.execute(
            text(
                "UPDATE est.area_grant SET expires_at = now() - interval '1 day' "
                "WHERE organisation_id = :org AND area_id = (SELECT id FROM est.area "
                "WHERE code = '1256')"
            ),
            {"org": alert_orgs[POLICE]},
        )
    try:
        runs = runs_of("1256")
        assert runs.publish(35, (Spot("h-q"),)) == 1
        assert [e.deliveries for e in runs.events()] == [0]
    finally:
        with system_engine.begin() as conn:
            conn.execute(
                text("UPDATE est.area_grant SET expires_at = NULL WHERE organisation_id = :org"),
                {"org": alert_orgs[POLICE]},
            )
