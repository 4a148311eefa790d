"""What only people can write in the report: the assessment, the analysis of causes, and names
for hotspots.

Texts belong to an area and a period (2026-W48, or 2026-T3 for the tertial's deeper analysis);
one text per area and period, written together by the analysts of the organisations holding a
raw grant on the area. A hotspot's name belongs to the area and the hotspot's stable id, so it
follows the hotspot from week to week until it is renamed or removed. Everyone with a grant on
the area reads them (they are printed in the viewer's report too). Every change goes to the
audit log; the database's row-level security checks the writer again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Connection, text

from app.access import audit
from app.access.audit import Author
from app.core.errors import InvalidInput, NotFound

MAX_TEXT_LENGTH = 20_000
MAX_NAME_LENGTH = 120
KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"  # what est.hotspot.hotspot_key holds
PERIOD_PATTERN = r"^\d{4}-(W\d{2}|T[1-3])$"


@dataclass(frozen=True)
class ReportTexts:
    """An area's texts of one period; never written: empty, without a writer."""

    area: str
    period: str
    assessment: str
    causes: str
    updated_by: str | None
    updated_at: datetime | None


@dataclass(frozen=True)
class HotspotName:
    """A hotspot's name, the period it was named in, who named it and when."""

    hotspot_key: str
    name: str
    named_in: str
    updated_by: str
    updated_at: datetime


def area_id(conn: Connection, code: str) -> int:
    """The id of an area by its code."""
    found = conn.scalar(text("SELECT id FROM est.area WHERE code = :c"), {"c": code})
    if found is None:
        raise NotFound(f"no area {code!r}")
    return int(found)


def check_period(label: str, field: str = "period") -> str:
    """A period label as given (2026-W48, 2026-T3); InvalidInput naming `field` otherwise."""
    found = re.fullmatch(PERIOD_PATTERN, label)
    if found is None:
        raise InvalidInput(
            f"{field}: {label[:40]!r} is no ISO week such as 2026-W48 or tertial such as 2026-T3",
            field=field,
        )
    if found[1].startswith("W"):
        try:
            date.fromisocalendar(int(label[:4]), int(label[6:]), 1)
        except ValueError:
            raise InvalidInput(f"{field}: week {label} does not exist", field=field) from None
    return label


def read_texts(conn: Connection, area_code: str, period_label: str) -> ReportTexts:
    """The texts of an area and period (empty when none were written)."""
    row = conn.execute(
        text("""
        SELECT t.assessment, t.causes, t.updated_by, t.updated_at
        FROM est.report_text t JOIN est.area a ON a.id = t.area_id
        WHERE a.code = :area AND t.period_label = :period
    """),
        {"area": area_code, "period": period_label},
    ).one_or_none()
    if row is None:
        return ReportTexts(area_code, period_label, "", "", None, None)
    return ReportTexts(area_code, period_label, **row._mapping)


def _clean(value: str, field: str, limit: int) -> str:
    value = value.replace("\r\n", "\n").strip()
    if "\x00" in value:
        raise InvalidInput(f"{field}: contains a NUL byte, which no text may hold", field=field)
    if len(value) > limit:
        raise InvalidInput(f"{field}: at most {limit} characters, got {len(value)}", field=field)
    return value


