"""The week's run inside the service: computed from stored incidents, published atomically,
kept as history, skipped when nothing changed, and safe when it fails or is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest
import shapely
from shapely import wkb as shapely_wkb
from sqlalchemy import Connection, Engine, Row, text

from app.ingest.store import IncidentRecord, upsert_incidents
from app.ops.demo import ensure_organisation
from app.runs import recompute as runs
from app.runs.inputs import load_area
from app.runs.profiles import ensure_default_profiles
from app.settings import Settings
from clustering.synthetic import HotspotSpec, generate_incidents

TZ = "Europe/Stockholm"
AREA = "1267"  # Höör: no other test stores incidents there
RUN_MONDAY = date(2026, 11, 16)  # ISO week 47
WEEKS = 16
NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)  # week 47 and 48 closed


@dataclass(frozen=True)
class Place:
    """The synthetic Höör: where its three hotspots are (SWEREF 99 TM)."""

    centre: tuple[float, float]
    persisting: tuple[float, float]
    emerging: tuple[float, float]
    fading: tuple[float, float]
    organisation_id: int
    times: np.ndarray
    categories: np.ndarray


def _records(
    xy: np.ndarray, times: np.ndarray, cats: np.ndarray, prefix: str
) -> list[IncidentRecord]:
    return [
        IncidentRecord(
            source="run-test",
            external_id=f"{prefix}-{i}",
            category_code=str(c),
            occurred_from=t.astype("datetime64[us]").item().replace(tzinfo=UTC),
            occurred_to=None,
            x=float(x),
            y=float(y),
            location_precision="address",
        )
        for i, ((x, y), t, c) in enumerate(zip(xy, times, cats, strict=True))
    ]


@pytest.fixture(scope="module")
def place(settings: Settings) -> Iterator[Place]:
    """Höör with 16 weeks of incidents around three hotspots up to the end of week 47."""
    from sqlalchemy import create_engine, pool

    engine = create_engine(settings.role_url("est_system"), poolclass=pool.NullPool)
    with engine.begin() as conn:
        ensure_default_profiles(conn)
        area = load_area(conn, AREA).geom
        c = shapely.point_on_surface(area)
        centre = (c.x, c.y)
        persisting = (centre[0], centre[1])
        emerging = (centre[0] + 2500, centre[1])
        fading = (centre[0] - 2500, centre[1])
        for p in (emerging, fading):
            assert area.contains(shapely.Point(p))
        start = datetime(2026, 11, 23, tzinfo=ZoneInfo(TZ)) - timedelta(weeks=WEEKS)
        made = generate_incidents(
            [
                HotspotSpec(
                    *persisting,
                    sigma_m=60,
                    weight=1.0,
                    trend="persisting",
                    categories={"skadegorelse.klotter": 1},
                ),
                HotspotSpec(
                    *emerging,
                    sigma_m=60,
                    weight=1.0,
                    trend="emerging",
                    categories={"tillgrepp.cykelstold": 1},
                ),
                HotspotSpec(
                    *fading,
                    sigma_m=60,
                    weight=1.0,
                    trend="fading",
                    categories={"skadegorelse.klotter": 1},
                ),
            ],
            1800,
            start=start,
            weeks=WEEKS,
            background_share=0.2,
            background_area=area.buffer(-200),
            background_categories={"skadegorelse.klotter": 1, "tillgrepp.cykelstold": 1},
            seed=7,
        )
        org = ensure_organisation(conn, "run-test", "Höör kommun (test)", "kommun")
        upsert_incidents(conn, org, 3006, _records(made.xy, made.time, made.category, "s"))
    yield Place(centre, persisting, emerging, fading, org, made.time, made.category)
    engine.dispose()


def _profile(conn: Connection) -> runs.Profile:
    return runs.default_profile(conn, AREA)


def _run(engine: Engine, monday: date = RUN_MONDAY, force: bool = False) -> runs.Outcome:
    with engine.connect() as conn:
        profile = _profile(conn)
    return runs.recompute(
        engine, AREA, profile, runs.RunPeriod.week(monday, TZ), force=force, now=NOW
    )


def _current(conn: Connection) -> dict[str, int]:
    rows = conn.execute(
        text(
            "SELECT c.layer, c.run_id FROM est.layer_current c JOIN est.area a ON a.id = c.area_id "
            "WHERE a.code = :c"
        ),
        {"c": AREA},
    ).all()
    return {r.layer: r.run_id for r in rows}


def test_the_run_publishes_the_known_hotspots_and_layers(
    system_engine: Engine, place: Place
) -> None:
    outcome = _run(system_engine, force=True)
    assert outcome.status == "succeeded" and outcome.published
    with system_engine.connect() as conn:
        assert set(_current(conn).values()) == {outcome.run_id}
        run = conn.execute(
            text("SELECT * FROM est.hotspot_run WHERE id = :id"), {"id": outcome.run_id}
        ).one()
        hotspots = conn.execute(
            text(
                "SELECT hotspot_key, change_label::text AS label, incident_count, "
                "ST_AsBinary(geom) AS g, ST_AsBinary(viewer_geom) AS vg, viewer_count, stats "
                "FROM est.hotspot WHERE run_id = :id"
            ),
            {"id": outcome.run_id},
        ).all()
    assert run.status == "succeeded" and run.period_label == "2026-W47"
    assert not run.provisional and run.published_at is not None
    assert run.window_end == datetime(2026, 11, 23, tzinfo=ZoneInfo(TZ))
    assert run.parameters["dbscan"]["eps_m"] == 150.0
    assert set(run.timings) >= {"read", "methods", "figures", "viewer", "write"}
    polygons = [shapely_wkb.loads(bytes(h.g)) for h in hotspots if h.label != "gone"]
    # the persisting and the emerging hotspot are active in the 4-week window; the fading one
    # has faded away (nothing in the last third of the 16 weeks)
    assert any(p.contains(shapely.Point(place.persisting)) for p in polygons)
    assert any(p.contains(shapely.Point(place.emerging)) for p in polygons)
    assert not any(p.contains(shapely.Point(place.fading)) for p in polygons)
    assert any(h.vg is not None and h.viewer_count > 0 for h in hotspots)
    for h in hotspots:
        assert len(h.stats["weekly"]) == 12
        if h.vg is not None:  # the viewer version is whole cells of the profile's size
            cells = shapely_wkb.loads(bytes(h.vg))
            xs, ys = shapely.get_coordinates(cells).T
            assert np.allclose(xs % 250, 0) and np.allclose(ys % 250, 0)
    with system_engine.connect() as conn:  # every viewer layer is there, Gi* with a hot bin
        layers = dict(
            conn.execute(
                text("SELECT layer, max(bin) FROM est.viewer_cell WHERE run_id = :r GROUP BY 1"),
                {"r": outcome.run_id},
            ).all()
        )
    assert set(layers) == {"counts", "density", "gistar", "emerging", "forecast"}
    assert layers["gistar"] == 3


def test_a_second_run_on_unchanged_data_is_skipped_and_a_change_is_not(
    system_engine: Engine, place: Place
) -> None:
    first = _run(system_engine, force=True)
    again = _run(system_engine)
    assert again.status == "skipped" and again.run_id == first.run_id
    with system_engine.begin() as conn:
        upsert_incidents(
            conn,
            place.organisation_id,
            3006,
            _records(
                np.array([place.persisting]),
                np.array([np.datetime64("2026-11-18T10:00:00")]),
                np.array(["skadegorelse.klotter"]),
                "late",
            ),
        )
    changed = _run(system_engine)
    assert changed.status == "succeeded" and changed.run_id != first.run_id


def _week_of(times: np.ndarray) -> np.ndarray:
    """Local ISO-week Mondays of UTC times, computed here without the service's week clock."""
    local = [
        t.astype("datetime64[us]").item().replace(tzinfo=UTC).astimezone(ZoneInfo(TZ))
        for t in times
    ]
    return np.array([(d.date() - timedelta(days=d.weekday())) for d in local])


