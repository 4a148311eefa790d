"""The report's drawings as inline SVG: maps from the stored geometry, small trend charts.

Maps are drawn in the storage CRS (metres, north up): a frame maps its box to pixels, and every
geometry becomes an SVG path. Hotspots are filled by their change label with a colour and a
hatching of their own and outlined in a line style of their own, so that a map printed in black
and white still tells them apart; each carries its number from the hotspot table. Nothing here
reads the database: geometries in, markup out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape
from typing import Any

import shapely

# change label -> (fill pattern, outline dash); each pattern (in DEFS) is a colour and a hatching:
# new red with diagonal lines, grown orange with crosses, stable blue with dots, shrunk green
# with horizontal lines
LABEL_STYLES: dict[str, tuple[str, str]] = {
    "new": ("hatch-new", "none"),
    "grown": ("hatch-grown", "none"),
    "stable": ("hatch-stable", "5 2"),
    "shrunk": ("hatch-shrunk", "1.5 1.5"),
}
DEFS = """<defs>
<pattern id="{p}hatch-new" width="5" height="5" patternUnits="userSpaceOnUse"
 patternTransform="rotate(45)"><rect width="5" height="5" fill="#d7301f"/>
<line x1="0" y1="0" x2="0" y2="5" stroke="#000" stroke-width="1.6"/></pattern>
<pattern id="{p}hatch-grown" width="5" height="5" patternUnits="userSpaceOnUse">
<rect width="5" height="5" fill="#fc8d59"/>
<path d="M0 0L5 5M5 0L0 5" stroke="#000" stroke-width="0.7"/></pattern>
<pattern id="{p}hatch-stable" width="4" height="4" patternUnits="userSpaceOnUse">
<rect width="4" height="4" fill="#91bfdb"/><circle cx="2" cy="2" r="0.8" fill="#000"/></pattern>
<pattern id="{p}hatch-shrunk" width="5" height="5" patternUnits="userSpaceOnUse">
<rect width="5" height="5" fill="#a6d96a"/>
<line x1="0" y1="2.5" x2="5" y2="2.5" stroke="#000" stroke-width="0.8"/></pattern>
</defs>"""  # {p}: a prefix of the drawing's own, as ids are unique in the whole document
BOUNDARY_STYLE = 'fill="#f4f4f0" stroke="#222" stroke-width="1.2"'
TATORT_STYLE = 'fill="#e2e2dc" stroke="#777" stroke-width="0.6" stroke-dasharray="3 2"'
FORECAST_STYLE = 'fill="#542788" fill-opacity="0.75" stroke="#000" stroke-width="0.5"'


@dataclass(frozen=True)
class Frame:
    """A box of the storage CRS drawn on width × height pixels (metres per pixel kept equal)."""

    minx: float
    miny: float
    maxx: float
    maxy: float
    width: float
    height: float

    @classmethod
    def around(
        cls, bounds: tuple[float, float, float, float], width: float, max_height: float
    ) -> Frame:
        """The frame that shows `bounds` (with a 4 % margin) at `width`, as tall as needed up
        to `max_height`; a box taller than that is widened on both sides instead."""
        minx, miny, maxx, maxy = bounds
        dx, dy = max(maxx - minx, 1.0), max(maxy - miny, 1.0)
        pad = 0.04 * max(dx, dy)
        minx, maxx, miny, maxy = minx - pad, maxx + pad, miny - pad, maxy + pad
        dx, dy = maxx - minx, maxy - miny
        height = min(max_height, width * dy / dx)
        if dx / dy < width / height:  # too tall for the page: widen the box
            grow = (dy * width / height - dx) / 2
            minx, maxx = minx - grow, maxx + grow
        else:  # too wide: heighten it
            grow = (dx * height / width - dy) / 2
            miny, maxy = miny - grow, maxy + grow
        return cls(minx, miny, maxx, maxy, width, height)

    @property
    def scale(self) -> float:
        """Pixels per metre."""
        return self.width / (self.maxx - self.minx)

    def point(self, x: float, y: float) -> tuple[float, float]:
        """The pixel of a point."""
        return (x - self.minx) * self.scale, (self.maxy - y) * self.scale

    @property
    def box(self) -> shapely.Geometry:
        """The frame's box in the storage CRS."""
        return shapely.box(self.minx, self.miny, self.maxx, self.maxy)


