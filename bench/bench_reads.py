"""Raw-read benchmark: pages of incidents for an analyst, through the API, at 265k and 1M.

    .venv/bin/python bench/bench_reads.py [--sizes 265000 1000000] [--workers 4]

A throwaway PostgreSQL cluster is started and a database initialised in SWEREF 99 TM with the
kommuner loaded. Synthetic incidents are spread over Eslöv (kommun 1285): nine in ten reported
by the kommun itself, one in ten by another organisation, all visible to the kommun's analyst
through its raw grant. The service runs under uvicorn (`est serve`), and an analyst key asks:

- a page of 1,000 in a 1 km box, and a page of 1,000 without a box (median of 15 requests);
- 30 pages deep by following the next links (keyset paging; median per page);
- requests per second with 8 clients asking for pages without a box for 10 s.

The peer, measured in the same run: the same page read by the database's superuser as plain
SQL, without row-level security, the API or JSON: the floor any API over this table stands
on. Goals (issue 12), at 1M: a page in a 1 km box under 100 ms, a page without a box under
300 ms.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from sqlalchemy import Engine, create_engine, pool, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.access import admin  # noqa: E402
from app.core.taxonomy import load_taxonomy  # noqa: E402
from app.core.vocabulary import GrantLevel, Role  # noqa: E402
from app.db.areas import load_areas  # noqa: E402
from app.db.bootstrap import init_database  # noqa: E402
from app.db.reference import sync_taxonomy  # noqa: E402
from app.ingest.areas import read_kommun_file  # noqa: E402
from app.ops import devdb  # noqa: E402
from app.settings import SYSTEM_ROLE, Settings  # noqa: E402

BOX_1KM = "13.300,55.835,13.316,55.844"  # about 1 km × 1 km in Eslöv's centre
FILL_SQL = """
WITH box AS (
    SELECT ST_XMin(geom) AS x0, ST_YMin(geom) AS y0, ST_XMax(geom) AS x1, ST_YMax(geom) AS y1,
           geom, id FROM est.area WHERE code = '1285'
), lan AS (SELECT id FROM est.area WHERE code = '12'),
pts AS (
    SELECT g, ST_SetSRID(ST_MakePoint(b.x0 + random() * (b.x1 - b.x0),
                                      b.y0 + random() * (b.y1 - b.y0)), 3006) AS p
    FROM generate_series(:first, :last) AS g, box AS b
), ins AS (
    INSERT INTO est.incident (organisation_id, source, external_id, category_code,
        occurred_from, geom, location_precision, created_by, area_ids)
    SELECT CASE WHEN g % 10 = 0 THEN :other ELSE :kommun END, 'bench', g::text,
           'skadegorelse.klotter', timestamptz '2025-01-01' + (g % 525600) * interval '1 minute',
           p, 'address', 'bench', ARRAY[(SELECT id FROM box), (SELECT id FROM lan)]
    FROM pts, box WHERE ST_Intersects(box.geom, pts.p)
    RETURNING id, organisation_id, area_ids
)
INSERT INTO est.incident_area (incident_id, area_id, organisation_id)
SELECT ins.id, unnest(ins.area_ids), ins.organisation_id FROM ins
"""
FLOOR_SQL = """
SELECT i.id, i.occurred_from, ST_X(ST_Transform(i.geom, 4326)), ST_Y(ST_Transform(i.geom, 4326))
FROM est.incident i WHERE i.deleted_at IS NULL {box}
ORDER BY i.occurred_from, i.id LIMIT 1000
"""


def fill_to(engine: Engine, admin_engine: Engine, target: int, kommun: int, other: int) -> int:
    """Add incidents in Eslöv until about `target` are stored; return how many there are."""
    with engine.begin() as conn:
        have = int(conn.scalar(text("SELECT count(*) FROM est.incident")) or 0)
        last = "SELECT coalesce(max(external_id::bigint), 0) FROM est.incident"
        first = int(conn.scalar(text(last)) or 0) + 1
        while have < target:
            # Eslöv fills about 40 % of its bounding box
            want = int((target - have) / 0.4) + 1000
            conn.execute(
                text(FILL_SQL),
                {"first": first, "last": first + want, "kommun": kommun, "other": other},
            )
            first += want + 1
            have = int(conn.scalar(text("SELECT count(*) FROM est.incident")) or 0)
    # what autovacuum does on a live database after a bulk load (as the superuser: the system
    # role does not own the tables, and PostgreSQL would skip them with a warning)
    with admin_engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE est.incident"))
        conn.execute(text("VACUUM ANALYZE est.incident_area"))
    return have


def timed(call: object, repeat: int) -> float:
    """Median seconds of `repeat` calls after one warm-up."""
    call()  # type: ignore[operator]
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def throughput(url: str, headers: dict[str, str], clients: int, seconds: float) -> float:
    """Requests per second that `clients` threads get for `url` during `seconds`."""
    done = [0] * clients
    stop = time.monotonic() + seconds

    def run(i: int) -> None:
        with httpx.Client(headers=headers, timeout=60) as c:
            while time.monotonic() < stop:
                c.get(url).raise_for_status()
                done[i] += 1

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(done) / seconds


def measure(base: str, token: str, admin_engine: Engine, n: int) -> None:
    """Print the figures for the database as it is now (n incidents)."""
    headers = {"Authorization": f"Bearer {token}"}
    box_url = f"{base}/api/v1/incidents?limit=1000&bbox={BOX_1KM}"
    all_url = f"{base}/api/v1/incidents?limit=1000"
    with httpx.Client(headers=headers, timeout=120) as c:

        def get(url: str) -> dict:
            r = c.get(url)
            r.raise_for_status()
            return r.json()

        in_box = len(get(box_url)["features"])
        ours_box = timed(lambda: get(box_url), 15)
        ours_all = timed(lambda: get(all_url), 15)
        url: str | None = all_url
        pages = []
        for _ in range(30):
            assert url is not None
            start = time.perf_counter()
            body = get(url)
            pages.append(time.perf_counter() - start)
            url = next((x["href"] for x in body["links"] if x["rel"] == "next"), None)
        deep = statistics.median(pages)
    box = "AND i.geom && ST_Transform(ST_MakeEnvelope(13.300, 55.835, 13.316, 55.844, 4326), 3006)"
    with admin_engine.connect() as conn:
        floor_box = timed(lambda: conn.execute(text(FLOOR_SQL.format(box=box))).all(), 15)
        floor_all = timed(lambda: conn.execute(text(FLOOR_SQL.format(box=""))).all(), 15)
    rate = throughput(all_url, headers, 8, 10.0)
    print(f"\n{n:,} incidents")
    print(f"{'':34} {'ours ms':>9} {'SQL floor ms':>13} {'ratio':>7}")
    for name, ours, floor in (
        (f"page of {in_box} in a 1 km box", ours_box, floor_box),
        ("page of 1000 without a box", ours_all, floor_all),
        ("page of 1000, 30 pages deep", deep, floor_all),
    ):
        print(f"{name:34} {ours * 1000:9.1f} {floor * 1000:13.1f} {ours / floor:7.1f}")
    print(f"8 clients, pages of 1000 without a box: {rate:.1f} requests/s")


def main() -> int:
    """Start a cluster, fill it in steps and measure at each size."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[265_000, 1_000_000])
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument(
        "--keep", action="store_true", help="leave the cluster running, to look at plans"
    )
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="est-bench-reads-"))
    url = devdb.start(base / "pg", devdb.free_port(), "est_bench")
    server = None
    try:
        settings = Settings(database_url=url)
        init_database(settings, 3006)
        system = create_engine(settings.role_url(SYSTEM_ROLE), poolclass=pool.NullPool)
        with system.begin() as conn:
            sync_taxonomy(conn, load_taxonomy())
            load_areas(conn, read_kommun_file())
            admin.create_organisation(conn, "kommun-1285", "Eslövs kommun", "kommun")
            admin.create_organisation(conn, "polisen", "Polisen", "police")
            admin.grant_area(conn, "kommun-1285", "1285", GrantLevel.raw, "bench")
            token = admin.new_key(conn, "kommun-1285", Role.analyst, "bench", None).token
            kommun = admin.organisation_id(conn, "kommun-1285")
            other = admin.organisation_id(conn, "polisen")
        port = devdb.free_port()
        env = {**os.environ, "EST_DATABASE_URL": url, "EST_RATE_LIMIT_PER_MINUTE": "10000000"}
        command = [sys.executable, "-m", "app.cli", "serve", "--port", str(port)]
        server = subprocess.Popen(
            [*command, "--workers", str(args.workers)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        api = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                if httpx.get(f"{api}/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        admin_engine = create_engine(settings.admin_url(), poolclass=pool.NullPool)
        for size in sorted(args.sizes):
            n = fill_to(system, admin_engine, size, kommun, other)
            measure(api, token, admin_engine, n)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        if args.keep:
            print(f"\nthe cluster is left running: {url} (data in {base / 'pg'})")
        else:
            devdb.destroy(base / "pg")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
