"""The data model of DESIGN.md as SQLAlchemy 2 models (schema `est`).

The migrations in migrations/ create the tables; these classes are how the code reads and writes
them, and a test proves the two agree. Geometry columns carry the deployment's SRID, fixed by
`est db init`; the models leave the SRID open (-1) and the values carry it.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any, ClassVar

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Computed,
    Date,
    DateTime,
    Double,
    Enum,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from app.core.vocabulary import (
    ActionStatus,
    ChangeLabel,
    GrantLevel,
    JobStatus,
    LocationPrecision,
    Role,
    RunStatus,
)
from app.db import SCHEMA


class Base(DeclarativeBase):
    """Base of every model; all tables live in the `est` schema."""

    metadata = MetaData(
        schema=SCHEMA,
        naming_convention={
            "ix": "ix_%(table_name)s_%(column_0_N_name)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        },
    )
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dict[str, Any]: JSONB,
        datetime: DateTime(timezone=True),
    }


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    return Enum(cls, name=name, schema=SCHEMA, values_callable=lambda e: [m.value for m in e])


def _geometry(kind: str) -> Geometry:
    # spatial_index=False: the migrations create the GiST indexes explicitly, with their names.
    return Geometry(kind, srid=-1, spatial_index=False)


class Deployment(Base):
    """The one row that fixes the storage CRS and the accepted extent of this database."""

    __tablename__ = "deployment"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, default=1)
    srid: Mapped[int] = mapped_column(Integer)
    extent = mapped_column(_geometry("POLYGON"), nullable=True)
    extent_buffer_m: Mapped[float] = mapped_column(Double, server_default="5000")
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    accepted_area = mapped_column(_geometry("MULTIPOLYGON"), nullable=True)
    version: Mapped[int] = mapped_column(BigInteger, server_default="1")
    timezone: Mapped[str] = mapped_column(Text, server_default="Europe/Stockholm")


class Privacy(Base):
    """What viewers may ask and how their counts are protected (written by the owner only)."""

    __tablename__ = "privacy"
    __table_args__ = (
        CheckConstraint("id = 1", name="single_row"),
        {
            "comment": "What viewers may ask and how their counts are protected; only the "
            "owner role writes it."
        },
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, server_default="1")
    cell_sizes: Mapped[list[int]] = mapped_column(ARRAY(Integer))
    suppression_k: Mapped[int] = mapped_column(Integer, server_default="5")
    rounding_base: Mapped[int] = mapped_column(Integer, server_default="5")
    noise: Mapped[list[int]] = mapped_column(ARRAY(Integer))
    noise_weights: Mapped[list[int]] = mapped_column(ARRAY(Integer))


class PrivacySecret(Base):
    """The secret of the record keys; only the owner role reads it."""

    __tablename__ = "privacy_secret"
    __table_args__ = (
        CheckConstraint("id = 1", name="single_row"),
        {
            "comment": "Seeds the record keys of the cell-key perturbation; readable by the "
            "owner role only."
        },
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, server_default="1")
    secret: Mapped[bytes] = mapped_column(LargeBinary)


class Organisation(Base):
    """A kommun, a local police area, a business, a rescue service…"""

    __tablename__ = "organisation"

    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class Area(Base):
    """A named polygon of responsibility, in its current version (older ones in area_version)."""

    __tablename__ = "area"

    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(32))
    version: Mapped[int] = mapped_column(Integer, server_default="1")
    geom = mapped_column(_geometry("MULTIPOLYGON"), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())


class AreaVersion(Base):
    """A past geometry of an area, kept when the area's boundary changes."""

    __tablename__ = "area_version"

    area_id: Mapped[int] = mapped_column(
        ForeignKey("area.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    geom = mapped_column(_geometry("MULTIPOLYGON"), nullable=False)
    valid_from: Mapped[datetime]
    valid_to: Mapped[datetime]


class AreaComponent(Base):
    """Membership of an area that is a union of others (an LPO is the union of its kommuner)."""

    __tablename__ = "area_component"

    area_id: Mapped[int] = mapped_column(
        ForeignKey("area.id", ondelete="CASCADE"), primary_key=True
    )
    component_id: Mapped[int] = mapped_column(
        ForeignKey("area.id", ondelete="RESTRICT"), primary_key=True
    )


class AreaGrant(Base):
    """What an organisation may see in an area: raw incidents or aggregated layers."""

    __tablename__ = "area_grant"
    __table_args__ = (UniqueConstraint("organisation_id", "area_id"),)

    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id", ondelete="CASCADE"))
    area_id: Mapped[int] = mapped_column(ForeignKey("area.id", ondelete="CASCADE"), index=True)
    level: Mapped[GrantLevel] = mapped_column(_enum(GrantLevel, "grant_level"))
    granted_by: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    expires_at: Mapped[datetime | None]


class Category(Base):
    """A node of the category taxonomy (stable dotted code, Swedish and English labels)."""

    __tablename__ = "category"

    code: Mapped[str] = mapped_column(String(128), primary_key=True)
    parent_code: Mapped[str | None] = mapped_column(ForeignKey("category.code"))
    label_sv: Mapped[str] = mapped_column(Text)
    label_en: Mapped[str] = mapped_column(Text)
    sensitive: Mapped[bool] = mapped_column(Boolean, server_default="false")
    description: Mapped[str | None] = mapped_column(Text)
    sort_order: Mapped[int] = mapped_column(Integer, server_default="0")


class CategoryGroup(Base):
    """A named set of category codes (ANDTS, tillgrepp, …) used by profiles and reports."""

    __tablename__ = "category_group"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    label_sv: Mapped[str] = mapped_column(Text)
    label_en: Mapped[str] = mapped_column(Text)


class CategoryGroupMember(Base):
    """One category of a category group."""

    __tablename__ = "category_group_member"

    group_code: Mapped[str] = mapped_column(
        ForeignKey("category_group.code", ondelete="CASCADE"), primary_key=True
    )
    category_code: Mapped[str] = mapped_column(
        ForeignKey("category.code", ondelete="CASCADE"), primary_key=True
    )


class Incident(Base):
    """A registered crime or incident: what, when (often an interval), where and how exactly."""

    __tablename__ = "incident"
    __table_args__ = (
        UniqueConstraint("organisation_id", "source", "external_id"),
        CheckConstraint(
            "occurred_to IS NULL OR occurred_to >= occurred_from", name="occurred_interval"
        ),
        Index("ix_incident_occurred_from_id", "occurred_from", "id"),  # pages in this order
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    # organisation_id and category_code refer to organisation.id and category.code; the
    # references are checked per statement by triggers, not per row by foreign keys (0004).
    organisation_id: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(64))
    external_id: Mapped[str] = mapped_column(String(128))
    category_code: Mapped[str] = mapped_column(String(128), index=True)
    occurred_from: Mapped[datetime]
    occurred_to: Mapped[datetime | None]
    reported_at: Mapped[datetime] = mapped_column(server_default=func.now())
    geom = mapped_column(_geometry("POINT"), nullable=False)
    location_precision: Mapped[LocationPrecision] = mapped_column(
        _enum(LocationPrecision, "location_precision")
    )
    description: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())
    deleted_at: Mapped[datetime | None]
    # the areas it lies in, kept equal to its incident_area rows: row-level security reads it
    area_ids: Mapped[list[int]] = mapped_column(
        ARRAY(Integer),
        server_default="{}",
        comment="The areas the incident lies in: the same as its est.incident_area rows.",
    )


class IncidentArea(Base):
    """Which areas an incident lies in, computed at ingest.

    The reporting organisation is repeated here so that this table's row-level security can
    be decided without reading est.incident (whose own policy reads this table).
    """

    __tablename__ = "incident_area"

    # incident_id and area_id refer to incident.id and area.id, with ON DELETE CASCADE; the
    # references are kept per statement by triggers, not per row by foreign keys (0004).
    incident_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    area_id: Mapped[int] = mapped_column(Integer, primary_key=True, index=True)
    organisation_id: Mapped[int] = mapped_column(Integer)


class AnalysisProfile(Base):
    """How an area's hotspots are computed: window, methods and parameters, category group.

    organisation_id is the organisation that keeps it (NULL: the area's default profile);
    every change raises `version` and is kept in analysis_profile_version.
    """

    __tablename__ = "analysis_profile"
    __table_args__ = (
        Index(
            "uq_analysis_profile_area_owner_name",
            "area_id",
            func.coalesce(text("organisation_id"), 0),
            "name",
            unique=True,
        ),
    )

    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    area_id: Mapped[int] = mapped_column(ForeignKey("area.id", ondelete="CASCADE"))
    organisation_id: Mapped[int | None] = mapped_column(
        ForeignKey("organisation.id", ondelete="CASCADE"),
        comment="The organisation that keeps the profile; NULL for the area's default profile.",
    )
    name: Mapped[str] = mapped_column(String(64))
    category_group_code: Mapped[str] = mapped_column(ForeignKey("category_group.code"))
    window_days: Mapped[int] = mapped_column(Integer)
    methods: Mapped[dict[str, Any]]
    version: Mapped[int] = mapped_column(Integer, server_default="1")
    cell_size_m: Mapped[int] = mapped_column(Integer, server_default="250")
    exclude_area_centroids: Mapped[bool] = mapped_column(Boolean, server_default="true")
    active: Mapped[bool] = mapped_column(Boolean, server_default="true")
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())


