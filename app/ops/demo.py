"""`est demo`: plausible incidents for five kommuner, and optionally the polisen.se archive.

The incidents come from the shared synthetic generator (clustering.synthetic): hotspots around
each main town's centre, station, school and shopping area, each with a trend (persisting,
emerging, fading), plus background over the built-up area, for 26 complete ISO weeks. The
result is deterministic for a seed and an end week.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import yaml
from shapely import Point
from shapely import wkb as shapely_wkb
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Connection, text

from app.access.admin import OPERATOR_KIND, grant_area, new_key
from app.core import DATA_DIR
from app.core.errors import InvalidInput, NotReady
from app.core.taxonomy import Taxonomy
from app.core.vocabulary import GrantLevel, Role
from app.db.areas import create_union_area
from app.db.deployment import storage_srid
from app.ingest.batch import RawBatch
from app.ingest.pipeline import ImportSpec, ImportSummary, run_import, whole
from app.runs.profiles import ProfileSettings, ensure_default_profiles, save_profile
from app.settings import Settings
from clustering.synthetic import HotspotSpec, Trend, generate_incidents
from geo.crs import from_lonlat

PLACES_FILE = DATA_DIR / "demo" / "places.yaml"
DEMO_SOURCE = "demo"
POLISEN_ORGANISATION = ("polisen", "Polismyndigheten (öppna händelser från polisen.se)")

# What each kind of place produces (category code -> relative weight), how spread out it is
# and which trends it takes in turn across the kommuner, so that the demo shows all three.
PLACE_PROFILES: dict[str, dict[str, Any]] = {
    "centre": {
        "sigma_m": 110.0,
        "weight": 3.0,
        "trends": ("persisting", "persisting", "emerging", "persisting", "fading"),
        "categories": {
            "skadegorelse.klotter": 3,
            "ordningsstorning.storande_beteende": 2,
            "alkohol.fortaring_allman_plats": 2,
            "tillgrepp.fickstold": 1,
            "otrygghet.samling": 2,
        },
    },
    "station": {
        "sigma_m": 90.0,
        "weight": 2.0,
        "trends": ("emerging", "persisting", "persisting", "fading", "emerging"),
        "categories": {
            "tillgrepp.cykelstold": 4,
            "skadegorelse.glaskross": 2,
            "narkotika.innehav": 1,
            "otrygg_plats.belysning": 1,
        },
    },
    "school": {
        "sigma_m": 80.0,
        "weight": 1.5,
        "trends": ("fading", "emerging", "persisting", "emerging", "persisting"),
        "categories": {
            "skadegorelse.klotter": 3,
            "brand.anlagd": 1,
            "otrygghet.samling": 2,
            "narkotika.oppen_handel": 1,
        },
    },
    "shopping": {
        "sigma_m": 150.0,
        "weight": 2.5,
        "trends": ("persisting", "fading", "emerging", "persisting", "persisting"),
        "categories": {
            "tillgrepp.snatteri": 4,
            "tillgrepp.inbrott.bil": 2,
            "tillgrepp.inbrott.butik": 1,
            "trafik.olycka": 1,
        },
    },
}
BACKGROUND_CATEGORIES = {
    "skadegorelse.klotter": 4,
    "skadegorelse.ovrig": 2,
    "tillgrepp.inbrott.bostad": 2,
    "tillgrepp.cykelstold": 2,
    "trafik.hastighet": 2,
    "trafik.olycka": 1,
    "ordningsstorning.storande_beteende": 2,
    "otrygg_plats.belysning": 1,
    "vald.misshandel": 1,
    "vald.hot": 1,
    "vald.nara_relation": 0.5,
    "brand.anlagd": 0.5,
}


@dataclass(frozen=True)
class DemoKommun:
    """One demo kommun: its organisation, size of its demo and its places."""

    code: str
    name: str
    organisation: str
    incidents: int
    radius_m: float
    places: list[dict[str, Any]]


def load_demo_plan(path: Path = PLACES_FILE) -> tuple[list[DemoKommun], list[dict[str, Any]]]:
    """Read the demo's kommuner, places and union areas."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    kommuner = [DemoKommun(code=str(code), **spec) for code, spec in data["kommuner"].items()]
    return kommuner, list(data.get("unions", []))


def demo_period(
    today: date, weeks: int = 26, timezone: str = "Europe/Stockholm"
) -> tuple[datetime, datetime]:
    """Return the start and end (local midnight) of the last `weeks` complete ISO weeks."""
    zone = ZoneInfo(timezone)
    this_monday = today - timedelta(days=today.weekday())
    start_day = this_monday - timedelta(weeks=weeks)
    start = datetime(start_day.year, start_day.month, start_day.day, tzinfo=zone)
    end = datetime(this_monday.year, this_monday.month, this_monday.day, tzinfo=zone)
    return start, end


