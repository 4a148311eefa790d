"""Run benchmark: a night of runs over 20 areas at 1M incidents (in-process, 1 and 2 Dask
workers), and one area's run at 100k against the peers.

    .venv/bin/python bench/bench_recompute.py [--night 1000000] [--peers 100000] [--keep]

A throwaway PostgreSQL cluster is started and a database initialised in SWEREF 99 TM with the
kommuner and their default profiles. Synthetic incidents (clustering.synthetic: hotspots that
persist, emerge and fade, and 30 % background) are spread over 16 weeks.

The night: `--night` incidents over the 20 largest kommuner (an equal share each); every
area's run of the last of those weeks is computed as the nightly schedule computes it (read,
every method, figures, viewer layers, identity, writing and publishing), forced, in this
process, then on a LocalCluster of 1 and of 2 worker processes (`est recompute --workers N`).
It prints the wall time, the seconds per stage summed over the areas, and the peak memory of
this process with its workers, and of PostgreSQL's processes.

The peers: `--peers` incidents in Stockholm (kommun 0180); its week's run is timed against what
one would write without this project for two of the run's layers: the window's points read by
the superuser as plain SQL, scikit-learn's DBSCAN on them (the same eps and min_samples) and
esda's G_Local (star, binary DistanceBand weights of the same band, no permutations) on the same
250 m cell counts. The run also computes density, trends, the forecast, figures and viewer
layers and writes them all, so the ratio is the whole run against two peers.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import threading
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import psutil
import shapely
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
from app.runs import scale  # noqa: E402
from app.runs.inputs import load_area  # noqa: E402
from app.runs.profiles import ensure_default_profiles  # noqa: E402
from app.settings import SYSTEM_ROLE, Settings  # noqa: E402
from clustering.synthetic import TRENDS, HotspotSpec, generate_incidents  # noqa: E402

AREA = "0180"  # Stockholm
# the 20 most populous kommuner: the night's areas
NIGHT_AREAS = [
    "0180",
    "1480",
    "1280",
    "0380",
    "0580",
    "1880",
    "1980",
    "0680",
    "2480",
    "1281",
    "0581",
    "1283",
    "1490",
    "0480",
    "2180",
    "0780",
    "1080",
    "0880",
    "1380",
    "2281",
]
TZ = "Europe/Stockholm"
WEEKS = 16
LAST_MONDAY = date(2026, 11, 16)
CATEGORIES = {"skadegorelse.klotter": 3, "tillgrepp.cykelstold": 2, "narkotika.innehav": 1}


def clear(engine: Engine) -> None:
    """Delete the benchmark's incidents."""
    with engine.begin() as conn:
        org = ensure_organisation(conn, "bench", "Bench", "kommun")
        conn.execute(text("DELETE FROM est.incident WHERE organisation_id = :o"), {"o": org})


def fill(engine: Engine, code: str, n: int, seed: int, hotspots: int = 40) -> None:
    """Store n synthetic incidents in an area, numbered after the area."""
    with engine.begin() as conn:
        area = load_area(conn, code).geom
        org = ensure_organisation(conn, "bench", "Bench", "kommun")
    rng = np.random.default_rng(seed)
    x0, y0, x1, y1 = area.bounds
    spots = []
    while len(spots) < hotspots:
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
                f"{code}-{first + i}",
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


def analyze(engine: Engine) -> None:
    """Fresh planner statistics after a fill."""
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