class AnalysisProfileVersion(Base):
    """One version of a profile, as the document `est profiles import` reads."""

    __tablename__ = "analysis_profile_version"

    profile_id: Mapped[int] = mapped_column(
        ForeignKey("analysis_profile.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    document: Mapped[dict[str, Any]]
    changed_by: Mapped[str] = mapped_column(String(128))
    changed_at: Mapped[datetime] = mapped_column(server_default=func.now())


class HotspotRun(Base):
    """One computation of an area's layers: what went in, how, and how it went."""

    __tablename__ = "hotspot_run"
    __table_args__ = (
        Index(
            "ix_hotspot_run_area_profile_period",
            "area_id",
            "profile_id",
            "period_kind",
            "period_label",
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    area_id: Mapped[int] = mapped_column(ForeignKey("area.id", ondelete="CASCADE"), index=True)
    profile_id: Mapped[int] = mapped_column(ForeignKey("analysis_profile.id", ondelete="CASCADE"))
    status: Mapped[RunStatus] = mapped_column(_enum(RunStatus, "run_status"))
    parameters: Mapped[dict[str, Any]]
    window_start: Mapped[datetime]
    window_end: Mapped[datetime]
    code_version: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    started_at: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    timings: Mapped[dict[str, Any] | None]
    counts: Mapped[dict[str, Any] | None]
    provenance: Mapped[dict[str, Any] | None]
    error: Mapped[str | None] = mapped_column(Text)
    period_kind: Mapped[str] = mapped_column(String(16), server_default="week")
    period_label: Mapped[str] = mapped_column(String(32), server_default="")
    provisional: Mapped[bool] = mapped_column(Boolean, server_default="false")
    profile_version: Mapped[int | None] = mapped_column(Integer)
    input_digest: Mapped[str | None] = mapped_column(String(64))
    published_at: Mapped[datetime | None]
    figures: Mapped[dict[str, Any] | None]
    notes: Mapped[dict[str, Any] | None]


class Hotspot(Base):
    """A hotspot polygon of a run, with its stable identity and its change since the last run."""

    __tablename__ = "hotspot"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    run_id: Mapped[int] = mapped_column(
        ForeignKey("hotspot_run.id", ondelete="CASCADE"), index=True
    )
    hotspot_key: Mapped[str] = mapped_column(String(64))
    method: Mapped[str] = mapped_column(String(32))
    change_label: Mapped[ChangeLabel] = mapped_column(_enum(ChangeLabel, "change_label"))
    geom = mapped_column(_geometry("MULTIPOLYGON"), nullable=True)
    incident_count: Mapped[int] = mapped_column(Integer)
    area_m2: Mapped[float] = mapped_column(Double)
    stats: Mapped[dict[str, Any]]
    viewer_geom = mapped_column(_geometry("MULTIPOLYGON"), nullable=True)
    viewer_count: Mapped[int | None] = mapped_column(Integer)


class RunCell:
    """The key of a per-run grid cell: the run, and the stable cell (cell size, ix, iy).

    No foreign key on the run: cells are written by the run itself, many at once, and go with
    their run through a trigger on est.hotspot_run (migration 0010)."""

    run_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    cell_size_m: Mapped[int] = mapped_column(Integer, primary_key=True)
    ix: Mapped[int] = mapped_column(Integer, primary_key=True)
    iy: Mapped[int] = mapped_column(Integer, primary_key=True)


class DensityCell(RunCell, Base):
    """Kernel density of one grid cell in one run."""

    __tablename__ = "density_cell"

    density: Mapped[float] = mapped_column(Double)
    isopleth: Mapped[float | None] = mapped_column(Double)


class GistarCell(RunCell, Base):
    """Getis-Ord Gi* of one grid cell in one run."""

    __tablename__ = "gistar_cell"

    incident_count: Mapped[int] = mapped_column(Integer)
    z: Mapped[float] = mapped_column(Double)
    p: Mapped[float] = mapped_column(Double)
    p_adjusted: Mapped[float | None] = mapped_column(Double)
    bin: Mapped[int] = mapped_column(SmallInteger)


class EmergingCell(RunCell, Base):
    """Emerging-hotspot class of one grid cell in one run."""

    __tablename__ = "emerging_cell"

    pattern: Mapped[str] = mapped_column(String(32))
    trend_z: Mapped[float | None] = mapped_column(Double)
    trend_p: Mapped[float | None] = mapped_column(Double)
    hot_steps: Mapped[int] = mapped_column(Integer)
    cold_steps: Mapped[int] = mapped_column(Integer)


class ForecastCell(RunCell, Base):
    """The forecast risk of one grid cell for the week after the run's week, ranked."""

    __tablename__ = "forecast_cell"

    risk: Mapped[float] = mapped_column(Double)
    rank: Mapped[int] = mapped_column(Integer)
    flagged: Mapped[bool] = mapped_column(Boolean)


class ViewerCell(Base):
    """A cell of a run's viewer layer (counts, density, gistar, emerging, forecast).

    Built by the privacy module from shown counts only: `shown` is the protected count, `value`
    the layer's measure (density, z, risk), `bin` the Gi* confidence bin, `pattern` the
    emerging-hotspot class.
    """

    __tablename__ = "viewer_cell"
    __table_args__ = (
        {
            "comment": "Viewer layers of a run (counts, density, gistar, emerging, forecast), "
            "from shown counts."
        },
    )

    run_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # see RunCell
    layer: Mapped[str] = mapped_column(String(16), primary_key=True)
    cell_size_m: Mapped[int] = mapped_column(Integer, primary_key=True)
    ix: Mapped[int] = mapped_column(Integer, primary_key=True)
    iy: Mapped[int] = mapped_column(Integer, primary_key=True)
    shown: Mapped[int | None] = mapped_column(Integer)
    value: Mapped[float | None] = mapped_column(Double)
    bin: Mapped[int | None] = mapped_column(SmallInteger)
    pattern: Mapped[str | None] = mapped_column(String(32))


class AreaFigure(Base):
    """A category group's counts in a run's week against its baselines, with the change tests."""

    __tablename__ = "area_figure"
    __table_args__ = (CheckConstraint("audience IN ('analyst', 'viewer')", name="audience"),)

    run_id: Mapped[int] = mapped_column(
        ForeignKey("hotspot_run.id", ondelete="CASCADE"), primary_key=True
    )
    audience: Mapped[str] = mapped_column(String(8), primary_key=True)
    group_code: Mapped[str] = mapped_column(String(64), primary_key=True)
    this_week: Mapped[int] = mapped_column(Integer)
    last_week: Mapped[int] = mapped_column(Integer)
    same_week_last_year: Mapped[int] = mapped_column(Integer)
    mean_12_weeks: Mapped[float] = mapped_column(Double)
    tests: Mapped[dict[str, Any]]


class NightlyClaim(Base):
    """Who does which night's work: one row per night, task, area and profile (0 for none)."""

    __tablename__ = "nightly_claim"
    __table_args__ = (
        UniqueConstraint("night", "task", "area_id", "profile_id"),
        CheckConstraint("task IN ('recompute', 'purge')", name="nightly_claim_task_check"),
        {"comment": "Who does which night's work: one row per night, task, area and profile."},
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    night: Mapped[date] = mapped_column(Date)
    task: Mapped[str] = mapped_column(String(16))
    area_id: Mapped[int] = mapped_column(Integer, server_default="0")
    profile_id: Mapped[int] = mapped_column(Integer, server_default="0")
    status: Mapped[RunStatus] = mapped_column(_enum(RunStatus, "run_status"))
    claimed_by: Mapped[str] = mapped_column(String(128))
    attempts: Mapped[int] = mapped_column(Integer, server_default="1")
    started_at: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    run_id: Mapped[int | None] = mapped_column(ForeignKey("hotspot_run.id", ondelete="SET NULL"))
    outcome: Mapped[str | None] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)


class LayerCurrent(Base):
    """Which run is published for each (area, profile, layer): readers see whole runs only."""

    __tablename__ = "layer_current"

    area_id: Mapped[int] = mapped_column(
        ForeignKey("area.id", ondelete="CASCADE"), primary_key=True
    )
    profile_id: Mapped[int] = mapped_column(
        ForeignKey("analysis_profile.id", ondelete="CASCADE"), primary_key=True
    )
    layer: Mapped[str] = mapped_column(String(32), primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("hotspot_run.id"))
    published_at: Mapped[datetime] = mapped_column(server_default=func.now())


class Action(Base):
    """An åtgärd decided by a ledningsgrupp for an area or a hotspot, and its follow-up."""

    __tablename__ = "action"

    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"))
    area_id: Mapped[int] = mapped_column(ForeignKey("area.id"), index=True)
    hotspot_key: Mapped[str | None] = mapped_column(String(64))
    category_group_code: Mapped[str | None] = mapped_column(ForeignKey("category_group.code"))
    title: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    responsible: Mapped[str | None] = mapped_column(Text)
    status: Mapped[ActionStatus] = mapped_column(_enum(ActionStatus, "action_status"))
    starts_on: Mapped[date | None] = mapped_column(Date)
    ends_on: Mapped[date | None] = mapped_column(Date)
    geom = mapped_column(_geometry("GEOMETRY"), nullable=True)
    created_by: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())


class AreaIndicator(Base):
    """A time series value for an area: a safety survey result, a count from another register…"""

    __tablename__ = "area_indicator"
    __table_args__ = (UniqueConstraint("area_id", "indicator", "period_start"),)

    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    area_id: Mapped[int] = mapped_column(ForeignKey("area.id", ondelete="CASCADE"))
    indicator: Mapped[str] = mapped_column(String(64))
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)
    value: Mapped[float] = mapped_column(Double)
    unit: Mapped[str | None] = mapped_column(String(32))
    source: Mapped[str | None] = mapped_column(Text)


class ApiKey(Base):
    """An API key: only its SHA-256 hash is stored; the prefix is what people recognise."""

    __tablename__ = "api_key"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    secret_sha256: Mapped[str] = mapped_column(String(64))
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisation.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[Role] = mapped_column(_enum(Role, "role"))
    name: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]


class AuditLog(Base):
    """Who read or changed what, when: every raw read, export and admin change."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    at: Mapped[datetime] = mapped_column(server_default=func.now(), index=True)
    request_id: Mapped[str | None] = mapped_column(String(64))
    actor: Mapped[str | None] = mapped_column(Text)
    organisation_id: Mapped[int | None] = mapped_column(Integer)
    role: Mapped[str | None] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(64))
    endpoint: Mapped[str | None] = mapped_column(Text)
    filters: Mapped[dict[str, Any] | None]
    row_count: Mapped[int | None] = mapped_column(Integer)
    reason: Mapped[str | None] = mapped_column(Text)


class ImportJob(Base):
    """One import of a file or batch: who, when, what file (its SHA-256) and the counts."""

    __tablename__ = "import_job"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    created_by: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(64))
    filename: Mapped[str | None] = mapped_column(Text)
    file_sha256: Mapped[str | None] = mapped_column(String(64))
    mapping: Mapped[dict[str, Any] | None]
    status: Mapped[JobStatus] = mapped_column(_enum(JobStatus, "import_status"))
    started_at: Mapped[datetime] = mapped_column(server_default=func.now())
    finished_at: Mapped[datetime | None]
    counts: Mapped[dict[str, Any] | None]
    notes: Mapped[dict[str, Any] | None]
    heartbeat_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)


class IdempotencyKey(Base):
    """The first answer to a POST sent with an Idempotency-Key, replayed on a retry."""

    __tablename__ = "idempotency_key"

    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisation.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    request_sha256: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int | None] = mapped_column(Integer)
    response: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class AlertSubscription(Base):
    """Where an organisation is told about an area's alerts: a webhook or an e-mail address.

    A webhook's two secrets (the current one and the one before the last rotation) are written
    by the service but read only by the nightly role, which signs the deliveries.
    """

    __tablename__ = "alert_subscription"
    __table_args__ = (
        UniqueConstraint("organisation_id", "area_id", "channel", "target"),
        CheckConstraint("channel IN ('webhook', 'email')", name="alert_subscription_channel_check"),
        CheckConstraint(
            "(channel = 'webhook') = (secret IS NOT NULL)", name="alert_subscription_secret_check"
        ),
        {
            "comment": "Where an organisation is told about an area's alerts: a webhook or an "
            "e-mail address."
        },
    )

    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id", ondelete="CASCADE"))
    area_id: Mapped[int] = mapped_column(ForeignKey("area.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    target: Mapped[str] = mapped_column(Text)
    secret: Mapped[str | None] = mapped_column(Text)
    previous_secret: Mapped[str | None] = mapped_column(Text)
    has_previous_secret: Mapped[bool | None] = mapped_column(
        Boolean, Computed("previous_secret IS NOT NULL", persisted=True)
    )
    secret_rotated_at: Mapped[datetime | None]
    active: Mapped[bool] = mapped_column(Boolean, server_default="true")
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())


class AlertEvent(Base):
    """Something a published run found that needs attention, made once per area, profile,
    kind, subject and period; its payload holds viewer values only."""

    __tablename__ = "alert_event"
    __table_args__ = (
        UniqueConstraint("area_id", "profile_id", "kind", "subject", "period_label"),
        {
            "comment": "Something a published run found that needs attention, once per area, "
            "profile, kind, subject and period; the payload holds viewer values only."
        },
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("hotspot_run.id", ondelete="SET NULL"))
    area_id: Mapped[int] = mapped_column(ForeignKey("area.id", ondelete="CASCADE"))
    profile_id: Mapped[int] = mapped_column(ForeignKey("analysis_profile.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(64))
    period_label: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class AlertDelivery(Base):
    """One event to one subscription: pending until sent, or failed after the last attempt."""

    __tablename__ = "alert_delivery"
    __table_args__ = (
        UniqueConstraint("event_id", "subscription_id"),
        CheckConstraint(
            "status IN ('pending', 'sent', 'failed')", name="alert_delivery_status_check"
        ),
        Index(
            "ix_alert_delivery_next_attempt_at",
            "next_attempt_at",
            postgresql_where=text("status = 'pending'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("alert_event.id", ondelete="CASCADE"))
    subscription_id: Mapped[int] = mapped_column(
        ForeignKey("alert_subscription.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(16), server_default="pending")
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    next_attempt_at: Mapped[datetime | None] = mapped_column(server_default=func.now())
    last_attempt_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    delivered_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class AlertAttempt(Base):
    """One try to deliver an alert: when, how it went, the receiver's status or the error."""

    __tablename__ = "alert_attempt"
    __table_args__ = (
        CheckConstraint("outcome IN ('sent', 'failed')", name="alert_attempt_outcome_check"),
    )

    delivery_id: Mapped[int] = mapped_column(
        ForeignKey("alert_delivery.id", ondelete="CASCADE"), primary_key=True
    )
    attempt: Mapped[int] = mapped_column(Integer, primary_key=True)
    attempted_at: Mapped[datetime]
    outcome: Mapped[str] = mapped_column(String(16))
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int] = mapped_column(Integer)


