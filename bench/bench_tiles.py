"""Tile benchmark: vector tiles of the hotspot, density and viewer-grid layers at zoom 10–16.

    .venv/bin/python bench/bench_tiles.py [--seconds 10] [--clients 8] [--workers 2]
                                          [--incidents 1000000] [--skip-large]

Two datasets, each in a throwaway PostgreSQL cluster in SWEREF 99 TM with the kommuner loaded:

- demo: `est demo`'s incidents (app.ops.demo, for the fixed day of bench/bench_map.py), with
  weeks 47 and 48 of its five kommuner and its police area computed and published;
- large: `--incidents` synthetic incidents over the 20 largest kommuner, stored as
  bench/bench_recompute.py stores them, and the week it runs published for each of them.

Each is then vacuumed and analysed, as autovacuum leaves a database in service.

An organisation with raw grants on every published area gets a viewer key and an analyst key;
every request sends one as HTTP Basic. The service runs under uvicorn with `--workers` workers
(rate limit raised, scheduler off). For each collection and zoom band (10–12, 13–14, 15–16) the
paths are 200 tiles of the collection's TileJSON template (WebMercatorQuad, OGC order z/y/x),
each the tile at a random zoom of the band that holds a random point of a random feature of the
published runs: where the features are, which is where a map is looked at. Ten of each are
fetched first, one at a time, and must answer 200 (or 204, empty) as Mapbox Vector Tiles, so
that a broken route stops the benchmark instead of being timed.

Debian's `wrk` drives each with `--clients` connections for `--seconds`: as the viewer, as the
analyst (the analyst version of the layers), and, for the peer, the viewer reading the same
tiles' boxes as GeoJSON items (`/items?bbox=…&limit=10000`, what the map page reads today; a
box holding more than 10,000 features returns its first page only). It prints requests/s, p50
and p99, whether p99 is under the goal, the share of the checked tiles that were empty and the
median time of one alone, the tiles' throughput against the peer's, and the CPU share wrk
itself took of the machine (it runs on the same cores).

Goal (issue 16): p99 under 50 ms for those collections at 8 clients on this machine.
"""

from __future__ import annotations

import argparse
import base64
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo

import httpx
import numpy as np
from sqlalchemy import Engine, create_engine, pool, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.access import admin  # noqa: E402
from app.api.ogc.collections import COLLECTIONS, Collection  # noqa: E402
from app.core.taxonomy import load_taxonomy  # noqa: E402
from app.core.vocabulary import GrantLevel, Role  # noqa: E402
from app.db.areas import load_areas  # noqa: E402
from app.db.bootstrap import init_database  # noqa: E402
from app.db.deployment import storage_srid  # noqa: E402
from app.db.reference import sync_taxonomy  # noqa: E402
from app.ingest.areas import read_kommun_file  # noqa: E402
from app.ops import devdb  # noqa: E402
from app.ops.demo import load_demo, load_demo_plan  # noqa: E402
from app.runs import recompute as runs  # noqa: E402
from app.runs.profiles import ensure_default_profiles  # noqa: E402
from app.settings import SYSTEM_ROLE, Settings  # noqa: E402
from bench.bench_map import MONDAYS, NOW, TODAY  # noqa: E402
from bench.bench_recompute import LAST_MONDAY, NIGHT_AREAS, TZ, analyze, fill  # noqa: E402
from bench.bench_serving import Load, serve, wrk  # noqa: E402

TILED = ("hotspots", "density", "viewer-grid")
BANDS = ((10, 12), (13, 14), (15, 16))
PATHS_PER_BAND = 200
CHECKED_PER_BAND = 10  # tiles of each band fetched before the timing, per caller
GOAL_P99_MS = 50.0
GOAL_CLIENTS = 8
MVT = "application/vnd.mapbox-vector-tile"
PEER = "viewer, items (peer)"
BY_ID = {c.id: c for c in COLLECTIONS}
# random points in the features that the paths' tiles are chosen by: in at most this many
# features, at least one in each
POINTS_WANTED = 4000
# the selected runs of the registry's sources (app.api.ogc.query): the published ones, in one
# version (raw: the analyst's)
CURRENT_RUNS = "runs AS (SELECT run_id, :raw AS raw FROM est.layer_current WHERE layer = :layer)"


@dataclass(frozen=True)
class Dataset:
    """A database with published runs, and what it holds."""

    name: str
    url: str
    incidents: int
    areas: list[str]
    prepare_s: float


