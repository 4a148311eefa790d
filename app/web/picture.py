"""The week's picture the map page shows beside the map, for one caller, area, profile and week.

Everything comes from the area's published run, in the version the caller may see (the rule of
app.access.coverage): the analyst version for analysts whose organisation covers the area raw,
the viewer version for everyone else. The figures, hotspot list and series are the weekly
report's (app.reports.content), so the page and the report never disagree; the page adds what
a click on a hotspot opens: its counts per category, its change since last week tested in words,
its emerging class explained, busiest weekday and hour (analysts only) and the run's provenance.

A viewer's picture holds viewer values only: shown counts (below k as "< k"), hotspots as the
shown cells they touch, counts per category group from est.viewer_grid, and no exact number of
incidents used or left out. The map's layers are not here: the page reads them from /ogc.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
import shapely
from sqlalchemy import Connection, text

from app.access import privacy
from app.access.auth import Principal
from app.access.coverage import COVERED_AREAS_SQL
from app.core import swedish
from app.core.errors import NotFound
from app.reports import content, words
from app.reports.content import HotspotRow, Report, ReportRequest
from clustering.change import Comparison, change_tests
from geo.crs import LONLAT, transform_geometries
from geo.grid import cell_centres

# The layers of the page: OGC collection, Swedish title, who gets it (raw: analysts who see the
# area's incidents). The order is the order of the layer list.
LAYERS: tuple[tuple[str, str, bool], ...] = (
    ("hotspots", "Hotspotar", False),
    ("density", "Täthet", False),
    ("gistar", "Getis-Ord Gi*", False),
    ("emerging", "Trender (emerging hot spots)", False),
    ("forecast", "Prognos nästa vecka", False),
    ("viewer-grid", "Händelser per ruta", False),
    ("incidents", "Händelser som punkter", True),
)


@dataclass(frozen=True)
class AreaChoice:
    """An area the caller's organisation covers and has a published week for."""

    id: int
    code: str
    name: str
    kind: str
    raw: bool
    direct: bool


def covered_areas(conn: Connection) -> list[AreaChoice]:
    """The areas with a published week's run that the session's organisation covers: its own
    grants first, kommuner before the others."""
    rows = conn.execute(
        text(f"""
        WITH covered AS ({COVERED_AREAS_SQL})
        SELECT a.id, a.code, a.name, a.kind, cv.raw,
               EXISTS (SELECT 1 FROM est.area_grant g
                       WHERE g.area_id = a.id AND g.organisation_id = est.current_org()) AS direct
        FROM covered cv JOIN est.area a ON a.id = cv.area_id
        WHERE EXISTS (SELECT 1 FROM est.hotspot_run r
                      WHERE r.area_id = a.id AND r.period_kind = 'week'
                        AND r.status = 'succeeded' AND r.published_at IS NOT NULL)
        ORDER BY 6 DESC, a.kind <> 'kommun', a.name, a.code
    """)
    ).all()
    return [AreaChoice(*r) for r in rows]


def _profiles(conn: Connection, area_id: int) -> list[dict[str, Any]]:
    """The profiles of the area with a published week, the default one first."""
    rows = conn.execute(
        text("""
        SELECT p.name, p.category_group_code AS "group", g.label_sv AS group_name
        FROM est.analysis_profile p JOIN est.category_group g ON g.code = p.category_group_code
        WHERE p.area_id = :area
          AND (p.organisation_id IS NULL OR p.organisation_id = est.current_org())
          AND EXISTS (SELECT 1 FROM est.hotspot_run r
                      WHERE r.profile_id = p.id AND r.period_kind = 'week'
                        AND r.status = 'succeeded' AND r.published_at IS NOT NULL)
        ORDER BY p.name <> :default, p.name, p.organisation_id NULLS FIRST
    """),
        {"area": area_id, "default": content.DEFAULT_NAME},
    ).all()
    seen: dict[str, dict[str, Any]] = {}
    for r in rows:  # the organisation's own profile of a name stands in for the default one
        seen[r.name] = dict(r._mapping)
    return list(seen.values())


