"""Who is calling from the map page: a server-side session behind an HttpOnly cookie.

A login (an API key typed into the form, or the issuer's OIDC flow, app.web) opens a session:
the browser gets a random token in a cookie, the database keeps its SHA-256 with the caller's
organisation, role and subject (est.web_session, through the functions of migration 0013). A
request that carries the cookie and no Authorization header is that caller, as long as the
session lives: not logged out or revoked, used within EST_SESSION_IDLE_MINUTES, younger than
EST_SESSION_MAX_HOURS, and, when opened with an API key, while the key is valid.

A state-changing request made with the cookie must also carry the session's CSRF token (the
page sends it in the X-CSRF-Token header, its forms in a field): another site's page can make
the browser send the cookie, but cannot read the token.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import Connection, text

from app.access.auth import Principal, hash_secret
from app.core.errors import Forbidden, SessionEnded
from app.core.vocabulary import Role

SESSION_COOKIE = "est_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
Login = Literal["key", "oidc"]


@dataclass(frozen=True)
class WebSession:
    """A live session: who it stands for and the CSRF token its page carries."""

    id: int
    principal: Principal
    csrf_token: str


@dataclass(frozen=True)
class NewSession:
    """A session just opened: `token` goes into the cookie and is never stored."""

    id: int
    token: str
    csrf_token: str


def start_session(
    conn: Connection,
    principal: Principal,
    login: Login,
    lifetime_s: int,
    oidc_nonce: str | None = None,
) -> NewSession:
    """Open a session for an authenticated caller; return its one-time token."""
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(24)
    session_id = conn.scalar(
        text(
            "SELECT est.web_session_start(:token, :csrf, :org, :role, :subject, :key, "
            ":login, :nonce, :lifetime)"
        ),
        {
            "token": hash_secret(token),
            "csrf": csrf,
            "org": principal.organisation_id,
            "role": principal.role.value,
            "subject": principal.subject,
            "key": principal.key_id,
            "login": login,
            "nonce": oidc_nonce,
            "lifetime": lifetime_s,
        },
    )
    assert session_id is not None
    return NewSession(int(session_id), token, csrf)


def resume_session(conn: Connection, token: str, idle_s: int) -> WebSession:
    """Return the live session of a cookie's token, or raise SessionEnded."""
    row = conn.execute(
        text("SELECT * FROM est.web_session_resume(:token, :idle)"),
        {"token": hash_secret(token), "idle": idle_s},
    ).one_or_none()
    if row is None:
        raise SessionEnded("the session has ended (logged out, revoked or unused too long)")
    principal = Principal(
        subject=row.subject,
        organisation_id=row.organisation_id,
        organisation_code=row.organisation_code,
        role=Role(row.api_role),
        key_id=row.key_id,
    )
    return WebSession(int(row.session_id), principal, row.csrf_token)


def end_session(conn: Connection, token: str) -> bool:
    """Log out: end the session of a cookie's token; whether there was a live one."""
    ended = conn.scalar(text("SELECT est.web_session_end(:token)"), {"token": hash_secret(token)})
    return bool(ended)


def revoke_sessions(
    conn: Connection, *, organisation_code: str | None = None, subject: str | None = None
) -> int:
    """End the live sessions of an organisation, of a subject, or both (the system role's
    connection: `est sessions revoke`); return how many ended."""
    if organisation_code is None and subject is None:
        raise ValueError("name an organisation, a subject or both")
    ended = conn.execute(
        text("""
        UPDATE est.web_session s SET ended_at = now(), ended_why = 'revoked'
        FROM est.organisation o
        WHERE o.id = s.organisation_id AND s.ended_at IS NULL
          AND (CAST(:org AS text) IS NULL OR o.code = :org)
          AND (CAST(:subject AS text) IS NULL OR s.subject = :subject)
    """),
        {"org": organisation_code, "subject": subject},
    )
    return int(ended.rowcount or 0)


def check_csrf(session: WebSession, given: str | None) -> None:
    """Refuse a state-changing request whose CSRF token is not the session's."""
    if not given or not hmac.compare_digest(given.encode(), session.csrf_token.encode()):
        raise Forbidden(
            f"a change made with the page's session needs its CSRF token ({CSRF_HEADER})"
        )
