"""The map page's world: the demo's kommuner with three published weeks, keys, a live server,
and a real browser (Debian's chromium driven by Playwright).

The demo (app.ops.demo) is loaded as `est demo` loads it, for a fixed day (Wednesday of ISO
week 49, 2026), and Eslöv's (1285) weeks 46, 47 and 48 are computed and published; week 48 is
the newest closed week. Who may see what:
- `kommun-1285` (the demo's Eslöv): a raw grant on 1285; its analyst gets the analyst version
  with the points, its viewer the viewer version;
- `insyn`: an aggregate grant on 1285 only: even its analyst gets the viewer version.

Screenshots go to .artefacts/web/ (gitignored), kept after the run.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import geopandas as gpd
import pytest
import shapely
from sqlalchemy import Engine, create_engine, pool, text

from app.access import admin
from app.core.taxonomy import load_taxonomy
from app.core.vocabulary import GrantLevel, Role
from app.db.areas import load_areas
from app.db.bootstrap import init_database
from app.db.reference import sync_taxonomy
from app.ingest.areas import read_kommun_file
from app.ops.demo import load_demo
from app.runs import recompute as runs
from app.settings import SYSTEM_ROLE, Settings
from tests.conftest import drop_database, serve, settings_for

TZ = "Europe/Stockholm"
AREA = "1285"
TODAY = date(2026, 12, 2)  # the demo's data ends with week 48
NOW = datetime(2026, 12, 2, 12, tzinfo=UTC)
GROUP_PROFILE = "tillgrepp"  # the demo's profile of that category group (app.ops.demo)
WEEKS = {
    "2026-W46": date(2026, 11, 9),
    "2026-W47": date(2026, 11, 16),
    "2026-W48": date(2026, 11, 23),
}
ROOT = Path(__file__).resolve().parents[2]
ARTEFACTS = ROOT / ".artefacts" / "web"
CHROMIUM = "/usr/bin/chromium"
KEYS = (
    ("kommun-1285", Role.analyst),
    ("kommun-1285", Role.viewer),
    ("kommun-1285", Role.ingest),
    ("insyn", Role.analyst),
    ("insyn", Role.viewer),
)


@dataclass
class Web:
    """The world of the map page's tests."""

    settings: Settings
    engine: Engine  # the system role: what the tests check the database with
    tokens: dict[tuple[str, str], str]

    def token(self, organisation: str, role: str) -> str:
        """The API key of (organisation, role)."""
        return self.tokens[(organisation, role)]

    def headers(self, organisation: str, role: str) -> dict[str, str]:
        """Its Authorization header."""
        return {"Authorization": f"Bearer {self.token(organisation, role)}"}


TATORT = ("T9100", "Provorten")  # a tätort in the middle of Eslöv, as `--tatorter` loads one


def tatort(conn: Any) -> gpd.GeoDataFrame:
    """The web world's one tätort: a square of 3 km around a point inside Eslöv."""
    x, y = conn.execute(
        text(
            "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM est.area "
            "WHERE code = :a) s"
        ),
        {"a": AREA},
    ).one()
    square = shapely.box(x - 1500, y - 1500, x + 1500, y + 1500)
    code, name = TATORT
    return gpd.GeoDataFrame(
        {"code": [code], "name": [name], "kind": ["tatort"]}, geometry=[square], crs=3006
    )


@pytest.fixture(scope="session")
def web(server_url: str) -> Iterator[Web]:
    """The demo in a database of its own, with Eslöv's weeks 46–48 published."""
    name = f"est_web_{uuid.uuid4().hex[:10]}"
    unlimited = {"rate_limit_per_minute": 100_000, "auth_failures_per_minute": 100_000}
    settings = settings_for(server_url, name).model_copy(update=unlimited)
    init_database(settings, 3006)
    engine = create_engine(settings.role_url(SYSTEM_ROLE), poolclass=pool.NullPool)
    tokens: dict[tuple[str, str], str] = {}
    with engine.begin() as conn:
        taxonomy = load_taxonomy()
        sync_taxonomy(conn, taxonomy)
        load_areas(conn, read_kommun_file())
        load_demo(conn, settings, taxonomy, TODAY)
        load_areas(conn, tatort(conn))
        admin.create_organisation(conn, "insyn", "Insyn (aggregat)", "other")
        admin.grant_area(conn, "insyn", AREA, GrantLevel.aggregate, "test")
        for org, role in KEYS:
            tokens[(org, role.value)] = admin.new_key(conn, org, role, "web", None).token
    with engine.connect() as conn:
        standard = runs.default_profile(conn, AREA)
        (theft,) = [p for _, p in runs.profiles_to_run(conn, [AREA], GROUP_PROFILE)]
    # every week of the standard profile; the latest of the demo's tillgrepp profile
    chosen = [(standard, monday) for monday in WEEKS.values()] + [(theft, WEEKS["2026-W48"])]
    for profile, monday in chosen:
        outcome = runs.recompute(
            engine, AREA, profile, runs.RunPeriod.week(monday, TZ), force=True, now=NOW
        )
        assert outcome.status == "succeeded" and outcome.published, outcome
    yield Web(settings, engine, tokens)
    engine.dispose()
    drop_database(server_url, name)


@pytest.fixture(scope="session")
def server(web: Web) -> Iterator[str]:
    """The service with the web world's database."""
    yield from serve(web.settings)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's chromium under Playwright (Playwright's own browsers cannot be fetched here)."""
    playwright = pytest.importorskip("playwright.sync_api")
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium (make sysdeps)")
    with playwright.sync_playwright() as p:
        launched = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--enable-unsafe-swiftshader", "--disable-background-networking"],
        )
        yield launched
        launched.close()


@pytest.fixture()
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser context (no cookies) at desktop width."""
    context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="sv-SE")
    opened = context.new_page()
    yield opened
    context.close()


def log_in(page: Any, base: str, token: str, path: str = "/") -> None:
    """Log in through the key form and wait until the page has drawn its layers."""
    page.goto(f"{base}{path}")
    page.fill("#api_key", token)
    page.click("form.login-form button[type=submit]")
    wait_ready(page)


def wait_ready(page: Any) -> None:
    """Wait until the page has read the week's picture and drawn the visible layers."""
    page.wait_for_selector("body[data-state=ready]", state="attached", timeout=20_000)


def screenshot(page: Any, name: str, full_page: bool = False) -> Path:
    """Save a screenshot among the test artefacts: what the window shows, or the whole page
    (the map is then drawn again at the page's height, so take it for the text)."""
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTEFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path