def _weeks(conn: Connection, area_id: int, profile: str) -> list[dict[str, Any]]:
    """The published weeks of the area and profile, newest first, with whether each was still
    open when its latest run computed it."""
    rows = conn.execute(
        text("""
        SELECT DISTINCT ON (r.period_label) r.period_label AS label, r.provisional
        FROM est.hotspot_run r JOIN est.analysis_profile p ON p.id = r.profile_id
        WHERE r.area_id = :area AND p.name = :profile AND r.period_kind = 'week'
          AND (p.organisation_id IS NULL OR p.organisation_id = est.current_org())
          AND r.status = 'succeeded' AND r.published_at IS NOT NULL
        ORDER BY r.period_label DESC, r.published_at DESC
    """),
        {"area": area_id, "profile": profile},
    ).all()
    return [{"label": r.label, "provisional": r.provisional} for r in rows]


def _group_names(conn: Connection) -> list[dict[str, str]]:
    rows = conn.execute(
        text("SELECT code, label_sv FROM est.category_group ORDER BY code = 'all' DESC, label_sv")
    ).all()
    return [{"code": r.code, "name": r.label_sv} for r in rows]


def _choose_week(weeks: list[dict[str, Any]], asked: str | None) -> str:
    """The week asked for, or the newest closed one (the newest at all when none is closed)."""
    labels = [w["label"] for w in weeks]
    if asked is not None:
        if asked not in labels:
            raise NotFound(f"no published run of week {asked} for this area and profile")
        return asked
    closed = [w["label"] for w in weeks if not w["provisional"]]
    return (closed or labels)[0]


def week_picture(
    conn: Connection,
    principal: Principal,
    timezone: str,
    srid: int,
    area: str | None = None,
    week: str | None = None,
    profile: str | None = None,
) -> dict[str, Any]:
    """What the page shows beside the map for the caller (see the module docstring)."""
    areas = covered_areas(conn)
    chosen = (
        next((a for a in areas if a.code == area), None) if area else areas[0] if areas else None
    )
    if chosen is None:
        if area is None:
            return {"areas": [], "groups": _group_names(conn)}
        raise NotFound(f"no area {area!r} with a published week that your organisation covers")
    profiles = _profiles(conn, chosen.id)
    names = [p["name"] for p in profiles]
    profile = profile or names[0]
    if profile not in names:
        raise NotFound(f"no profile {profile!r} with a published week for area {chosen.code}")
    weeks = _weeks(conn, chosen.id, profile)
    label = _choose_week(weeks, week)
    audience: content.Audience = "analyst" if chosen.raw else "viewer"
    period = content.parse_period(label, timezone, "week")
    report = content.build(
        conn, ReportRequest(chosen.code, period, profile, audience, principal.organisation_id)
    )
    return {
        "audience": audience,
        "area": {
            "code": chosen.code,
            "name": chosen.name,
            "bbox": _bbox(report.run.boundary, srid),
        },
        "areas": [{"code": a.code, "name": a.name, "kind": a.kind} for a in areas],
        "profile": profile,
        "profiles": profiles,
        "groups": _group_names(conn),
        "weeks": [{**w, "title": _week_title(w["label"], timezone)} for w in weeks],
        "week": {
            "label": label,
            "title": words.period_title(period),
            "days": words.day_span(period.first_day, period.end_day),
            "provisional": report.run.provisional,
            # the week as a datetime interval of OGC API (both ends included)
            "start": period.start.isoformat(),
            "end": (period.end - timedelta(microseconds=1)).isoformat(),
        },
        "run": _provenance(report),
        "layers": [
            {"id": layer, "title": title} for layer, title, raw in LAYERS if chosen.raw or not raw
        ],
        "k": report.k,
        "hotspots": _hotspots(conn, report, srid),
        "new": [h.number for h in report.hotspots if h.label == "new"],
        "gone": report.gone,
        "concentration": _concentration(report),
        "figures": [_figure(f, report) for f in report.figures],
        "emerging": [
            {"class": c, "name": swedish.emerging_class(c), "cells": n, "km2": round(km2, 2)}
            for c, n, km2 in report.emerging
        ],
    }


