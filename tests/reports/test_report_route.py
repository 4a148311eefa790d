"""GET /api/v1/areas/{code}/reports/{period}.{pdf,html}: the report of a published run, whose
numbers are the API's numbers for that run; the viewer's holds viewer values only."""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from app.core import swedish
from app.reports import content
from app.runs import recompute as runs
from tests.reports.conftest import (
    AREA,
    AREA_NAME,
    KOMMUN,
    NOW,
    POLICE,
    TZ,
    Perstorp,
    needs_poppler,
    pdf_text,
)

URL = f"/api/v1/areas/{AREA}/reports"
K = 5
NUMBER = r"(?:<\s*\d+|\d[\d\u202f]*(?:,\d+)?)"


def _get(client: TestClient, perstorp: Perstorp, org: str, role: str, name: str, **params: Any):
    return client.get(f"{URL}/{name}", headers=perstorp.headers(org, role), params=params)


def _numbers(line: str) -> list[str]:
    found = re.findall(rf"(?<![\w,]){NUMBER}(?![\w,])", line)
    return [re.sub(r"<\s*", "< ", n) for n in found]


def _row(lines: list[str], name: str) -> list[str]:
    """The numbers of a figures row: the first line that starts with the name's first word
    (a long name wraps in its cell) and holds four numbers."""
    first = name.split()[0]
    for line in lines:
        rest = line.strip()
        if rest.startswith(first + " ") and len(_numbers(rest[len(first) :])) >= 4:
            return _numbers(rest[len(first) :])
    raise AssertionError(f"no row of {name!r}")


def _figure_cells(api: dict[str, Any], viewer: bool) -> list[str]:
    """A figure row as the report writes it: counts (viewers: < k below k), the mean 1 decimal."""

    def shown(value: float, decimals: int = 0) -> str:
        if viewer and value < K:
            return f"< {K}"
        return f"{value:.{decimals}f}".replace(".", ",")

    return [
        shown(api["this_week"]),
        shown(api["last_week"]),
        shown(api["same_week_last_year"]),
        shown(api["mean_12_weeks"], 1),
    ]


def _page(pages: list[str], heading: str) -> str:
    return next(p for p in pages if re.search(rf"^\s*\d\. {heading}\s*$", p, re.M))


def _hotspot_rows(page: str) -> list[list[str]]:
    """The table rows of the hotspot page: number and the counts after the change label."""
    rows = []
    for line in page.splitlines():
        found = re.match(
            r"^\s*(\d+)\s+.*?(ny|växande|oförändrad|krympande)\s+("
            + NUMBER
            + r")\s+("
            + NUMBER
            + r")",
            line,
        )
        if found:
            rows.append([found[1], found[3], found[4]])
    return rows


def _ogc_hotspots(client: TestClient, perstorp: Perstorp, org: str, role: str, run: int) -> list:
    answer = client.get(
        "/ogc/collections/hotspots/items",
        params={"run": run, "limit": 100},
        headers=perstorp.headers(org, role),
    )
    assert answer.status_code == 200, answer.text
    return [f["properties"] for f in answer.json()["features"]]


