"""The map page in a real browser (Debian's chromium under Playwright) against the service with
the demo's published weeks: what a viewer and an analyst see, a hotspot's panel read against the
API, weeks, shared links, logout, the print view, phone and desktop widths, and axe-core."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import mapbox_vector_tile
import pytest
from sqlalchemy import text

from tests.web.conftest import (
    ARTEFACTS,
    GROUP_PROFILE,
    TATORT,
    Web,
    log_in,
    screenshot,
    wait_ready,
)

AXE = Path(__file__).with_name("vendor") / "axe-core-4.14.1" / "axe.min.js"
VIEWER = ("kommun-1285", "viewer")
ANALYST = ("kommun-1285", "analyst")
RUN_LAYERS = ("hotspots", "density", "gistar", "emerging", "forecast", "viewer-grid")


def api(page: Any, base: str, path: str, **params: str) -> dict:
    """GET a path of the service with the page's own session (its cookie)."""
    answer = page.request.get(f"{base}{path}", params=params)
    assert answer.ok, answer.text()
    return dict(answer.json())


def layer_boxes(page: Any) -> list[str]:
    return [
        str(v)
        for v in page.eval_on_selector_all("#layer-list input", "els => els.map(e => e.value)")
    ]


def query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def zoomed_on(picture: dict, hotspot: dict, layers: str = "hotspots") -> str:
    west, south, east, north = hotspot["bbox"]
    view = f"{(west + east) / 2:.5f},{(south + north) / 2:.5f},15.00"
    area, week = picture["area"]["code"], picture["week"]["label"]
    return f"/?area={area}&week={week}&layers={layers}&view={view}"


def test_a_viewer_sees_the_viewer_layers_and_no_points(page: Any, server: str, web: Web) -> None:
    log_in(page, server, web.token(*VIEWER))
    assert layer_boxes(page) == list(RUN_LAYERS)
    assert "visningsversion" in page.inner_text("#title-week")
    assert "vecka 48 2026" in page.inner_text("#title-week")
    assert page.inner_text("#title-area") == "Eslöv"
    assert page.is_visible("form.logout button")


def test_an_analyst_with_a_raw_grant_may_turn_on_the_points(
    page: Any, server: str, web: Web
) -> None:
    log_in(page, server, web.token(*ANALYST))
    assert layer_boxes(page) == [*RUN_LAYERS, "incidents"]
    assert "analytikerversion" in page.inner_text("#title-week")
    with page.expect_response(lambda r: "/ogc/collections/incidents/items" in r.url) as read:
        page.check("#layer-incidents")
    assert read.value.ok and read.value.json()["features"]
    wait_ready(page)
    assert "incidents" in query(page.url)["layers"][0].split(",")


def test_an_analyst_of_an_aggregate_grant_gets_no_points(page: Any, server: str, web: Web) -> None:
    log_in(page, server, web.token("insyn", "analyst"))
    assert "incidents" not in layer_boxes(page)
    assert "visningsversion" in page.inner_text("#title-week")


def test_clicking_a_hotspot_on_the_map_opens_the_numbers_the_api_gives(
    page: Any, server: str, web: Web
) -> None:
    log_in(page, server, web.token(*VIEWER))
    picture = api(page, server, "/api/v1/lagesbild")
    first = picture["hotspots"][0]
    page.goto(f"{server}{zoomed_on(picture, first)}")
    wait_ready(page)
    box = page.locator("#map").bounding_box()
    # beside the number marker, on the hotspot's cells
    page.mouse.click(box["x"] + box["width"] / 2 + 24, box["y"] + box["height"] / 2 + 20)
    page.wait_for_selector("#panel:not([hidden])")
    assert page.inner_text("#panel-title") == f"Hotspot {first['number']}"
    assert page.inner_text("#panel-count") == first["count_text"]
    assert page.inner_text("#panel-this-week") == first["this_week_text"]
    assert page.inner_text("#panel-last-week") == first["last_week_text"]
    assert page.inner_text("#panel-change").startswith(first["change"]["words"])
    assert first["label_sv"] in page.inner_text("#panel-label")
    assert page.inner_text("#panel-busiest") == "visas inte i visningsversionen"
    feature = api(page, server, f"/ogc/collections/hotspots/items/{first['id']}")
    assert str(feature["properties"]["incident_count"]) == page.inner_text("#panel-count")
    bars = page.get_attribute("#panel-chart svg", "aria-label")
    assert bars is not None and bars.endswith(first["weekly"][-1]["text"])
    assert query(page.url)["hotspot"] == [first["key"]]