def path_data(geometry: Any, frame: Frame) -> str:
    """The SVG path of a (multi)polygon, simplified to half a pixel and clipped to the frame."""
    if geometry is None or shapely.is_empty(geometry):
        return ""
    clipped = shapely.intersection(geometry, frame.box.buffer(10 / frame.scale))
    simple = shapely.simplify(clipped, 0.5 / frame.scale, preserve_topology=True)
    parts = []
    for polygon in getattr(simple, "geoms", [simple]):
        if polygon.geom_type != "Polygon" or polygon.is_empty:
            continue
        for ring in (polygon.exterior, *polygon.interiors):
            points = [frame.point(x, y) for x, y in ring.coords]
            parts.append("M" + "L".join(f"{px:.1f} {py:.1f}" for px, py in points) + "Z")
    return "".join(parts)


@dataclass(frozen=True)
class Marked:
    """A hotspot as a map draws it: its number from the table, its change label, its shape."""

    number: int
    label: str
    geometry: Any


def hotspot_map(
    frame: Frame,
    boundary: Any,
    hotspots: list[Marked],
    *,
    title: str,
    prefix: str,
    tatorter: tuple[Any, ...] = (),
    detail: Frame | None = None,
    cells: Any = None,
) -> str:
    """A map: the area's boundary, tätorter, forecast cells, the hotspots numbered and styled
    by change label, the box of a detail map, a scale bar and north arrow."""
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="map" width="{frame.width:.0f}" '
        f'height="{frame.height:.0f}" viewBox="0 0 {frame.width:.0f} {frame.height:.0f}" '
        f'role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>',
        DEFS.format(p=prefix),
        f'<path d="{path_data(boundary, frame)}" {BOUNDARY_STYLE} fill-rule="evenodd"/>',
    ]
    for tatort in tatorter:
        parts.append(f'<path d="{path_data(tatort, frame)}" {TATORT_STYLE}/>')
    if cells is not None and not shapely.is_empty(cells):
        parts.append(f'<path class="forecast" d="{path_data(cells, frame)}" {FORECAST_STYLE}/>')
    for spot in hotspots:
        pattern, dash = LABEL_STYLES.get(spot.label, LABEL_STYLES["stable"])
        shape = path_data(spot.geometry, frame)
        parts.append(
            f'<path class="hotspot" data-number="{spot.number}" d="{shape}" '
            f'fill="url(#{prefix}{pattern})" stroke="#000" stroke-width="1.4" '
            f'stroke-dasharray="{dash}" fill-rule="evenodd"/>'
        )
    for spot in hotspots:
        parts.append(_number(spot, frame))
    if detail is not None:
        x0, y0 = frame.point(detail.minx, detail.maxy)
        x1, y1 = frame.point(detail.maxx, detail.miny)
        parts.append(
            f'<rect x="{x0:.1f}" y="{y0:.1f}" width="{x1 - x0:.1f}" height="{y1 - y0:.1f}" '
            'fill="none" stroke="#000" stroke-width="1" stroke-dasharray="4 3"/>'
        )
    parts += [_scale_bar(frame), _north(frame), "</svg>"]
    return "".join(parts)


def _number(spot: Marked, frame: Frame) -> str:
    """The hotspot's number in a white disc at a point inside it."""
    inside = shapely.point_on_surface(spot.geometry)
    x, y = frame.point(inside.x, inside.y)
    radius = 6.5 if spot.number < 10 else 8
    return (
        f'<g class="number" data-number="{spot.number}"><circle cx="{x:.1f}" cy="{y:.1f}" '
        f'r="{radius}" fill="#fff" stroke="#000" stroke-width="1"/>'
        f'<text x="{x:.1f}" y="{y + 3.3:.1f}" text-anchor="middle" font-size="9" '
        f'font-weight="bold">{spot.number}</text></g>'
    )


