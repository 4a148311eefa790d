"""The deployment: storage CRS, time zone, accepted extent, fallback points and categories.

It is read once per process and kept: `DeploymentCache.get` compares one number
(`est.deployment.version`, raised by every change of areas, extent or categories, in whatever
process or replica made it) and reads the rest again only when it moved.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import shapely
from shapely import wkb
from sqlalchemy import Connection, text
from sqlalchemy.exc import IntegrityError

from app.core.errors import InvalidInput, NotReady


@dataclass(frozen=True)
class Place:
    """A point incidents fall back to when their real location is unknown (a kommun centroid)."""

    name: str
    x: float
    y: float


@dataclass(frozen=True)
class Deployment:
    """What this database serves, as of one version of it."""

    version: int
    srid: int
    timezone: str
    accepted_area: shapely.Geometry | None  # prepared for point-in-polygon tests
    centroids: tuple[Place, ...]  # of every kommun and län
    categories: frozenset[str]

    def require_area(self) -> shapely.Geometry:
        """Return the accepted area, or say what an operator must run before ingesting."""
        if self.accepted_area is None:
            raise NotReady(
                "no area is loaded, so no incident can be placed: run `est areas load` "
                "(or `est db init --extent minx,miny,maxx,maxy`) first"
            )
        return self.accepted_area


def storage_srid(conn: Connection) -> int:
    """Return the deployment's storage SRID (fixed by `est db init`)."""
    srid = conn.scalar(text("SELECT srid FROM est.deployment WHERE id = 1"))
    if srid is None:
        raise NotReady("the database is not initialised: run `est db init`")
    return int(srid)


def deployment_version(conn: Connection) -> int:
    """Return the deployment's version number (cheap: one row, one column)."""
    version = conn.scalar(text("SELECT version FROM est.deployment WHERE id = 1"))
    if version is None:
        raise NotReady("the database is not initialised: run `est db init`")
    return int(version)


def read_deployment(conn: Connection) -> Deployment:
    """Read the whole deployment: CRS, zone, accepted area, centroids, categories."""
    row = conn.execute(
        text(
            "SELECT version, srid, timezone, ST_AsBinary(accepted_area) AS area "
            "FROM est.deployment WHERE id = 1"
        )
    ).one_or_none()
    if row is None:
        raise NotReady("the database is not initialised: run `est db init`")
    area = None
    if row.area is not None:
        area = wkb.loads(bytes(row.area))
        shapely.prepare(area)
    centroids = conn.execute(
        text(
            "SELECT name, kind, ST_X(c) AS x, ST_Y(c) AS y FROM ("
            "SELECT name, kind, ST_Centroid(geom) AS c FROM est.area "
            "WHERE kind IN ('kommun', 'lan')) s ORDER BY name"
        )
    ).all()
    places = tuple(
        Place(f"the centroid of {r.name}" + (" kommun" if r.kind == "kommun" else ""), r.x, r.y)
        for r in centroids
    )
    return Deployment(
        version=int(row.version),
        srid=int(row.srid),
        timezone=str(row.timezone),
        accepted_area=area,
        centroids=places,
        categories=frozenset(conn.scalars(text("SELECT code FROM est.category"))),
    )


class DeploymentCache:
    """The deployment as this process last read it, refreshed when its version moved."""

    def __init__(self) -> None:
        self._current: Deployment | None = None
        self._lock = threading.Lock()

    def get(self, conn: Connection) -> Deployment:
        """Return the deployment, reading it again only when another writer changed it."""
        version = conn.info.get(KNOWN_VERSION)
        if version is None:
            version = deployment_version(conn)
        current = self._current
        if current is not None and current.version == version:
            return current
        fresh = read_deployment(conn)
        with self._lock:
            self._current = fresh
        return fresh


KNOWN_VERSION = "est.deployment_version"


@contextmanager
def known_version(conn: Connection, version: int) -> Iterator[None]:
    """Within the block, DeploymentCache.get takes `version` (just read in this transaction)
    instead of asking the database again."""
    conn.info[KNOWN_VERSION] = version
    try:
        yield
    finally:
        conn.info.pop(KNOWN_VERSION, None)


def mark_changed(conn: Connection) -> None:
    """Raise the deployment's version: every process reads it again on its next use."""
    conn.info.pop(KNOWN_VERSION, None)
    conn.execute(text("UPDATE est.deployment SET version = version + 1 WHERE id = 1"))


def refresh_accepted_area(conn: Connection) -> None:
    """Recompute where incidents may lie: the configured extent, else the areas buffered."""
    conn.execute(
        text("""
        UPDATE est.deployment d SET accepted_area = coalesce(
            ST_Multi(d.extent),
            (SELECT ST_Multi(ST_Buffer(ST_Union(a.geom), d.extent_buffer_m, 'quad_segs=4'))
             FROM est.area a WHERE a.kind IN ('kommun', 'lan'))
        )
    """)
    )
    mark_changed(conn)


def set_timezone(conn: Connection, timezone: str) -> bool:
    """Make `timezone` the deployment's week clock; return whether it changed."""
    changed = conn.execute(
        text(
            "UPDATE est.deployment SET timezone = :tz, version = version + 1 "
            "WHERE id = 1 AND timezone IS DISTINCT FROM :tz"
        ),
        {"tz": timezone},
    ).rowcount
    return bool(changed)


def set_disclosure_control(conn: Connection, suppression_k: int, rounding_base: int) -> None:
    """Write k and the rounding base of viewer counts (the owner's est.privacy row).

    Only the owner role (and `est db init`'s administrative login) may: the service's role reads
    these values but can neither change them nor pass others to est.viewer_grid.
    """
    try:
        conn.execute(
            text("UPDATE est.privacy SET suppression_k = :k, rounding_base = :base WHERE id = 1"),
            {"k": suppression_k, "base": rounding_base},
        )
    except IntegrityError:
        raise InvalidInput(
            f"EST_SUPPRESSION_K must exceed the largest noise of est.privacy (got {suppression_k})"
        ) from None
