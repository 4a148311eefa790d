"""The document without a database: every section renders for sparse runs too (no hotspots, no
forecast to score, a tertial), the åtgärder section has its place but no heading yet, and the
words follow the change tests."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

import shapely

from app.access.privacy import Protection
from app.reports import content, maps, render, words
from app.reports.texts import ReportTexts
from app.runs.recompute import RunPeriod

TZ = "Europe/Stockholm"
SQUARE = shapely.box(400_000, 6_200_000, 410_000, 6_210_000)
SIGNIFICANT_UP = {"significant": True, "direction": "up", "p": 0.001, "p_adjusted": 0.01}
QUIET = {"significant": False, "direction": "up", "p": 0.2, "p_adjusted": 0.6}


def _figure(this: float, previous: float, tests: dict[str, Any]) -> content.GroupFigure:
    return content.GroupFigure("all", "Alla kategorier", this, previous, 0, previous, tests)


def _report(
    period: RunPeriod,
    audience: content.Audience = "viewer",
    hotspots: list[content.HotspotRow] | None = None,
    forecast: content.Forecast | None = None,
) -> content.Report:
    run = content.Run(
        id=7,
        area_id=1,
        area_code="9999",
        area_name="Provkommun",
        boundary=SQUARE,
        profile_id=1,
        profile="standard",
        provisional=False,
        published_at=datetime(2026, 11, 30, 2, 40, tzinfo=UTC),
        parameters={},
        provenance={},
        figures={},
        notes={"viewer": {"gistar": "not computed: 3 incidents shown, Gi* needs 30"}},
        code_version="test",
    )
    return content.Report(
        request=content.ReportRequest("9999", period, audience=audience),
        run=run,
        protection=Protection((125, 250, 500, 1000, 2000), 5, 5, (-1, 0, 1), (1, 2, 1)),
        figures=[_figure(3, 10, {"baseline_mean": QUIET, "previous_period": QUIET})],
        series=[("v47", 10), ("v48", 3)],
        hotspots=hotspots or [],
        gone=0,
        emerging=[],
        emerging_cell_m=250,
        concentration=(None, None),
        concentration_cells=(250, 80),
        forecast=forecast,
        sources=[],
        texts=ReportTexts("9999", period.label, "", "", None, None),
    )


def test_a_week_without_hotspots_or_a_scorable_forecast_still_renders_every_section() -> None:
    week = RunPeriod.week(date(2026, 11, 23), TZ)
    forecast = content.Forecast(250, None, 0, [], {"incidents": 0, "flagged_cells": 4})
    html = render.render_html(_report(week, forecast=forecast))
    numbered = re.findall(r"<h2>(\d)\. ([^<]+)</h2>", html)
    assert [n for n, _ in numbered] == [str(i) for i in range(1, 8)]
    assert numbered[-1][1] == "Källor och begränsningar"
    assert "Åtgärder" not in html  # its place is in SECTIONS, shown once actions exist
    assert "Inga hotspotar denna vecka." in html
    assert "Ingen prognos kunde beräknas" in html and "inga händelser att räkna" in html
    assert "Getis-Ord Gi*: inte beräknad: för få händelser" in html
    assert "&lt; 5" in html and ">3<" not in html  # a shown 3 is below k


def test_a_tertial_has_no_forecast_section_and_counts_tertials() -> None:
    tertial = RunPeriod.tertial(date(2026, 10, 1), TZ)
    html = render.render_html(_report(tertial))
    assert "Tertial 3 2026 · 1 september–31 december 2026" in html
    assert not re.search(r"<h2>\d\. Prognos", html) and "Denna tertial" in html
    assert re.findall(r"<h2>(\d)\. Källor", html) == ["6"]


def test_the_hotspots_are_numbered_alike_on_the_map_and_in_the_table() -> None:
    week = RunPeriod.week(date(2026, 11, 23), TZ)
    rows = [
        content.HotspotRow(n, f"k{n}", None, label, 30 - n, 5, [1] * 12, None, None, None, shape)
        for n, label, shape in (
            (1, "new", shapely.box(402_000, 6_202_000, 402_500, 6_202_500)),
            (2, "shrunk", shapely.box(404_000, 6_204_000, 404_250, 6_204_500)),
        )
    ]
    html = render.render_html(_report(week, hotspots=rows))
    table = re.findall(r'<tr data-number="(\d+)"', html)
    drawn = re.findall(r'<path class="hotspot" data-number="(\d+)"', html)
    assert table == ["1", "2"] and sorted(set(drawn)) == ["1", "2"]
    assert 'fill="url(#overview-hatch-new)"' in html  # new and shrunk look different in grey
    assert 'fill="url(#overview-hatch-shrunk)"' in html


def test_a_rise_is_beyond_chance_only_when_the_corrected_test_says_so() -> None:
    rise = _figure(60, 20, {"previous_period": SIGNIFICANT_UP, "baseline_mean": QUIET})
    assert words.changes(rise, "week", 5, viewer=False) == (
        "ökning utöver slumpen mot förra veckan (+200 %)"
    )
    # the same counts with a test that did not survive the correction: no claim, no percentage
    quiet = _figure(60, 20, {"previous_period": QUIET, "baseline_mean": QUIET})
    assert words.changes(quiet, "week", 5, viewer=False) == "ingen förändring utöver slumpen"
    # small counts: the rise is said, never as a percentage
    small = _figure(9, 2, {"previous_period": SIGNIFICANT_UP})
    assert words.changes(small, "week", 5, viewer=False) == "ökning utöver slumpen mot förra veckan"
    assert words.count(3, 5, viewer=True) == "< 5" and words.count(3, 5, viewer=False) == "3"


def test_a_frame_keeps_metres_square_and_the_scale_bar_is_a_round_length() -> None:
    frame = maps.Frame.around(SQUARE.bounds, 640, 420)
    assert abs((frame.maxx - frame.minx) / (frame.maxy - frame.miny) - 640 / 420) < 1e-9
    svg = maps.hotspot_map(frame, SQUARE, [], title="t", prefix="p-")
    assert ">2 km<" in svg
