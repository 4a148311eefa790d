"""The one place that knows coordinate reference systems: parse, check, transform, pick one.

Every other module hands CRS codes (EPSG:3006, 4326, a WKT) to these functions instead of
building pyproj objects itself, so a CRS is refused with the same words everywhere and each
pair of systems gets one transformer per process.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely
from pyproj import CRS, Transformer
from pyproj.aoi import AreaOfInterest
from pyproj.database import query_utm_crs_info
from pyproj.exceptions import CRSError

LONLAT = 4326  # WGS 84 longitude/latitude: GeoJSON (RFC 7946) and most input
CRS84 = "OGC:CRS84"  # the same datum with longitude first by definition: OGC API's default
CrsLike = str | int | CRS
FloatArray = npt.NDArray[np.float64]


class CrsError(ValueError):
    """A CRS that is unknown, or not of the kind the caller needs; the message says which."""


def parse_crs(value: CrsLike) -> CRS:
    """Return the CRS of a code (EPSG:3006, 3006), a WKT or PROJ string, or a CRS."""
    if isinstance(value, CRS):
        return value
    return _parse(value)


@lru_cache(maxsize=256)
def _parse(value: str | int) -> CRS:
    try:
        return CRS.from_epsg(value) if isinstance(value, int) else CRS.from_user_input(value)
    except CRSError:
        raise CrsError(f"unknown CRS {value!r}: use a code such as EPSG:3006") from None


def crs_label(value: CrsLike) -> str:
    """Return how people write a CRS: EPSG:3006 when it has a code, else its name."""
    crs = parse_crs(value)
    code = crs.to_epsg()
    return f"EPSG:{code}" if code is not None else crs.name


def crs_uri(value: CrsLike) -> str:
    """Return the OGC URI of a CRS: http://www.opengis.net/def/crs/EPSG/0/3006, …/OGC/1.3/CRS84."""
    crs = parse_crs(value)
    authority = crs.to_authority()
    if authority is None:
        raise CrsError(f"{crs.name} has no authority code, so it has no OGC URI")
    name, code = authority
    version = "1.3" if name == "OGC" else "0"
    return f"http://www.opengis.net/def/crs/{name}/{version}/{code}"


def north_first(value: CrsLike) -> bool:
    """Tell whether a CRS's authority puts the northing (latitude) axis first.

    EPSG:4326 is latitude, longitude and EPSG:3006 northing, easting by their definitions;
    CRS84 and most projected systems are x first. Every transform here is x first
    (`always_xy`), so output in the authority's order swaps the axes of such a CRS.
    """
    axes = parse_crs(value).axis_info
    return bool(axes) and axes[0].direction.lower() in ("north", "south")


def swap_axes(geoms: Any) -> Any:
    """Return shapely geometries with x and y exchanged (its own inverse)."""
    return shapely.transform(geoms, lambda xy: xy[:, ::-1])


def is_geographic(value: CrsLike) -> bool:
    """Tell whether a CRS is in degrees (longitude/latitude) rather than projected."""
    return bool(parse_crs(value).is_geographic)


def check_metric(value: CrsLike) -> CRS:
    """Return a CRS that is projected in metres, or raise CrsError saying why it is not."""
    crs = parse_crs(value)
    units = {axis.unit_name for axis in crs.axis_info}
    if not crs.is_projected or units != {"metre"}:
        raise CrsError(
            f"{crs_label(crs)} ({crs.name}) is not a projected CRS in metres; hotspot methods "
            "measure distances in metres (use e.g. 3006 for Sweden, 26916 for Chicago)"
        )
    return crs


def check_epsg_metric(srid: int) -> CRS:
    """Return the CRS of an EPSG code that must be projected in metres (a storage CRS)."""
    try:
        crs = CRS.from_epsg(srid)
    except CRSError:
        raise CrsError(f"EPSG:{srid} is not a known coordinate reference system") from None
    return check_metric(crs)


def transformer(source: CrsLike, target: CrsLike) -> Transformer:
    """Return the (cached) transformer from source to target, x/lon first."""
    return _transformer(_key(source), _key(target))


def _key(value: CrsLike) -> str | int:
    return value.to_wkt() if isinstance(value, CRS) else value


@lru_cache(maxsize=64)
def _transformer(source: str | int, target: str | int) -> Transformer:
    return Transformer.from_crs(_parse(source), _parse(target), always_xy=True)


def transform(x: Any, y: Any, source: CrsLike, target: CrsLike) -> tuple[FloatArray, FloatArray]:
    """Return x, y (arrays or numbers) transformed from source to target; inf where impossible."""
    tx, ty = transformer(source, target).transform(
        np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64), errcheck=False
    )
    return np.asarray(tx, dtype=np.float64), np.asarray(ty, dtype=np.float64)


def transform_geometries(geoms: Any, source: CrsLike, target: CrsLike) -> Any:
    """Return shapely geometries (one or an array) transformed from source to target."""
    t = transformer(source, target)
    return shapely.transform(geoms, lambda xy: np.column_stack(t.transform(xy[:, 0], xy[:, 1])))


def to_lonlat(x: Any, y: Any, source: CrsLike) -> tuple[FloatArray, FloatArray]:
    """Return x, y of source as longitude, latitude (WGS 84)."""
    return transform(x, y, source, LONLAT)


def from_lonlat(lon: Any, lat: Any, target: CrsLike) -> tuple[FloatArray, FloatArray]:
    """Return longitude, latitude (WGS 84) as x, y of target."""
    return transform(lon, lat, LONLAT, target)


def utm_crs(lon: float, lat: float) -> CRS:
    """Return the WGS 84 UTM zone CRS that holds a point given in longitude, latitude."""
    infos = query_utm_crs_info(
        datum_name="WGS 84", area_of_interest=AreaOfInterest(lon, lat, lon, lat)
    )
    if not infos:
        raise CrsError(f"no UTM zone holds lon {lon}, lat {lat}")
    return _parse(int(infos[0].code))


def metric_crs_for(x: Any, y: Any, source: CrsLike, metric: CrsLike | None = None) -> CRS:
    """Return the CRS to measure points of source in: metric as given, else their UTM zone."""
    if metric is not None:
        return check_metric(metric)
    lon, lat = to_lonlat(float(np.median(x)), float(np.median(y)), source)
    return utm_crs(float(lon), float(lat))