@needs_poppler
def test_the_analyst_pdf_shows_the_apis_numbers_for_the_same_run(
    client: TestClient, perstorp: Perstorp, tmp_path: Path
) -> None:
    run = perstorp.runs["2026-W48"]
    answer = _get(client, perstorp, KOMMUN, "analyst", "2026-W48.pdf")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/pdf"
    assert len(answer.content) < 2 * 1024 * 1024
    pages = pdf_text(answer.content, tmp_path)
    figures = client.get(f"/api/v1/runs/{run}", headers=perstorp.headers(KOMMUN, "analyst"))
    analyst = [f for f in figures.json()["area_figures"] if f["audience"] == "analyst"]
    assert analyst
    lines = "\n".join(pages).splitlines()
    for figure in analyst:
        name = swedish.category_group(figure["group_code"])
        assert _row(lines, name)[:4] == _figure_cells(figure, viewer=False), name
    hotspots = _ogc_hotspots(client, perstorp, KOMMUN, "analyst", run)
    assert {h["audience"] for h in hotspots} == {"analyst"}
    rows = _hotspot_rows(_page(pages, "Hotspotar"))
    expected = sorted(hotspots, key=lambda h: (-h["incident_count"], h["hotspot_key"]))
    assert [int(r[1]) for r in rows] == [h["incident_count"] for h in expected]
    assert [r[0] for r in rows] == [str(i) for i in range(1, len(expected) + 1)]
    weekly = [h["stats"]["weekly"][-1] for h in expected]
    assert [int(r[2]) for r in rows] == weekly


@needs_poppler
def test_the_hotspot_table_and_the_maps_agree_on_count_and_numbers(
    client: TestClient, perstorp: Perstorp, tmp_path: Path
) -> None:
    for org, role in ((KOMMUN, "analyst"), (POLICE, "viewer")):
        html = _get(client, perstorp, org, role, "2026-W48.html")
        assert html.headers["content-type"].startswith("text/html")
        table = re.findall(r'<tr data-number="(\d+)"', html.text)
        assert table and table == [str(i) for i in range(1, len(table) + 1)]
        maps = re.findall(r'<svg[^>]*class="map".*?</svg>', html.text, re.S)
        assert len(maps) >= 2  # the overview, and the detail or the forecast map
        for svg in maps:
            drawn = re.findall(r'<path class="hotspot" data-number="(\d+)"', svg)
            labelled = re.findall(r'<g class="number" data-number="(\d+)"', svg)
            assert sorted(drawn, key=int) == table and sorted(labelled, key=int) == table
        pdf = _get(client, perstorp, org, role, "2026-W48.pdf")
        pages = pdf_text(pdf.content, tmp_path, layout=False)
        on_map = Counter(re.findall(r"^(\d+)$", _page(pages, "Karta"), re.M))
        assert set(table) <= set(on_map), (table, on_map)
        assert len(_hotspot_rows(_page(pdf_text(pdf.content, tmp_path), "Hotspotar"))) == len(table)


@needs_poppler
def test_a_viewers_pdf_shows_exactly_the_viewer_values(
    client: TestClient, perstorp: Perstorp, tmp_path: Path, system_engine: Engine
) -> None:
    run = perstorp.runs["2026-W48"]
    answer = _get(client, perstorp, POLICE, "viewer", "2026-W48.pdf")
    assert answer.status_code == 200, answer.text
    pages = pdf_text(answer.content, tmp_path)
    lines = "\n".join(pages).splitlines()
    # the figures: each group's shown total of the week, as the grid layer gives it
    with system_engine.connect() as conn:
        viewer = conn.execute(
            text(
                "SELECT group_code, this_week, last_week, same_week_last_year, mean_12_weeks "
                "FROM est.area_figure WHERE run_id = :run AND audience = 'viewer'"
            ),
            {"run": run},
        ).all()
    for figure in viewer:
        name = swedish.category_group(figure.group_code)
        assert _row(lines, name)[:4] == _figure_cells(dict(figure._mapping), viewer=True)
        grid = client.get(
            "/api/v1/layers/grid",
            params={
                "area": AREA,
                "date": "2026-11-25",
                "cell_size_m": 2000,
                "group": figure.group_code,
            },
            headers=perstorp.headers(POLICE, "viewer"),
        )
        shown = sum(f["properties"]["count"] for f in grid.json()["features"])
        assert shown == figure.this_week, figure.group_code
    # the hotspots: the viewer versions' shown totals, as OGC API gives them to the viewer
    hotspots = _ogc_hotspots(client, perstorp, POLICE, "viewer", run)
    assert {h["audience"] for h in hotspots} == {"viewer"}
    rows = _hotspot_rows(_page(pages, "Hotspotar"))
    assert sorted(int(r[1]) for r in rows) == sorted(h["incident_count"] for h in hotspots)
    for row in rows:  # no shown count below k
        assert all(v.startswith("<") or int(v) >= K for v in row[1:]), row
    analyst = _ogc_hotspots(client, perstorp, KOMMUN, "analyst", run)
    exact = {h["incident_count"] for h in analyst} - {h["incident_count"] for h in hotspots}
    assert exact and not exact & {int(r[1]) for r in rows}
    text_all = "\n".join(pages)
    assert "Vanligast" not in text_all and "måndag" not in text_all
    assert not re.search(r"Känsliga kategorier: \d", text_all)