class ReportText(Base):
    """The analysts' assessment and analysis of causes of an area's week or tertial."""

    __tablename__ = "report_text"
    __table_args__ = (
        {
            "comment": "The analysts' assessment and analysis of causes of an area's week or "
            "tertial."
        },
    )

    area_id: Mapped[int] = mapped_column(
        ForeignKey("area.id", ondelete="CASCADE"), primary_key=True
    )
    period_label: Mapped[str] = mapped_column(String(32), primary_key=True)
    assessment: Mapped[str] = mapped_column(Text, server_default="")
    causes: Mapped[str] = mapped_column(Text, server_default="")
    organisation_id: Mapped[int | None] = mapped_column(
        ForeignKey("organisation.id", ondelete="SET NULL")
    )
    updated_by: Mapped[str] = mapped_column(String(128))
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())


class HotspotName(Base):
    """A name the analysts gave a hotspot, kept per area and stable hotspot id."""

    __tablename__ = "hotspot_name"
    __table_args__ = (
        {
            "comment": "A name the analysts gave a hotspot; it follows the hotspot's stable id "
            "from week to week."
        },
    )

    area_id: Mapped[int] = mapped_column(
        ForeignKey("area.id", ondelete="CASCADE"), primary_key=True
    )
    hotspot_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    named_in: Mapped[str] = mapped_column(String(32))
    organisation_id: Mapped[int | None] = mapped_column(
        ForeignKey("organisation.id", ondelete="SET NULL")
    )
    updated_by: Mapped[str] = mapped_column(String(128))
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())