def _scale_bar(frame: Frame) -> str:
    """A bar of a round length near a fifth of the map's width, bottom left."""
    metres = _round_length(0.2 * (frame.maxx - frame.minx))
    length = metres * frame.scale
    y = frame.height - 10
    words = f"{metres / 1000:g} km".replace(".", ",") if metres >= 1000 else f"{metres:g} m"
    return (
        f'<g class="scale"><rect x="10" y="{y - 4:.1f}" width="{length:.1f}" height="4" '
        f'fill="#000"/><text x="{12 + length:.1f}" y="{y:.1f}" font-size="8">{words}</text></g>'
    )


def _round_length(metres: float) -> float:
    """1, 2 or 5 times a power of ten, at most `metres`."""
    power = 10 ** math.floor(math.log10(max(metres, 1.0)))
    return max(m * power for m in (1, 2, 5) if m * power <= metres)


def _north(frame: Frame) -> str:
    """A north arrow, top right."""
    x = frame.width - 14
    return (
        f'<g class="north"><path d="M{x} 8L{x + 5} 22L{x} 19L{x - 5} 22Z" fill="#000"/>'
        f'<text x="{x}" y="32" font-size="8" text-anchor="middle">N</text></g>'
    )


def legend_swatch(label: str, size: float = 14) -> str:
    """A small square styled as hotspots of that change label are on the maps."""
    pattern, dash = LABEL_STYLES.get(label, LABEL_STYLES["stable"])
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="swatch" width="{size}" '
        f'height="{size}" viewBox="0 0 {size} {size}" aria-hidden="true">'
        f'{DEFS.format(p=label + "-")}<rect x="1" y="1" width="{size - 2}" height="{size - 2}" '
        f'fill="url(#{label}-{pattern})" '
        f'stroke="#000" stroke-width="1.2" stroke-dasharray="{dash}"/></svg>'
    )


def sparkline(values: list[int], width: float = 84, height: float = 20) -> str:
    """Bars of a weekly series, oldest first, the last one black; empty for no series."""
    if not values:
        return ""
    top = max(max(values), 1)
    step = width / len(values)
    bars = []
    for i, v in enumerate(values):
        h = max(0.8, (height - 2) * v / top) if v else 0.8
        colour = "#000" if i == len(values) - 1 else "#8a8a8a"
        bars.append(
            f'<rect x="{i * step + 0.6:.1f}" y="{height - h:.1f}" width="{step - 1.2:.1f}" '
            f'height="{h:.1f}" fill="{colour}"/>'
        )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="spark" width="{width:.0f}" '
        f'height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" role="img" '
        f'aria-label="trend över {len(values)} veckor">{"".join(bars)}</svg>'
    )


def bar_chart(
    values: list[float], labels: list[str], width: float = 440, height: float = 110
) -> str:
    """A bar chart of a series with a label under every other bar, the last bar black."""
    if not values:
        return ""
    top = max(max(values), 1.0)
    plot = height - 16
    step = width / len(values)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{width:.0f}" '
        f'height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" role="img" '
        f'aria-label="stapeldiagram över {len(values)} perioder">',
        f'<line x1="0" y1="{plot:.1f}" x2="{width:.0f}" y2="{plot:.1f}" stroke="#000" '
        'stroke-width="0.6"/>',
    ]
    for i, (v, label) in enumerate(zip(values, labels, strict=True)):
        h = max(0.8, (plot - 4) * v / top) if v else 0.8
        colour = "#000" if i == len(values) - 1 else "#9a9a9a"
        parts.append(
            f'<rect x="{i * step + 1.5:.1f}" y="{plot - h:.1f}" width="{step - 3:.1f}" '
            f'height="{h:.1f}" fill="{colour}"/>'
        )
        if (len(values) - 1 - i) % 2 == 0:
            parts.append(
                f'<text x="{i * step + step / 2:.1f}" y="{height - 4:.1f}" font-size="7.5" '
                f'text-anchor="middle">{escape(label)}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)
