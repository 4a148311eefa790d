"""What the alert tests share: two subscribing organisations (a kommun and its police area),
runs written by hand with the hotspots, emerging cells and figures a test needs, and a local
webhook receiver."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
import pytest
import shapely
from sqlalchemy import Connection, Engine, text

from app.access import admin
from app.alerts import subscriptions
from app.alerts.events import record_events
from app.alerts.subscriptions import Who
from app.core.vocabulary import GrantLevel
from app.ops.demo import ensure_organisation
from app.runs.profiles import ensure_default_profiles
from app.settings import Settings

KOMMUN, POLICE = "alert-kommun", "alert-lpo"
WHO = Who(None, "test")
CELL_M = 250


@pytest.fixture(scope="session")
def alert_orgs(settings: Settings) -> dict[str, int]:
    """The two organisations, each with an aggregate grant on the areas the alert tests use."""
    from sqlalchemy import create_engine, pool

    engine = create_engine(settings.role_url("est_system"), poolclass=pool.NullPool)
    ids = {}
    with engine.begin() as conn:
        ensure_default_profiles(conn)
        for code, kind in ((KOMMUN, "kommun"), (POLICE, "lpo")):
            ids[code] = ensure_organisation(conn, code, code, kind)
            for area in ("1256", "1257", "1263", "1265", "1266", "1270", "1272"):
                admin.grant_area(conn, code, area, GrantLevel.aggregate, "test")
    engine.dispose()
    return ids


def subscribe(
    engine: Engine, org_id: int, area: str, *, url: str | None = None, email: str | None = None
) -> int:
    """A subscription made as the operator would, allowed to reach the local receiver."""
    with engine.begin() as conn:
        made, _ = subscriptions.create(
            conn, WHO, org_id, area, url=url, email=email, allowed=["127.0.0.1"]
        )
    return made.id


def last_delivery(engine: Engine, subscription_id: int) -> Any:
    """The newest delivery of a subscription, with its attempts as outcome:status."""
    with engine.connect() as conn:
        return conn.execute(
            text("""
            SELECT d.*, ARRAY(SELECT a.outcome || ':' || coalesce(a.status_code, 0)
                              FROM est.alert_attempt a WHERE a.delivery_id = d.id
                              ORDER BY a.attempt) AS log
            FROM est.alert_delivery d WHERE d.subscription_id = :id ORDER BY d.id DESC LIMIT 1
        """),
            {"id": subscription_id},
        ).one()


@pytest.fixture()
def unsubscribe(system_engine: Engine) -> Iterator[list[int]]:
    """Subscription ids a test made, removed afterwards with their deliveries."""
    made: list[int] = []
    yield made
    with system_engine.begin() as conn:
        conn.execute(text("DELETE FROM est.alert_subscription WHERE id = ANY(:ids)"), {"ids": made})


@dataclass(frozen=True)
class Spot:
    """A hotspot of a hand-made run: its id, label, viewer cells and counts."""

    key: str
    label: str = "new"
    cells: tuple[tuple[int, int], ...] = ((0, 0),)  # offsets from the area's origin cell
    viewer_count: int | None = 20
    incident_count: int = 23
    emerging: str | None = None  # the pattern of its cells in the viewer layer `emerging`


@dataclass(frozen=True)
class Figure:
    """A viewer figure of a hand-made run: a group's shown totals and one change test."""

    group: str
    this_week: int = 25
    last_week: int = 0
    mean: float = 0.0
    direction: str = "up"
    significant: bool = True