def demo_batch(
    kommun: DemoKommun,
    index: int,
    area: BaseGeometry,
    srid: int,
    start: datetime,
    weeks: int,
    seed: int,
) -> RawBatch:
    """Return the demo incidents of one kommun as a batch in the storage CRS."""
    specs = []
    for place in kommun.places:
        profile = PLACE_PROFILES[place["kind"]]
        x, y = from_lonlat(place["lon"], place["lat"], srid)
        trend: Trend = profile["trends"][index % len(profile["trends"])]
        specs.append(
            HotspotSpec(
                x_m=float(x),
                y_m=float(y),
                sigma_m=profile["sigma_m"],
                weight=profile["weight"],
                trend=trend,
                categories=profile["categories"],
                name=place["name"],
            )
        )
    centre = specs[0]
    built_up = Point(centre.x_m, centre.y_m).buffer(kommun.radius_m).intersection(area)
    incidents = generate_incidents(
        specs,
        kommun.incidents,
        start=start,
        weeks=weeks,
        background_share=0.35,
        background_area=built_up,
        background_categories=BACKGROUND_CATEGORIES,
        seed=seed * 1000 + int(kommun.code),
    )
    n = len(incidents)
    names = {i: s.name for i, s in enumerate(specs)}
    where = [
        f" vid {names[h]}" if h >= 0 else f" i {kommun.name}" for h in incidents.hotspot.tolist()
    ]
    return RawBatch(
        row=np.arange(1, n + 1, dtype=np.int64),
        external_id=np.array([f"demo-{kommun.code}-{i:05d}" for i in range(n)], dtype=object),
        category=np.asarray(incidents.category, dtype=object),
        occurred_from=np.asarray(incidents.time).astype("datetime64[us]"),
        occurred_to=np.full(n, np.datetime64("NaT", "us")),
        x=np.asarray(incidents.x, dtype=np.float64),
        y=np.asarray(incidents.y, dtype=np.float64),
        crs=f"EPSG:{srid}",
        location_precision=np.full(n, "address", dtype=object),
        description=np.array([f"Demodata{w}" for w in where], dtype=object),
    )


def ensure_organisation(conn: Connection, code: str, name: str, kind: str) -> int:
    """Return the id of the organisation with this code, creating it when missing."""
    org_id = conn.scalar(
        text("""
        INSERT INTO est.organisation (code, name, kind) VALUES (:code, :name, :kind)
        ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name RETURNING id
    """),
        {"code": code, "name": name, "kind": kind},
    )
    assert org_id is not None
    return int(org_id)


def load_demo(
    conn: Connection,
    settings: Settings,
    taxonomy: Taxonomy,
    today: date,
    seed: int = 0,
    weeks: int = 26,
) -> dict[str, ImportSummary]:
    """Create the demo organisations, unions, incidents and profiles; return what each kommun got.

    The incidents go through the import pipeline like any file, in the caller's transaction.
    """
    kommuner, unions = load_demo_plan()
    used = set(BACKGROUND_CATEGORIES).union(*(p["categories"] for p in PLACE_PROFILES.values()))
    unknown = sorted(c for c in used if c not in taxonomy.by_code)
    if unknown:
        raise NotReady(
            f"the demo uses categories missing from the taxonomy: {', '.join(unknown)}; "
            "run `est db init` to load the categories"
        )
    srid = storage_srid(conn)
    start, _ = demo_period(today, weeks, settings.timezone)
    results = {}
    for index, kommun in enumerate(kommuner):
        geom = conn.scalar(
            text("SELECT ST_AsBinary(geom) FROM est.area WHERE code = :c"), {"c": kommun.code}
        )
        if geom is None:
            raise NotReady(f"kommun {kommun.code} is not loaded: run `est areas load` first")
        area = shapely_wkb.loads(bytes(geom))
        org_id = ensure_organisation(conn, f"kommun-{kommun.code}", kommun.organisation, "kommun")
        batch = demo_batch(kommun, index, area, srid, start, weeks, seed)
        # not recorded as an import job: the organisations are created in this same transaction
        spec = ImportSpec(org_id, "est demo", DEMO_SOURCE, recorded=False)
        summary = run_import(conn.engine, conn, settings, spec, [whole(batch)])
        if not summary.stored:
            first = summary.rejected[0]
            raise InvalidInput(f"demo row {first.row} rejected: {first.field}: {first.reason}")
        results[kommun.name] = summary
    for kommun in kommuner:
        grant_area(conn, f"kommun-{kommun.code}", kommun.code, GrantLevel.raw, "est demo")
    for union in unions:
        create_union_area(conn, union["code"], union["name"], list(union["of"]))
        ensure_organisation(conn, union["code"], union["name"], "lpo")
        for code in [union["code"], *union["of"]]:
            grant_area(conn, union["code"], code, GrantLevel.raw, "est demo")
    ensure_organisation(conn, OPERATOR_CODE, "EST Lägesbild drift (demo)", OPERATOR_KIND)
    ensure_default_profiles(conn, "est demo")
    for code, group in GROUP_PROFILES:  # so the map page's category groups have a run to show
        settings_of = ProfileSettings(category_group=group)
        save_profile(conn, code, group, settings_of, organisation_id=None, changed_by="est demo")
    return results


# (kommun, category group): a shared profile of that group and name besides the standard one
GROUP_PROFILES = (("1285", "tillgrepp"),)


OPERATOR_CODE = "drift"
DEMO_KEYS = (
    (OPERATOR_CODE, Role.admin, "demo admin"),
    ("kommun-1285", Role.analyst, "demo analyst"),
    ("kommun-1285", Role.viewer, "demo viewer"),
)


def demo_keys(conn: Connection) -> list[tuple[str, Role, str]]:
    """Revoke earlier demo keys and create new ones; return (organisation, role, token)."""
    conn.execute(
        text(
            "UPDATE est.api_key SET revoked_at = now() "
            "WHERE name LIKE 'demo %' AND revoked_at IS NULL"
        )
    )
    return [
        (org, role, new_key(conn, org, role, name, None).token) for org, role, name in DEMO_KEYS
    ]