def test_the_viewer_report_is_built_from_viewer_geometry_only(
    system_engine: Engine, perstorp: Perstorp
) -> None:
    with system_engine.begin() as conn:
        period = content.parse_period("2026-W48", TZ)
        built = content.build(conn, content.ReportRequest(AREA, period), system=True)
        stored = dict(
            conn.execute(
                text(
                    "SELECT hotspot_key, ST_AsBinary(viewer_geom) FROM est.hotspot "
                    "WHERE run_id = :run AND viewer_geom IS NOT NULL"
                ),
                {"run": perstorp.runs["2026-W48"]},
            ).all()
        )
    import shapely
    from shapely import wkb

    assert {h.key for h in built.hotspots} == set(stored)
    for h in built.hotspots:
        assert shapely.equals(h.geometry, wkb.loads(bytes(stored[h.key])))
        assert h.busiest_hour is None and h.busiest_weekday is None
        assert sum(h.weekly[-4:]) == h.count  # the window's weekly shown sums make its total
    assert all(s.incidents is None or s.incidents % 5 == 0 for s in built.sources)


def test_a_week_without_a_published_run_is_a_404_naming_what_is_missing(
    client: TestClient, perstorp: Perstorp
) -> None:
    answer = _get(client, perstorp, POLICE, "viewer", "2026-W30.pdf")
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert problem["missing"] == "published run" and problem["period"] == "2026-W30"
    assert "no published run of week 2026-W30 for area 1275 (Perstorp)" in problem["detail"]


@pytest.mark.parametrize(
    ("name", "params", "status", "names"),
    [
        ("2026-W60.pdf", {}, 422, "report: week 2026-W60 does not exist"),
        ("2026-W48.docx", {}, 422, "report: '2026-W48.docx'"),
        ("2026-T4.pdf", {}, 422, "report: '2026-T4'"),
        ("vecka48.pdf", {}, 422, "report: 'vecka48'"),
        ("2026-W48.pdf", {"audience": "everyone"}, 422, "audience"),
        ("2026-W48.pdf", {"profile": "Not A Name"}, 422, "profile"),
        ("2026-W48.pdf", {"profile": "nosuch"}, 404, "no profile 'nosuch'"),
    ],
)
def test_bad_input_is_a_4xx_naming_the_field(
    client: TestClient,
    perstorp: Perstorp,
    name: str,
    params: dict[str, str],
    status: int,
    names: str,
) -> None:
    answer = _get(client, perstorp, POLICE, "viewer", name, **params)
    assert answer.status_code == status, answer.text
    assert names in answer.json()["detail"]


def test_who_may_read_which_version(client: TestClient, perstorp: Perstorp) -> None:
    # a viewer of the kommun, and the police area's analyst (aggregate grant): viewer version
    for org, role in ((KOMMUN, "viewer"), (POLICE, "analyst")):
        html = _get(client, perstorp, org, role, "2026-W48.html")
        assert html.status_code == 200 and "Visningsversion" in html.text
        refused = _get(client, perstorp, org, role, "2026-W48.html", audience="analyst")
        assert refused.status_code == 403
    analyst = _get(client, perstorp, KOMMUN, "analyst", "2026-W48.html")
    assert "Analytikerversion" in analyst.text
    passed_on = _get(client, perstorp, KOMMUN, "analyst", "2026-W48.html", audience="viewer")
    assert "Visningsversion" in passed_on.text
    assert _get(client, perstorp, KOMMUN, "admin", "2026-W48.pdf").status_code == 403
    other = client.get(
        "/api/v1/areas/1276/reports/2026-W48.pdf", headers=perstorp.headers(POLICE, "viewer")
    )
    assert other.status_code == 404