@dataclass(frozen=True)
class Tile:
    """One WebMercatorQuad tile."""

    z: int
    y: int
    x: int

    def lonlat_bounds(self) -> tuple[float, float, float, float]:
        """The tile's box in CRS84: west, south, east, north."""
        n = 2.0**self.z

        def lat(row: int) -> float:
            return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * row / n))))

        return self.x / n * 360 - 180, lat(self.y + 1), (self.x + 1) / n * 360 - 180, lat(self.y)


def tiles_at(lon: np.ndarray, lat: np.ndarray, z: np.ndarray) -> list[Tile]:
    """The tiles holding each point at its zoom (the Web Mercator tile formula)."""
    n = 2.0**z
    x = np.floor((lon + 180) / 360 * n)
    y = np.floor((1 - np.arcsinh(np.tan(np.radians(lat))) / np.pi) / 2 * n)
    x, y = np.clip(x, 0, n - 1).astype(int), np.clip(y, 0, n - 1).astype(int)
    return [Tile(int(a), int(b), int(c)) for a, b, c in zip(z, y, x, strict=True)]


def feature_points(engine: Engine, collection: Collection, role: Role) -> tuple[int, np.ndarray]:
    """How many features of the published runs a role gets, and random lon/lat points in them
    (the geometry of the collection's sources in the registry)."""
    sources = [f"SELECT {s.geometry} AS geom FROM {s.rows}" for s in collection.sources_for(role)]
    features = f"WITH {CURRENT_RUNS} {' UNION ALL '.join(sources)}"
    with engine.connect() as conn:
        bound = {"srid": storage_srid(conn), "raw": role == Role.analyst, "layer": collection.layer}
        count = int(conn.scalar(text(f"SELECT count(*) FROM ({features}) f"), bound) or 0)
        if not count:
            raise RuntimeError(f"{collection.id}: the published runs hold no {role} features")
        conn.execute(text("SELECT setseed(0.5)"))  # the same features every run
        rows = conn.execute(
            text(f"""
                SELECT ST_X(p.geom), ST_Y(p.geom)
                FROM (SELECT geom FROM ({features}) f ORDER BY random() LIMIT :wanted) f,
                    ST_Dump(ST_Transform(ST_GeneratePoints(f.geom, :each, 1), 4326)) p
            """),
            {**bound, "wanted": POINTS_WANTED, "each": max(1, POINTS_WANTED // count)},
        ).all()
    return count, np.array(rows, dtype=np.float64)


def sample_tiles(points: np.ndarray, band: tuple[int, int], n: int, seed: int) -> list[Tile]:
    """n tiles at random zooms of the band, each holding a random one of the points."""
    rng = np.random.default_rng(seed)
    chosen = points[rng.integers(0, len(points), n)]
    zooms = rng.integers(band[0], band[1] + 1, n)
    return tiles_at(chosen[:, 0], chosen[:, 1], zooms)


def tile_path(template: str, tile: Tile) -> str:
    """The path (and query) of a tile from a TileJSON template."""
    url = urlsplit(template)
    path = unquote(url.path) + (f"?{unquote(url.query)}" if url.query else "")
    return path.replace("{z}", str(tile.z)).replace("{y}", str(tile.y)).replace("{x}", str(tile.x))


def items_path(collection_id: str, tile: Tile) -> str:
    """The peer's path: the GeoJSON items of the tile's box."""
    box = ",".join(f"{v:.6f}" for v in tile.lonlat_bounds())
    return f"/ogc/collections/{collection_id}/items?limit=10000&bbox={box}"


def basic(token: str) -> dict[str, str]:
    """The Authorization header of an API key sent as HTTP Basic."""
    return {"Authorization": "Basic " + base64.b64encode(f"wrk:{token}".encode()).decode()}


def bench_keys(system: Engine, areas: list[str]) -> tuple[str, str]:
    """A viewer key and an analyst key of an organisation with raw grants on the areas."""
    with system.begin() as conn:
        admin.create_organisation(conn, "bench-tiles", "Bench (tiles)", "kommun")
        for code in areas:
            admin.grant_area(conn, "bench-tiles", code, GrantLevel.raw, "bench")
        viewer = admin.new_key(conn, "bench-tiles", Role.viewer, "bench", None).token
        analyst = admin.new_key(conn, "bench-tiles", Role.analyst, "bench", None).token
    return viewer, analyst


def published(system: Engine, codes: list[str], monday: date, now: datetime) -> None:
    """Compute and publish the default profile's run of the week for each area."""
    week = runs.RunPeriod.week(monday, TZ)
    with system.connect() as conn:
        pairs = runs.profiles_to_run(conn, codes, runs.DEFAULT_PROFILE)
    for code, profile in pairs:
        outcome = runs.recompute(system, code, profile, week, force=True, now=now)
        assert outcome.status == "succeeded" and outcome.published, (code, outcome.detail)


def prepare_demo(url: str) -> Dataset:
    """The demo, with weeks 47 and 48 of its kommuner and its police area published."""
    began = time.perf_counter()
    settings = Settings(database_url=url, _env_file=None)
    init_database(settings, 3006)
    system = create_engine(settings.role_url(SYSTEM_ROLE), poolclass=pool.NullPool)
    with system.begin() as conn:
        taxonomy = load_taxonomy()
        sync_taxonomy(conn, taxonomy)
        load_areas(conn, read_kommun_file())
        loaded = load_demo(conn, settings, taxonomy, TODAY)
    kommuner, unions = load_demo_plan()
    codes = [k.code for k in kommuner] + [str(u["code"]) for u in unions]
    for monday in MONDAYS:
        published(system, codes, monday, NOW)
    system.dispose()
    stored = sum(s.created for s in loaded.values())
    return Dataset("demo", url, stored, codes, time.perf_counter() - began)


def prepare_large(url: str, incidents: int) -> Dataset:
    """`incidents` over the 20 largest kommuner, as bench_recompute stores them, and the week
    it runs published for each."""
    began = time.perf_counter()
    settings = Settings(database_url=url, _env_file=None)
    init_database(settings, 3006)
    system = create_engine(settings.role_url(SYSTEM_ROLE), poolclass=pool.NullPool)
    with system.begin() as conn:
        sync_taxonomy(conn, load_taxonomy())
        load_areas(conn, read_kommun_file())
        ensure_default_profiles(conn)
    share = incidents // len(NIGHT_AREAS)
    for n, code in enumerate(NIGHT_AREAS):
        fill(system, code, share, seed=n, hotspots=6)
    analyze(system)
    published(system, NIGHT_AREAS, LAST_MONDAY, datetime(2026, 11, 30, tzinfo=ZoneInfo(TZ)))
    system.dispose()
    stored = share * len(NIGHT_AREAS)
    return Dataset(f"{stored / 1e6:g}M", url, stored, NIGHT_AREAS, time.perf_counter() - began)


def tile_template(
    client: httpx.Client, base: str, collection_id: str, headers: dict[str, str]
) -> str:
    """The collection's TileJSON tile template, once it is checked to cover zoom 10–16."""
    url = f"{base}/ogc/collections/{collection_id}/tiles/WebMercatorQuad/tilejson.json"
    answer = client.get(url, headers=headers)
    if answer.status_code != 200:
        raise RuntimeError(f"{url}: {answer.status_code}\n{answer.text[:500]}")
    doc = answer.json()
    missing = [k for k in ("tiles", "bounds", "minzoom", "maxzoom") if k not in doc]
    if missing:
        raise RuntimeError(f"{url}: the TileJSON has no {', '.join(missing)}")
    if doc["minzoom"] > BANDS[0][0] or doc["maxzoom"] < BANDS[-1][1]:
        raise RuntimeError(f"{url}: zoom {doc['minzoom']}–{doc['maxzoom']} does not cover 10–16")
    return str(doc["tiles"][0])


@dataclass(frozen=True)
class Checked:
    """What fetching some tiles one at a time before the timing found."""

    empty: float  # share of them that held no feature
    median_ms: float  # of one tile, alone


def check_tiles(
    client: httpx.Client, base: str, paths: list[str], headers: dict[str, str]
) -> Checked:
    """Fetch tiles one at a time and check they are Mapbox Vector Tiles."""
    empty, took = 0, []
    for path in paths:
        started = time.perf_counter()
        answer = client.get(base + path, headers=headers)
        took.append(time.perf_counter() - started)
        kind = answer.headers.get("content-type", "")
        if answer.status_code not in (200, 204) or (
            answer.status_code == 200 and not kind.startswith(MVT)
        ):
            raise RuntimeError(f"{path}: {answer.status_code} {kind}\n{answer.text[:500]}")
        empty += answer.status_code == 204 or not answer.content
    return Checked(empty / len(paths), statistics.median(took) * 1000)


@dataclass(frozen=True)
class Paths:
    """What one wrk run requests, and what checking the first of them found."""

    paths: list[str]
    checked: Checked | None  # None: not tiles (the peer's items)


@dataclass(frozen=True)
class Row:
    """One line of the table: a collection, zoom band and caller, as wrk measured it."""

    dataset: str
    collection: str
    band: str
    caller: str
    load: Load
    checked: Checked | None
    peer: Load | None  # the peer's line of the same tiles; None: this is the peer's line


Callers = dict[str, tuple[Role, dict[str, str]]]


def server(data: Dataset, args: argparse.Namespace) -> tuple[subprocess.Popen[bytes], str]:
    """The service on the dataset under uvicorn, as bench_serving starts it."""
    port = devdb.free_port()
    env = {
        **os.environ,
        "EST_DATABASE_URL": data.url,
        "EST_RATE_LIMIT_PER_MINUTE": "100000000",
        "EST_SCHEDULER": "false",
        "EST_LOG_LEVEL": "warning",
        "EST_DB_POOL_SIZE": str(args.clients),
    }
    base = f"http://127.0.0.1:{port}"
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "app.main:create_app",
        "--factory",
        "--port",
        str(port),
        "--workers",
        str(args.workers),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    return serve(command, env, f"{base}/healthz"), base


def plan(
    owner: Engine, base: str, callers: Callers
) -> tuple[dict[tuple[str, tuple[int, int], str], Paths], dict[str, str]]:
    """Every wrk run's paths, by collection, band and caller (tiles checked on the way), and
    the features each collection's published runs hold for each caller."""
    plans = {}
    counts = {}
    with httpx.Client(timeout=120) as client:
        for collection_id in TILED:
            collection = BY_ID[collection_id]
            template = tile_template(client, base, collection_id, callers["viewer"][1])
            found = []
            for name, (role, headers) in callers.items():
                features, points = feature_points(owner, collection, role)
                found.append(f"{features:,}")
                for b, band in enumerate(BANDS):
                    tiles = sample_tiles(points, band, PATHS_PER_BAND, seed=b)
                    paths = [tile_path(template, t) for t in tiles]
                    checked = check_tiles(client, base, paths[:CHECKED_PER_BAND], headers)
                    plans[collection_id, band, name] = Paths(paths, checked)
                    if role == Role.viewer:  # the peer: the viewer's items of the same boxes
                        peer = [items_path(collection_id, t) for t in tiles]
                        answer = client.get(base + peer[0], headers=headers)
                        assert answer.status_code == 200, (peer[0], answer.text[:500])
                        plans[collection_id, band, PEER] = Paths(peer, None)
            counts[collection_id] = " / ".join(found)
    return plans, counts


def settle(owner: Engine) -> None:
    """VACUUM ANALYZE the database, as autovacuum leaves a database in service: the plans of
    the tiles' queries then do not depend on whether it has run yet (they change with it)."""
    with owner.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))