def write_texts(
    conn: Connection,
    who: Author,
    organisation_id: int | None,
    area_code: str,
    period_label: str,
    *,
    assessment: str | None = None,
    causes: str | None = None,
) -> ReportTexts:
    """Set the assessment and/or the analysis of causes (None: leave it as it is)."""
    check_period(period_label)
    changes = {
        name: _clean(value, name, MAX_TEXT_LENGTH)
        for name, value in (("assessment", assessment), ("causes", causes))
        if value is not None
    }
    conn.execute(
        text("""
        INSERT INTO est.report_text AS t (area_id, period_label, assessment, causes,
                                          organisation_id, updated_by)
        VALUES (:area, :period, coalesce(:assessment, ''), coalesce(:causes, ''), :org, :by)
        ON CONFLICT (area_id, period_label) DO UPDATE SET
            assessment = coalesce(:assessment, t.assessment),
            causes = coalesce(:causes, t.causes),
            organisation_id = EXCLUDED.organisation_id, updated_by = EXCLUDED.updated_by,
            updated_at = now()
    """),
        {
            "area": area_id(conn, area_code),
            "period": period_label,
            "assessment": changes.get("assessment"),
            "causes": changes.get("causes"),
            "org": organisation_id,
            "by": who.actor[:128],
        },
    )
    audit.record_change(
        conn,
        who,
        "report_text.change",
        {"area": area_code, "period": period_label, "fields": sorted(changes)},
    )
    return read_texts(conn, area_code, period_label)


def hotspot_names(conn: Connection, area_code: str) -> dict[str, HotspotName]:
    """The names of an area's hotspots, by hotspot id."""
    rows = conn.execute(
        text("""
        SELECT n.hotspot_key, n.name, n.named_in, n.updated_by, n.updated_at
        FROM est.hotspot_name n JOIN est.area a ON a.id = n.area_id
        WHERE a.code = :area ORDER BY n.hotspot_key
    """),
        {"area": area_code},
    ).all()
    return {r.hotspot_key: HotspotName(**r._mapping) for r in rows}


def name_hotspot(
    conn: Connection,
    who: Author,
    organisation_id: int | None,
    area_code: str,
    hotspot_key: str,
    name: str,
    named_in: str,
) -> HotspotName:
    """Give a hotspot of the area a name (or a new one), from the period `named_in` on."""
    check_period(named_in, "named_in")
    name = _clean(name, "name", MAX_NAME_LENGTH)
    if not name or "\n" in name:
        raise InvalidInput("name: one line of 1 to 120 characters", field="name")
    area = area_id(conn, area_code)
    known = conn.scalar(
        text("""
        SELECT 1 FROM est.hotspot h JOIN est.hotspot_run r ON r.id = h.run_id
        WHERE r.area_id = :area AND h.hotspot_key = :key LIMIT 1
    """),
        {"area": area, "key": hotspot_key},
    )
    if known is None:
        raise NotFound(f"no hotspot {hotspot_key!r} in any run of area {area_code}")
    conn.execute(
        text("""
        INSERT INTO est.hotspot_name AS n (area_id, hotspot_key, name, named_in,
                                           organisation_id, updated_by)
        VALUES (:area, :key, :name, :named_in, :org, :by)
        ON CONFLICT (area_id, hotspot_key) DO UPDATE SET
            name = EXCLUDED.name, named_in = EXCLUDED.named_in,
            organisation_id = EXCLUDED.organisation_id, updated_by = EXCLUDED.updated_by,
            updated_at = now()
    """),
        {
            "area": area,
            "key": hotspot_key,
            "name": name,
            "named_in": named_in,
            "org": organisation_id,
            "by": who.actor[:128],
        },
    )
    audit.record_change(
        conn, who, "hotspot_name.change", {"area": area_code, "hotspot": hotspot_key}
    )
    return hotspot_names(conn, area_code)[hotspot_key]


def unname_hotspot(conn: Connection, who: Author, area_code: str, hotspot_key: str) -> None:
    """Remove a hotspot's name."""
    gone = conn.scalar(
        text("""
        DELETE FROM est.hotspot_name n USING est.area a
        WHERE a.id = n.area_id AND a.code = :area AND n.hotspot_key = :key
        RETURNING 1
    """),
        {"area": area_code, "key": hotspot_key},
    )
    if gone is None:
        raise NotFound(f"hotspot {hotspot_key!r} of area {area_code} has no name")
    audit.record_change(
        conn, who, "hotspot_name.delete", {"area": area_code, "hotspot": hotspot_key}
    )