def _week_title(label: str, timezone: str) -> str:
    return words.period_title(content.parse_period(label, timezone, "week"))


def _bbox(geometry: Any, srid: int) -> list[float]:
    """A geometry's bounds in lon/lat, rounded to about a metre."""
    lonlat = transform_geometries(geometry, srid, LONLAT)
    return [round(float(v), 5) for v in shapely.bounds(lonlat)]


def _count(value: float | None, report: Report) -> str:
    return words.count(value, report.k, report.viewer)


def _provenance(report: Report) -> dict[str, Any]:
    """The run's window, method and what it used and left out (numbers for analysts only)."""
    tz = report.period.tz
    weeks = report.run.settings.window_weeks
    first = report.period.last_monday - timedelta(days=7 * (weeks - 1))
    dbscan = report.run.parameters.get("dbscan") or {}
    method = "DBSCAN"
    if dbscan:
        eps = words.number(float(dbscan.get("eps_m", 0)))
        method += f" (radie {eps} m, minst {dbscan.get('min_samples')} händelser)"
    out: dict[str, Any] = {
        "id": report.run.id,
        "published": words.moment(report.run.published_at, tz),
        "window": words.day_span(first, report.period.end_day),
        "window_weeks": weeks,
        "method": method,
        "cell_size_m": report.run.settings.cell_size_m,
    }
    if report.viewer:
        out["left_out"] = (
            "Händelser i känsliga kategorier och händelser utan en verklig plats räknas aldrig; "
            f"visade antal är avrundade till {report.protection.rounding_base}, under {report.k} "
            f"visas < {report.k}."
        )
        return out
    left = report.run.provenance.get("left_out", {})
    used, read = (
        report.run.provenance.get("incidents_used"),
        report.run.provenance.get("incidents_read"),
    )
    out["incidents_used"] = used
    out["incidents_read"] = read
    out["left_out"] = (
        f"{used} av {read} inlästa händelser användes; utanför: känsliga kategorier "
        f"{left.get('sensitive', 0)}, områdets mittpunkt {left.get('area_centroid', 0)}, "
        f"okänd plats {left.get('unknown_location', 0)}, för långt tidsintervall "
        f"{left.get('long_interval', 0)}."
    )
    return out


def _concentration(report: Report) -> dict[str, Any]:
    share, before = report.concentration
    size, cells = report.concentration_cells
    said = f"{words.share(share)} av händelserna ligger i de hetaste 5 % av ytan"
    if before is not None:
        said += f" (förra veckan {words.share(before)})"
    return {
        "share": share,
        "before": before,
        "cells": cells,
        "cell_size_m": size,
        "words": said + ".",
    }


def _figure(figure: content.GroupFigure, report: Report) -> dict[str, Any]:
    return {
        "group": figure.code,
        "name": figure.name,
        "this": figure.this,
        "this_text": _count(figure.this, report),
        "last": figure.previous,
        "last_text": _count(figure.previous, report),
        "words": words.changes(figure, report.period.kind, report.k, report.viewer),
    }


def _hotspots(conn: Connection, report: Report, srid: int) -> list[dict[str, Any]]:
    """Every hotspot of the run as the list and the panel show it, ranked as the report is."""
    rows = report.hotspots
    ids: dict[str, int] = {
        r.hotspot_key: r.id
        for r in conn.execute(
            text("SELECT hotspot_key, id FROM est.hotspot WHERE run_id = :run"),
            {"run": report.run.id},
        )
    }
    if report.viewer:
        categories, scope = _viewer_categories(conn, report), "visade antal, denna vecka"
    else:
        categories, scope = (
            _analyst_categories(conn, report),
            (f"analysfönstret, {report.run.settings.window_weeks} veckor"),
        )
    # one family of tests: the week's changes of all the run's hotspots, corrected together
    changes = change_tests([Comparison(_week(r, -1), _week(r, -2), "count") for r in rows])
    bounds = _bboxes([r.geometry for r in rows], srid) if rows else []
    out = []
    for row, change, bbox in zip(rows, changes, bounds, strict=True):
        emerging = row.emerging
        out.append(
            {
                "id": ids.get(row.key),
                "key": row.key,
                "number": row.number,
                "name": row.name,
                "label": row.label,
                "label_sv": swedish.change_label(row.label),
                "count": row.count,
                "count_text": _count(row.count, report),
                "this_week": _week(row, -1),
                "this_week_text": _count(_week(row, -1), report),
                "last_week": _week(row, -2),
                "last_week_text": _count(_week(row, -2), report),
                "weekly": _series(row, report),
                "change": {
                    "direction": change.direction,
                    "significant": bool(change.significant),
                    "p": change.p_adjusted,
                    "words": swedish.tested_change(change.direction, bool(change.significant)),
                },
                "emerging": None
                if emerging is None
                else {
                    "class": emerging,
                    "name": swedish.emerging_class(emerging),
                    "sentence": swedish.emerging_explained(emerging),
                },
                "busiest": None
                if row.busiest_weekday is None
                else words.weekday_hour(row.busiest_weekday, row.busiest_hour),
                "categories": categories(row),
                "categories_scope": scope,
                "bbox": bbox,
            }
        )
    return out


