"""The events of a published run: hotspots and category groups that entered a class that needs
attention, each made once with a pending delivery to every subscriber of the area.

Three kinds of class need attention:

- `new_hotspot`: a hotspot labelled new (it has no predecessor in the previous week's run);
- `new_hot`, `consecutive_hot`, `intensifying_hot`: the emerging class of a hotspot, read from
  the run's viewer layer `emerging` (the cells its viewer version covers; when they hold several
  of these classes, the most pressing one: intensifying, then consecutive, then new);
- `rise`: a category group whose shown weekly count rose beyond chance (a significant rise of
  one of the viewer figures' change tests, after Benjamini–Hochberg over the run's tests).

Entering means being in the class in this run and not in the run of the same area, profile and
period kind published before it: a hotspot that stays new, or stays intensifying, night after
night, is told once. The event's key (area, profile, kind, subject, period) is unique, so a run
that is computed again makes no second event. Only hotspots with a viewer version can alert,
and the payload holds viewer values only: the hotspot's id and shown count, a point inside its
viewer cells, the group's shown totals and the test's p; never an incident or an exact count.

`record_events` runs in the transaction that publishes the run: the events and deliveries
commit with the run or not at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection, text

from app.access import privacy
from app.db.deployment import read_deployment
from geo.crs import to_lonlat

NEW_HOTSPOT = "new_hotspot"
EMERGING_CLASSES = ("intensifying_hot", "consecutive_hot", "new_hot")  # most pressing first
RISE = "rise"
KINDS = (NEW_HOTSPOT, *EMERGING_CLASSES, RISE)

# A subscription is served while its organisation holds a live grant on the area.
GRANTED = """EXISTS (
    SELECT 1 FROM est.area_grant g
    WHERE g.area_id = s.area_id AND g.organisation_id = s.organisation_id
      AND (g.expires_at IS NULL OR g.expires_at > now()))"""


@dataclass(frozen=True)
class PublishedRun:
    """The run whose events are made, with what the payload names."""

    id: int
    area_id: int
    area_code: str
    area_name: str
    profile_id: int
    keeper: int | None  # the organisation keeping the profile; None for the area's default
    period_kind: str
    period_label: str
    provisional: bool
    published_at: datetime
    window_end: datetime


@dataclass(frozen=True)
class HotspotState:
    """What a run shows of one hotspot: its label, shown count, a point, its emerging class."""

    label: str
    viewer_count: int | None
    x: float
    y: float
    emerging: str | None


@dataclass(frozen=True)
class Event:
    """An event to store: its kind, what it is about and the payload subscribers get."""

    kind: str
    subject: str
    payload: dict[str, Any]


def record_events(conn: Connection, run_id: int) -> int:
    """Make the events of a published run and their pending deliveries; return how many."""
    run = _published_run(conn, run_id)
    if run is None:
        return 0
    before = _run_before(conn, run)
    k = privacy.protection(conn).suppression_k
    srid = read_deployment(conn).srid
    now, then = _hotspots(conn, run.id), _hotspots(conn, before)
    events = [
        *_hotspot_events(run, now, then, k, srid),
        *_rise_events(run, _rising(conn, run.id), _rising(conn, before), k),
    ]
    return sum(_store(conn, run, event) for event in events)


def _published_run(conn: Connection, run_id: int) -> PublishedRun | None:
    row = conn.execute(
        text("""
        SELECT r.id, r.area_id, a.code AS area_code, a.name AS area_name, r.profile_id,
               p.organisation_id AS keeper, r.period_kind, r.period_label, r.provisional,
               r.published_at, r.window_end
        FROM est.hotspot_run r
        JOIN est.area a ON a.id = r.area_id
        JOIN est.analysis_profile p ON p.id = r.profile_id
        WHERE r.id = :run AND r.published_at IS NOT NULL
    """),
        {"run": run_id},
    ).one_or_none()
    return PublishedRun(**row._mapping) if row is not None else None


def _run_before(conn: Connection, run: PublishedRun) -> int | None:
    """The run of the same area, profile and period kind published before this one."""
    found = conn.scalar(
        text("""
        SELECT id FROM est.hotspot_run
        WHERE area_id = :area AND profile_id = :profile AND period_kind = :kind AND id <> :run
          AND status = 'succeeded' AND published_at IS NOT NULL
          AND published_at < :published AND window_end <= :end
        ORDER BY window_end DESC, published_at DESC
        LIMIT 1
    """),
        {
            "area": run.area_id,
            "profile": run.profile_id,
            "kind": run.period_kind,
            "run": run.id,
            "published": run.published_at,
            "end": run.window_end,
        },
    )
    return int(found) if found is not None else None


def _hotspots(conn: Connection, run_id: int | None) -> dict[str, HotspotState]:
    """The hotspots of a run that have a viewer version, by their stable id."""
    if run_id is None:
        return {}
    rows = conn.execute(
        text("""
        SELECT h.hotspot_key, h.change_label::text AS label, h.viewer_count,
               ST_X(ST_PointOnSurface(h.viewer_geom)) AS x,
               ST_Y(ST_PointOnSurface(h.viewer_geom)) AS y,
               array_remove(array_agg(DISTINCT c.pattern), NULL) AS patterns
        FROM est.hotspot h
        LEFT JOIN est.viewer_cell c
          ON c.run_id = h.run_id AND c.layer = 'emerging'
         AND c.pattern = ANY(CAST(:classes AS text[]))
         AND ST_Covers(h.viewer_geom, ST_SetSRID(ST_MakePoint((c.ix + 0.5) * c.cell_size_m,
                                                              (c.iy + 0.5) * c.cell_size_m),
                                                 ST_SRID(h.viewer_geom)))
        WHERE h.run_id = :run AND h.viewer_geom IS NOT NULL
        GROUP BY h.id
    """),
        {"run": run_id, "classes": list(EMERGING_CLASSES)},
    ).all()
    return {
        r.hotspot_key: HotspotState(
            r.label,
            r.viewer_count,
            r.x,
            r.y,
            next((c for c in EMERGING_CLASSES if c in r.patterns), None),
        )
        for r in rows
    }


def _rising(conn: Connection, run_id: int | None) -> dict[str, dict[str, Any]]:
    """The category groups whose viewer figures rose significantly in a run, by code."""
    if run_id is None:
        return {}
    rows = conn.execute(
        text("""
        SELECT f.group_code, g.label_sv, f.this_week, f.last_week, f.same_week_last_year,
               f.mean_12_weeks, f.tests
        FROM est.area_figure f JOIN est.category_group g ON g.code = f.group_code
        WHERE f.run_id = :run AND f.audience = 'viewer'
        ORDER BY f.group_code
    """),
        {"run": run_id},
    ).all()
    rising = {}
    for r in rows:
        tests = {
            name: {"p": t["p"], "p_adjusted": t["p_adjusted"]}
            for name, t in r.tests.items()
            if t.get("significant") and t.get("direction") == "up"
        }
        if tests:
            rising[r.group_code] = {
                "code": r.group_code,
                "name": r.label_sv,
                "shown": {
                    "this_week": r.this_week,
                    "last_week": r.last_week,
                    "same_week_last_year": r.same_week_last_year,
                    "mean_12_weeks": round(r.mean_12_weeks, 2),
                },
                "tests": tests,
            }
    return rising


def _common(run: PublishedRun, kind: str, k: int) -> dict[str, Any]:
    return {
        "kind": kind,
        "area": {"code": run.area_code, "name": run.area_name},
        "period": run.period_label,
        "provisional": run.provisional,
        "run_id": run.id,
        "suppression_k": k,
    }


def _hotspot_events(
    run: PublishedRun,
    now: dict[str, HotspotState],
    then: dict[str, HotspotState],
    k: int,
    srid: int,
) -> list[Event]:
    events = []
    for key, state in now.items():
        before = then.get(key)
        entered = []
        if state.label == "new" and (before is None or before.label != "new"):
            entered.append(NEW_HOTSPOT)
        if state.emerging is not None and (before is None or before.emerging != state.emerging):
            entered.append(state.emerging)
        if not entered:
            continue
        lon, lat = to_lonlat([state.x], [state.y], srid)
        hotspot = {
            "id": key,
            "viewer_count": state.viewer_count,
            "point": {"lon": round(float(lon[0]), 6), "lat": round(float(lat[0]), 6)},
        }
        for kind in entered:
            payload = {**_common(run, kind, k), "hotspot": hotspot}
            events.append(Event(kind, key, payload))
    return events


def _rise_events(
    run: PublishedRun,
    now: dict[str, dict[str, Any]],
    then: dict[str, dict[str, Any]],
    k: int,
) -> list[Event]:
    return [
        Event(RISE, code, {**_common(run, RISE, k), "group": group})
        for code, group in now.items()
        if code not in then
    ]


def _store(conn: Connection, run: PublishedRun, event: Event) -> int:
    """Insert an event unless its key exists, and its deliveries; 1 when it was made."""
    event_id = conn.scalar(
        text("""
        INSERT INTO est.alert_event (run_id, area_id, profile_id, kind, subject, period_label,
                                     payload)
        VALUES (:run, :area, :profile, :kind, :subject, :period, CAST(:payload AS jsonb))
        ON CONFLICT (area_id, profile_id, kind, subject, period_label) DO NOTHING
        RETURNING id
    """),
        {
            "run": run.id,
            "area": run.area_id,
            "profile": run.profile_id,
            "kind": event.kind,
            "subject": event.subject,
            "period": run.period_label,
            "payload": orjson.dumps(event.payload).decode(),
        },
    )
    if event_id is None:
        return 0
    # a profile an organisation keeps is its own analysis: only its subscriptions hear of it
    conn.execute(
        text(f"""
        INSERT INTO est.alert_delivery (event_id, subscription_id)
        SELECT :event, s.id FROM est.alert_subscription s
        WHERE s.area_id = :area AND s.active
          AND (CAST(:keeper AS integer) IS NULL OR s.organisation_id = :keeper)
          AND {GRANTED}
    """),
        {"event": event_id, "area": run.area_id, "keeper": run.keeper},
    )
    return 1
