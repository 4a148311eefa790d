"""Analysis profiles: how an area's week is computed, kept with every version.

A profile names a category group, the window of the hotspot methods (whole weeks that end where
the run's week ends), each method's parameters, the cell size of its viewer layers (one of
est.privacy's sizes) and whether incidents placed at an area's centroid are left out (they are
no place, so by default yes). Every area gets the default profile `standard`, kept by no
organisation; an organisation with a grant on the area may keep profiles of its own (a kommun
and its police area are separate data controllers). A change raises the version, and each
version is stored as the document `est profiles import` reads, so a run can say exactly what
it used.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from sqlalchemy import Connection, text
from sqlalchemy.exc import IntegrityError

from app.core.errors import Conflict, InvalidInput, NotFound

if TYPE_CHECKING:
    from clustering.forecast import CellForecast

DEFAULT_NAME = "standard"
NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"  # fits est.analysis_profile.name, varchar(64)
CODE_PATTERN = r"^[a-z0-9][a-z0-9_.-]*$"  # how category group codes are written
MAX_INCIDENTS = 1_000_000  # a minimum sample beyond this is a typo (and beyond 64-bit JSON)
VIEWER_CELL_SIZES = (125, 250, 500, 1000, 2000)  # est.privacy's defaults; checked again there


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DbscanSettings(_Strict):
    """DBSCAN: neighbourhood radius and core size (None: chosen from the data's density)."""

    eps_m: float = Field(150.0, gt=0, le=5000)
    min_samples: int | None = Field(None, ge=2, le=10_000)


class KdeSettings(_Strict):
    """Kernel density: grid, bandwidth (None: ArcGIS Pro's rule) and kernel."""

    cell_size_m: float = Field(100.0, ge=10, le=5000)
    bandwidth_m: float | None = Field(None, gt=0, le=20_000)
    kernel: Literal["gaussian", "quartic"] = "gaussian"
    shares: tuple[Annotated[float, Field(gt=0, lt=1)], ...] = Field(
        (0.5, 0.75, 0.9), min_length=1, max_length=10
    )


class GistarSettings(_Strict):
    """Getis-Ord Gi*: grid, distance band and the smallest sample worth testing."""

    cell_size_m: float = Field(250.0, ge=10, le=5000)
    distance_band_m: float = Field(500.0, gt=0, le=20_000)
    min_incidents: int = Field(30, ge=1, le=MAX_INCIDENTS)


class EmergingSettings(_Strict):
    """Emerging hot spots: grid, distance band and the weeks of the trend."""

    cell_size_m: float = Field(250.0, ge=10, le=5000)
    distance_band_m: float = Field(500.0, gt=0, le=20_000)
    window_weeks: int = Field(12, ge=4, le=104)
    min_incidents: int = Field(30, ge=1, le=MAX_INCIDENTS)


class ForecastSettings(_Strict):
    """The forecast of the coming week: method, grid, the weeks it learns from, the share of
    cells flagged and each method's own parameters (clustering.forecast.CellForecast; `est
    evaluate --choose` writes them)."""

    method: Literal["prospective", "naive", "blend", "kde", "gistar", "learned"] = "prospective"
    cell_size_m: float = Field(250.0, ge=10, le=5000)
    bandwidth_m: float = Field(500.0, gt=0, le=20_000)  # prospective and kde
    weeks: int = Field(8, ge=1, le=52)
    coverage: float = Field(0.05, gt=0, le=0.5)
    kernel: Literal["gaussian", "quartic"] = "quartic"  # kde
    distance_band_m: float = Field(500.0, gt=0, le=20_000)  # gistar
    min_incidents: int = Field(30, ge=1, le=MAX_INCIDENTS)  # gistar
    short_weeks: int = Field(4, ge=1, le=52)  # blend
    short_weight: float = Field(0.5, ge=0, le=1)  # blend
    max_leaf_nodes: int = Field(15, ge=2, le=255)  # learned
    seed: int = Field(0, ge=0, le=2**31 - 1)  # learned

    @model_validator(mode="after")
    def _learned_history(self) -> ForecastSettings:
        needed = 5  # clustering.learned: targets need 4 weeks of history, and one to learn
        if self.method == "learned" and self.weeks < needed:
            raise ValueError(
                f"weeks: the learned forecast needs at least {needed} weeks (it learns from "
                "weeks that have 4 weeks of history before them)"
            )
        return self

    def estimator(self, **overrides: Any) -> CellForecast:
        """The forecast as the estimator a run fits, with some parameters changed (the viewer
        layers' grid)."""
        from clustering.forecast import CellForecast

        return CellForecast(**(self.model_dump(exclude={"coverage"}) | overrides))


class Methods(_Strict):
    """Every method's parameters."""

    dbscan: DbscanSettings = DbscanSettings()
    kde: KdeSettings = KdeSettings()
    gistar: GistarSettings = GistarSettings()
    emerging: EmergingSettings = EmergingSettings()
    forecast: ForecastSettings = ForecastSettings()


class ProfileSettings(_Strict):
    """A profile's settings: the document stored with every version (and read from files)."""

    category_group: str = Field("all", min_length=1, max_length=64, pattern=CODE_PATTERN)
    window_weeks: int = Field(4, ge=1, le=52)
    cell_size_m: int = 250
    exclude_area_centroids: bool = True
    # An incident known only to within a longer interval (a month-only time from an open-data
    # export is a month long) belongs to no one week: it is left out of the methods, and counted.
    max_interval_days: int | None = Field(7, ge=1, le=366)
    methods: Methods = Methods()

    @field_validator("cell_size_m")
    @classmethod
    def _viewer_size(cls, value: int) -> int:
        if value not in VIEWER_CELL_SIZES:
            sizes = ", ".join(str(s) for s in VIEWER_CELL_SIZES)
            raise ValueError(f"must be one of the viewer cell sizes {sizes}")
        return value


def parse_settings(document: dict[str, Any], where: str = "profile") -> ProfileSettings:
    """Validate a profile document; a clear InvalidInput naming the field otherwise."""
    try:
        return ProfileSettings.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "document"
        raise InvalidInput(f"{where}: {field}: {first['msg']}", field=field) from None


@dataclass(frozen=True)
class Profile:
    """A stored profile: who keeps it, its version and settings."""

    id: int
    area_id: int
    area_code: str
    organisation_id: int | None
    organisation_code: str | None
    name: str
    version: int
    active: bool
    settings: ProfileSettings
    updated_at: datetime

    def describe(self) -> dict[str, Any]:
        """The profile as the API shows it."""
        return {
            "id": self.id,
            "area": self.area_code,
            "organisation": self.organisation_code,
            "name": self.name,
            "version": self.version,
            "active": self.active,
            "updated_at": self.updated_at.isoformat(),
            "settings": self.settings.model_dump(mode="json"),
        }


_SELECT = """
    SELECT p.id, p.area_id, a.code AS area_code, p.organisation_id, o.code AS org_code, p.name,
           p.version, p.active, p.updated_at, d.document
    FROM est.analysis_profile p
    JOIN est.area a ON a.id = p.area_id
    LEFT JOIN est.organisation o ON o.id = p.organisation_id
    JOIN est.analysis_profile_version d ON d.profile_id = p.id AND d.version = p.version
"""


def _profile(row: Any) -> Profile:
    return Profile(
        id=row.id,
        area_id=row.area_id,
        area_code=row.area_code,
        organisation_id=row.organisation_id,
        organisation_code=row.org_code,
        name=row.name,
        version=row.version,
        active=row.active,
        settings=ProfileSettings.model_validate(row.document),
        updated_at=row.updated_at,
    )


def list_profiles(
    conn: Connection, area_code: str | None = None, organisation_ids: list[int] | None = None
) -> list[Profile]:
    """Profiles of an area (or all), the defaults and those the given organisations keep."""
    rows = conn.execute(
        text(
            _SELECT + "WHERE (CAST(:area AS text) IS NULL OR a.code = :area) "
            "AND (CAST(:orgs AS integer[]) IS NULL OR p.organisation_id IS NULL "
            "     OR p.organisation_id = ANY(CAST(:orgs AS integer[]))) "
            "ORDER BY a.code, p.organisation_id NULLS FIRST, p.name"
        ),
        {"area": area_code, "orgs": organisation_ids},
    ).all()
    return [_profile(r) for r in rows]


def get_profile(conn: Connection, profile_id: int) -> Profile:
    """One profile by id."""
    row = conn.execute(text(_SELECT + "WHERE p.id = :id"), {"id": profile_id}).one_or_none()
    if row is None:
        raise NotFound(f"no profile {profile_id}")
    return _profile(row)


def find_profile(
    conn: Connection, area_code: str, name: str, organisation_id: int | None
) -> Profile | None:
    """The profile of an area by name and keeper (None: the area's default ones)."""
    row = conn.execute(
        text(
            _SELECT + "WHERE a.code = :area AND p.name = :name "
            "AND p.organisation_id IS NOT DISTINCT FROM :org"
        ),
        {"area": area_code, "name": name, "org": organisation_id},
    ).one_or_none()
    return _profile(row) if row is not None else None


def versions(conn: Connection, profile_id: int) -> list[dict[str, Any]]:
    """Every version of a profile, oldest first."""
    rows = conn.execute(
        text(
            "SELECT version, document, changed_by, changed_at FROM est.analysis_profile_version "
            "WHERE profile_id = :id ORDER BY version"
        ),
        {"id": profile_id},
    ).all()
    return [
        {
            "version": r.version,
            "settings": r.document,
            "changed_by": r.changed_by,
            "changed_at": r.changed_at.isoformat(),
        }
        for r in rows
    ]


def save_profile(
    conn: Connection,
    area_code: str,
    name: str,
    settings: ProfileSettings,
    *,
    organisation_id: int | None,
    changed_by: str,
    active: bool = True,
) -> tuple[Profile, bool]:
    """Create or change a profile; return it and whether anything changed (a new version).

    Two changes of one profile at the same time: the later one is a Conflict, never a lost
    version (the UPDATE expects the version it read; the INSERTs meet the unique keys).
    """
    check_name(name)
    area_id = conn.scalar(text("SELECT id FROM est.area WHERE code = :c"), {"c": area_code})
    if area_id is None:
        raise NotFound(f"no area {area_code!r}")
    group = conn.scalar(
        text("SELECT code FROM est.category_group WHERE code = :g"),
        {"g": settings.category_group},
    )
    if group is None:
        raise InvalidInput(
            f"category_group: no category group {settings.category_group!r}",
            field="category_group",
        )
    existing = find_profile(conn, area_code, name, organisation_id)
    if existing is not None and existing.settings == settings and existing.active == active:
        return existing, False
    document = orjson.dumps(settings.model_dump(mode="json")).decode()
    values = {
        "area": area_id,
        "org": organisation_id,
        "name": name,
        "group": settings.category_group,
        "days": 7 * settings.window_weeks,
        "methods": orjson.dumps(settings.methods.model_dump(mode="json")).decode(),
        "size": settings.cell_size_m,
        "exclude": settings.exclude_area_centroids,
        "active": active,
    }
    try:
        with conn.begin_nested():
            profile_id = _write(conn, existing, values, document, changed_by)
    except IntegrityError:  # created by another transaction since find_profile
        raise _changed_meanwhile(area_code, name) from None
    return get_profile(conn, profile_id), True


def check_name(name: str) -> None:
    """Refuse a profile name that is not lower-case letters, digits, - and _ (at most 64)."""
    if re.fullmatch(NAME_PATTERN, name) is None:
        raise InvalidInput(
            f"name: {name!r} must be 1 to 64 lower-case letters, digits, - or _", field="name"
        )


def _changed_meanwhile(area_code: str, name: str) -> Conflict:
    return Conflict(
        f"profile {name!r} of area {area_code!r} was changed at the same time; try again"
    )


def _write(
    conn: Connection,
    existing: Profile | None,
    values: dict[str, Any],
    document: str,
    changed_by: str,
) -> int:
    """Store a new version (and the profile's new state); return the profile's id."""
    if existing is None:
        profile_id = conn.scalar(
            text("""
            INSERT INTO est.analysis_profile (area_id, organisation_id, name, category_group_code,
                window_days, methods, cell_size_m, exclude_area_centroids, active, version)
            VALUES (:area, :org, :name, :group, :days, CAST(:methods AS jsonb), :size, :exclude,
                    :active, 1)
            RETURNING id
        """),
            values,
        )
        version = 1
    else:
        profile_id = existing.id
        version = existing.version + 1
        updated = conn.execute(
            text("""
            UPDATE est.analysis_profile SET category_group_code = :group, window_days = :days,
                methods = CAST(:methods AS jsonb), cell_size_m = :size,
                exclude_area_centroids = :exclude, active = :active, version = :version,
                updated_at = now()
            WHERE id = :id AND version = :read
        """),
            {**values, "id": profile_id, "version": version, "read": existing.version},
        )
        if updated.rowcount != 1:  # another transaction raised the version first
            raise _changed_meanwhile(existing.area_code, existing.name)
    conn.execute(
        text(
            "INSERT INTO est.analysis_profile_version (profile_id, version, document, changed_by) "
            "VALUES (:id, :version, CAST(:document AS jsonb), :by)"
        ),
        {"id": profile_id, "version": version, "document": document, "by": changed_by[:128]},
    )
    assert profile_id is not None
    return int(profile_id)


def ensure_default_profiles(conn: Connection, changed_by: str = "system") -> int:
    """Give every area without a default profile the `standard` one; return how many got one.
    Tätorter are boundaries to draw, not areas a lägesbild is computed for: they get none."""
    codes = conn.scalars(
        text("""
        SELECT a.code FROM est.area a
        WHERE a.kind <> 'tatort' AND NOT EXISTS (SELECT 1 FROM est.analysis_profile p
                          WHERE p.area_id = a.id AND p.organisation_id IS NULL)
        ORDER BY a.code
    """)
    ).all()
    for code in codes:
        save_profile(
            conn, code, DEFAULT_NAME, ProfileSettings(), organisation_id=None, changed_by=changed_by
        )
    return len(codes)
