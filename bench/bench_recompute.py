"""Run benchmark: the week's run of one area at 100k and 1M stored incidents, against peers.

    .venv/bin/python bench/bench_recompute.py [--sizes 100000 1000000] [--keep]

A throwaway PostgreSQL cluster is started and a database initialised in SWEREF 99 TM with the
kommuner and their default profiles. Synthetic incidents (clustering.synthetic: 40 hotspots,
persisting, emerging and fading, and 30 % background) are spread over 16 weeks in Stockholm
(kommun 0180). Then the week's run of the last of those weeks is timed as `est recompute` runs
it (read, methods, figures, viewer layers, write and publish in one transaction), once forced
after a warm-up; its seconds per stage are printed.

The peers, measured in the same run on the same points: what one would write without this
project for two of the run's layers — the window's points read by the superuser as plain SQL,
scikit-learn's DBSCAN on them (the same eps and min_samples) and esda's G_Local (star, binary
DistanceBand weights of the same band, no permutations) on the same 250 m cell counts. Those
two layers are a part of what the run does (it also computes density, trends, the forecast,
figures, viewer layers and writes them all), so the ratio is the whole run against two peers.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import shapely
from shapely import wkb as shapely_wkb
from sqlalchemy import Engine, create_engine, pool, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.core.taxonomy import load_taxonomy  # noqa: E402
from app.db.areas import load_areas  # noqa: E402
from app.db.bootstrap import init_database  # noqa: E402
from app.db.reference import sync_taxonomy  # noqa: E402
from app.ingest.areas import read_kommun_file  # noqa: E402
from app.ingest.store import IncidentRecord, upsert_incidents  # noqa: E402
from app.ops import devdb  # noqa: E402
from app.ops.demo import ensure_organisation  # noqa: E402
from app.runs import recompute as runs  # noqa: E402
from app.runs.profiles import ensure_default_profiles  # noqa: E402
from app.settings import SYSTEM_ROLE, Settings  # noqa: E402
from clustering.synthetic import TRENDS, HotspotSpec, generate_incidents  # noqa: E402

AREA = "0180"  # Stockholm
TZ = "Europe/Stockholm"
WEEKS = 16
LAST_MONDAY = date(2026, 11, 16)
CATEGORIES = {"skadegorelse.klotter": 3, "tillgrepp.cykelstold": 2, "narkotika.innehav": 1}


def fill(engine: Engine, n: int, seed: int) -> None:
    """Store n synthetic incidents in the area (replacing earlier ones)."""
    with engine.begin() as conn:
        wkb = conn.scalar(
            text("SELECT ST_AsBinary(geom) FROM est.area WHERE code = :c"), {"c": AREA}
        )
        area = shapely_wkb.loads(bytes(wkb))
        org = ensure_organisation(conn, "bench", "Bench", "kommun")
        conn.execute(text("DELETE FROM est.incident WHERE organisation_id = :o"), {"o": org})
    rng = np.random.default_rng(seed)
    x0, y0, x1, y1 = area.bounds
    spots = []
    while len(spots) < 40:
        x, y = rng.uniform(x0, x1), rng.uniform(y0, y1)
        if area.contains(shapely.Point(x, y)):
            spots.append(
                HotspotSpec(x, y, sigma_m=rng.uniform(60, 200), trend=TRENDS[len(spots) % 3])
            )
    start = datetime(LAST_MONDAY.year, LAST_MONDAY.month, LAST_MONDAY.day, tzinfo=ZoneInfo(TZ))
    start -= timedelta(weeks=WEEKS - 1)
    made = generate_incidents(
        spots,
        n,
        start=start,
        weeks=WEEKS,
        background_area=area,
        background_categories=CATEGORIES,
        seed=seed,
    )
    cats = np.array(list(CATEGORIES))[rng.integers(0, len(CATEGORIES), len(made))]
    step = 200_000
    for first in range(0, len(made), step):
        part = slice(first, first + step)
        records = [
            IncidentRecord(
                "bench",
                str(first + i),
                str(c),
                t.item().replace(tzinfo=ZoneInfo("UTC")),
                None,
                float(x),
                float(y),
                "address",
            )
            for i, (x, y, t, c) in enumerate(
                zip(
                    made.x[part],
                    made.y[part],
                    made.time[part].astype("datetime64[us]"),
                    cats[part],
                    strict=True,
                )
            )
        ]
        with engine.begin() as conn:
            upsert_incidents(conn, org, 3006, records)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE est.incident"))
        conn.execute(text("ANALYZE est.incident_area"))


def peers(admin: Engine, eps_m: float, min_samples: int, band_m: float) -> dict[str, float]:
    """Seconds of the peers on the window's points (see the module docstring)."""
    import esda
    import libpysal
    from sklearn.cluster import DBSCAN

    begin = datetime(2026, 10, 26, tzinfo=ZoneInfo(TZ))  # the 4-week window of week 47
    end = datetime(2026, 11, 23, tzinfo=ZoneInfo(TZ))
    t = time.perf_counter()
    with admin.connect() as conn:
        rows = conn.execute(
            text("""
            SELECT ST_X(i.geom), ST_Y(i.geom) FROM est.incident i
            JOIN est.incident_area ia ON ia.incident_id = i.id
            JOIN est.area a ON a.id = ia.area_id AND a.code = :c
            WHERE i.occurred_from >= :b AND i.occurred_from < :e AND i.deleted_at IS NULL
        """),
            {"c": AREA, "b": begin, "e": end},
        ).all()
    xy = np.array(rows, dtype=np.float64)
    read = time.perf_counter() - t
    t = time.perf_counter()
    DBSCAN(eps=eps_m, min_samples=min_samples).fit(xy)
    dbscan = time.perf_counter() - t
    t = time.perf_counter()
    cells, counts = np.unique(np.floor(xy / 250).astype(np.int64), axis=0, return_counts=True)
    centres = (cells + 0.5) * 250
    w = libpysal.weights.DistanceBand(centres, threshold=band_m, binary=True, silence_warnings=True)
    esda.G_Local(counts.astype(float), w, transform="B", star=True, permutations=0)
    gistar = time.perf_counter() - t
    return {"read": read, "dbscan": dbscan, "gistar": gistar, "points": float(len(xy))}