def test_an_analysts_panel_has_counts_per_category_and_the_busiest_hour(
    page: Any, server: str, web: Web
) -> None:
    log_in(page, server, web.token(*ANALYST))
    picture = api(page, server, "/api/v1/lagesbild")
    first = picture["hotspots"][0]
    page.click(f"#hotspot-list button[data-key='{first['key']}']")
    assert page.inner_text("#panel-count") == str(first["count"])
    assert page.inner_text("#panel-busiest") == first["busiest"]
    rows = page.eval_on_selector_all(
        "#panel-categories tbody tr", "rows => rows.map(r => [...r.cells].map(c => c.textContent))"
    )
    assert rows == [[c["name"], c["text"]] for c in first["categories"]]
    if first["emerging"]:
        assert first["emerging"]["sentence"] in page.inner_text("#panel-emerging")
    assert page.evaluate("document.activeElement.id") == "panel-title"  # focus follows the panel


def test_switching_weeks_reads_that_weeks_run(page: Any, server: str, web: Web) -> None:
    log_in(page, server, web.token(*VIEWER))
    week47 = api(page, server, "/api/v1/lagesbild", week="2026-W47")["run"]["id"]
    with page.expect_response(
        lambda r: "/ogc/collections/hotspots/tiles/" in r.url and f"run={week47}" in r.url
    ):
        page.select_option("#week", "2026-W47")
    wait_ready(page)
    assert query(page.url)["week"] == ["2026-W47"]
    assert "vecka 47 2026" in page.inner_text("#title-week")
    assert page.input_value("#week") == "2026-W47"


def test_a_shared_link_opens_the_same_picture(browser: Any, server: str, web: Web) -> None:
    first = browser.new_context(viewport={"width": 1440, "height": 900})
    page = first.new_page()
    log_in(page, server, web.token(*ANALYST))
    page.select_option("#week", "2026-W47")
    wait_ready(page)
    page.check("#layer-gistar")
    hotspot = page.locator("#hotspot-list li button").last
    key = hotspot.get_attribute("data-key")
    hotspot.click()
    page.click("#panel-zoom")
    page.wait_for_timeout(500)  # the map's move ends and the URL takes its view
    wait_ready(page)
    shared = page.url
    title = page.inner_text("#panel-title")
    first.close()

    second = browser.new_context(viewport={"width": 1440, "height": 900})
    other = second.new_page()
    path = shared[len(server) :]
    log_in(other, server, web.token(*ANALYST), path)
    opened = query(other.url)
    for name in ("area", "week", "layers", "hotspot", "profile"):
        assert opened[name] == query(shared)[name], name
    view = [float(v) for v in opened["view"][0].split(",")]
    wanted = [float(v) for v in query(shared)["view"][0].split(",")]
    assert view == pytest.approx(wanted, abs=1e-4)
    assert other.inner_text("#panel-title") == title and key in other.url
    assert other.is_checked("#layer-gistar") and other.input_value("#week") == "2026-W47"
    second.close()