def test_the_area_figures_equal_counts_made_here(system_engine: Engine, place: Place) -> None:
    outcome = _run(system_engine, force=True)
    with system_engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT group_code, this_week, last_week, mean_12_weeks, tests "
                "FROM est.area_figure WHERE run_id = :id AND audience = 'analyst'"
            ),
            {"id": outcome.run_id},
        ).all()
        late = conn.scalar(
            text(
                "SELECT count(*) FROM est.incident WHERE source = 'run-test' "
                "AND external_id LIKE 'late-%' AND deleted_at IS NULL"
            )
        )
    figures = {r.group_code: r for r in rows}
    mondays = _week_of(place.times)
    klotter = place.categories == "skadegorelse.klotter"
    for group, member in (
        ("all", np.ones_like(klotter)),
        ("skadegorelse", klotter),
        ("tillgrepp", ~klotter),
    ):
        extra = late if group in ("all", "skadegorelse") else 0  # the later klotter in week 47
        assert figures[group].this_week == int((member & (mondays == RUN_MONDAY)).sum()) + extra
        previous = RUN_MONDAY - timedelta(7)
        assert figures[group].last_week == int((member & (mondays == previous)).sum())
        twelve = [RUN_MONDAY - timedelta(7 * k) for k in range(1, 13)]
        expected = sum(int((member & (mondays == m)).sum()) for m in twelve) / 12
        assert figures[group].mean_12_weeks == pytest.approx(expected)
        assert set(figures[group].tests) == {
            "baseline_mean",
            "previous_period",
            "same_period_last_year",
        }
    assert figures["vald"].this_week == 0