class ReportMailing(Base):
    """How an e-mail subscription gets the weekly report (no row: a link)."""

    __tablename__ = "report_mailing"
    __table_args__ = (
        CheckConstraint(
            "delivery IN ('link', 'attachment', 'none')", name="report_mailing_delivery_check"
        ),
        {
            "comment": "How an e-mail subscription gets the weekly report: link (the default), "
            "attachment, none."
        },
    )

    subscription_id: Mapped[int] = mapped_column(
        ForeignKey("alert_subscription.id", ondelete="CASCADE"), primary_key=True
    )
    delivery: Mapped[str] = mapped_column(String(16))
    updated_by: Mapped[str] = mapped_column(String(128))
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())


class ReportDispatch(Base):
    """One weekly report mailed to a subscription: once per profile and period."""

    __tablename__ = "report_dispatch"
    __table_args__ = (
        UniqueConstraint("subscription_id", "profile_id", "period_label"),
        CheckConstraint(
            "delivery IN ('link', 'attachment')", name="report_dispatch_delivery_check"
        ),
        CheckConstraint(
            "status IN ('sending', 'sent', 'failed')", name="report_dispatch_status_check"
        ),
        {"comment": "Each weekly report mailed to a subscription: once per profile and period."},
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    subscription_id: Mapped[int] = mapped_column(
        ForeignKey("alert_subscription.id", ondelete="CASCADE")
    )
    profile_id: Mapped[int] = mapped_column(ForeignKey("analysis_profile.id", ondelete="CASCADE"))
    period_label: Mapped[str] = mapped_column(String(32))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("hotspot_run.id", ondelete="SET NULL"))
    delivery: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, server_default="1")
    error: Mapped[str | None] = mapped_column(Text)
    attempted_at: Mapped[datetime] = mapped_column(server_default=func.now())