def test_logging_out_ends_the_session(page: Any, server: str, web: Web) -> None:
    log_in(page, server, web.token(*VIEWER))
    cookie = next(c for c in page.context.cookies() if c["name"] == "est_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    page.click("form.logout button")
    page.wait_for_url(re.compile(r".*/login\?utloggad=1$"))
    assert "Du är utloggad" in page.inner_text("main")
    with web.engine.connect() as conn:
        ended = conn.scalar(
            text("SELECT ended_why FROM est.web_session ORDER BY ended_at DESC NULLS LAST LIMIT 1")
        )
    assert ended == "logout"
    assert not [c for c in page.context.cookies() if c["name"] == "est_session"]
    page.goto(f"{server}/?area=1285")
    assert "/login?next=" in page.url


def test_a_viewers_page_requests_hold_no_raw_incident_data(
    page: Any, server: str, web: Web
) -> None:
    answers: list[Any] = []
    page.on("response", lambda answer: answers.append(answer))
    # even a hand-made link asking for the points does not make the page read them
    log_in(page, server, web.token(*VIEWER), f"/?layers={','.join(RUN_LAYERS)},incidents")
    page.click("#hotspot-list li button")
    page.select_option("#week", "2026-W47")
    wait_ready(page)
    read = [a for a in answers if "/ogc/" in a.url or "/api/" in a.url]
    tiles = [a for a in read if "/tiles/WebMercatorQuad/" in a.url and a.status == 200]
    assert any("/collections/hotspots/tiles/" in a.url for a in tiles)
    assert not [a.url for a in read if "/collections/incidents" in a.url]
    for answer in tiles:  # Mapbox Vector Tiles: decoded, not read as text
        for layer in mapbox_vector_tile.decode(answer.body()).values():
            for feature in layer["features"]:
                assert feature["geometry"]["type"] != "Point", answer.url
                assert feature["properties"].get("audience") in (None, "viewer"), answer.url
                assert "stats" not in feature["properties"], answer.url
    for answer in (a for a in read if a not in tiles):
        body = answer.text()
        for raw in ('"Point"', "Demodata", "demo-1285-", '"audience":"analyst"', "busiest_hour"):
            assert raw not in body, (answer.url, raw)


def _no_sideways_scroll(page: Any) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


def test_screenshots_at_desktop_and_phone_width(browser: Any, server: str, web: Web) -> None:
    for name, who, width, height, layers in (
        ("viewer-desktop", VIEWER, 1440, 900, "hotspots,viewer-grid"),
        ("viewer-phone", VIEWER, 360, 780, "hotspots"),
        ("analyst-desktop", ANALYST, 1920, 1080, "hotspots,emerging,incidents"),
    ):
        context = browser.new_context(viewport={"width": width, "height": height})
        page = context.new_page()
        log_in(page, server, web.token(*who), f"/?layers={layers}")
        page.click("#hotspot-list li button")
        wait_ready(page)
        assert _no_sideways_scroll(page), name
        assert screenshot(page, name).stat().st_size > 10_000
        if width < 900:  # one column: the side's text lies below the map
            screenshot(page, f"{name}-full", full_page=True)
        context.close()


def _axe(browser: Any, server: str, web: Web, width: int, path: str, name: str) -> list[dict]:
    # the page's policy allows only its own scripts: axe is injected past it, in this context
    context = browser.new_context(viewport={"width": width, "height": 900}, bypass_csp=True)
    page = context.new_page()
    page.goto(f"{server}/login")
    page.add_script_tag(path=str(AXE))
    found = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    violations = list(found["violations"])
    log_in(page, server, web.token(*VIEWER), path)
    page.click("#hotspot-list li button")
    page.add_script_tag(path=str(AXE))
    found = page.evaluate(
        "axe.run({exclude: [['.maplibregl-canvas']]}, {resultTypes: ['violations']})"
    )
    violations += found["violations"]
    assert len(found["passes"]) > 20, "axe ran its rules on the page"
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    (ARTEFACTS / f"axe-{name}.json").write_text(
        json.dumps(violations, indent=1, ensure_ascii=False)
    )
    context.close()
    return violations


@pytest.mark.parametrize("width", [1440, 360])
def test_axe_finds_no_serious_or_critical_violation_outside_the_map_canvas(
    browser: Any, server: str, web: Web, width: int
) -> None:
    path = "/?layers=hotspots,gistar,emerging,forecast"
    violations = _axe(browser, server, web, width, path, str(width))
    grave = [
        (v["id"], v["impact"], v["help"])
        for v in violations
        if v["impact"] in ("serious", "critical")
    ]
    assert grave == []


def test_the_print_view_is_an_a4_page_with_map_legend_week_and_provenance(
    page: Any, server: str, web: Web
) -> None:
    log_in(page, server, web.token(*VIEWER), "/?layers=hotspots,viewer-grid&print=1")
    assert page.is_visible("#print-button") and not page.is_visible("#area")
    assert "vecka 48 2026" in page.inner_text("#title-week")
    assert "Hotspotar" in page.inner_text("#legend")
    assert "DBSCAN" in page.inner_text("#provenance")
    screenshot(page, "print-view", full_page=True)
    pdf = page.pdf(format="A4", print_background=True)
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    (ARTEFACTS / "print-view.pdf").write_bytes(pdf)
    assert pdf.startswith(b"%PDF")
    sizes = re.findall(rb"/MediaBox \[0 0 ([\d.]+) ([\d.]+)\]", pdf)
    assert sizes and all(abs(float(w) - 595.9) < 1 and abs(float(h) - 842.9) < 1 for w, h in sizes)


def test_choosing_a_category_group_reads_the_run_of_its_profile(
    page: Any, server: str, web: Web
) -> None:
    log_in(page, server, web.token(*VIEWER))
    theft = api(page, server, "/api/v1/lagesbild", profile=GROUP_PROFILE)
    assert theft["profile"] == GROUP_PROFILE
    groups = page.eval_on_selector_all(
        "#group option", "os => os.map(o => [o.value, o.disabled, o.selected])"
    )
    assert ["all", False, True] in groups and [GROUP_PROFILE, False, False] in groups
    assert ["trafik", True, False] in groups  # no profile of that group has a run
    with page.expect_response(
        lambda r: (
            "/ogc/collections/hotspots/tiles/" in r.url and f"run={theft['run']['id']}" in r.url
        )
    ):
        page.select_option("#group", GROUP_PROFILE)
    wait_ready(page)
    assert query(page.url)["profile"] == [GROUP_PROFILE]
    assert page.input_value("#profile") == GROUP_PROFILE
    listed = page.eval_on_selector_all(
        "#hotspot-list button[data-key]", "bs => bs.map(b => b.dataset.key)"
    )
    assert listed == [h["key"] for h in theft["hotspots"]]
    standard = api(page, server, "/api/v1/lagesbild")
    assert standard["profile"] != GROUP_PROFILE and standard["run"]["id"] != theft["run"]["id"]
    with page.expect_response(
        lambda r: (
            "/ogc/collections/hotspots/tiles/" in r.url and f"run={standard['run']['id']}" in r.url
        )
    ):
        page.select_option("#group", "all")
    wait_ready(page)
    assert page.input_value("#profile") == standard["profile"]


def test_loaded_tatorter_are_drawn_beside_the_kommun_boundary(
    page: Any, server: str, web: Web
) -> None:
    with page.expect_response(
        lambda r: "/ogc/collections/areas/items" in r.url and "kind=tatort" in r.url
    ) as answer:
        log_in(page, server, web.token(*VIEWER))
    found = answer.value.json()["features"]
    assert [(f["id"], f["properties"]["name"]) for f in found] == [TATORT]
    page.wait_for_function("document.querySelector('#legend').textContent.includes('tätort')")
    # a view without tätorter has none in its legend
    page.goto(f"{server}/?area=1285&view=13.70000,55.70000,14.00")
    wait_ready(page)
    page.wait_for_function("!document.querySelector('#legend').textContent.includes('tätort')")
