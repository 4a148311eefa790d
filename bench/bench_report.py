"""Report benchmark: a week's lägesbild of each demo kommun, as PDF, against a hand-made peer.

    .venv/bin/python bench/bench_report.py [--repeat 3] [--keep]

A throwaway PostgreSQL cluster is started and a database initialised in SWEREF 99 TM with the
kommuner and the demo data of `est demo` (26 weeks of synthetic incidents for five kommuner);
the last closed week and the one before are computed and published for each, as the nightly
run does. Then, per demo kommun, the closed week's report is fetched over the API the way a
ledningsgrupp member's client fetches it (GET /api/v1/areas/{code}/reports/{week}.pdf, key
checked, the session scoped to the caller): the viewer version with a viewer key (its weekly
series asked of est.viewer_grid one week at a time, as the service's role must) and the analyst
version with an analyst key, and the viewer version the way `est report` makes it (system role).

The peer is what one would write without this project for the same run: the hotspot hulls and
the kommun read with geopandas.read_postgis, a map drawn with GeoDataFrame.plot (matplotlib,
PNG at 150 dpi), the area figures read with pandas.read_sql and written with DataFrame.to_html,
all put in one HTML page and rendered by the same WeasyPrint. It has one map and one table; the
report has three maps, the trend charts, seven sections and the privacy rule.

Goal (issue 18): under 10 s for each kommun's report. Every figure printed is the median of
--repeat timings measured in this run.
"""

from __future__ import annotations

import argparse
import base64
import io
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import geopandas as gpd  # noqa: E402
import pandas as pd  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy import Engine, create_engine, pool, text  # noqa: E402

from app.access import admin  # noqa: E402
from app.core.taxonomy import load_taxonomy  # noqa: E402
from app.core.vocabulary import Role  # noqa: E402
from app.db.areas import load_areas  # noqa: E402
from app.db.bootstrap import init_database  # noqa: E402
from app.db.reference import sync_taxonomy  # noqa: E402
from app.ingest.areas import read_kommun_file  # noqa: E402
from app.main import create_app  # noqa: E402
from app.ops import devdb  # noqa: E402
from app.ops.demo import load_demo, load_demo_plan  # noqa: E402
from app.reports import content, render  # noqa: E402
from app.runs import recompute as runs  # noqa: E402
from app.settings import SYSTEM_ROLE, Settings  # noqa: E402

TZ = "Europe/Stockholm"
GOAL_S = 10.0


def median_time(call: object, repeat: int) -> tuple[float, object]:
    """The median wall time of `repeat` calls, and the last call's result."""
    times, result = [], None
    for _ in range(repeat):
        began = time.perf_counter()
        result = call()  # type: ignore[operator]
        times.append(time.perf_counter() - began)
    return statistics.median(times), result


def page_count(pdf: bytes) -> str:
    """The PDF's pages as pdfinfo (poppler-utils) counts them, or ? without it."""
    if shutil.which("pdfinfo") is None:
        return "?"
    info = subprocess.run(["pdfinfo", "-"], input=pdf, capture_output=True).stdout.decode()
    return next((line.split()[-1] for line in info.splitlines() if line.startswith("Pages")), "?")


