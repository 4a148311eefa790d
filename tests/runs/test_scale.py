"""The night's runs on Dask workers publish exactly what the same runs publish in-process.

Workers get the gathered arrays and parameters and return the results; only this process
talks to the database. Two areas run at once on a LocalCluster of two worker processes (so
everything crosses a process boundary, pickled), and every published value is compared with
the in-process runs of the same week: hotspots (ids, labels, counts, geometry, statistics),
every cell layer, the viewer layers and the figures.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import shapely
from sqlalchemy import Connection, Engine, text

from app.core.errors import InvalidInput
from app.ingest.store import upsert_incidents
from app.ops.demo import ensure_organisation
from app.runs import recompute as runs
from app.runs import scale
from app.runs.inputs import load_area
from app.runs.profiles import ensure_default_profiles
from app.settings import Settings
from clustering.synthetic import HotspotSpec, generate_incidents
from tests.runs.test_recompute import _records

TZ = "Europe/Stockholm"
AREAS = ("1262", "1264")  # Lomma, Skurup: no other test stores incidents there
WEEK = runs.RunPeriod.week(date(2026, 11, 16), TZ)
NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)
CELL_TABLES = ("density_cell", "gistar_cell", "emerging_cell", "forecast_cell", "viewer_cell")


@pytest.fixture(scope="module")
def engine(settings: Settings) -> Iterator[Engine]:
    """The system role, with 16 weeks of incidents around two hotspots in each area."""
    from sqlalchemy import create_engine, pool

    made_engine = create_engine(settings.role_url("est_system"), poolclass=pool.NullPool)
    with made_engine.begin() as conn:
        ensure_default_profiles(conn)
        org = ensure_organisation(conn, "scale-test", "Skalningstest", "kommun")
        for n, code in enumerate(AREAS):
            area = load_area(conn, code).geom
            c = shapely.point_on_surface(area)
            made = generate_incidents(
                [
                    HotspotSpec(c.x, c.y, sigma_m=60, trend="persisting"),
                    HotspotSpec(c.x + 1500, c.y, sigma_m=80, trend="emerging"),
                ],
                1500,
                start=datetime(2026, 11, 23, tzinfo=ZoneInfo(TZ)) - timedelta(weeks=16),
                weeks=16,
                background_share=0.25,
                background_area=area.buffer(-200),
                background_categories={"skadegorelse.klotter": 2, "tillgrepp.cykelstold": 1},
                seed=20 + n,
            )
            records = _records(made.xy, made.time, made.category, f"scale-{code}")
            upsert_incidents(conn, org, 3006, records)
    yield made_engine
    made_engine.dispose()


def _pairs(engine: Engine) -> list[tuple[str, runs.Profile]]:
    with engine.connect() as conn:
        return runs.profiles_to_run(conn, list(AREAS), runs.DEFAULT_PROFILE)


def _run_all(engine: Engine, where: scale.Runner) -> list[runs.Outcome]:
    def one(pair: tuple[str, runs.Profile]) -> runs.Outcome:
        code, profile = pair
        return runs.recompute(engine, code, profile, WEEK, force=True, now=NOW, runner=where)

    return scale.each(one, _pairs(engine), where.parallel)


def _published(conn: Connection, run_id: int) -> dict[str, Any]:
    """Everything a run wrote, in a fixed order, geometry as exact WKB."""
    found: dict[str, Any] = {
        "hotspots": conn.execute(
            text(
                "SELECT hotspot_key, change_label::text, incident_count, area_m2, stats::text, "
                "ST_AsBinary(geom), viewer_count, ST_AsBinary(viewer_geom) "
                "FROM est.hotspot WHERE run_id = :r ORDER BY hotspot_key"
            ),
            {"r": run_id},
        ).all(),
        "figures": sorted(
            _without_run_id(
                conn.execute(
                    text("SELECT * FROM est.area_figure WHERE run_id = :r"), {"r": run_id}
                ).all()
            ),
            key=repr,
        ),
        "run": conn.execute(
            text(
                "SELECT counts::text, figures::text, notes::text, parameters::text, status::text "
                "FROM est.hotspot_run WHERE id = :r"
            ),
            {"r": run_id},
        ).one(),
    }
    for table in CELL_TABLES:
        rows = conn.execute(text(f"SELECT * FROM est.{table} WHERE run_id = :r"), {"r": run_id})
        found[table] = sorted(_without_run_id(rows.all()), key=repr)
    return found


def _without_run_id(rows: list[Any]) -> list[tuple[Any, ...]]:
    return [tuple(v for k, v in r._mapping.items() if k != "run_id") for r in rows]


def test_two_dask_workers_publish_exactly_what_the_in_process_runs_publish(
    engine: Engine,
) -> None:
    here = _run_all(engine, scale.Local())
    with scale.runner(workers=2) as where:
        assert isinstance(where, scale.OnDask) and where.parallel == 2
        there = _run_all(engine, where)
    assert [o.status for o in here + there] == ["succeeded"] * 4
    assert [o.area for o in here] == [o.area for o in there] == list(AREAS)
    with engine.connect() as conn:
        for a, b in zip(here, there, strict=True):
            assert a.run_id != b.run_id
            mine, theirs = _published(conn, a.run_id), _published(conn, b.run_id)
            assert len(mine["hotspots"]) >= 2 and len(mine["viewer_cell"]) > 0
            for key in mine:
                assert mine[key] == theirs[key], f"{a.area}: {key} differs"
        # the worker-computed run is the one the area publishes now
        current = conn.execute(
            text(
                "SELECT a.code, c.run_id FROM est.layer_current c JOIN est.area a "
                "ON a.id = c.area_id WHERE c.layer = 'hotspots' AND a.code = ANY(:codes)"
            ),
            {"codes": list(AREAS)},
        ).all()
    assert dict(current) == {o.area: o.run_id for o in there}


def test_a_cluster_off_this_machine_is_reached_over_tls_only() -> None:
    for address in ("tls://10.0.0.5:8786", "tcp://127.0.0.1:8786", "localhost:8786"):
        scale.check_scheduler_address(address)
    for address in ("tcp://10.0.0.5:8786", "10.0.0.5:8786", "ws://example.org:8786"):
        with pytest.raises(InvalidInput, match="tls://"):
            scale.check_scheduler_address(address)
    with pytest.raises(InvalidInput, match="not both"), scale.runner(2, "tls://h:8786"):
        pass
