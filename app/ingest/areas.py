"""Loading areas: kommun and län boundaries from a file, and unions of kommuner."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import pyogrio
from shapely import MultiPolygon, Polygon, make_valid
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Connection, text

REPO_DATA = Path(__file__).resolve().parents[2] / "data"
DEFAULT_AREAS_FILE = REPO_DATA / "kommuner" / "kommuner_sweref99tm.gpkg"


@dataclass(frozen=True)
class LoadResult:
    """What loading areas did."""

    created: int
    updated: int
    unchanged: int


def storage_srid(conn: Connection) -> int:
    """Return the deployment's storage SRID (fixed by `est db init`)."""
    srid = conn.scalar(text("SELECT srid FROM est.deployment WHERE id = 1"))
    if srid is None:
        raise RuntimeError("the database is not initialised: run `est db init`")
    return int(srid)


def read_kommun_file(path: Path = DEFAULT_AREAS_FILE) -> gpd.GeoDataFrame:
    """Read SCB-style kommun and län layers into one frame with code, name, kind, geometry."""
    layers = {str(name) for name, _ in pyogrio.list_layers(path)}
    frames = []
    if "kommuner" in layers:
        k = gpd.read_file(path, layer="kommuner")
        frames.append(
            gpd.GeoDataFrame(
                {"code": k["kommun_kod"], "name": k["kommun"], "kind": "kommun"},
                geometry=k.geometry,
            )
        )
    if "lan" in layers:
        lan = gpd.read_file(path, layer="lan")
        names = lan["lan"].where(lan["lan"].str.endswith(" län"), lan["lan"] + " län")
        frames.append(
            gpd.GeoDataFrame(
                {"code": lan["lan_kod"], "name": names, "kind": "lan"}, geometry=lan.geometry
            )
        )
    if not frames:
        raise ValueError(f"{path} has neither a 'kommuner' nor a 'lan' layer")
    return gpd.GeoDataFrame(
        gpd.pd.concat(frames, ignore_index=True), geometry="geometry", crs=frames[0].crs
    )


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
        raise ValueError("the area file has no CRS")
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
    created = sum(1 for r in result if r.inserted)
    updated = len(result) - created
    if result:
        refresh_accepted_area(conn)
    return LoadResult(created=created, updated=updated, unchanged=len(areas) - len(result))


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


def create_union_area(conn: Connection, code: str, name: str, component_codes: list[str]) -> None:
    """Create or replace an area that is the union of other areas (an LPO's kommuner)."""
    found = conn.execute(
        text("SELECT id, code FROM est.area WHERE code = ANY(:codes)"), {"codes": component_codes}
    ).all()
    missing = sorted(set(component_codes) - {r.code for r in found})
    if missing:
        raise ValueError(f"unknown area codes: {', '.join(missing)}")
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