def test_week_history_ids_and_labels_follow_the_previous_week(
    system_engine: Engine, place: Place
) -> None:
    w47 = _run(system_engine, force=True)
    w48 = _run(system_engine, RUN_MONDAY + timedelta(7), force=True)
    with system_engine.connect() as conn:
        assert set(_current(conn).values()) == {w48.run_id}  # the newest week is current
        persisting_key = {
            run_id: conn.scalar(
                text(
                    "SELECT hotspot_key FROM est.hotspot WHERE run_id = :id "
                    "AND ST_Contains(geom, ST_SetSRID(ST_Point(:x, :y), 3006))"
                ),
                {"id": run_id, "x": place.persisting[0], "y": place.persisting[1]},
            )
            for run_id in (w47.run_id, w48.run_id)
        }
        w48_labels = dict(
            conn.execute(
                text("SELECT hotspot_key, change_label::text FROM est.hotspot WHERE run_id = :id"),
                {"id": w48.run_id},
            ).all()
        )
        # week 47 stays readable after week 48 is published, and recomputing it later does not
        # take layer_current back in time
        again = _run(system_engine, force=True)
        assert set(_current(conn).values()) == {w48.run_id} and not again.published
        old = conn.execute(
            text("SELECT status::text, published_at FROM est.hotspot_run WHERE id = :id"),
            {"id": w47.run_id},
        ).one()
    assert persisting_key[w47.run_id] is not None
    assert persisting_key[w47.run_id] == persisting_key[w48.run_id]
    assert w48_labels[persisting_key[w48.run_id]] in ("stable", "shrunk", "grown")
    assert old.status == "succeeded" and old.published_at is not None


