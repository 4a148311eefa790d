"""What the report tests share: Perstorp with 16 weeks of generated incidents around three
hotspots, its published runs of weeks 47 and 48, a kommun (raw grant) and a police area
(aggregate grant) with keys, and reading PDFs back with poppler."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import shapely
from sqlalchemy import Engine, create_engine, pool

from app.access import admin
from app.core.vocabulary import GrantLevel, Role
from app.ingest.store import IncidentRecord, upsert_incidents
from app.ops.demo import ensure_organisation
from app.runs import recompute as runs
from app.runs.inputs import load_area
from app.runs.profiles import ensure_default_profiles
from app.settings import Settings
from clustering.synthetic import HotspotSpec, generate_incidents
from tests.alerts.test_mail import Sink, smtp  # noqa: F401  (the STARTTLS sink, reused)
from tests.cli.test_cli import cli_env  # noqa: F401  (the CLI on the session's database)
from tests.runs.test_recompute import _records

TZ = "Europe/Stockholm"
AREA = "1275"  # Perstorp: no other test stores incidents there
AREA_NAME = "Perstorp"
W47, W48 = date(2026, 11, 16), date(2026, 11, 23)
WEEKS = 16
NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)  # weeks 47 and 48 closed
KOMMUN, POLICE = "report-kommun", "report-lpo"
ARTEFACTS = Path(__file__).resolve().parents[2] / ".artefacts" / "reports"

needs_poppler = pytest.mark.skipif(
    shutil.which("pdftotext") is None, reason="poppler-utils (pdftotext, pdftoppm) missing"
)


@dataclass(frozen=True)
class Perstorp:
    """The published runs and the keys of the report tests."""

    runs: dict[str, int]  # period label -> run id
    tokens: dict[tuple[str, str], str]
    organisation_ids: dict[str, int]

    def headers(self, organisation: str, role: str) -> dict[str, str]:
        """The Authorization header of a key of that organisation and role."""
        return {"Authorization": f"Bearer {self.tokens[(organisation, role)]}"}


@pytest.fixture(scope="session")
def perstorp(settings: Settings) -> Iterator[Perstorp]:
    """Perstorp's incidents, its runs of weeks 47 and 48, organisations, grants and keys."""
    engine = create_engine(settings.role_url("est_system"), poolclass=pool.NullPool)
    with engine.begin() as conn:
        ensure_default_profiles(conn)
        area = load_area(conn, AREA).geom
        c = shapely.point_on_surface(area.buffer(-1500))
        spots = [(c.x, c.y), (c.x + 1800, c.y + 300), (c.x - 1600, c.y - 500)]
        for p in spots:
            assert area.contains(shapely.Point(p))
        start = datetime(2026, 11, 30, tzinfo=ZoneInfo(TZ)) - timedelta(weeks=WEEKS)
        kinds = (  # a persisting hotspot in the centre, one emerging east, one fading west
            ("persisting", {"skadegorelse.klotter": 2, "ordningsstorning.storande_beteende": 1}),
            ("emerging", {"tillgrepp.cykelstold": 1}),
            ("fading", {"skadegorelse.klotter": 1}),
        )
        made = generate_incidents(
            [
                HotspotSpec(*p, sigma_m=60, weight=1.0, trend=trend, categories=categories)
                for p, (trend, categories) in zip(spots, kinds, strict=True)
            ],
            1400,
            start=start,
            weeks=WEEKS,
            background_share=0.2,
            background_area=area.buffer(-300),
            background_categories={
                "skadegorelse.klotter": 2,
                "tillgrepp.cykelstold": 1,
                "vald.nara_relation": 1,  # sensitive: never in a viewer value
            },
            seed=18,
        )
        org = ensure_organisation(conn, KOMMUN, "Perstorps kommun (test)", "kommun")
        police = ensure_organisation(conn, POLICE, "LPO Perstorp (test)", "lpo")
        upsert_incidents(conn, org, 3006, _records(made.xy, made.time, made.category, "r"))
        centroids = [  # placed at the kommun's centre: no place, never on a map
            IncidentRecord(
                source="report-test",
                external_id=f"c-{i}",
                category_code="skadegorelse.klotter",
                occurred_from=datetime(2026, 11, 24, 8, tzinfo=UTC) + timedelta(hours=7 * i),
                occurred_to=None,
                x=c.x,
                y=c.y,
                location_precision="area_centroid",
            )
            for i in range(12)
        ]
        upsert_incidents(conn, org, 3006, centroids)
        admin.grant_area(conn, KOMMUN, AREA, GrantLevel.raw, "test")
        admin.grant_area(conn, POLICE, AREA, GrantLevel.aggregate, "test")
        roles = ("analyst", "viewer", "admin")
        tokens = {
            (code, role): admin.new_key(conn, code, Role(role), "report test", None).token
            for code in (KOMMUN, POLICE)
            for role in roles
        }
    made_runs = {}
    with engine.connect() as conn:
        profile = runs.default_profile(conn, AREA)
    for monday in (W47, W48):
        period = runs.RunPeriod.week(monday, TZ)
        outcome = runs.recompute(engine, AREA, profile, period, force=True, now=NOW)
        assert outcome.status == "succeeded", outcome.detail
        assert outcome.run_id is not None
        made_runs[period.label] = outcome.run_id
    yield Perstorp(made_runs, tokens, {KOMMUN: org, POLICE: police})
    engine.dispose()


@pytest.fixture()
def artefacts() -> Path:
    """Where the tests leave rendered pages for people to look at (gitignored)."""
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    return ARTEFACTS


def pdf_text(pdf: bytes, tmp_path: Path, *, layout: bool = True) -> list[str]:
    """The text of each page of a PDF, read back with pdftotext."""
    path = tmp_path / "report.pdf"
    path.write_bytes(pdf)
    args = ["pdftotext", "-enc", "UTF-8", *(["-layout"] if layout else []), str(path), "-"]
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    return out.split("\f")[:-1] if out.endswith("\f") else out.split("\f")


def engine_of(settings: Settings) -> Engine:
    """An engine of the system role without a pool."""
    return create_engine(settings.role_url("est_system"), poolclass=pool.NullPool)