class WebSession(Base):
    """A browser login to the map page; the cookie's token is stored as its SHA-256 only."""

    __tablename__ = "web_session"
    __table_args__ = (
        CheckConstraint("login IN ('key', 'oidc')", name="web_session_login_check"),
        CheckConstraint("ended_why IN ('logout', 'revoked')", name="web_session_ended_why_check"),
        {
            "comment": "A browser login to the map page; the cookie's token is stored as its "
            "SHA-256 only."
        },
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisation.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[Role] = mapped_column(_enum(Role, "role"))
    subject: Mapped[str] = mapped_column(Text)
    key_id: Mapped[str | None] = mapped_column(
        ForeignKey("api_key.id", ondelete="CASCADE"), index=True
    )
    login: Mapped[str] = mapped_column(String(8))
    oidc_nonce: Mapped[str | None] = mapped_column(String(128), unique=True)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    last_seen_at: Mapped[datetime] = mapped_column(server_default=func.now())
    expires_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    ended_why: Mapped[str | None] = mapped_column(String(16))


class WebLogin(Base):
    """An OIDC login under way: its state (as SHA-256), nonce and PKCE verifier, used once."""

    __tablename__ = "web_login"
    __table_args__ = (
        {
            "comment": "An OIDC login under way: its state (as SHA-256), nonce and PKCE "
            "verifier, used once."
        },
    )

    state_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(128))
    code_verifier: Mapped[str] = mapped_column(String(128))
    return_to: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