@needs_poppler
def test_every_page_names_the_kommun_and_week_and_the_pdf_is_a4_tagged_with_fonts_embedded(
    client: TestClient, perstorp: Perstorp, tmp_path: Path
) -> None:
    pdf = _get(client, perstorp, POLICE, "viewer", "2026-W48.pdf").content
    pages = pdf_text(pdf, tmp_path)
    assert len(pages) >= 4
    for number, page in enumerate(pages, start=1):
        assert f"Lägesbild {AREA_NAME}" in page and "Vecka 48 2026" in page
        assert f"Sida {number} av {len(pages)}" in page
    whole = "\n".join(pages)
    titles = ["Sammanfattning", "Läget", "Karta", "Hotspotar", "Trender", "Prognos"]
    for number, title in enumerate([*titles, "Källor och begränsningar"], start=1):
        assert re.search(rf"^\s*{number}\. {title}\s*$", whole, re.M), title
    path = tmp_path / "report.pdf"
    path.write_bytes(pdf)
    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True).stdout
    assert "Tagged:          yes" in info and "595.276 x 841.89 pts (A4)" in info
    fonts = subprocess.run(["pdffonts", str(path)], capture_output=True, text=True).stdout
    embedded = [line.split()[-5] for line in fonts.splitlines()[2:]]
    assert embedded and set(embedded) == {"yes"}


def test_the_same_run_gives_the_same_pdf(client: TestClient, perstorp: Perstorp) -> None:
    first = _get(client, perstorp, POLICE, "viewer", "2026-W48.pdf").content
    again = _get(client, perstorp, POLICE, "viewer", "2026-W48.pdf").content
    assert first == again


@needs_poppler
def test_the_pages_are_rendered_to_png_for_people_to_look_at(
    client: TestClient, perstorp: Perstorp, artefacts: Path
) -> None:
    for org, role, version in ((POLICE, "viewer", "viewer"), (KOMMUN, "analyst", "analyst")):
        pdf = _get(client, perstorp, org, role, "2026-W48.pdf").content
        (artefacts / f"{version}.pdf").write_bytes(pdf)
        for old in artefacts.glob(f"{version}-*.png"):
            old.unlink()
        subprocess.run(
            [
                "pdftoppm",
                "-r",
                "70",
                "-png",
                str(artefacts / f"{version}.pdf"),
                str(artefacts / version),
            ],
            check=True,
        )
        assert len(list(artefacts.glob(f"{version}-*.png"))) >= 4


@needs_poppler
def test_a_tertial_has_its_report_too(
    client: TestClient, perstorp: Perstorp, system_engine: Engine, tmp_path: Path
) -> None:
    with system_engine.connect() as conn:
        profile = runs.default_profile(conn, AREA)
    period = runs.RunPeriod.tertial(NOW.date(), TZ)
    outcome = runs.recompute(system_engine, AREA, profile, period, force=True, now=NOW)
    assert outcome.status == "succeeded", outcome.detail
    answer = _get(client, perstorp, POLICE, "viewer", "2026-T3.pdf")
    assert answer.status_code == 200, answer.text
    pages = pdf_text(answer.content, tmp_path)
    assert all("Tertial 3 2026" in p for p in pages)
    assert "Preliminär" in pages[0]  # the tertial was still open
    assert "Denna tertial" in "\n".join(pages)