def _week(row: HotspotRow, index: int) -> int:
    """The hotspot's count of a week of its series (-1: the run's week, -2: the one before)."""
    return row.weekly[index] if len(row.weekly) >= -index else 0


def _series(row: HotspotRow, report: Report) -> list[dict[str, Any]]:
    """The 12 weeks up to the run's week: ISO week number, count and how it reads."""
    last = report.period.last_monday
    mondays = [last.fromordinal(last.toordinal() - 7 * k) for k in range(len(row.weekly))][::-1]
    return [
        {"week": f"v{m.isocalendar()[1]}", "count": n, "text": _count(n, report)}
        for m, n in zip(mondays, row.weekly, strict=True)
    ]


def _bboxes(geometries: list[Any], srid: int) -> list[list[float]]:
    lonlat = transform_geometries(np.array(geometries, dtype=object), srid, LONLAT)
    return [[round(float(v), 5) for v in shapely.bounds(g)] for g in lonlat]


# a hotspot row's counts per category (or category group), as the panel lists them
Categories = Callable[[HotspotRow], list[dict[str, Any]]]


def _analyst_categories(conn: Connection, report: Report) -> Categories:
    """Counts per category of each hotspot's members (the analyst version's statistics)."""
    rows = conn.execute(
        text("""
        SELECT h.hotspot_key, c.key AS code, k.label_sv AS name, c.value::integer AS n
        FROM est.hotspot h
        CROSS JOIN LATERAL jsonb_each_text(h.stats -> 'counts_by_category') AS c(key, value)
        LEFT JOIN est.category k ON k.code = c.key
        WHERE h.run_id = :run
        ORDER BY h.hotspot_key, c.value::integer DESC, k.label_sv
    """),
        {"run": report.run.id},
    ).all()
    found: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        found.setdefault(r.hotspot_key, []).append(
            {"code": r.code, "name": r.name or r.code, "count": r.n, "text": str(r.n)}
        )
    return lambda row: found.get(row.key, [])


def _viewer_categories(conn: Connection, report: Report) -> Categories:
    """Shown counts per category group of the run's week in each hotspot's cells: one
    est.viewer_grid answer per group, summed over the cells whose centres lie in it."""
    size = report.run.settings.cell_size_m
    groups = [g for g in _group_names(conn) if g["code"] != "all"]
    grids = [
        (
            g,
            privacy.viewer_grid(
                conn, report.protection, report.run.area_code, size, report.period.period, g["code"]
            ),
        )
        for g in groups
    ]

    def categories(row: HotspotRow) -> list[dict[str, Any]]:
        out = []
        for group, grid in grids:
            if len(grid.ix) == 0:
                continue
            x, y = cell_centres(grid.ix, grid.iy, grid.cell_size_m)
            n = int(grid.count[shapely.contains_xy(row.geometry, x, y)].sum())
            if n:
                out.append(
                    {
                        "code": group["code"],
                        "name": group["name"],
                        "count": n,
                        "text": _count(n, report),
                    }
                )
        return sorted(out, key=lambda c: (-c["count"], c["name"]))

    return categories
