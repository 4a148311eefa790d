"""The domain's fixed words: roles, grant levels, precisions, statuses, change labels.

Kept apart from the ORM models so that a mapping parser, the command line or a report can use
them without loading SQLAlchemy; the models map these same enums to database types.
"""

from __future__ import annotations

import enum

from clustering.labels import ChangeLabel

__all__ = [
    "PRECISIONS",
    "ActionStatus",
    "ChangeLabel",
    "GrantLevel",
    "JobStatus",
    "LocationPrecision",
    "OrganisationKind",
    "Role",
    "RunStatus",
]


class Role(enum.StrEnum):
    """What a caller may do within its organisation."""

    admin = "admin"
    analyst = "analyst"
    reporter = "reporter"
    viewer = "viewer"
    ingest = "ingest"


class GrantLevel(enum.StrEnum):
    """How much of an area an organisation may see: raw incidents or aggregated layers only."""

    raw = "raw"
    aggregate = "aggregate"


class OrganisationKind(enum.StrEnum):
    """What an organisation is; admins of an `operator` run the deployment."""

    operator = "operator"
    kommun = "kommun"
    lpo = "lpo"
    police = "police"
    business = "business"
    rescue = "rescue"
    other = "other"


class LocationPrecision(enum.StrEnum):
    """How exactly an incident's point locates it."""

    exact = "exact"
    address = "address"
    street = "street"
    area_centroid = "area_centroid"
    unknown = "unknown"


PRECISIONS: tuple[str, ...] = tuple(p.value for p in LocationPrecision)


class RunStatus(enum.StrEnum):
    """Where a hotspot run is in its life."""

    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"


class JobStatus(enum.StrEnum):
    """Where a job (a file import) is in its life."""

    running = "running"
    succeeded = "succeeded"
    failed = "failed"


class ActionStatus(enum.StrEnum):
    """The state of an åtgärd decided by a ledningsgrupp."""

    planned = "planned"
    ongoing = "ongoing"
    done = "done"
    cancelled = "cancelled"
