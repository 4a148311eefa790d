"""Viewer privacy under many questions, tried as an attacker would with a viewer key.

A viewer may ask every allowed cell size, period and category group, many times; no answer
or combination of answers may place an incident more precisely than the smallest allowed cell,
nor show whether an incident alone in its smallest cell exists. The rules are the database's:
the app role cannot change them or ask around them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
import shapely
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from app.access import admin
from app.access.privacy import PERIODS
from app.core.taxonomy import load_taxonomy
from app.core.vocabulary import GrantLevel, Role
from app.ingest.store import IncidentRecord, upsert_incidents
from geo.crs import transform_geometries
from tests.access.test_rls import as_caller
from tests.conftest import World

ALLOWED = (125, 250, 500, 1000, 2000)
WEEK = datetime(2026, 10, 5, 9, tzinfo=UTC)  # Monday of week 41
GROUPS = [None, *(g.code for g in load_taxonomy().groups)]


@dataclass
class Viewer:
    """A viewer key of an organisation with aggregate grants on two otherwise empty kommuner."""

    headers: dict[str, str]
    org_id: int
    origin: dict[str, tuple[float, float]]  # a point inside each kommun, snapped to 250 m cells


@pytest.fixture(scope="module")
def viewer(system_engine_module: Engine, world: World) -> Viewer:
    with system_engine_module.begin() as conn:
        admin.create_organisation(conn, "privacy-test", "Integritetstest", "kommun")
        origin = {}
        for code in ("1083", "1276"):  # Sölvesborg, Klippan: no other test writes there
            admin.grant_area(conn, "privacy-test", code, GrantLevel.aggregate, "test")
            x, y = conn.execute(
                text(
                    "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) AS p "
                    "FROM est.area WHERE code = :c) s"
                ),
                {"c": code},
            ).one()
            origin[code] = (x // 250 * 250, y // 250 * 250)
        token = admin.new_key(conn, "privacy-test", Role.viewer, "test", None).token
        org_id = admin.organisation_id(conn, "privacy-test")
    return Viewer({"Authorization": f"Bearer {token}"}, org_id, origin)


@pytest.fixture(scope="module")
def system_engine_module(settings: Any) -> Iterator[Engine]:
    from sqlalchemy import create_engine, pool

    from app.settings import SYSTEM_ROLE

    engine = create_engine(settings.role_url(SYSTEM_ROLE), poolclass=pool.NullPool)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def client(settings: Any) -> Iterator[TestClient]:
    """The service without its per-key rate limit: the attacker here is patient, and would be
    at 600 questions a minute too."""
    from app.main import create_app

    unlimited = settings.model_copy(update={"rate_limit_per_minute": 1_000_000})
    with TestClient(create_app(unlimited), raise_server_exceptions=False) as c:
        yield c


def _records(prefix: str, points: list[tuple[float, float]], when: datetime) -> list[Any]:
    return [
        IncidentRecord(
            source="privacy",
            external_id=f"{prefix}-{i}",
            category_code="skadegorelse.klotter",
            occurred_from=when + timedelta(minutes=i),
            occurred_to=None,
            x=x,
            y=y,
            location_precision="address",
        )
        for i, (x, y) in enumerate(points)
    ]


def _store(engine: Engine, org_id: int, records: list[Any]) -> None:
    with engine.begin() as conn:
        upsert_incidents(conn, org_id, 3006, records)


def _delete(engine: Engine, prefix: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            text("DELETE FROM est.incident WHERE source = 'privacy' AND external_id LIKE :p"),
            {"p": f"{prefix}-%"},
        )


def _ask(client: TestClient, viewer: Viewer, area: str, **params: Any) -> Any:
    query = {"area": area, "date": "2026-10-05", **{k: v for k, v in params.items() if v}}
    return client.get("/api/v1/layers/grid", params=query, headers=viewer.headers)


def _every_answer(client: TestClient, viewer: Viewer, area: str) -> dict[Any, Any]:
    """Every allowed question about an area and its answer, plus every other viewer GET."""
    answers: dict[Any, Any] = {}
    for size, period, group in itertools.product(ALLOWED, PERIODS, GROUPS):
        r = _ask(client, viewer, area, cell_size_m=size, period=period, group=group)
        assert r.status_code == 200, r.text
        answers[(size, period, group)] = sorted(
            (f["properties"]["ix"], f["properties"]["iy"], f["properties"]["count"])
            for f in r.json()["features"]
        )
    for path in ("/api/v1/me", f"/api/v1/areas/{area}", "/api/v1/areas"):
        answers[path] = client.get(path, headers=viewer.headers).json()
    return answers


def test_a_lone_incident_beside_a_cluster_changes_no_answer(
    client: TestClient, viewer: Viewer, system_engine_module: Engine
) -> None:
    engine = system_engine_module
    x0, y0 = viewer.origin["1083"]
    cluster = [(x0 + 10 + i, y0 + 10) for i in range(6)]  # one 125 m cell: shown
    lone = [(x0 + 125 + 40, y0 + 60)]  # the next 125 m cell, the same 250 m cell as the cluster
    _store(engine, viewer.org_id, _records("cluster", cluster, WEEK))
    try:
        without = _every_answer(client, viewer, "1083")
        _store(engine, viewer.org_id, _records("lone", lone, WEEK + timedelta(hours=3)))
        with_lone = _every_answer(client, viewer, "1083")
        assert with_lone == without
        assert without[(250, "week", None)] != []  # the cluster itself is shown
        # the probe sees a difference when there is one: the lone cell reaching k
        more = [(x0 + 125 + 40 + i, y0 + 60) for i in range(1, 6)]
        _store(engine, viewer.org_id, _records("more", more, WEEK + timedelta(hours=4)))
        assert _every_answer(client, viewer, "1083") != without
    finally:
        for prefix in ("cluster", "lone", "more"):
            _delete(engine, prefix)


def _square(feature: dict[str, Any]) -> tuple[int, int, int]:
    """The cell a feature is, checked against its geometry in SWEREF 99 TM."""
    size, ix, iy = (feature["properties"][k] for k in ("cell_size_m", "ix", "iy"))
    polygon = transform_geometries(shapely.geometry.shape(feature["geometry"]), 4326, 3006)
    expected = (ix * size, iy * size, (ix + 1) * size, (iy + 1) * size)
    assert np.allclose(polygon.bounds, expected, atol=0.05), (polygon.bounds, expected)
    return size, ix, iy


def test_replaying_the_cell_size_attack_places_no_incident_within_less_than_a_cell(
    client: TestClient, viewer: Viewer, system_engine_module: Engine
) -> None:
    engine = system_engine_module
    x0, y0 = viewer.origin["1276"]
    # a cluster of 9 and, 140 m away, one incident the attacker wants to find
    cluster = [(x0 + 30 + 3 * i, y0 + 30) for i in range(9)]
    target = [(x0 + 185, y0 + 80)]
    _store(engine, viewer.org_id, _records("atk", cluster + target, WEEK))
    try:
        refused = 0
        shown: dict[tuple[int, int, int], int] = {}
        for size in range(100, 5001, 50):
            for period, group in itertools.product(PERIODS, (None, "skadegorelse")):
                r = _ask(client, viewer, "1276", cell_size_m=size, period=period, group=group)
                if size not in ALLOWED:
                    assert r.status_code == 422, (size, r.text)
                    refused += 1
                    continue
                assert r.status_code == 200
                for f in r.json()["features"]:
                    shown[_square(f)] = f["properties"]["count"]
        assert refused > 500 and shown
        # Every answer is a cell of the nested grid, so any intersection or difference of
        # answers is a union of 125 m cells: nothing can be placed inside less than 125 × 125 m.
        cells = [shapely.box(ix * s, iy * s, (ix + 1) * s, (iy + 1) * s) for s, ix, iy in shown]
        smallest = (
            min(
                a.intersection(b).area
                for a, b in itertools.combinations(cells, 2)
                if a.intersection(b).area > 0
            )
            if len(cells) > 1
            else cells[0].area
        )
        assert smallest >= 125 * 125
        # the target is alone in its 125 m cell: no answer has that cell
        tx, ty = target[0]
        assert (125, int(tx // 125), int(ty // 125)) not in shown
    finally:
        _delete(engine, "atk")


def test_the_app_role_cannot_ask_around_the_rules(app_engine: Engine, world: World) -> None:
    calls = [
        # the old function that took k and the base from its caller is gone
        "SELECT * FROM est.grid_counts('1285', 250, now() - interval '7 days', now(), NULL, 1, 1)",
        "SELECT * FROM est.viewer_grid('1285', 300, 'week', DATE '2026-10-05', NULL)",
        "SELECT * FROM est.viewer_grid('1285', 250, 'month', DATE '2026-10-05', NULL)",
        "SELECT * FROM est.viewer_grid('1285', 250, 'week', DATE '2026-10-05', 'nope')",
        "UPDATE est.privacy SET suppression_k = 1",
        "SELECT secret FROM est.privacy_secret",
        "SELECT est.record_key('\\x00'::bytea, 1)",
        "SELECT est.cell_noise(1, 5, '{0}', '{1}')",
        # the nightly run's many answers in one call are the system role's only
        "SELECT * FROM est.viewer_grids('1285', 250, '{week}', '{2026-10-05}', '{NULL}')",
    ]
    for sql in calls:
        with as_caller(app_engine, "kommun-1285", "viewer") as conn, pytest.raises(DBAPIError):
            conn.execute(text(sql))
    with as_caller(app_engine, "kommun-1285", "viewer") as conn:
        assert conn.execute(
            text("SELECT * FROM est.viewer_grid('1285', 250, 'week', DATE '2026-10-05', NULL)")
        ).all()


def _noise(conn: Any, ids: list[int], n: int | None = None) -> int:
    return int(
        conn.scalar(
            text(
                "SELECT est.cell_noise(c.cell_key, :n, p.noise, p.noise_weights) FROM ("
                "SELECT (sum(est.record_key(s.secret, i)) % 65536)::integer AS cell_key "
                "FROM unnest(CAST(:ids AS bigint[])) AS i, est.privacy_secret s) AS c, "
                "est.privacy p"
            ),
            {"ids": ids, "n": n if n is not None else len(ids)},
        )
    )


def test_a_record_key_is_the_first_16_bits_of_sha256_of_the_secret_and_the_id(
    owner_engine: Engine,
) -> None:
    """The keys are what the documented rule gives, computed here with hashlib (they must never
    change for a stored incident: a changed key would give its cells fresh noise to average)."""
    ids = [1, 2, 255, 256, 65537, 10**9 + 7, 2**62 + 11]
    with owner_engine.connect() as conn:
        secret = bytes(conn.scalar(text("SELECT secret FROM est.privacy_secret WHERE id = 1")))
        keys = conn.execute(
            text(
                "SELECT i, est.record_key(s.secret, i) AS k FROM unnest(CAST(:ids AS bigint[])) "
                "AS i, est.privacy_secret s ORDER BY i"
            ),
            {"ids": ids},
        ).all()
    for incident_id, key in keys:
        digest = hashlib.sha256(secret + incident_id.to_bytes(8, "big", signed=True)).digest()
        assert key == int.from_bytes(digest[:2], "big")


def test_the_noise_is_fixed_for_the_same_records_and_new_when_they_change(
    owner_engine: Engine,
) -> None:
    rng = np.random.default_rng(7)
    with owner_engine.connect() as conn:
        changed = 0
        for _ in range(200):
            ids = [int(i) for i in rng.choice(10**9, size=int(rng.integers(5, 40)), replace=False)]
            first = _noise(conn, ids)
            assert _noise(conn, list(reversed(ids))) == first  # order does not matter
            assert _noise(conn, ids) == first  # asking again averages nothing away
            extra = int(rng.integers(10**9, 2 * 10**9))
            changed += _noise(conn, [*ids, extra]) != first
        # five noise values weighted 1:2:4:2:1 repeat by chance with probability 0.26
        assert changed >= 120


def test_the_noise_table_has_zero_mean_and_the_documented_spread(owner_engine: Engine) -> None:
    with owner_engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT n, est.cell_noise(k, n, p.noise, p.noise_weights) AS v "
                "FROM generate_series(0, 65535) AS k, generate_series(5, 45, 10) AS n, "
                "est.privacy p"
            )
        ).all()
    values = np.array([r.v for r in rows])
    assert abs(values.mean()) < 0.001 and set(values.tolist()) == {-2, -1, 0, 1, 2}
    shares = {v: float(np.mean(values == v)) for v in (-2, -1, 0, 1, 2)}
    assert shares == pytest.approx({-2: 0.1, -1: 0.2, 0: 0.4, 1: 0.2, 2: 0.1}, abs=0.001)


def test_shown_counts_of_generated_cells_are_unbiased_and_within_four(
    client: TestClient, viewer: Viewer, system_engine_module: Engine
) -> None:
    engine = system_engine_module
    x0, y0 = viewer.origin["1276"]
    rng = np.random.default_rng(11)
    points = []
    truth: dict[tuple[int, int], int] = {}
    for cx, cy in itertools.product(range(-10, 10), range(-10, 10)):
        n = int(rng.integers(5, 30))
        bx, by = int(x0 // 125) + cx, int(y0 // 125) + cy
        points += [(bx * 125 + 5 + 4 * i % 115, by * 125 + 5 + 7 * (i // 25)) for i in range(n)]
        truth[(bx, by)] = n
    when = datetime(2026, 3, 2, 10, tzinfo=UTC)  # a week no other test of Klippan uses
    _store(engine, viewer.org_id, _records("gen", points, when))
    try:
        with engine.connect() as conn:  # what lies inside Klippan is counted: the exact truth
            inside = conn.execute(
                text(
                    "SELECT floor(ST_X(i.geom) / 125)::int AS bx, floor(ST_Y(i.geom) / 125)::int "
                    "AS by, count(*) AS n FROM est.incident i JOIN est.incident_area ia "
                    "ON ia.incident_id = i.id JOIN est.area a ON a.id = ia.area_id "
                    "WHERE a.code = '1276' AND i.source = 'privacy' AND i.external_id LIKE 'gen-%' "
                    "GROUP BY 1, 2"
                )
            ).all()
        truth = {(r.bx, r.by): int(r.n) for r in inside if r.n >= 5}
        r = _ask(client, viewer, "1276", cell_size_m=125, date="2026-03-02")
        shown = {
            (f["properties"]["ix"], f["properties"]["iy"]): f["properties"]["count"]
            for f in r.json()["features"]
        }
        assert set(shown) == set(truth) and len(truth) >= 300
        errors = np.array([shown[c] - truth[c] for c in truth])
        assert np.abs(errors).max() <= 4
        assert abs(errors.mean()) < 0.3
        assert np.mean(errors != 0) > 0.5  # the counts are perturbed, not merely rounded
    finally:
        _delete(engine, "gen")


def test_the_nightly_runs_many_answers_are_each_the_single_answer(
    viewer: Viewer, system_engine_module: Engine
) -> None:
    """est.viewer_grids (one call for a run's weeks and groups) gives, for every period and
    group, exactly what est.viewer_grid gives: the same cells, the same shown counts."""
    from app.access import privacy

    engine = system_engine_module
    x0, y0 = viewer.origin["1083"]
    rng = np.random.default_rng(5)
    categories = ["skadegorelse.klotter", "tillgrepp.cykelstold", "narkotika.innehav"]
    first = datetime(2026, 2, 2, 8, tzinfo=UTC)  # Monday of week 6; weeks no other test uses
    records = []
    for i in range(4000):
        r = _records("many", [(x0 + rng.normal(0, 700), y0 + rng.normal(0, 700))], first)[0]
        records.append(
            dataclasses.replace(
                r,
                external_id=f"many-{i}",
                category_code=categories[i % 3],
                occurred_from=first + timedelta(hours=float(rng.uniform(0, 24 * 7 * 5))),
                location_precision=("address", "exact", "area_centroid")[i % 7 % 3],
            )
        )
    _store(engine, viewer.org_id, records)
    try:
        periods = [privacy.period_of("week", first.date() + timedelta(7 * k)) for k in range(5)]
        periods += [privacy.period_of("4weeks", first.date()), privacy.period_of("year", first)]
        groups = [None, *GROUPS[1:4]]
        with engine.begin() as conn:
            privacy.as_system(conn)
            protected = privacy.protection(conn)
            for size in (125, 500):
                many = privacy.viewer_grids(conn, protected, "1083", size, periods, groups)
                seen = 0
                for i, period in enumerate(periods):
                    for j, group in enumerate(groups):
                        one = privacy.viewer_grid(conn, protected, "1083", size, period, group)
                        got = many[i][j]
                        assert got.period == period
                        assert list(zip(got.ix, got.iy, got.count, strict=True)) == list(
                            zip(one.ix, one.iy, one.count, strict=True)
                        ), (size, period, group)
                        seen += len(one.ix)
                assert seen > 100  # the answers are not all empty
    finally:
        _delete(engine, "many")