def measure(data: Dataset, args: argparse.Namespace, folder: Path) -> list[Row]:
    """Serve the dataset, check its tiles, drive every collection, band and caller."""
    settings = Settings(database_url=data.url, _env_file=None)
    owner = create_engine(settings.admin_url(), poolclass=pool.NullPool)
    system = create_engine(settings.role_url(SYSTEM_ROLE), poolclass=pool.NullPool)
    viewer, analyst = bench_keys(system, data.areas)
    settle(owner)
    callers = {
        "viewer": (Role.viewer, basic(viewer)),
        "analyst, raw": (Role.analyst, basic(analyst)),
    }
    process, base = server(data, args)
    rows = []
    try:
        plans, counts = plan(owner, base, callers)
        print(
            f"\n{data.name}: {data.incidents:,} incidents, {len(data.areas)} areas published "
            f"(prepared in {data.prepare_s:.0f} s); features of the published runs, "
            "viewer / analyst: " + ", ".join(f"{k} {v}" for k, v in counts.items())
        )
        print(HEADER, flush=True)
        timing = (args.clients, args.seconds, folder)
        for collection_id in TILED:
            for band in BANDS:
                label = f"{band[0]}–{band[1]}"
                peer = plans[collection_id, band, PEER]
                items = wrk(base, peer.paths, callers["viewer"][1], *timing)
                for name, (_, headers) in callers.items():
                    tiles = plans[collection_id, band, name]
                    load = wrk(base, tiles.paths, headers, *timing)
                    rows.append(
                        Row(data.name, collection_id, label, name, load, tiles.checked, items)
                    )
                    print_row(rows[-1])
                rows.append(Row(data.name, collection_id, label, PEER, items, None, None))
                print_row(rows[-1])
    finally:
        process.terminate()
        process.wait(timeout=30)
        owner.dispose()
        system.dispose()
    return rows


