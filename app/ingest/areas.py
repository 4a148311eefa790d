"""Reading area boundaries from files: SCB's kommun and län layers, and tätorter."""

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


# the columns a tätort file names its code, name and year with (SCB's layouts, then plain ones)
TATORT_CODE = ("tatortskod", "tatortkod", "tatort_kod", "tkod", "code", "kod")
TATORT_NAME = ("tatort", "tatortsnamn", "tatortnamn", "tatort_namn", "namn", "name")
TATORT_YEAR = ("referensar", "referensår", "ar", "år", "year")


def read_tatort_file(
    path: Path, layer: str | None = None, year: int | None = None
) -> gpd.GeoDataFrame:
    """Read tätort boundaries (SCB's open geodata, or any file with a code and a name per
    polygon) as areas of kind `tatort`: drawn on the map page and in the reports, never run.

    A file that holds several years (SCB's GeoPackage holds every delimitation since 1960)
    gives the year asked for, or its latest. A code without a letter in front gets SCB's `T`,
    so a tätort can never take a kommun's code.
    """
    layers = [str(name) for name, _ in pyogrio.list_layers(path)]
    if layer is None:
        layer = next((n for n in layers if "tatort" in n.lower()), layers[0] if layers else None)
    if layer is None or layer not in layers:
        raise InvalidInput(f"{path.name}: no layer {layer!r}; it has {', '.join(layers) or 'none'}")
    frame = gpd.read_file(path, layer=layer)
    if frame.crs is None:
        raise InvalidInput(f"{path.name}, layer {layer}: no CRS")
    columns = {str(c).lower(): c for c in frame.columns if c != frame.geometry.name}

    def column(names: tuple[str, ...], what: str) -> str:
        found = next((columns[n] for n in names if n in columns), None)
        if found is None:
            raise InvalidInput(
                f"{path.name}, layer {layer}: no column for the tätort's {what} "
                f"(one of {', '.join(names)}); it has {', '.join(columns.values())}"
            )
        return str(found)

    code, name = column(TATORT_CODE, "code"), column(TATORT_NAME, "name")
    held = next((columns[n] for n in TATORT_YEAR if n in columns), None)
    if held is not None:
        years = frame[held].astype(int)
        chosen = int(years.max()) if year is None else year
        if chosen not in set(years):
            held_years = ", ".join(str(y) for y in sorted(set(years)))
            raise InvalidInput(f"{path.name}: no tätorter of {chosen}; it has {held_years}")
        frame = frame[years == chosen]
    elif year is not None:
        raise InvalidInput(f"{path.name}, layer {layer}: no year column to choose {year} from")
    codes = frame[code].astype(str).str.strip()
    codes = codes.where(codes.str[:1].str.isalpha(), "T" + codes)
    missing = frame.geometry.isna() | frame.geometry.is_empty | (codes == "T") | (codes == "")
    if missing.any():
        row = int(missing.to_numpy().nonzero()[0][0]) + 1
        raise InvalidInput(f"{path.name}, layer {layer}, feature {row}: no code or no geometry")
    names = frame[name].astype(str).str.strip()
    parts = gpd.GeoDataFrame({"code": codes, "name": names}, geometry=frame.geometry, crs=frame.crs)
    for tcode, group in parts.groupby("code"):
        if group["name"].nunique() > 1:  # one tätort in several parts is one area; two are not
            raise InvalidInput(
                f"{path.name}, layer {layer}: the code {tcode} is given to "
                f"{', '.join(sorted(group['name'].unique()))}"
            )
    whole = parts.dissolve(by="code", aggfunc="first", as_index=False)
    return gpd.GeoDataFrame(
        {"code": whole["code"], "name": whole["name"], "kind": "tatort"},
        geometry=whole.geometry,
        crs=frame.crs,
    )
