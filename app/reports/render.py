"""The report as HTML (a Jinja2 template, inline SVG, inline CSS) and as PDF (WeasyPrint).

The document's sections are listed once, in SECTIONS: each has an id, a Swedish title and the
function that says whether it has something to show. A section without content takes no
number, so the åtgärder section (actions decided by the ledningsgrupp and their measured
effect, which the law's åtgärdsplan draws on) already has its place here and joins the
document, numbered before the sources, once actions are stored: only its function changes.

The PDF is A4 with the kommun's name, the period and the page number on every page, its fonts
embedded (subsets), tagged for screen readers (WeasyPrint's pdf_tags), and reproducible: the
same run and texts give the same bytes (fonts are stamped with SOURCE_DATE_EPOCH, the
reproducible-builds convention, set to the epoch unless the environment sets it).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import shapely
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from app.core import swedish
from app.reports import maps, words
from app.reports.content import Report

TEMPLATES = Path(__file__).with_name("templates")
MAP_WIDTH_PX = 640
DETAIL_MIN_M = 1500.0  # the detail map shows at least this much of the ground
PARAMETER_WORDS = {
    "eps_m": ("radie", " m"),
    "min_samples": ("minsta antal", ""),
    "cell_size_m": ("ruta", " m"),
    "bandwidth_m": ("bandbredd", " m"),
    "bandwidth_m_used": ("använd bandbredd", " m"),
    "distance_band_m": ("avståndsband", " m"),
    "window_steps": ("veckor", ""),
    "window_weeks": ("veckor", ""),
    "weeks": ("veckor", ""),
    "coverage": ("flaggad andel av ytan", ""),
    "method": ("metod", ""),
    "kernel": ("kärna", ""),
    "min_incidents": ("minst händelser", ""),
    "fdr": ("korrektion för många test (FDR)", ""),
}


@dataclass(frozen=True)
class Section:
    """A part of the document: its anchor, title and whether it has content."""

    id: str
    title: str
    shown: Callable[[Report], bool]


SECTIONS = (
    Section("sammanfattning", "Sammanfattning", lambda r: True),
    Section("laget", "Läget", lambda r: True),
    Section("karta", "Karta", lambda r: True),
    Section("hotspots", "Hotspotar", lambda r: True),
    Section("trender", "Trender", lambda r: True),
    Section("prognos", "Prognos", lambda r: r.forecast is not None),
    # åtgärder: shown once est.action holds the ledningsgrupp's actions for the area
    Section("atgarder", "Åtgärder och uppföljning", lambda r: False),
    Section("kallor", "Källor och begränsningar", lambda r: True),
)


@lru_cache(maxsize=1)
def _environment() -> Environment:
    """The template environment (autoescaping HTML), made once."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["paragraphs"] = _paragraphs
    return env


def _paragraphs(value: str) -> Markup:
    """Text as HTML paragraphs, one per blank-line-separated block, escaped."""
    blocks = [b.strip() for b in value.replace("\r\n", "\n").split("\n\n") if b.strip()]
    return Markup("").join(Markup("<p>{}</p>").format(b) for b in blocks)


def render_html(report: Report) -> str:
    """The report as one self-contained HTML document."""
    sections = [s for s in SECTIONS if s.shown(report)]
    numbers = {s.id: i for i, s in enumerate(sections, start=1)}
    return (
        _environment()
        .get_template("report.html")
        .render(
            r=report,
            w=words,
            sv=swedish,
            css=Markup((TEMPLATES / "report.css").read_text(encoding="utf-8")),
            sections=sections,
            numbers=numbers,
            heads=words.HEADS[report.period.kind],
            drawings=_drawings(report),
            swatches={label: Markup(maps.legend_swatch(label)) for label in maps.LABEL_STYLES},
            sparks={h.number: Markup(maps.sparkline(h.weekly)) for h in report.hotspots},
            methods=_methods(report),
            notes=_notes(report),
            title=f"Lägesbild {report.run.area_name}, {words.period_title(report.period)}",
        )
    )


def render_pdf(report: Report) -> bytes:
    """The report as a tagged A4 PDF with embedded fonts."""
    from weasyprint import HTML  # a heavy import: only where PDFs are made

    os.environ.setdefault("SOURCE_DATE_EPOCH", "0")
    logging.getLogger("weasyprint.progress").setLevel(logging.WARNING)  # 7 lines a document
    pdf = HTML(string=render_html(report)).write_pdf(pdf_tags=True)
    assert pdf is not None
    return bytes(pdf)


