"""Serving benchmark: OGC API – Features pages and single features, ours next to pygeoapi.

    .venv/bin/python bench/bench_serving.py CHICAGO.csv.gz [--workers 2] [--clients 8]

A throwaway PostgreSQL cluster holds the Chicago 2017 crimes (`est import --mapping chicago`,
EPSG:26916) and a copy of them as a plain table, `bench.crimes`, with a GiST index. Both
servers serve that same table under uvicorn with the same number of workers:

- ours: `/ogc/collections/crimes` (the registry's layer shape, one source, for every key with
  a grant), every request authenticated with an API key sent as HTTP Basic;
- pygeoapi (the `bench` extra), its PostgreSQL provider on the same table, no authentication.

Beside them, ours serves the same crimes as raw incidents to an analyst with a raw grant
(`/ogc/collections/incidents`), where every read also writes an audit record.

Debian's `wrk` drives each with `--clients` connections on loopback for `--seconds`: bbox pages
of 1,000 features (boxes around random crimes, grown until they hold at least 1,000) and single
features by random id. It prints requests/s, p50 and p99 of both servers, the ratios, and the
CPU share the load generator itself took of the machine (it runs on the same cores).

Goals (issue 15): on the layer collection at least 10 times pygeoapi's throughput on bbox pages
and 5 times on single features, each at a lower p99.
"""

from __future__ import annotations

import argparse
import base64
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import httpx
import numpy as np
import shapely
import yaml
from fastapi import FastAPI
from pyproj import Transformer
from sqlalchemy import create_engine, pool, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.access import admin  # noqa: E402
from app.api.ogc.collections import COLLECTIONS, LAYER_READERS, Collection, Property, Source  # noqa: E402
from app.core.taxonomy import load_taxonomy  # noqa: E402
from app.core.vocabulary import GrantLevel, Role  # noqa: E402
from app.db.areas import load_areas  # noqa: E402
from app.db.bootstrap import Extent, init_database  # noqa: E402
from app.db.reference import sync_taxonomy  # noqa: E402
from app.main import create_app  # noqa: E402
from app.ops import devdb  # noqa: E402
from app.settings import SYSTEM_ROLE, Settings  # noqa: E402

CHICAGO_26916 = Extent(420_000.0, 4_600_000.0, 460_000.0, 4_660_000.0)
CRIMES = Collection(
    id="crimes",
    title="Chicago crimes 2017",
    description="The benchmark's table: the Chicago 2017 crimes as a published layer.",
    geometry_type="Point",
    roles=LAYER_READERS,
    id_columns=("id",),
    temporal=("occurred_from", "occurred_from"),
    properties=(
        Property("category_code", "string", "Category"),
        Property("occurred_from", "date-time", "When"),
        Property("description", "string", "What"),
    ),
    sources=(
        Source(
            None,
            rows="bench.crimes c",
            geometry="c.geom",
            columns={
                "id": "c.id",
                "category_code": "c.category_code",
                "occurred_from": "c.occurred_from",
                "description": "c.description",
            },
        ),
    ),
)
COPY_SQL = """
CREATE SCHEMA bench;
CREATE TABLE bench.crimes AS
    SELECT id, category_code, occurred_from, description, geom FROM est.incident;
ALTER TABLE bench.crimes ADD PRIMARY KEY (id);
CREATE INDEX ix_crimes_geom ON bench.crimes USING gist (geom);
GRANT USAGE ON SCHEMA bench TO est_app;
GRANT SELECT ON bench.crimes TO est_app;
VACUUM ANALYZE bench.crimes;
VACUUM ANALYZE est.incident;
"""
BOX_COUNT_SQL = """
SELECT count(*) FROM bench.crimes
WHERE geom && ST_MakeEnvelope(:x0, :y0, :x1, :y1, 26916)
"""


def app() -> FastAPI:
    """Our service with the benchmark's table as one more collection (uvicorn --factory)."""
    return create_app(collections=(*COLLECTIONS, CRIMES))


