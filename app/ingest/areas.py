"""Reading area boundaries from files: SCB's kommun and län layers."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pyogrio

from app.core import AREAS_FILE
from app.core.errors import InvalidInput

DEFAULT_AREAS_FILE = AREAS_FILE


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
        raise InvalidInput(f"{path} has neither a 'kommuner' nor a 'lan' layer")
    return gpd.GeoDataFrame(
        gpd.pd.concat(frames, ignore_index=True), geometry="geometry", crs=frames[0].crs
    )