@dataclass
class RunMaker:
    """Publishes hand-made runs of one area, each in a transaction that records its events,
    as a publishing run does."""

    engine: Engine
    area: str
    year: int = 2030
    origin: tuple[int, int] = (0, 0)
    made: list[int] = field(default_factory=list)

    def publish(
        self,
        week: int,
        spots: tuple[Spot, ...] = (),
        figures: tuple[Figure, ...] = (),
        profile_id: int | None = None,
    ) -> int:
        """Write and publish one run of an ISO week; return how many events it made."""
        with self.engine.begin() as conn:
            run_id = self._run(conn, week, profile_id)
            for spot in spots:
                self._spot(conn, run_id, spot)
            for figure in figures:
                self._figure(conn, run_id, figure)
            self.made.append(run_id)
            return record_events(conn, run_id)

    def events(self) -> list[Any]:
        """The events of this maker's runs, oldest first."""
        with self.engine.connect() as conn:
            return list(
                conn.execute(
                    text(
                        "SELECT e.*, (SELECT count(*) FROM est.alert_delivery d "
                        "WHERE d.event_id = e.id) AS deliveries FROM est.alert_event e "
                        "WHERE e.run_id = ANY(:ids) ORDER BY e.id"
                    ),
                    {"ids": self.made},
                ).all()
            )

    def _run(self, conn: Connection, week: int, profile_id: int | None) -> int:
        area = conn.execute(
            text(
                "SELECT a.id, p.id AS profile FROM est.area a JOIN est.analysis_profile p "
                "ON p.area_id = a.id AND p.organisation_id IS NULL AND p.name = 'standard' "
                "WHERE a.code = :c"
            ),
            {"c": self.area},
        ).one()
        monday = date.fromisocalendar(self.year, week, 1)
        end = datetime(monday.year, monday.month, monday.day, tzinfo=UTC) + timedelta(7)
        run_id = conn.scalar(
            text("""
            INSERT INTO est.hotspot_run (area_id, profile_id, status, parameters, window_start,
                window_end, code_version, period_kind, period_label, published_at)
            VALUES (:area, :profile, 'succeeded', '{}', :start, :end, 'test', 'week', :label,
                    clock_timestamp())
            RETURNING id
        """),
            {
                "area": area.id,
                "profile": profile_id or area.profile,
                "start": end - timedelta(28),
                "end": end,
                "label": f"{self.year}-W{week:02d}",
            },
        )
        assert run_id is not None
        return int(run_id)

    def _cells(self, spot: Spot) -> list[tuple[int, int]]:
        return [(self.origin[0] + dx, self.origin[1] + dy) for dx, dy in spot.cells]

    def _spot(self, conn: Connection, run_id: int, spot: Spot) -> None:
        cells = self._cells(spot)
        boxes = [
            shapely.box(ix * CELL_M, iy * CELL_M, (ix + 1) * CELL_M, (iy + 1) * CELL_M)
            for ix, iy in cells
        ]
        union = shapely.union_all(boxes)
        multi = union if union.geom_type == "MultiPolygon" else shapely.MultiPolygon([union])
        hull = shapely.buffer(multi, -10)  # the analysts' polygon: inside the cells here
        conn.execute(
            text("""
            INSERT INTO est.hotspot (run_id, hotspot_key, method, change_label, geom,
                                     incident_count, area_m2, stats, viewer_geom, viewer_count)
            VALUES (:run, :key, 'dbscan', CAST(:label AS est.change_label),
                    ST_Multi(ST_GeomFromWKB(:hull, 3006)), :n, 1.0, '{}',
                    CASE WHEN :shown THEN ST_GeomFromWKB(:viewer, 3006) END, :vn)
        """),
            {
                "run": run_id,
                "key": spot.key,
                "label": spot.label,
                "hull": shapely.to_wkb(hull),
                "n": spot.incident_count,
                "shown": spot.viewer_count is not None,
                "viewer": shapely.to_wkb(multi),
                "vn": spot.viewer_count,
            },
        )
        if spot.emerging is not None:
            for ix, iy in cells:
                conn.execute(
                    text(
                        "INSERT INTO est.viewer_cell (run_id, layer, cell_size_m, ix, iy, value, "
                        "pattern) VALUES (:run, 'emerging', :size, :ix, :iy, 3.0, :pattern)"
                    ),
                    {"run": run_id, "size": CELL_M, "ix": ix, "iy": iy, "pattern": spot.emerging},
                )

    def _figure(self, conn: Connection, run_id: int, figure: Figure) -> None:
        quiet = {"direction": "same", "significant": False, "p": 0.5, "p_adjusted": 0.9}
        tests = {
            "baseline_mean": {
                "kind": "mean",
                "direction": figure.direction,
                "significant": figure.significant,
                "p": 1e-6,
                "p_adjusted": 2e-5,
                "z": 10.0,
            },
            "previous_period": quiet,
            "same_period_last_year": quiet,
        }
        conn.execute(
            text("""
            INSERT INTO est.area_figure (run_id, audience, group_code, this_week, last_week,
                                         same_week_last_year, mean_12_weeks, tests)
            VALUES (:run, 'viewer', :group, :this, :last, 0, :mean, CAST(:tests AS jsonb))
        """),
            {
                "run": run_id,
                "group": figure.group,
                "this": figure.this_week,
                "last": figure.last_week,
                "mean": figure.mean,
                "tests": orjson.dumps(tests).decode(),
            },
        )


@pytest.fixture()
def runs_of(system_engine: Engine) -> Iterator[Any]:
    """Make a RunMaker of an area; its runs and their events are removed afterwards."""
    makers: list[RunMaker] = []

    def make(area: str) -> RunMaker:
        with system_engine.connect() as conn:
            x, y = conn.execute(
                text(
                    "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) AS p "
                    "FROM est.area WHERE code = :c) s"
                ),
                {"c": area},
            ).one()
        maker = RunMaker(system_engine, area, origin=(int(x // CELL_M), int(y // CELL_M)))
        makers.append(maker)
        return maker

    yield make
    ids = [run for m in makers for run in m.made]
    with system_engine.begin() as conn:
        conn.execute(text("DELETE FROM est.alert_event WHERE run_id = ANY(:ids)"), {"ids": ids})
        conn.execute(text("DELETE FROM est.hotspot_run WHERE id = ANY(:ids)"), {"ids": ids})


@dataclass
class Receiver:
    """A webhook receiver on 127.0.0.1: answers with the statuses given, in turn (then 200),
    and keeps every request."""

    url: str
    answers: list[int]
    received: list[tuple[dict[str, str], bytes]]


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    """A local HTTP receiver in a thread."""
    got = Receiver("", [], [])

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got.received.append((dict(self.headers.items()), body))
            self.send_response(got.answers.pop(0) if got.answers else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    got.url = f"http://127.0.0.1:{server.server_address[1]}/est/hook?kommun=1265"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield got
    server.shutdown()
    server.server_close()
