"""Ingest benchmark: `est import` end to end against a hand-written SQL path, in one run.

    .venv/bin/python bench/bench_ingest.py /path/to/chicago_crimes_2017.csv.gz

A throwaway PostgreSQL cluster is started and a database initialised in EPSG:26916 with
Chicago's extent. Ours: `est import --mapping chicago --accept-valid` as a separate process,
from reading the file to the commit (validation, masking, area placement and the import record
included). The peer: pandas reads the same columns, pyproj projects them, the rows are COPYed
into a staging table and one INSERT … ON CONFLICT puts them into the same indexed incident
table. Both start from an empty incident table. Between them the database floor is measured:
the stored incidents are put back into the emptied table with one plain INSERT … SELECT, the
least the database does for these rows whatever path brings them. Then the REST path: batches
of 1,000 incidents POSTed to a running server.

Goals (issue 4): at least 75,000 rows/s end to end and at least 60% of the hand-written path.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
from pyproj import Transformer
from sqlalchemy import Engine, create_engine, pool, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.core.taxonomy import load_taxonomy  # noqa: E402
from app.core.vocabulary import Role  # noqa: E402
from app.db.bootstrap import Extent, init_database  # noqa: E402
from app.db.reference import sync_taxonomy  # noqa: E402
from app.ingest.mapping import load_mapping  # noqa: E402
from app.ops import devdb  # noqa: E402
from app.settings import SYSTEM_ROLE, Settings  # noqa: E402

CHICAGO_26916 = Extent(420_000.0, 4_600_000.0, 460_000.0, 4_660_000.0)
PEER_SQL = """
INSERT INTO est.incident AS i (organisation_id, source, external_id, category_code,
    occurred_from, geom, location_precision, description)
SELECT :org, 'peer', external_id, category_code, occurred_from,
       ST_SetSRID(ST_MakePoint(x, y), 26916), 'street', description
FROM peer_staging
ON CONFLICT (organisation_id, source, external_id) DO UPDATE SET
    category_code = EXCLUDED.category_code, occurred_from = EXCLUDED.occurred_from,
    geom = EXCLUDED.geom, description = EXCLUDED.description, updated_at = now()