def measure(system: Engine, admin: Engine, n: int) -> None:
    """Time one forced run (after a warm-up) and the peers; print the figures."""
    week = runs.RunPeriod.week(LAST_MONDAY, TZ)
    with system.connect() as conn:
        profile = runs.default_profile(conn, AREA)
    now = datetime(2026, 11, 30, tzinfo=ZoneInfo(TZ))
    runs.recompute(system, AREA, profile, week, force=True, now=now)
    began = time.perf_counter()
    outcome = runs.recompute(system, AREA, profile, week, force=True, now=now)
    total = time.perf_counter() - began
    with system.connect() as conn:
        params = conn.scalar(
            text("SELECT parameters FROM est.hotspot_run WHERE id = :id"), {"id": outcome.run_id}
        )
    peer = peers(
        admin,
        params["dbscan"]["eps_m"],
        params["dbscan"]["min_samples"],
        params["gistar"]["distance_band_m"],
    )
    print(
        f"\n{n:,} incidents stored; week 47: {outcome.counts['window']:,} in the 4-week window, "
        f"{outcome.counts['hotspots']} hotspots"
    )
    for stage, seconds in outcome.timings.items():
        print(f"  run stage {stage:<8} {seconds:8.2f} s")
    peer_total = peer["read"] + peer["dbscan"] + peer["gistar"]
    print(f"  {'run, all of it':<18} {total:8.2f} s")
    print(
        f"  peers: SQL read {peer['read']:.2f} s + scikit-learn DBSCAN {peer['dbscan']:.2f} s "
        f"+ esda G_Local {peer['gistar']:.2f} s = {peer_total:.2f} s "
        f"on {int(peer['points']):,} points"
    )
    print(f"  ratio whole run / peers' two layers: {total / peer_total:.2f}")


def main() -> int:
    """Start a cluster, fill it in steps and measure at each size."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--keep", action="store_true", help="leave the cluster running")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="est-bench-runs-"))
    url = devdb.start(base / "pg", devdb.free_port(), "est_bench")
    try:
        settings = Settings(database_url=url)
        init_database(settings, 3006)
        system = create_engine(settings.role_url(SYSTEM_ROLE), poolclass=pool.NullPool)
        admin = create_engine(
            url.replace("postgresql://", "postgresql+psycopg://"), poolclass=pool.NullPool
        )
        with system.begin() as conn:
            sync_taxonomy(conn, load_taxonomy())
            load_areas(conn, read_kommun_file())
            ensure_default_profiles(conn)
        for n in args.sizes:
            began = time.perf_counter()
            fill(system, n, seed=n)
            print(f"stored {n:,} incidents in {time.perf_counter() - began:.0f} s", flush=True)
            measure(system, admin, n)
    finally:
        if args.keep:
            print(f"cluster left running: {url} ({base})")
        else:
            devdb.stop(base / "pg")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
