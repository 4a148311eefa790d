"""Who am I, organisations, area grants, API keys and the audit trail."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import Connection

from app.access import admin, audit
from app.access.auth import Principal
from app.api.deps import AdminPrincipal, CurrentPrincipal, SessionDep, request_id
from app.api.params import ListPageDep, WindowDep
from app.api.schemas import StrictModel
from app.core.errors import Forbidden
from app.core.vocabulary import GrantLevel, Role

router = APIRouter(prefix="/api/v1", tags=["access"])


class Me(BaseModel):
    """The caller as the service sees it."""

    subject: str
    organisation: str
    role: Role
    grants: list[admin.Grant]


class OrganisationIn(StrictModel):
    """A new organisation."""

    code: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{1,63}$", examples=["kommun-1214"])
    name: str = Field(min_length=1, max_length=200)
    kind: str = Field(examples=list(admin.ORGANISATION_KINDS))


class OrganisationOut(BaseModel):
    """An organisation."""

    code: str
    name: str
    kind: str
    created_at: datetime


class GrantIn(StrictModel):
    """A grant to record: which organisation may see which area at which level."""

    organisation: str
    area: str
    level: GrantLevel
    expires_at: datetime | None = None


class KeyIn(StrictModel):
    """A key to create for the caller's organisation."""

    role: Role
    name: str | None = Field(None, max_length=200)
    expires_days: int | None = Field(None, ge=1, le=3650)


class KeyCreated(BaseModel):
    """A created key: `token` is shown this once and cannot be read again."""

    id: str
    token: str
    role: Role
    expires_at: datetime | None


class KeyOut(BaseModel):
    """A key without its secret."""

    id: str
    organisation: str
    role: Role
    name: str | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


class AuditEntry(BaseModel):
    """One entry of the audit trail."""

    id: int
    at: datetime
    request_id: str | None
    actor: str | None
    role: str | None
    action: str
    endpoint: str | None
    filters: dict[str, Any] | None
    row_count: int | None
    reason: str | None


def _require_operator(conn: Connection, principal: Principal) -> None:
    if not admin.is_operator(conn, principal):
        raise Forbidden("only admins of the operator organisation manage organisations and grants")


def _audit_change(
    session: SessionDep, principal: Principal, request: Request, action: str, what: dict[str, Any]
) -> None:
    audit.record(
        session,
        principal,
        action,
        endpoint=request.url.path,
        request_id=request_id(request),
        filters=what,
    )


@router.get("/me", summary="The caller: organisation, role and grants")
def me(principal: CurrentPrincipal, session: SessionDep) -> Me:
    """Return who the caller is and what its organisation was granted."""
    grants = admin.list_grants(session.connection(), principal.organisation_id)
    return Me(
        subject=principal.subject,
        organisation=principal.organisation_code,
        role=principal.role,
        grants=grants,
    )


@router.get("/organisations", summary="List organisations (operator admins)")
def list_organisations(principal: AdminPrincipal, session: SessionDep) -> list[OrganisationOut]:
    """Return every registered organisation."""
    conn = session.connection()
    _require_operator(conn, principal)
    return [OrganisationOut(**o) for o in admin.list_organisations(conn)]


@router.post("/organisations", status_code=201, summary="Register an organisation")
def create_organisation(
    body: OrganisationIn, principal: AdminPrincipal, session: SessionDep, request: Request
) -> OrganisationOut:
    """Register an organisation (operator admins)."""
    conn = session.connection()
    _require_operator(conn, principal)
    created = admin.create_organisation(conn, body.code, body.name, body.kind)
    _audit_change(session, principal, request, "organisation.create", body.model_dump())
    return OrganisationOut(**created)


@router.get("/grants", summary="List grants")
def list_grants(
    principal: AdminPrincipal,
    session: SessionDep,
    organisation: Annotated[str | None, Query(description="Operator admins: one org")] = None,
) -> list[admin.Grant]:
    """Return the grants of the caller's organisation (operator admins: of any)."""
    conn = session.connection()
    if admin.is_operator(conn, principal):
        org_id = admin.organisation_id(conn, organisation) if organisation else None
    else:
        org_id = principal.organisation_id
    return admin.list_grants(conn, org_id)


@router.put("/grants", summary="Record a grant (operator admins)")
def put_grant(
    body: GrantIn, principal: AdminPrincipal, session: SessionDep, request: Request
) -> admin.Grant:
    """Give an organisation raw or aggregate access to an area, replacing an earlier grant."""
    conn = session.connection()
    _require_operator(conn, principal)
    grant = admin.grant_area(
        conn, body.organisation, body.area, body.level, principal.subject, body.expires_at
    )
    _audit_change(session, principal, request, "grant.put", body.model_dump(mode="json"))
    return grant


@router.delete("/grants/{organisation}/{area}", status_code=204, summary="Revoke a grant")
def delete_grant(
    organisation: str, area: str, principal: AdminPrincipal, session: SessionDep, request: Request
) -> Response:
    """Remove an organisation's grant on an area (operator admins)."""
    conn = session.connection()
    _require_operator(conn, principal)
    admin.revoke_grant(conn, organisation, area)
    _audit_change(
        session, principal, request, "grant.delete", {"organisation": organisation, "area": area}
    )
    return Response(status_code=204)


@router.get("/keys", summary="List the organisation's API keys")
def list_keys(principal: AdminPrincipal, session: SessionDep) -> list[KeyOut]:
    """Return the caller's organisation's keys, without secrets."""
    return [KeyOut(**k) for k in admin.list_keys(session.connection(), principal.organisation_id)]


@router.post("/keys", status_code=201, summary="Create an API key for the organisation")
def create_key(
    body: KeyIn, principal: AdminPrincipal, session: SessionDep, request: Request
) -> KeyCreated:
    """Create a key for the caller's organisation; the token is shown once."""
    key = admin.new_key(
        session.connection(), principal.organisation_code, body.role, body.name, body.expires_days
    )
    _audit_change(
        session,
        principal,
        request,
        "key.create",
        {"key": key.key_id, "role": body.role.value, "name": body.name},
    )
    return KeyCreated(id=key.key_id, token=key.token, role=body.role, expires_at=key.expires_at)


@router.delete("/keys/{key_id}", status_code=204, summary="Revoke an API key")
def revoke_key(
    key_id: str, principal: AdminPrincipal, session: SessionDep, request: Request
) -> Response:
    """Revoke one of the organisation's keys (another organisation's key is 'not found')."""
    admin.revoke_key(session.connection(), key_id, principal.organisation_id)
    _audit_change(session, principal, request, "key.revoke", {"key": key_id})
    return Response(status_code=204)


@router.get("/audit", summary="Read the organisation's audit trail (admins)")
def read_audit(
    principal: AdminPrincipal,
    session: SessionDep,
    page: ListPageDep,
    window: WindowDep,
    actor: Annotated[str | None, Query(max_length=200)] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
) -> list[AuditEntry]:
    """Return audit entries of the caller's organisation, newest first (`since` and `until`
    need a time zone: a bare time would mean whatever the server's clock says)."""
    entries = audit.read_entries(
        session.connection(), window.since, window.until, actor, action, page.limit, page.offset
    )
    return [AuditEntry(**e) for e in entries]