"""


def hand_written(engine: Engine, path: Path, org_id: int) -> tuple[int, float]:
    """The peer: pandas + pyproj + COPY + one INSERT … ON CONFLICT. Returns (rows, seconds)."""
    started = time.perf_counter()
    category = load_mapping("chicago").category
    codes = category.map if category is not None and isinstance(category.map, dict) else {}
    frame = pd.read_csv(
        path,
        dtype=str,
        keep_default_na=False,
        usecols=[
            "ID",
            "Date",
            "Primary Type",
            "Description",
            "Location Description",
            "Latitude",
            "Longitude",
        ],
    )
    frame = frame[(frame["Latitude"] != "") & (frame["Longitude"] != "")]
    frame = frame[frame["Primary Type"].map(lambda t: codes.get(t) is not None)]
    local = pd.to_datetime(frame["Date"], format="%m/%d/%Y %I:%M:%S %p")
    utc = local.dt.tz_localize("America/Chicago", ambiguous=True, nonexistent="NaT")
    frame = frame[utc.notna().to_numpy()]
    utc = utc[utc.notna()].dt.tz_convert("UTC")
    x, y = Transformer.from_crs(4326, 26916, always_xy=True).transform(
        frame["Longitude"].astype(float).to_numpy(), frame["Latitude"].astype(float).to_numpy()
    )
    out = pd.DataFrame(
        {
            "external_id": frame["ID"].to_numpy(),
            "category_code": frame["Primary Type"].map(codes).to_numpy(),
            "occurred_from": utc.dt.strftime("%Y-%m-%dT%H:%M:%SZ").to_numpy(),
            "x": x,
            "y": y,
            "description": (frame["Primary Type"] + ": " + frame["Description"]).to_numpy(),
        }
    )
    buffer = io.StringIO()
    out.to_csv(buffer, header=False, index=False)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TEMP TABLE peer_staging (external_id text, category_code text, "
            "occurred_from timestamptz, x float8, y float8, description text) ON COMMIT DROP"
        )
        raw = conn.connection.driver_connection
        assert raw is not None
        with raw.cursor() as cur, cur.copy("COPY peer_staging FROM STDIN (FORMAT csv)") as copy:
            copy.write(buffer.getvalue())
        conn.execute(text(PEER_SQL), {"org": org_id})
    return len(out), time.perf_counter() - started


def database_floor(admin: Engine, engine: Engine) -> tuple[int, float]:
    """What the database alone takes: the stored incidents, set aside in a plain table, go back
    into the emptied incident table with one INSERT … SELECT (nothing read, parsed, validated or
    checked for conflicts). Returns (rows, seconds, the commit included)."""
    columns = (
        "organisation_id, source, external_id, category_code, occurred_from, occurred_to, "
        "geom, location_precision, description, created_by"
    )
    with admin.begin() as conn:
        conn.exec_driver_sql(
            f"CREATE TABLE public.floor_rows AS SELECT {columns} FROM est.incident"
        )
        conn.exec_driver_sql("GRANT SELECT ON public.floor_rows TO PUBLIC")
    reset(admin)
    started = time.perf_counter()
    with engine.begin() as conn:
        rows = conn.exec_driver_sql(
            f"INSERT INTO est.incident ({columns}) SELECT {columns} FROM public.floor_rows"
        ).rowcount
    seconds = time.perf_counter() - started
    with admin.begin() as conn:
        conn.exec_driver_sql("DROP TABLE public.floor_rows")
    reset(admin)
    return rows, seconds


def reset(admin: Engine) -> None:
    """Empty the incident table as new (no dead rows left in its indexes), then checkpoint."""
    with admin.begin() as conn:
        conn.exec_driver_sql("TRUNCATE est.incident CASCADE")
    with admin.connect() as conn:
        conn.exec_driver_sql("CHECKPOINT")


def rest_batches(url: str, token: str, batches: int, size: int) -> float:
    """POST `batches` batches of `size` new incidents; return incidents per second."""
    rng = np.random.default_rng(0)
    bodies = []
    for b in range(batches):
        lon = -87.75 + rng.uniform(-0.1, 0.1, size)
        lat = 41.85 + rng.uniform(-0.1, 0.1, size)
        bodies.append(
            [
                {
                    "source": "rest-bench",
                    "external_id": f"r{b}-{i}",
                    "category": "tillgrepp",
                    "occurred_from": "2017-06-01T12:00:00-05:00",
                    "lon": float(lon[i]),
                    "lat": float(lat[i]),
                    "location_precision": "street",
                }
                for i in range(size)
            ]
        )
    with httpx.Client(
        base_url=url, timeout=120, headers={"Authorization": f"Bearer {token}"}
    ) as client:
        client.post("/api/v1/incidents", json=bodies[0][:10]).raise_for_status()  # warm up
        started = time.perf_counter()
        for body in bodies:
            client.post("/api/v1/incidents", json=body).raise_for_status()
        return batches * size / (time.perf_counter() - started)


def main() -> int:
    """Run both paths on one database and print rows/s and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path, help="chicago_crimes_2017.csv.gz")
    parser.add_argument("--rest-batches", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each path (median shown)")
    args = parser.parse_args()
    rows_in_file = len(pd.read_csv(args.path, usecols=["ID"]))
    base = Path(tempfile.mkdtemp(prefix="est-bench-"))
    url = devdb.start(base / "pg", devdb.free_port(), "est_bench")
    try:
        settings = Settings(database_url=url, _env_file=None)
        init_database(settings, 26916, CHICAGO_26916)
        engine = create_engine(settings.role_url(SYSTEM_ROLE), poolclass=pool.NullPool)
        admin = create_engine(url, poolclass=pool.NullPool, isolation_level="AUTOCOMMIT")
        with engine.begin() as conn:
            sync_taxonomy(conn, load_taxonomy())
            admin.create_organisation(conn, "chicago-pd", "Chicago Police Department", "police")
            org_id = admin.organisation_id(conn, "chicago-pd")
            token = admin.new_key(conn, "chicago-pd", Role.ingest, "bench", None).token
        env = {**os.environ, "EST_DATABASE_URL": url}
        cmd = [
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
            str(base / "rejects.csv"),
        ]
        ours: list[float] = []
        floor: list[float] = []
        peer: list[float] = []
        for _ in range(args.repeat):  # each path from an empty table, in turn
            reset(admin)
            started = time.perf_counter()
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT)
            ours.append(time.perf_counter() - started)
            if done.returncode != 0:
                print(done.stdout, done.stderr)
                return 1
            with engine.connect() as conn:
                stored = int(conn.scalar(text("SELECT count(*) FROM est.incident")) or 0)
            floor_rows, seconds = database_floor(admin, engine)
            floor.append(seconds)
            peer_rows, seconds = hand_written(engine, args.path, org_id)
            peer.append(seconds)
        reset(admin)
        port = devdb.free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
            env={**env, "EST_RATE_LIMIT_PER_MINUTE": "100000", "EST_LOG_LEVEL": "warning"},
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            for _ in range(100):
                try:
                    httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                    break
                except httpx.HTTPError:
                    time.sleep(0.2)
            rest = rest_batches(f"http://127.0.0.1:{port}", token, args.rest_batches, 1000)
        finally:
            server.terminate()
            server.wait(timeout=30)
        engine.dispose()
        admin.dispose()
    finally:
        devdb.destroy(base / "pg")
    ours_s, peer_s, floor_s = (statistics.median(t) for t in (ours, peer, floor))
    ours_rate = rows_in_file / ours_s
    peer_rate = rows_in_file / peer_s
    print(f"machine: {os.uname().machine}, {os.cpu_count()} cores")
    print(f"file: {args.path.name}, {rows_in_file:,} rows; database EPSG:26916, Chicago extent")
    print(f"each path {args.repeat} times, from an empty incident table; rows/s on the median")
    print(f"{'path':<58} {'stored':>9} {'median s':>9} {'min s':>7} {'rows/s':>8}")
    for name, rows, times, rate in [
        ("ours: est import --accept-valid (process, end to end)", stored, ours, ours_rate),
        ("hand-written: pandas + pyproj + COPY + INSERT", peer_rows, peer, peer_rate),
        (
            "database floor: the same rows, one plain INSERT … SELECT",
            floor_rows,
            floor,
            floor_rows / floor_s,
        ),
    ]:
        print(
            f"{name:<58} {rows:>9,} {statistics.median(times):>9.2f} {min(times):>7.2f} "
            f"{rate:>8,.0f}"
        )
    print(
        f"ratio ours / hand-written: {ours_rate / peer_rate:.0%} (goal 60%); "
        f"ours {'meets' if ours_rate >= 75_000 else 'misses'} the 75,000 rows/s goal"
    )
    print(
        "the floor counts the stored rows and leaves out reading, COPY, validation and "
        "conflict checks: no path through this table ends faster"
    )
    print(f"REST: {args.rest_batches} batches of 1,000 new incidents: {rest:,.0f} incidents/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
