"""Reading runs back: the list of an area's runs and one run with everything it recorded."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, text

from app.core.errors import NotFound

_COLUMNS = """
    r.id, a.code AS area, p.name AS profile, o.code AS profile_organisation, r.profile_version,
    r.period_kind, r.period_label, r.provisional, r.status::text AS status, r.window_start,
    r.window_end, r.started_at, r.heartbeat_at, r.finished_at, r.published_at, r.error,
    r.counts, r.timings,
    EXISTS (SELECT 1 FROM est.layer_current c WHERE c.run_id = r.id) AS current
"""
_FROM = """
    FROM est.hotspot_run r
    JOIN est.area a ON a.id = r.area_id
    JOIN est.analysis_profile p ON p.id = r.profile_id
    LEFT JOIN est.organisation o ON o.id = p.organisation_id
"""


def _plain(row: Any) -> dict[str, Any]:
    out = dict(row._mapping)
    for key, value in out.items():
        if hasattr(value, "isoformat"):
            out[key] = value.isoformat()
    return out


def list_runs(
    conn: Connection,
    *,
    area_codes: list[str] | None = None,
    week: str | None = None,
    status: str | None = None,
    organisation_ids: list[int] | None = None,
    raw_granted_only: bool = False,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """Runs newest first, of the given areas (or all), a week and a status; and how many."""
    where = """
    WHERE (CAST(:areas AS text[]) IS NULL OR a.code = ANY(CAST(:areas AS text[])))
      AND (CAST(:week AS text) IS NULL OR r.period_label = :week)
      AND (CAST(:status AS text) IS NULL OR r.status::text = :status)
      AND (CAST(:orgs AS integer[]) IS NULL OR p.organisation_id IS NULL
           OR p.organisation_id = ANY(CAST(:orgs AS integer[])))
      AND (NOT :raw OR r.area_id IN (SELECT est.raw_granted_areas()))
    """
    params = {
        "areas": area_codes,
        "week": week,
        "status": status,
        "orgs": organisation_ids,
        "raw": raw_granted_only,
        "limit": limit,
        "offset": offset,
    }
    rows = conn.execute(
        text(f"SELECT {_COLUMNS} {_FROM} {where} ORDER BY r.id DESC LIMIT :limit OFFSET :offset"),
        params,
    ).all()
    total = conn.scalar(text(f"SELECT count(*) {_FROM} {where}"), params)
    return [_plain(r) for r in rows], int(total or 0)


def get_run(conn: Connection, run_id: int) -> dict[str, Any]:
    """One run with its parameters, provenance, figures, notes and area figures."""
    row = conn.execute(
        text(
            f"SELECT {_COLUMNS}, r.parameters, r.provenance, r.figures, r.notes, r.code_version, "
            f"r.input_digest {_FROM} WHERE r.id = :id"
        ),
        {"id": run_id},
    ).one_or_none()
    if row is None:
        raise NotFound(f"no run {run_id}")
    run = _plain(row)
    figures = conn.execute(
        text(
            "SELECT audience, group_code, this_week, last_week, same_week_last_year, "
            "mean_12_weeks, tests FROM est.area_figure WHERE run_id = :id "
            "ORDER BY audience, group_code"
        ),
        {"id": run_id},
    ).all()
    run["area_figures"] = [dict(f._mapping) for f in figures]
    return run


def run_visible(conn: Connection, run_id: int, organisation_id: int) -> bool:
    """Whether a run is of an area the session's organisation holds a raw grant on, and of a
    default profile or one the organisation keeps."""
    found = conn.scalar(
        text("""
        SELECT 1 FROM est.hotspot_run r JOIN est.analysis_profile p ON p.id = r.profile_id
        WHERE r.id = :id AND r.area_id IN (SELECT est.raw_granted_areas())
          AND (p.organisation_id IS NULL OR p.organisation_id = :org)
    """),
        {"id": run_id, "org": organisation_id},
    )
    return found is not None


def run_health(conn: Connection) -> dict[str, list[dict[str, Any]]]:
    """What an operator's alerting watches: per area and profile the age of the published run,
    the last run's status and duration; the claims of the newest night by status."""
    published = conn.execute(
        text("""
        SELECT a.code AS area, p.name AS profile, coalesce(o.code, '') AS organisation,
               r.period_kind, extract(epoch FROM clock_timestamp() - r.published_at) AS age_s
        FROM est.layer_current c
        JOIN est.hotspot_run r ON r.id = c.run_id
        JOIN est.area a ON a.id = c.area_id
        JOIN est.analysis_profile p ON p.id = c.profile_id
        LEFT JOIN est.organisation o ON o.id = p.organisation_id
        WHERE c.layer IN ('hotspots', 'tertial.hotspots')
        ORDER BY 1, 2, 3, 4
    """)
    ).all()
    last = conn.execute(
        text("""
        SELECT DISTINCT ON (r.area_id, r.profile_id) a.code AS area, p.name AS profile,
               coalesce(o.code, '') AS organisation, r.status::text AS status,
               extract(epoch FROM coalesce(r.finished_at, clock_timestamp()) - r.started_at)
                   AS duration_s
        FROM est.hotspot_run r
        JOIN est.area a ON a.id = r.area_id
        JOIN est.analysis_profile p ON p.id = r.profile_id
        LEFT JOIN est.organisation o ON o.id = p.organisation_id
        ORDER BY r.area_id, r.profile_id, r.id DESC
    """)
    ).all()
    claims = conn.execute(
        text("""
        SELECT task, status::text AS status, count(*)::integer AS n
        FROM est.nightly_claim WHERE night = (SELECT max(night) FROM est.nightly_claim)
        GROUP BY 1, 2 ORDER BY 1, 2
    """)
    ).all()
    return {
        "published": [dict(r._mapping) for r in published],
        "last": [dict(r._mapping) for r in last],
        "claims": [dict(r._mapping) for r in claims],
    }
