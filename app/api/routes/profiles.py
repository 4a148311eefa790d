"""Analysis profiles of an area: its default and those the caller's organisation keeps.

Analysts and admins whose organisation holds a grant on the area read them; analysts change the
profiles their own organisation keeps. Another organisation's profiles are never shown (a kommun
and its police area are separate data controllers), and the default profile, kept by no
organisation, is the operator's to change (`est profiles set`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response
from pydantic import BaseModel
from sqlalchemy import Connection

from app.access import audit, privacy
from app.access.auth import Principal
from app.api.deps import AnalystPrincipal, ProfileReaderPrincipal, SessionDep, request_id
from app.core.errors import NotFound
from app.runs import profiles
from app.runs.profiles import NAME_PATTERN, Profile, ProfileSettings

router = APIRouter(prefix="/api/v1/areas", tags=["profiles"])

ProfileName = Annotated[
    str, Path(pattern=NAME_PATTERN, description="lower-case letters, digits, - and _: standard")
]


class ProfileOut(BaseModel):
    """A profile: who keeps it (null: the area's default), its version and settings."""

    id: int
    area: str
    organisation: str | None
    name: str
    version: int
    active: bool
    updated_at: datetime
    settings: ProfileSettings


class ProfileVersionOut(BaseModel):
    """One version of a profile: the document as stored, who changed it and when."""

    version: int
    settings: dict[str, Any]
    changed_by: str
    changed_at: datetime


class ProfileDetail(ProfileOut):
    """A profile with every version, oldest first."""

    versions: list[ProfileVersionOut]


def _require_grant(conn: Connection, principal: Principal, code: str) -> None:
    # unknown and not granted answer alike, so that nobody learns which areas exist
    if not privacy.has_grant(conn, principal.organisation_id, code):
        raise NotFound(f"no area {code!r} that your organisation has a grant on")


def _out(profile: Profile) -> ProfileOut:
    return ProfileOut(**profile.describe())


@router.get("/{code}/profiles", summary="The area's profiles: its default and your own")
def list_area_profiles(
    code: str, principal: ProfileReaderPrincipal, session: SessionDep
) -> list[ProfileOut]:
    """Return the area's default profiles and those the caller's organisation keeps."""
    conn = session.connection()
    _require_grant(conn, principal, code)
    found = profiles.list_profiles(conn, code, [principal.organisation_id])
    return [_out(p) for p in found]


@router.get("/{code}/profiles/{name}", summary="One profile with its versions")
def get_area_profile(
    code: str, name: ProfileName, principal: ProfileReaderPrincipal, session: SessionDep
) -> ProfileDetail:
    """Return the caller's organisation's profile of that name, else the area's default one."""
    conn = session.connection()
    _require_grant(conn, principal, code)
    found = profiles.find_profile(conn, code, name, principal.organisation_id)
    if found is None:
        found = profiles.find_profile(conn, code, name, None)
    if found is None:
        raise NotFound(f"no profile {name!r} for area {code!r}")
    history = [ProfileVersionOut(**v) for v in profiles.versions(conn, found.id)]
    return ProfileDetail(**found.describe(), versions=history)


@router.put(
    "/{code}/profiles/{name}",
    summary="Set a profile your organisation keeps (analysts)",
    responses={
        200: {"description": "Changed (a new version), or unchanged"},
        201: {"model": ProfileOut, "description": "Created (version 1)"},
    },
)
def put_area_profile(
    code: str,
    name: ProfileName,
    body: ProfileSettings,
    principal: AnalystPrincipal,
    session: SessionDep,
    request: Request,
    response: Response,
) -> ProfileOut:
    """Store the settings as the caller's organisation's profile; fields left out get defaults.

    The area's default profile is never changed here: a profile of the same name that the
    organisation keeps takes its place for the organisation.
    """
    conn = session.connection()
    _require_grant(conn, principal, code)
    profile, changed = profiles.save_profile(
        conn,
        code,
        name,
        body,
        organisation_id=principal.organisation_id,
        changed_by=principal.subject,
    )
    if changed:
        audit.record(
            session,
            principal,
            "profile.change",
            endpoint=request.url.path,
            request_id=request_id(request),
            filters={"area": code, "name": name, "version": profile.version},
        )
        if profile.version == 1:
            response.status_code = 201
    return _out(profile)