def peer_pdf(engine: Engine, run_id: int, area_code: str) -> bytes:
    """The hand-made report: a matplotlib map of the hulls and a pandas table, in WeasyPrint."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from weasyprint import HTML

    with engine.connect() as conn:
        area = gpd.read_postgis(
            text("SELECT name, geom FROM est.area WHERE code = :c"),
            conn,
            params={"c": area_code},
        )
        hotspots = gpd.read_postgis(
            text(
                "SELECT hotspot_key, change_label::text AS label, incident_count, geom "
                "FROM est.hotspot WHERE run_id = :r AND change_label <> 'gone'"
            ),
            conn,
            params={"r": run_id},
        )
        figures = pd.read_sql(
            text(
                "SELECT group_code, this_week, last_week, same_week_last_year, mean_12_weeks "
                "FROM est.area_figure WHERE run_id = :r AND audience = 'analyst' "
                "ORDER BY group_code"
            ),
            conn,
            params={"r": run_id},
        )
    figure = Figure(figsize=(7, 7))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    area.boundary.plot(ax=axes, color="black", linewidth=0.8)
    if len(hotspots):
        hotspots.plot(ax=axes, column="label", legend=True, edgecolor="black")
        for number, (_, row) in enumerate(hotspots.iterrows(), start=1):
            point = row.geom.representative_point()
            axes.annotate(str(number), (point.x, point.y), ha="center")
    axes.set_axis_off()
    png = io.BytesIO()
    figure.savefig(png, format="png", dpi=150)
    image = base64.b64encode(png.getvalue()).decode()
    page = (
        f"<html><head><meta charset='utf-8'><style>@page {{ size: A4; }}</style></head><body>"
        f"<h1>Lägesbild {area.name.iloc[0]}</h1><img style='width: 100%' "
        f"src='data:image/png;base64,{image}'>{figures.to_html(index=False)}"
        f"{hotspots.drop(columns='geom').to_html(index=False)}</body></html>"
    )
    return bytes(HTML(string=page).write_pdf())


def main() -> int:
    """Start a cluster, load the demo, publish two weeks and time the reports."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="timings per figure")
    parser.add_argument("--keep", action="store_true", help="leave the cluster running")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="est-bench-report-"))
    url = devdb.start(base / "pg", devdb.free_port(), "est_bench")
    try:
        settings = Settings(database_url=url, scheduler=False)
        init_database(settings, 3006)
        system = create_engine(settings.role_url(SYSTEM_ROLE), poolclass=pool.NullPool)
        today = date.today()
        began = time.perf_counter()
        with system.begin() as conn:
            sync_taxonomy(conn, load_taxonomy())
            load_areas(conn, read_kommun_file())
            load_demo(conn, settings, load_taxonomy(), today)
        kommuner, _ = load_demo_plan()
        closed = today - timedelta(days=today.weekday() + 7)
        tokens = {}
        with system.begin() as conn:
            for k in kommuner:
                org = f"kommun-{k.code}"
                for role in (Role.viewer, Role.analyst):
                    tokens[(k.code, role)] = admin.new_key(conn, org, role, "bench", None).token
        week = runs.RunPeriod.week(closed, TZ)
        run_ids = {}
        for k in kommuner:
            with system.connect() as conn:
                profile = runs.default_profile(conn, k.code)
            for monday in (closed - timedelta(7), closed):
                outcome = runs.recompute(
                    system, k.code, profile, runs.RunPeriod.week(monday, TZ), force=True
                )
                assert outcome.status == "succeeded", outcome.detail
            run_ids[k.code] = outcome.run_id
        print(
            f"demo loaded and weeks {week.previous().label}, {week.label} published for "
            f"{len(kommuner)} kommuner in {time.perf_counter() - began:.0f} s\n",
            flush=True,
        )
        with TestClient(create_app(settings)) as client:
            warm = kommuner[0].code
            client.get(  # a warm-up: imports, fonts, the template, cached plans
                f"/api/v1/areas/{warm}/reports/{week.label}.pdf",
                headers={"Authorization": f"Bearer {tokens[(warm, Role.viewer)]}"},
            )
            peer_pdf(system, run_ids[warm], warm)
            heads = (
                "kommun",
                "hotspots",
                "viewer API s",
                "analyst API s",
                "est report s",
                "peer s",
                "viewer/peer",
                "pages",
                "PDF KB",
            )
            print(" | ".join(heads))
            print(" | ".join("---" for _ in heads))
            worst = 0.0
            for k in kommuner:
                path = f"/api/v1/areas/{k.code}/reports/{week.label}.pdf"

                def fetch(role: Role, code: str = k.code, path: str = path) -> bytes:
                    bearer = {"Authorization": f"Bearer {tokens[(code, role)]}"}
                    answer = client.get(path, headers=bearer)
                    assert answer.status_code == 200, answer.text
                    return answer.content

                def made(code: str = k.code) -> bytes:
                    with system.begin() as conn:
                        request = content.ReportRequest(code, week)
                        return render.render_pdf(content.build(conn, request, system=True))

                viewer_s, pdf = median_time(lambda: fetch(Role.viewer), args.repeat)
                analyst_s, _ = median_time(lambda: fetch(Role.analyst), args.repeat)
                cli_s, _ = median_time(made, args.repeat)
                peer_s, _ = median_time(
                    lambda code=k.code: peer_pdf(system, run_ids[code], code), args.repeat
                )
                assert isinstance(pdf, bytes)
                pages = page_count(pdf)
                with system.connect() as conn:
                    spots = conn.scalar(
                        text(
                            "SELECT count(*) FROM est.hotspot WHERE run_id = :r "
                            "AND change_label <> 'gone'"
                        ),
                        {"r": run_ids[k.code]},
                    )
                worst = max(worst, viewer_s, analyst_s, cli_s)
                print(
                    f"{k.name} ({k.code}) | {spots} | {viewer_s:.2f} | {analyst_s:.2f} | "
                    f"{cli_s:.2f} | {peer_s:.2f} | {viewer_s / peer_s:.1f} | {pages} | "
                    f"{len(pdf) / 1024:.0f}",
                    flush=True,
                )
        verdict = "met" if worst < GOAL_S else "NOT met"
        print(f"\nslowest report {worst:.2f} s: goal of under {GOAL_S:.0f} s each {verdict}")
    finally:
        if args.keep:
            print(f"cluster left running: {url} ({base})")
        else:
            devdb.stop(base / "pg")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
