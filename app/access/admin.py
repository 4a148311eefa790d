"""Organisations, area grants and API keys: the operations admins perform, for API and CLI."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text

from app.access.auth import NewKey, Principal, create_api_key
from app.core.errors import Conflict, NotFound
from app.core.vocabulary import GrantLevel, OrganisationKind, Role

# Admins of an organisation of this kind run the deployment: they register organisations and
# record the grants that data controllers agreed on. Other admins manage their own keys.
OPERATOR_KIND = "operator"
ORGANISATION_KINDS = tuple(kind.value for kind in OrganisationKind)


@dataclass(frozen=True)
class Grant:
    """An organisation's access to an area."""

    organisation: str
    area: str
    area_name: str
    level: GrantLevel
    granted_by: str | None
    created_at: datetime
    expires_at: datetime | None


def is_operator(conn: Connection, principal: Principal) -> bool:
    """Tell whether the caller is an admin of the deployment's operator organisation."""
    kind = conn.scalar(
        text("SELECT kind FROM est.organisation WHERE id = :id"), {"id": principal.organisation_id}
    )
    return principal.role is Role.admin and kind == OPERATOR_KIND


def organisation_id(conn: Connection, code: str) -> int:
    """Return the id of the organisation with this code, or raise NotFound."""
    org_id = conn.scalar(text("SELECT id FROM est.organisation WHERE code = :c"), {"c": code})
    if org_id is None:
        raise NotFound(f"no organisation with code {code!r}")
    return int(org_id)


def organisation_exists(conn: Connection, code: str) -> bool:
    """Whether an organisation has this code."""
    found = conn.scalar(text("SELECT 1 FROM est.organisation WHERE code = :c"), {"c": code})
    return found is not None


def create_organisation(conn: Connection, code: str, name: str, kind: str) -> dict[str, Any]:
    """Register an organisation; its code must be new."""
    if kind not in ORGANISATION_KINDS:
        raise Conflict(f"kind must be one of {', '.join(ORGANISATION_KINDS)}")
    row = conn.execute(
        text("""
            INSERT INTO est.organisation (code, name, kind) VALUES (:code, :name, :kind)
            ON CONFLICT (code) DO NOTHING
            RETURNING id, code, name, kind, created_at
        """),
        {"code": code, "name": name, "kind": kind},
    ).one_or_none()
    if row is None:
        raise Conflict(f"an organisation with code {code!r} exists already")
    return dict(row._mapping)


def list_organisations(conn: Connection) -> list[dict[str, Any]]:
    """Return every organisation, by code."""
    rows = conn.execute(
        text("SELECT id, code, name, kind, created_at FROM est.organisation ORDER BY code")
    )
    return [dict(r._mapping) for r in rows]


def grant_area(
    conn: Connection,
    organisation_code: str,
    area_code: str,
    level: GrantLevel,
    granted_by: str | None,
    expires_at: datetime | None = None,
) -> Grant:
    """Give an organisation access to an area at a level (replacing an earlier grant)."""
    org_id = organisation_id(conn, organisation_code)
    area_id = conn.scalar(text("SELECT id FROM est.area WHERE code = :c"), {"c": area_code})
    if area_id is None:
        raise NotFound(f"no area with code {area_code!r}")
    conn.execute(
        text("""
            INSERT INTO est.area_grant (organisation_id, area_id, level, granted_by, expires_at)
            VALUES (:org, :area, :level, :by, :expires)
            ON CONFLICT (organisation_id, area_id) DO UPDATE SET
                level = EXCLUDED.level, granted_by = EXCLUDED.granted_by,
                expires_at = EXCLUDED.expires_at, created_at = now()
        """),
        {
            "org": org_id,
            "area": area_id,
            "level": level.value,
            "by": granted_by,
            "expires": expires_at,
        },
    )
    return list_grants(conn, org_id, area_code)[0]


def revoke_grant(conn: Connection, organisation_code: str, area_code: str) -> None:
    """Remove an organisation's grant on an area."""
    deleted = conn.execute(
        text("""
            DELETE FROM est.area_grant g USING est.organisation o, est.area a
            WHERE g.organisation_id = o.id AND g.area_id = a.id AND o.code = :o AND a.code = :a
        """),
        {"o": organisation_code, "a": area_code},
    ).rowcount
    if not deleted:
        raise NotFound(f"{organisation_code!r} has no grant on area {area_code!r}")


def list_grants(
    conn: Connection, organisation_id: int | None = None, area_code: str | None = None
) -> list[Grant]:
    """Return grants, of one organisation and/or one area when given."""
    rows = conn.execute(
        text("""
            SELECT o.code AS organisation, a.code AS area, a.name AS area_name, g.level,
                   g.granted_by, g.created_at, g.expires_at
            FROM est.area_grant g
            JOIN est.organisation o ON o.id = g.organisation_id
            JOIN est.area a ON a.id = g.area_id
            WHERE (CAST(:org AS integer) IS NULL OR g.organisation_id = :org)
              AND (CAST(:area AS text) IS NULL OR a.code = :area)
            ORDER BY o.code, a.code
        """),
        {"org": organisation_id, "area": area_code},
    )
    return [Grant(**{**r._mapping, "level": GrantLevel(r.level)}) for r in rows]


def new_key(
    conn: Connection, organisation_code: str, role: Role, name: str | None, expires_days: int | None
) -> NewKey:
    """Create an API key for an organisation (by code)."""
    return create_api_key(conn, organisation_id(conn, organisation_code), role, name, expires_days)


def list_keys(conn: Connection, organisation_id: int | None = None) -> list[dict[str, Any]]:
    """Return keys without their secrets, of one organisation when given."""
    rows = conn.execute(
        text("""
            SELECT k.id, o.code AS organisation, k.role, k.name, k.created_at, k.expires_at,
                   k.revoked_at, k.last_used_at
            FROM est.api_key k JOIN est.organisation o ON o.id = k.organisation_id
            WHERE CAST(:org AS integer) IS NULL OR k.organisation_id = :org
            ORDER BY o.code, k.created_at
        """),
        {"org": organisation_id},
    )
    return [dict(r._mapping) for r in rows]


def revoke_key(conn: Connection, key_id: str, organisation_id: int | None = None) -> None:
    """Revoke a key (of one organisation when given: another's key is 'not found')."""
    revoked = conn.execute(
        text("""
            UPDATE est.api_key SET revoked_at = coalesce(revoked_at, now())
            WHERE id = :id AND (CAST(:org AS integer) IS NULL OR organisation_id = :org)
        """),
        {"id": key_id, "org": organisation_id},
    ).rowcount
    if not revoked:
        raise NotFound(f"no API key {key_id!r}")