HEADER = (
    f"{'dataset':8} {'collection':12} {'zoom':6} {'caller':21} {'req/s':>8} {'p50 ms':>8} "
    f"{'p99 ms':>8} {'p99<50':>6} {'empty':>6} {'alone ms':>8} {'vs items':>8} {'wrk CPU':>8}"
)


def p99_ms(load: Load) -> float:
    """wrk's p99, infinite when no request finished within the line's seconds."""
    return load.p99_ms if load.requests_per_s > 0 else math.inf


def print_row(row: Row) -> None:
    """One line of the table ("—": no request finished within the line's seconds)."""
    load = row.load
    done = load.requests_per_s > 0
    goal = "" if row.peer is None else ("yes" if p99_ms(load) < GOAL_P99_MS else "NO")
    checked = row.checked
    empty, alone = (
        ("", "") if checked is None else (f"{checked.empty:.0%}", f"{checked.median_ms:.1f}")
    )
    ratio = ""
    if row.peer is not None and row.peer.requests_per_s > 0:
        ratio = f"{load.requests_per_s / row.peer.requests_per_s:.1f}x"
    p50, p99 = (f"{load.p50_ms:8.1f}", f"{load.p99_ms:8.1f}") if done else ("—", "—")
    print(
        f"{row.dataset:8} {row.collection:12} {row.band:6} {row.caller:21} "
        f"{load.requests_per_s:8.1f} {p50:>8} {p99:>8} {goal:>6} "
        f"{empty:>6} {alone:>8} {ratio:>8} {load.cpu_share:8.0%}",
        flush=True,
    )