def test_a_hotspot_whose_incidents_are_deleted_is_gone_and_a_new_one_is_new(
    system_engine: Engine, place: Place
) -> None:
    before = _run(system_engine, force=True)
    fresh = (place.centre[0], place.centre[1] - 3000)
    with system_engine.begin() as conn:
        stamp = np.datetime64("2026-11-17T18:00:00")
        upsert_incidents(
            conn,
            place.organisation_id,
            3006,
            _records(
                np.array([(fresh[0] + (i % 5) * 10, fresh[1] + (i // 5) * 10) for i in range(25)]),
                np.array([stamp + np.timedelta64(i, "h") for i in range(25)]),
                np.array(["tillgrepp.cykelstold"] * 25),
                "fresh",
            ),
        )
        emerging_key = conn.scalar(
            text(
                "SELECT hotspot_key FROM est.hotspot WHERE run_id = :id "
                "AND ST_Contains(geom, ST_SetSRID(ST_Point(:x, :y), 3006))"
            ),
            {"id": before.run_id, "x": place.emerging[0], "y": place.emerging[1]},
        )
        deleted = conn.execute(
            text(
                "UPDATE est.incident SET deleted_at = now(), updated_at = now() "
                "WHERE source = 'run-test' AND deleted_at IS NULL "
                "AND ST_DWithin(geom, ST_SetSRID(ST_Point(:x, :y), 3006), 600)"
            ),
            {"x": place.emerging[0], "y": place.emerging[1]},
        ).rowcount
    assert deleted > 50 and emerging_key is not None
    # week 48 follows the newest published run of week 47 (`before`): the emerging hotspot's
    # incidents are deleted, and the fresh cluster of week 47 was not in it yet
    after = _run(system_engine, RUN_MONDAY + timedelta(7), force=True)
    with system_engine.connect() as conn:
        labels = dict(
            conn.execute(
                text("SELECT hotspot_key, change_label::text FROM est.hotspot WHERE run_id = :id"),
                {"id": after.run_id},
            ).all()
        )
        new_key = conn.scalar(
            text(
                "SELECT hotspot_key FROM est.hotspot WHERE run_id = :id "
                "AND ST_Contains(geom, ST_SetSRID(ST_Point(:x, :y), 3006))"
            ),
            {"id": after.run_id, "x": fresh[0] + 20, "y": fresh[1] + 20},
        )
    assert labels.get(emerging_key) == "gone"
    assert new_key is not None and labels[new_key] == "new"


def _latest(conn: Connection) -> Row:
    return conn.execute(
        text(
            "SELECT r.id, r.status::text AS status, r.error FROM est.hotspot_run r "
            "JOIN est.area a ON a.id = r.area_id WHERE a.code = :c ORDER BY r.id DESC LIMIT 1"
        ),
        {"c": AREA},
    ).one()


def test_a_failing_run_is_marked_failed_and_the_published_run_stays(
    system_engine: Engine, place: Place, monkeypatch: pytest.MonkeyPatch
) -> None:
    _run(system_engine, force=True)
    with system_engine.connect() as conn:
        current = _current(conn)

    def broken(run: object) -> None:
        raise RuntimeError("the methods broke")

    monkeypatch.setattr(runs.computing, "compute", broken)
    with pytest.raises(RuntimeError):
        _run(system_engine, force=True)
    with system_engine.connect() as conn:
        failed = _latest(conn)
        assert _current(conn) == current and current
        written = conn.scalar(
            text("SELECT count(*) FROM est.hotspot WHERE run_id = :id"), {"id": failed.id}
        )
    assert failed.status == "failed" and "the methods broke" in failed.error
    assert written == 0


def test_a_killed_run_leaves_the_published_run_and_is_marked_failed_when_stale(
    system_engine: Engine, place: Place, settings: Settings
) -> None:
    _run(system_engine, force=True)
    with system_engine.connect() as conn:
        current = _current(conn)
    script = f"""
import time
from datetime import date, datetime, timezone
from sqlalchemy import create_engine, pool
from app.runs import recompute as runs

def slow(*args, **kwargs):
    print("computing", flush=True)
    time.sleep(300)

runs.viewer.make = slow
engine = create_engine({settings.role_url("est_system").render_as_string(hide_password=False)!r},
                       poolclass=pool.NullPool)
with engine.connect() as conn:
    profile = runs.default_profile(conn, {AREA!r})
week = runs.RunPeriod.week(date(2026, 11, 16), {TZ!r})
runs.recompute(engine, {AREA!r}, profile, week, force=True,
               now=datetime(2026, 11, 30, 12, tzinfo=timezone.utc))
"""
    child = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "computing", child.stderr.read()
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(timeout=30)
    with system_engine.begin() as conn:
        killed = _latest(conn)
        assert killed.status == "running"
        assert _current(conn) == current and current
        # ten minutes later its heartbeat is stale: the next run marks it failed
        conn.execute(
            text(
                "UPDATE est.hotspot_run SET heartbeat_at = heartbeat_at - interval '10 minutes' "
                "WHERE id = :id"
            ),
            {"id": killed.id},
        )
    _run(system_engine, force=True)
    with system_engine.connect() as conn:
        row = conn.execute(
            text("SELECT status::text AS status, error FROM est.hotspot_run WHERE id = :id"),
            {"id": killed.id},
        ).one()
    assert row.status == "failed" and "no heartbeat" in row.error


def _viewer_state(conn: Connection, run_id: int) -> tuple[list[tuple], list[tuple]]:
    cells = conn.execute(
        text(
            "SELECT layer, cell_size_m, ix, iy, shown, round(value::numeric, 9), bin, pattern "
            "FROM est.viewer_cell WHERE run_id = :id ORDER BY 1, 2, 3, 4"
        ),
        {"id": run_id},
    ).all()
    figures = conn.execute(
        text(
            "SELECT group_code, this_week, last_week, same_week_last_year, mean_12_weeks "
            "FROM est.area_figure WHERE run_id = :id AND audience = 'viewer' ORDER BY 1"
        ),
        {"id": run_id},
    ).all()
    return [tuple(c) for c in cells], [tuple(f) for f in figures]


def test_a_lone_incident_changes_no_viewer_value_of_the_next_run(
    system_engine: Engine, place: Place
) -> None:
    """The attacker compares the viewer layers of two nights, before and after one incident."""
    before = _run(system_engine, force=True)
    lone = (place.centre[0] + 6000, place.centre[1] + 6000)
    with system_engine.begin() as conn:
        inside = conn.scalar(
            text(
                "SELECT ST_Contains(geom, ST_SetSRID(ST_Point(:x, :y), 3006)) FROM est.area "
                "WHERE code = :c"
            ),
            {"x": lone[0], "y": lone[1], "c": AREA},
        )
        assert inside
        upsert_incidents(
            conn,
            place.organisation_id,
            3006,
            _records(
                np.array([lone]),
                np.array([np.datetime64("2026-11-19T21:00:00")]),
                np.array(["skadegorelse.klotter"]),
                "lone",
            ),
        )
    after = _run(system_engine)
    assert after.status == "succeeded" and after.run_id != before.run_id
    with system_engine.connect() as conn:
        seen_before, seen_after = (
            _viewer_state(conn, before.run_id),
            _viewer_state(conn, after.run_id),
        )
        analyst = conn.scalar(
            text(
                "SELECT this_week FROM est.area_figure WHERE run_id = :id "
                "AND audience = 'analyst' AND group_code = 'all'"
            ),
            {"id": after.run_id},
        )
        analyst_before = conn.scalar(
            text(
                "SELECT this_week FROM est.area_figure WHERE run_id = :id "
                "AND audience = 'analyst' AND group_code = 'all'"
            ),
            {"id": before.run_id},
        )
    assert analyst == analyst_before + 1  # the analysts' exact figures do see it
    assert seen_after == seen_before  # every viewer cell and figure is the same


def test_the_viewer_counts_are_est_viewer_grid_answers_and_the_app_role_cannot_be_system(
    system_engine: Engine, app_engine: Engine, place: Place
) -> None:
    outcome = _run(system_engine, force=True)
    query = text(
        "SELECT ix, iy, shown FROM est.viewer_grid(:a, 250, 'week', :d, 'all') ORDER BY 2, 1"
    )
    with system_engine.begin() as conn:
        conn.execute(text("SELECT set_config('est.role', 'system', true)"))
        answer = [tuple(r) for r in conn.execute(query, {"a": AREA, "d": RUN_MONDAY}).all()]
        stored = conn.execute(
            text(
                "SELECT ix, iy, shown FROM est.viewer_cell WHERE run_id = :id "
                "AND layer = 'counts' ORDER BY iy, ix"
            ),
            {"id": outcome.run_id},
        ).all()
    assert answer and [tuple(r) for r in stored] == answer
    with app_engine.begin() as conn:
        conn.execute(text("SELECT set_config('est.role', 'system', true)"))
        assert conn.execute(query, {"a": AREA, "d": RUN_MONDAY}).all() == []


def test_last_weeks_forecast_is_scored_against_this_week(
    system_engine: Engine, place: Place
) -> None:
    w46 = _run(system_engine, RUN_MONDAY - timedelta(7), force=True)
    w47 = _run(system_engine, force=True)
    with system_engine.connect() as conn:
        score = conn.scalar(
            text("SELECT figures -> 'forecast_score' FROM est.hotspot_run WHERE id = :id"),
            {"id": w47.run_id},
        )
        hits, total = conn.execute(
            text("""
            WITH flagged AS (
                SELECT ix, iy FROM est.forecast_cell WHERE run_id = :w46 AND flagged
            ), week AS (
                SELECT floor(ST_X(i.geom) / 250)::int AS ix, floor(ST_Y(i.geom) / 250)::int AS iy
                FROM est.incident i JOIN est.category c ON c.code = i.category_code
                JOIN est.incident_area ia ON ia.incident_id = i.id
                JOIN est.area a ON a.id = ia.area_id AND a.code = :area
                WHERE i.deleted_at IS NULL AND NOT c.sensitive
                  AND i.location_precision IN ('exact', 'address', 'street')
                  AND i.occurred_from >= '2026-11-16 00:00+01'
                  AND i.occurred_from < '2026-11-23 00:00+01'
            )
            SELECT count(*) FILTER (WHERE (w.ix, w.iy) IN (SELECT ix, iy FROM flagged)),
                   count(*)
            FROM week w
        """),
            {"w46": w46.run_id, "area": AREA},
        ).one()
    assert score["run_id"] == w46.run_id
    assert score["hits"] == hits and score["incidents"] == total
    assert score["hit_rate"] == pytest.approx(hits / total)
    assert score["hits"] > 0  # the persisting hotspot was forecast


def test_a_tertials_run_is_the_same_computation_over_the_tertial(
    system_engine: Engine, place: Place
) -> None:
    with system_engine.connect() as conn:
        profile = _profile(conn)
        weeks_before = _current(conn)
    tertial = runs.RunPeriod.tertial(date(2026, 10, 1), TZ)
    assert (tertial.label, tertial.first_day, tertial.end_day) == (
        "2026-T3",
        date(2026, 9, 1),
        date(2027, 1, 1),
    )
    outcome = runs.recompute(system_engine, AREA, profile, tertial, force=True, now=NOW)
    assert outcome.status == "succeeded" and outcome.published
    with system_engine.begin() as conn:
        run = conn.execute(
            text("SELECT * FROM est.hotspot_run WHERE id = :id"), {"id": outcome.run_id}
        ).one()
        expected = conn.scalar(
            text("""
            SELECT count(*) FROM est.incident i JOIN est.category c ON c.code = i.category_code
            JOIN est.incident_area ia ON ia.incident_id = i.id
            JOIN est.area a ON a.id = ia.area_id AND a.code = :area
            WHERE i.deleted_at IS NULL AND NOT c.sensitive
              AND i.location_precision IN ('exact', 'address', 'street')
              AND i.occurred_from >= '2026-09-01 00:00+02'
              AND i.occurred_from < '2027-01-01 00:00+01'
        """),
            {"area": AREA},
        )
        figure = conn.scalar(
            text(
                "SELECT this_week FROM est.area_figure WHERE run_id = :id "
                "AND audience = 'analyst' AND group_code = 'all'"
            ),
            {"id": outcome.run_id},
        )
        conn.execute(text("SELECT set_config('est.role', 'system', true)"))
        answer = conn.execute(
            text(
                "SELECT ix, iy, shown FROM est.viewer_grid(:a, 250, 'tertial', :d, 'all') "
                "ORDER BY 2, 1"
            ),
            {"a": AREA, "d": date(2026, 10, 1)},
        ).all()
        stored = conn.execute(
            text(
                "SELECT ix, iy, shown FROM est.viewer_cell WHERE run_id = :id "
                "AND layer = 'counts' ORDER BY iy, ix"
            ),
            {"id": outcome.run_id},
        ).all()
        current = _current(conn)
    assert run.period_kind == "tertial" and run.period_label == "2026-T3" and run.provisional
    assert outcome.counts["window"] == expected == figure
    assert [tuple(r) for r in stored] == [tuple(r) for r in answer] and answer
    # published beside the weeks' layers, which stay as they were
    assert current["tertial.hotspots"] == outcome.run_id
    assert {k: v for k, v in current.items() if "." not in k} == weeks_before
