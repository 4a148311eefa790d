"""The area tables: kommun and län boundaries loaded with versions, unions, and reading them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import geopandas as gpd
from shapely import MultiPolygon, Polygon, make_valid
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Connection, text

from app.core.errors import InvalidInput
from app.db.deployment import refresh_accepted_area, storage_srid


@dataclass(frozen=True)
class LoadResult:
    """What loading areas did."""

    created: int
    updated: int
    unchanged: int


def _multipolygon(geom: BaseGeometry) -> MultiPolygon:
    geom = make_valid(geom) if not geom.is_valid else geom
    if isinstance(geom, MultiPolygon):
        return geom
    if isinstance(geom, Polygon):
        return MultiPolygon([geom])
    polygons = [g for g in getattr(geom, "geoms", []) if isinstance(g, Polygon)]
    return MultiPolygon(polygons)


def load_areas(conn: Connection, areas: gpd.GeoDataFrame) -> LoadResult:
    """Upsert areas by code; a changed boundary becomes a new version and the old one is kept."""
    if areas.crs is None:
        raise InvalidInput("the area file has no CRS")
    srid = storage_srid(conn)
    areas = areas.to_crs(srid)
    conn.execute(
        text(
            "CREATE TEMP TABLE area_staging (code text, name text, kind text, wkb bytea) "
            "ON COMMIT DROP"
        )
    )
    conn.execute(
        text("INSERT INTO area_staging VALUES (:code, :name, :kind, :wkb)"),
        [
            {
                "code": str(r.code),
                "name": str(r.name),
                "kind": str(r.kind),
                "wkb": _multipolygon(r.geometry).wkb,
            }
            for r in areas.itertuples()
        ],
    )
    params = {"srid": srid}
    conn.execute(
        text("""
        WITH s AS (SELECT code, name, kind, ST_GeomFromWKB(wkb, :srid) AS geom FROM area_staging)
        INSERT INTO est.area_version (area_id, version, geom, valid_from, valid_to)
        SELECT a.id, a.version, a.geom, a.updated_at, now()
        FROM est.area a JOIN s ON s.code = a.code
        WHERE NOT ST_Equals(a.geom, s.geom)
    """),
        params,
    )
    result = conn.execute(
        text("""
        WITH s AS (SELECT code, name, kind, ST_GeomFromWKB(wkb, :srid) AS geom FROM area_staging)
        INSERT INTO est.area AS a (code, name, kind, geom)
        SELECT code, name, kind, geom FROM s
        ON CONFLICT (code) DO UPDATE SET
            name = EXCLUDED.name,
            kind = EXCLUDED.kind,
            geom = EXCLUDED.geom,
            version = a.version + CASE WHEN ST_Equals(a.geom, EXCLUDED.geom) THEN 0 ELSE 1 END,
            updated_at = CASE WHEN ST_Equals(a.geom, EXCLUDED.geom) THEN a.updated_at ELSE now() END
        WHERE a.name IS DISTINCT FROM EXCLUDED.name OR a.kind IS DISTINCT FROM EXCLUDED.kind
           OR NOT ST_Equals(a.geom, EXCLUDED.geom)
        RETURNING (xmax = 0) AS inserted
    """),
        params,
    ).all()
    conn.execute(text("DROP TABLE area_staging"))  # so a second load in this transaction can
    created = sum(1 for r in result if r.inserted)
    updated = len(result) - created
    if result:
        refresh_accepted_area(conn)
    return LoadResult(created=created, updated=updated, unchanged=len(areas) - len(result))


def create_union_area(conn: Connection, code: str, name: str, component_codes: list[str]) -> None:
    """Create or replace an area that is the union of other areas (an LPO's kommuner)."""
    found = conn.execute(
        text("SELECT id, code FROM est.area WHERE code = ANY(:codes)"), {"codes": component_codes}
    ).all()
    missing = sorted(set(component_codes) - {r.code for r in found})
    if missing:
        raise InvalidInput(f"unknown area codes: {', '.join(missing)}")
    area_id = conn.scalar(
        text("""
        INSERT INTO est.area AS a (code, name, kind, geom)
        SELECT :code, :name, 'union', ST_Multi(ST_Union(geom))
        FROM est.area WHERE code = ANY(:codes)
        ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, geom = EXCLUDED.geom,
            version = a.version + CASE WHEN ST_Equals(a.geom, EXCLUDED.geom) THEN 0 ELSE 1 END
        RETURNING id
    """),
        {"code": code, "name": name, "codes": component_codes},
    )
    conn.execute(text("DELETE FROM est.area_component WHERE area_id = :a"), {"a": area_id})
    conn.execute(
        text("INSERT INTO est.area_component (area_id, component_id) VALUES (:a, :c)"),
        [{"a": area_id, "c": r.id} for r in found],
    )
    # the incidents already stored lie in the union when they lie in one of its parts
    placed = "SELECT incident_id FROM est.incident_area WHERE area_id = :a"
    before = [row[0] for row in conn.execute(text(placed), {"a": area_id})]
    conn.execute(text("DELETE FROM est.incident_area WHERE area_id = :a"), {"a": area_id})
    conn.execute(
        text("""
        INSERT INTO est.incident_area (incident_id, area_id, organisation_id)
        SELECT DISTINCT ia.incident_id, :a, ia.organisation_id
        FROM est.incident_area ia WHERE ia.area_id = ANY(:parts)
    """),
        {"a": area_id, "parts": [r.id for r in found]},
    )
    conn.execute(
        text(sync_area_ids(f"{placed} UNION SELECT unnest(CAST(:before AS bigint[]))")),
        {"a": area_id, "before": before},
    )


def sync_area_ids(incident_ids_sql: str) -> str:
    """The statement that sets est.incident.area_ids from incident_area, for the incidents
    whose ids the given query returns (the two must always agree: row-level security reads
    area_ids)."""
    return f"""
        UPDATE est.incident i SET area_ids = coalesce(
            (SELECT array_agg(ia.area_id ORDER BY ia.area_id)
             FROM est.incident_area ia WHERE ia.incident_id = i.id), '{{}}')
        WHERE i.id IN ({incident_ids_sql})
    """


@dataclass(frozen=True)
class AreaRow:
    """An area without its geometry."""

    code: str
    name: str
    kind: str
    version: int


def list_areas(
    conn: Connection, kind: str | None, limit: int, offset: int
) -> tuple[list[AreaRow], int]:
    """Return a page of areas ordered by code (of one kind when given) and how many there are."""
    where = "WHERE CAST(:kind AS text) IS NULL OR kind = :kind"
    total = conn.scalar(text(f"SELECT count(*) FROM est.area {where}"), {"kind": kind}) or 0
    rows = conn.execute(
        text(
            f"SELECT code, name, kind, version FROM est.area {where} "
            "ORDER BY code LIMIT :limit OFFSET :offset"
        ),
        {"kind": kind, "limit": limit, "offset": offset},
    ).all()
    return [AreaRow(r.code, r.name, r.kind, r.version) for r in rows], int(total)


def area_with_geometry(conn: Connection, code: str) -> tuple[AreaRow, bytes] | None:
    """Return an area's current version and its geometry as WKB in the storage CRS."""
    row = conn.execute(
        text(
            "SELECT code, name, kind, version, ST_AsBinary(geom) AS wkb FROM est.area "
            "WHERE code = :code"
        ),
        {"code": code},
    ).one_or_none()
    if row is None:
        return None
    return AreaRow(row.code, row.name, row.kind, row.version), bytes(row.wkb)


def area_properties(area: AreaRow) -> dict[str, Any]:
    """Return the properties an area's GeoJSON Feature carries."""
    return {"code": area.code, "name": area.name, "kind": area.kind, "version": area.version}