@dataclass(frozen=True)
class Load:
    """What one wrk run measured."""

    requests_per_s: float
    p50_ms: float
    p99_ms: float
    cpu_share: float  # of the machine's cores, taken by wrk itself


def wrk(
    base: str, paths: list[str], headers: dict[str, str], clients: int, seconds: int, folder: Path
) -> Load:
    """Drive `base` with requests for random `paths` and read wrk's figures."""
    script = folder / "paths.lua"
    listed = ",\n".join(f'"{p}"' for p in paths)
    sent = "".join(f'wrk.headers["{k}"] = "{v}"\n' for k, v in headers.items())
    script.write_text(
        f"{sent}local paths = {{\n{listed}\n}}\n"
        "request = function()\n"
        "  return wrk.format('GET', paths[math.random(#paths)])\n"
        "end\n"
    )
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        [
            "wrk",
            "-t",
            "2",
            "-c",
            str(clients),
            "-d",
            f"{seconds}s",
            "--latency",
            "--timeout",
            "30s",
            "-s",
            str(script),
            base,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    out = done.stdout
    if "Non-2xx" in out:
        raise RuntimeError(f"{base}: answers that were not 2xx\n{out}")
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    return Load(rate, _latency(out, "50%"), _latency(out, "99%"), cpu / wall / os.cpu_count())


def _latency(out: str, which: str) -> float:
    found = re.search(rf"{which}\s+([\d.]+)(us|ms|s)\b", out)
    assert found, out
    value, unit = float(found.group(1)), found.group(2)
    return value * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def boxes(engine: object, n: int, seed: int) -> list[str]:
    """CRS84 bboxes around random crimes, each grown until it holds at least 1,000."""
    to_lonlat = Transformer.from_crs(26916, 4326, always_xy=True)
    with engine.connect() as conn:  # type: ignore[attr-defined]
        rows = conn.execute(
            text("SELECT ST_X(geom), ST_Y(geom) FROM bench.crimes ORDER BY id")
        ).all()
        rng = np.random.default_rng(seed)
        found = []
        for x, y in (rows[i] for i in rng.choice(len(rows), n, replace=False)):
            half = 300.0
            while (
                conn.scalar(
                    text(BOX_COUNT_SQL),
                    {"x0": x - half, "y0": y - half, "x1": x + half, "y1": y + half},
                )
                < 1500
            ):
                half *= 1.4
            (lon0, lon1), (lat0, lat1) = to_lonlat.transform(
                [x - half, x + half], [y - half, y + half]
            )
            found.append(f"{lon0:.6f},{lat0:.6f},{lon1:.6f},{lat1:.6f}")
    return found


def pygeoapi_config(folder: Path, port: int, pg_port: int, database: str) -> Path:
    """A pygeoapi configuration of one collection: bench.crimes through its PostgreSQL provider."""
    config = {
        "server": {
            "bind": {"host": "127.0.0.1", "port": port},
            "url": f"http://127.0.0.1:{port}",
            "mimetype": "application/json; charset=UTF-8",
            "encoding": "utf-8",
            "languages": ["en-US"],
            "limits": {"default_items": 100, "max_items": 10000},
            "map": {"url": "https://tile.openstreetmap.org/{z}/{x}/{y}.png", "attribution": ""},
        },
        "logging": {"level": "ERROR"},
        "metadata": {
            "identification": {
                "title": "bench",
                "description": "bench",
                "keywords": ["bench"],
                "keywords_type": "theme",
                "terms_of_service": "",
                "url": "http://example.org",
            },
            "license": {"name": "CC0", "url": "http://example.org"},
            "provider": {"name": "bench", "url": "http://example.org"},
            "contact": {"name": "bench", "email": "bench@example.org", "role": "pointOfContact"},
        },
        "resources": {
            "crimes": {
                "type": "collection",
                "title": "crimes",
                "description": "Chicago crimes 2017",
                "keywords": ["crimes"],
                "extents": {
                    "spatial": {
                        "bbox": [-88.0, 41.6, -87.5, 42.1],
                        "crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84",
                    }
                },
                "providers": [
                    {
                        "type": "feature",
                        "name": "PostgreSQL",
                        "data": {
                            "host": "127.0.0.1",
                            "port": pg_port,
                            "dbname": database,
                            "user": "postgres",
                            "password": "",
                            "search_path": ["bench", "public"],
                        },
                        "id_field": "id",
                        "table": "crimes",
                        "geom_field": "geom",
                        "storage_crs": "http://www.opengis.net/def/crs/EPSG/0/26916",
                    }
                ],
            }
        },
    }
    path = folder / "pygeoapi.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def serve(command: list[str], env: dict[str, str], url: str) -> subprocess.Popen[bytes]:
    """Start a server and wait until `url` answers."""
    process = subprocess.Popen(
        command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    for _ in range(300):
        try:
            if httpx.get(url, timeout=5).status_code < 500:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.terminate()
    raise RuntimeError(f"{command[2]} did not start")


def main() -> int:
    """Load the crimes, start both servers and drive them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path, help="chicago_crimes_2017.csv.gz")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=int, default=15)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is missing: apt-get install wrk")
        return 1
    folder = Path(tempfile.mkdtemp(prefix="est-bench-serving-"))
    pg_port = devdb.free_port()
    url = devdb.start(folder / "pg", pg_port, "est_bench")
    servers: list[subprocess.Popen[bytes]] = []
    try:
        settings = Settings(database_url=url, _env_file=None)
        init_database(settings, 26916, CHICAGO_26916)
        system = create_engine(settings.role_url(SYSTEM_ROLE), poolclass=pool.NullPool)
        owner = create_engine(
            settings.admin_url(), poolclass=pool.NullPool, isolation_level="AUTOCOMMIT"
        )
        chicago = gpd.GeoDataFrame(
            {"code": ["chicago"], "name": ["Chicago"], "kind": ["custom"]},
            geometry=[
                shapely.box(
                    CHICAGO_26916.minx, CHICAGO_26916.miny, CHICAGO_26916.maxx, CHICAGO_26916.maxy
                )
            ],
            crs=26916,
        )
        with system.begin() as conn:
            sync_taxonomy(conn, load_taxonomy())
            load_areas(conn, chicago)
            admin.create_organisation(conn, "chicago-pd", "Chicago Police Department", "police")
            admin.create_organisation(conn, "city", "City of Chicago", "kommun")
            admin.grant_area(conn, "city", "chicago", GrantLevel.raw, "bench")
            viewer = admin.new_key(conn, "city", Role.viewer, "bench", None).token
            analyst = admin.new_key(conn, "city", Role.analyst, "bench", None).token
        env = {**os.environ, "EST_DATABASE_URL": url}
        imported = subprocess.run(
            [
                sys.executable,
                "-m",
                "app.cli",
                "import",
                str(args.path),
                "--org",
                "chicago-pd",
                "--mapping",
                "chicago",
                "--accept-valid",
                "--rejects",
                str(folder / "rejects.csv"),
            ],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        if imported.returncode != 0:
            print(imported.stdout, imported.stderr)
            return 1
        with owner.connect() as conn:
            for statement in COPY_SQL.strip().split(";\n"):
                conn.execute(text(statement))
            stored = int(conn.scalar(text("SELECT count(*) FROM bench.crimes")) or 0)
            ids = [
                int(i)
                for i in conn.scalars(
                    text("SELECT id FROM bench.crimes ORDER BY random() LIMIT 500")
                )
            ]
        bboxes = boxes(owner, 64, seed=5)

        ours_port, peer_port = devdb.free_port(), devdb.free_port()
        ours_env = {
            **env,
            "EST_RATE_LIMIT_PER_MINUTE": "100000000",
            "EST_SCHEDULER": "false",
            "EST_LOG_LEVEL": "warning",
            "EST_DB_POOL_SIZE": str(args.clients),
        }
        ours = f"http://127.0.0.1:{ours_port}"
        servers.append(
            serve(
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "bench.bench_serving:app",
                    "--factory",
                    "--port",
                    str(ours_port),
                    "--workers",
                    str(args.workers),
                    "--log-level",
                    "warning",
                    "--no-access-log",
                ],
                ours_env,
                f"{ours}/healthz",
            )
        )
        config = pygeoapi_config(folder, peer_port, pg_port, "est_bench")
        openapi = folder / "pygeoapi-openapi.yml"
        peer_env = {**os.environ, "PYGEOAPI_CONFIG": str(config), "PYGEOAPI_OPENAPI": str(openapi)}
        subprocess.run(
            [
                str(Path(sys.executable).with_name("pygeoapi")),
                "openapi",
                "generate",
                str(config),
                "--output-file",
                str(openapi),
            ],
            env=peer_env,
            check=True,
            capture_output=True,
        )
        peer = f"http://127.0.0.1:{peer_port}"
        servers.append(
            serve(
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "pygeoapi.starlette_app:APP",
                    "--port",
                    str(peer_port),
                    "--workers",
                    str(args.workers),
                    "--log-level",
                    "warning",
                    "--no-access-log",
                ],
                peer_env,
                f"{peer}/collections/crimes?f=json",
            )
        )

        basic = {"Authorization": "Basic " + base64.b64encode(f"wrk:{viewer}".encode()).decode()}
        raw = {"Authorization": "Basic " + base64.b64encode(f"wrk:{analyst}".encode()).decode()}
        cases = {
            "bbox page of 1,000": (
                [f"/ogc/collections/crimes/items?limit=1000&bbox={b}" for b in bboxes],
                [f"/collections/crimes/items?f=json&limit=1000&bbox={b}" for b in bboxes],
                [f"/ogc/collections/incidents/items?limit=1000&bbox={b}" for b in bboxes],
            ),
            "single feature": (
                [f"/ogc/collections/crimes/items/{i}" for i in ids],
                [f"/collections/crimes/items/{i}?f=json" for i in ids],
                [f"/ogc/collections/incidents/items/{i}" for i in ids],
            ),
        }
        with httpx.Client(timeout=120) as client:  # both answer alike before they are timed
            for ours_path, peer_path, raw_path in zip(*cases["bbox page of 1,000"], strict=True):
                a = client.get(ours + ours_path, headers=basic).json()["numberReturned"]
                b = len(client.get(peer + peer_path).json()["features"])
                c = client.get(ours + raw_path, headers=raw).json()["numberReturned"]
                assert a == b == c == 1000, (a, b, c)
                break
        print(
            f"{stored:,} Chicago 2017 crimes, EPSG:26916; {args.workers} uvicorn workers "
            f"each; wrk, {args.clients} connections, {args.seconds} s per row, loopback\n"
        )
        print(f"{'':22} {'':9} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'wrk CPU':>8}")
        for name, (ours_paths, peer_paths, raw_paths) in cases.items():
            mine = wrk(ours, ours_paths, basic, args.clients, args.seconds, folder)
            theirs = wrk(peer, peer_paths, {}, args.clients, args.seconds, folder)
            audited = wrk(ours, raw_paths, raw, args.clients, args.seconds, folder)
            for label, load in (("ours", mine), ("pygeoapi", theirs), ("ours, raw", audited)):
                print(
                    f"{name:22} {label:9} {load.requests_per_s:8.1f} {load.p50_ms:8.1f} "
                    f"{load.p99_ms:8.1f} {load.cpu_share:8.0%}"
                )
            print(
                f"{name:22} {'ratio':9} {mine.requests_per_s / theirs.requests_per_s:8.1f}x "
                f"{'':8} {mine.p99_ms / theirs.p99_ms:8.2f}x\n"
            )
    finally:
        for server in servers:
            server.terminate()
            server.wait(timeout=30)
        devdb.destroy(folder / "pg")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
