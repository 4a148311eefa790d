"""geo.crs: the one place that parses, checks and transforms coordinate systems."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from pyproj import Transformer

from geo import crs


def test_codes_and_wkt_parse_to_the_same_system_and_unknown_ones_say_what_to_write() -> None:
    assert crs.crs_label("EPSG:3006") == crs.crs_label(3006) == "EPSG:3006"
    assert crs.crs_label(crs.parse_crs(3006).to_wkt()) == "EPSG:3006"
    with pytest.raises(crs.CrsError, match="unknown CRS 'EPSG:99999': use a code such as"):
        crs.parse_crs("EPSG:99999")


@pytest.mark.parametrize("code", [4326, 3435])  # degrees; Illinois State Plane in US feet
def test_only_projected_systems_in_metres_are_metric(code: int) -> None:
    with pytest.raises(crs.CrsError, match="is not a projected CRS in metres"):
        crs.check_metric(code)
    assert crs.check_metric(3006).name == "SWEREF99 TM"


def test_transformers_are_built_once_per_pair() -> None:
    assert crs.transformer(3006, 4326) is crs.transformer(3006, 4326)
    assert crs.transformer("EPSG:3006", 4326) is crs.transformer("EPSG:3006", 4326)


def test_transforms_agree_with_pyproj_directly() -> None:
    rng = np.random.default_rng(3)
    x, y = rng.uniform(300_000, 900_000, 500), rng.uniform(6_150_000, 7_600_000, 500)
    reference = Transformer.from_crs(3006, 4326, always_xy=True).transform(x, y)
    assert np.allclose(crs.to_lonlat(x, y, 3006), reference, atol=1e-9)
    lon, lat = reference
    assert np.allclose(crs.from_lonlat(lon, lat, 3006), (x, y), atol=1e-6)
    box = shapely.box(393_750, 6_189_250, 394_000, 6_189_500)
    moved = crs.transform_geometries(box, 3006, 4326)
    corners = Transformer.from_crs(3006, 4326, always_xy=True).transform(
        *np.asarray(box.exterior.coords).T
    )
    assert np.allclose(np.asarray(moved.exterior.coords), np.column_stack(corners), atol=1e-9)


def test_the_utm_zone_of_the_points_is_their_metric_system() -> None:
    assert crs.crs_label(crs.metric_crs_for([13.3], [55.8], 4326)) == "EPSG:32633"  # Eslöv
    assert crs.crs_label(crs.metric_crs_for([-87.63], [41.88], 4326)) == "EPSG:32616"  # Chicago
    assert crs.crs_label(crs.metric_crs_for([13.3], [55.8], 4326, 3006)) == "EPSG:3006"