def main() -> int:
    """Prepare each dataset in its own cluster, serve it and drive its tiles."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10, help="of wrk per line")
    parser.add_argument("--clients", type=int, default=GOAL_CLIENTS, help="wrk's connections")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn's worker processes")
    parser.add_argument("--incidents", type=int, default=1_000_000, help="of the large dataset")
    parser.add_argument("--skip-large", action="store_true", help="only the demo")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is missing: apt-get install wrk")
        return 1
    missing = [c for c in TILED if c not in BY_ID]
    assert not missing, f"no collections {missing} in app.api.ogc.collections"
    folder = Path(tempfile.mkdtemp(prefix="est-bench-tiles-"))
    began = time.perf_counter()
    print(
        f"{args.workers} uvicorn workers; wrk, {args.clients} connections, {args.seconds} s per "
        f"line, loopback; {PATHS_PER_BAND} tiles per zoom band, {CHECKED_PER_BAND} of them checked "
        "first one at a time (empty: the share that held no feature; alone: the median time of "
        "one)",
        flush=True,
    )
    rows: list[Row] = []
    datasets: list[tuple[str, Callable[[str], Dataset]]] = [("demo", prepare_demo)]
    if not args.skip_large:
        datasets.append(("large", lambda url: prepare_large(url, args.incidents)))
    try:
        for name, prepare in datasets:
            cluster = folder / name
            url = devdb.start(cluster, devdb.free_port(), "est_bench")
            try:
                rows += measure(prepare(url), args, folder)
            finally:
                devdb.destroy(cluster)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    tiles = [r for r in rows if r.peer is not None]
    met = [r for r in tiles if p99_ms(r.load) < GOAL_P99_MS]
    worst = max(tiles, key=lambda r: p99_ms(r.load))
    slowest = p99_ms(worst.load)
    print(
        f"\ngoal p99 < {GOAL_P99_MS:.0f} ms at {GOAL_CLIENTS} clients"
        + ("" if args.clients == GOAL_CLIENTS else f" (measured at {args.clients})")
        + f": {'met' if len(met) == len(tiles) else 'NOT met'}, {len(met)} of {len(tiles)} "
        f"lines under it; worst p99 "
        + (f"{slowest:.1f} ms" if slowest < math.inf else "none finished")
        + f" ({worst.dataset} "
        f"{worst.collection} {worst.band}, {worst.caller}); {time.perf_counter() - began:.0f} s "
        "in all"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