class PeakMemory:
    """The peak resident memory, sampled every 0.1 s, of this process with its children
    (Dask's workers) and of the PostgreSQL server's processes."""

    def __init__(self, postmaster_pid: int) -> None:
        self.server = psutil.Process(postmaster_pid)
        self.ours = 0
        self.database = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    @staticmethod
    def _rss(process: psutil.Process) -> int:
        total = 0
        for p in [process, *process.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):  # a process that just ended
                total += p.memory_info().rss
        return total

    def _sample(self) -> None:
        me = psutil.Process()
        while not self._stop.wait(0.1):
            self.ours = max(self.ours, self._rss(me))
            self.database = max(self.database, self._rss(self.server))

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def night(system: Engine, workers: int, postmaster: int) -> None:
    """Every bench area's run of the week, forced, as the nightly schedule runs them."""
    week = runs.RunPeriod.week(LAST_MONDAY, TZ)
    now = datetime(2026, 11, 30, tzinfo=ZoneInfo(TZ))
    with system.connect() as conn:
        pairs = runs.profiles_to_run(conn, NIGHT_AREAS, runs.DEFAULT_PROFILE)
    began = time.perf_counter()
    with PeakMemory(postmaster) as memory, scale.runner(workers) as where:
        started = time.perf_counter()

        def one(pair: tuple[str, runs.Profile]) -> runs.Outcome:
            code, profile = pair
            return runs.recompute(system, code, profile, week, force=True, now=now, runner=where)

        outcomes = scale.each(one, pairs, where.parallel)
        done = time.perf_counter()
    assert all(o.status == "succeeded" for o in outcomes), [o.detail for o in outcomes]
    stages: dict[str, float] = {}
    for o in outcomes:
        for stage, seconds in o.timings.items():
            stages[stage] = stages.get(stage, 0.0) + seconds
    print(
        f"\nnight of {len(outcomes)} areas, {where.describe()}: {done - started:.1f} s "
        f"(+ {started - began:.1f} s starting the workers); "
        f"{sum(o.counts['window'] for o in outcomes):,} incidents in the windows, "
        f"{sum(o.counts['hotspots'] for o in outcomes)} hotspots"
    )
    print(
        "  seconds per stage, summed over the areas: "
        + ", ".join(f"{k} {v:.1f}" for k, v in stages.items())
    )
    print(
        f"  peak memory: this process and its workers {memory.ours / 2**30:.2f} GiB, "
        f"PostgreSQL {memory.database / 2**30:.2f} GiB"
    )


def main() -> int:
    """Start a cluster, fill it and measure the night and the peers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--night", type=int, default=1_000_000, help="incidents over 20 areas")
    parser.add_argument("--peers", type=int, default=100_000, help="incidents in Stockholm")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--keep", action="store_true", help="leave the cluster running")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="est-bench-runs-"))
    url = devdb.start(base / "pg", devdb.free_port(), "est_bench")
    postmaster = int((base / "pg" / "postmaster.pid").read_text().split()[0])
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
        if args.peers:
            began = time.perf_counter()
            fill(system, AREA, args.peers, seed=args.peers)
            analyze(system)
            print(f"stored {args.peers:,} incidents in {time.perf_counter() - began:.0f} s")
            measure(system, admin, args.peers)
        if args.night:
            clear(system)
            began = time.perf_counter()
            share = args.night // len(NIGHT_AREAS)
            for n, code in enumerate(NIGHT_AREAS):
                fill(system, code, share, seed=n, hotspots=6)
            analyze(system)
            print(
                f"\nstored {share * len(NIGHT_AREAS):,} incidents over {len(NIGHT_AREAS)} areas "
                f"in {time.perf_counter() - began:.0f} s",
                flush=True,
            )
            with system.connect() as conn:  # a warm-up: compiled code, cached plans
                profile = runs.default_profile(conn, NIGHT_AREAS[0])
            runs.recompute(
                system,
                NIGHT_AREAS[0],
                profile,
                runs.RunPeriod.week(LAST_MONDAY, TZ),
                force=True,
                now=datetime(2026, 11, 30, tzinfo=ZoneInfo(TZ)),
            )
            for workers in args.workers:
                night(system, workers, postmaster)
    finally:
        if args.keep:
            print(f"cluster left running: {url} ({base})")
        else:
            devdb.stop(base / "pg")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