def _drawings(report: Report) -> dict[str, Markup]:
    """The overview map, the detail map (when the hotspots lie close together), the area
    chart and the forecast map."""
    boundary = report.run.boundary
    marked = [maps.Marked(h.number, h.label, h.geometry) for h in report.hotspots]
    overview = maps.Frame.around(boundary.bounds, MAP_WIDTH_PX, 420)
    detail = _closer(report, [h.geometry for h in report.hotspots], 380)
    out = {
        "overview": maps.hotspot_map(
            overview,
            boundary,
            marked,
            title=f"Karta över {report.run.area_name} med hotspotar",
            prefix="overview-",
            tatorter=tuple(report.tatorter),
            detail=detail,
        ),
        "chart": maps.bar_chart(
            [float(v) for _, v in report.series], [label for label, _ in report.series]
        ),
    }
    if detail is not None:
        out["detail"] = maps.hotspot_map(
            detail,
            boundary,
            marked,
            title="Utsnitt: hotspotarna",
            prefix="detail-",
            tatorter=tuple(report.tatorter),
        )
    if report.forecast is not None:
        cells = report.forecast.cells
        shapes = [h.geometry for h in report.hotspots] + ([cells] if cells is not None else [])
        out["forecast"] = maps.hotspot_map(
            _closer(report, shapes, 420) or overview,
            boundary,
            marked,
            title="Prognos: rutorna med högst risk nästa vecka",
            prefix="forecast-",
            tatorter=tuple(report.tatorter),
            cells=cells,
        )
    return {name: Markup(svg) for name, svg in out.items()}


def _closer(report: Report, shapes: list[Any], max_height: float) -> maps.Frame | None:
    """A frame closer than the whole area around the shapes, unless they spread over most of
    it (or there are none)."""
    if not shapes:
        return None
    minx, miny, maxx, maxy = shapely.union_all(shapes).bounds
    cx, cy = (minx + maxx) / 2, (miny + maxy) / 2
    half = max(maxx - minx, maxy - miny, DETAIL_MIN_M) / 2 + 300
    bx0, by0, bx1, by1 = report.run.boundary.bounds
    if 2 * half > 0.6 * max(bx1 - bx0, by1 - by0):
        return None
    return maps.Frame.around((cx - half, cy - half, cx + half, cy + half), MAP_WIDTH_PX, max_height)


def _methods(report: Report) -> list[tuple[str, str]]:
    """The methods and their parameters in words: for analysts as the run used them, for
    viewers as the profile sets them (a value the run chose from the incidents, such as a
    bandwidth from their spread or a core size from their number, tells of the incidents)."""
    used = report.run.parameters
    if report.viewer:
        used = report.run.settings.methods.model_dump(mode="json")
    out = []
    for key in ("dbscan", "kde", "gistar", "emerging", "forecast"):
        params = used.get(key)
        if not isinstance(params, dict):
            continue
        said = []
        for name, value in params.items():
            if name not in PARAMETER_WORDS:
                continue
            label, unit = PARAMETER_WORDS[name]
            if value is None and name in ("min_samples", "bandwidth_m"):
                said.append(f"{label} efter händelserna")
            elif value is not None:
                said.append(f"{label} {_value(value)}{unit}")
        out.append((words.METHODS[key], ", ".join(said)))
    return out


def _value(value: Any) -> str:
    """A parameter's value in Swedish."""
    if isinstance(value, bool):
        return "ja" if value else "nej"
    if isinstance(value, float):
        return words.number(value, 0 if value.is_integer() else 2)
    return str(value)


def _notes(report: Report) -> list[tuple[str, str, str]]:
    """The methods that could not run this period: method, Swedish words, the run's own."""
    notes = report.run.notes.get("viewer" if report.viewer else "analyst", {})
    out = []
    for method, said in sorted(notes.items()):
        if said.startswith("no hotspots"):
            swedish_words = "inga hotspotar: för få händelser nära varandra"
        else:
            swedish_words = "inte beräknad: för få händelser"
        out.append((words.METHODS.get(method, method), swedish_words, said))
    return out
