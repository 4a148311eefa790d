"""Dependencies shared by the routes: settings, the caller, and its scoped database session."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPBearer
from fastapi.security.http import HTTPBase
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from app.access.auth import KeyCache, Principal, authenticate, key_refusal
from app.access.sessions import (
    CSRF_HEADER,
    SAFE_METHODS,
    SESSION_COOKIE,
    check_csrf,
    resume_session,
)
from app.api.middleware import client_address
from app.core.errors import Forbidden, SessionEnded, Unauthorized, Unavailable
from app.core.vocabulary import Role
from app.db.deployment import DeploymentCache, known_version
from app.db.engine import session_scope, was_canceled
from app.settings import Settings

# Declared so that the OpenAPI documents show both ways to send a key; the header itself is
# read by get_principal, which accepts either.
_bearer = HTTPBearer(auto_error=False, description="An API key (est_…) or an OIDC token.")
_basic = HTTPBase(scheme="basic", auto_error=False, description="Any user, the key as password.")


async def get_settings_dep(request: Request) -> Settings:
    """Return the settings the app was created with."""
    settings: Settings = request.app.state.settings
    return settings


async def get_deployment_cache(request: Request) -> DeploymentCache:
    """Return the process's view of the deployment (refreshed when its version moves)."""
    cache: DeploymentCache = request.app.state.deployment
    return cache


async def get_engine(request: Request) -> Engine:
    """Return the app role's engine."""
    engine: Engine = request.app.state.engine
    return engine


async def get_system_engine(request: Request) -> Engine:
    """Return the system role's engine: what runs started over the API compute with."""
    engine: Engine = request.app.state.system_engine
    return engine


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
EngineDep = Annotated[Engine, Depends(get_engine)]
SystemEngineDep = Annotated[Engine, Depends(get_system_engine)]
DeploymentDep = Annotated[DeploymentCache, Depends(get_deployment_cache)]


def request_id(request: Request) -> str:
    """Return the request's id: the client's X-Request-ID when sane, else a new one."""
    given = request.headers.get("x-request-id", "")
    if not hasattr(request.state, "request_id"):
        ok = 0 < len(given) <= 64 and given.replace("-", "").isalnum()
        request.state.request_id = given if ok else uuid.uuid4().hex
    rid: str = request.state.request_id
    return rid


def get_principal(
    request: Request,
    engine: EngineDep,
    settings: SettingsDep,
    _b: Annotated[object, Depends(_bearer)] = None,
    _c: Annotated[object, Depends(_basic)] = None,
) -> Principal:
    """Return the authenticated caller; every route that touches data depends on it.

    Failed attempts are counted per client address: past EST_AUTH_FAILURES_PER_MINUTE the
    address gets 429 without its credentials being tried, so keys cannot be guessed quickly.
    """
    failures = request.app.state.auth_failures
    address = client_address(
        request.scope.get("client"),
        request.headers.get("x-forwarded-for"),
        settings.trusted_proxies,
    )
    what = "failed authentications a minute from this address"
    failures.refuse_if_over(address, what)
    authorization = request.headers.get("authorization")
    keys: KeyCache = request.app.state.key_cache
    principal = keys.get(authorization) if authorization else None
    if principal is None:
        try:
            with engine.begin() as conn:
                principal = _caller(conn, settings, request)
        except Unauthorized:
            if authorization:  # wrong credentials, not none at all
                failures.count(address)
            raise
        except OperationalError as exc:
            raise Unavailable("the database is not reachable; try again shortly") from exc
        if authorization and principal.key_id is not None:
            keys.keep(authorization, principal)
    request.state.principal = principal
    request.app.state.rate_limiter.check(principal.subject)
    return principal


def _caller(conn: Connection, settings: Settings, request: Request) -> Principal:
    """The caller of its Authorization header; without one, of its map-page session cookie
    (a fetch of the page itself without a cookie: a session that ended)."""
    authorization = request.headers.get("authorization")
    cookie = request.cookies.get(SESSION_COOKIE)
    page_fetch = request.headers.get("sec-fetch-site") == "same-origin" and (
        request.headers.get("sec-fetch-mode") != "navigate"
    )
    if authorization or not (cookie or page_fetch):
        return authenticate(conn, settings, authorization)
    if not cookie:
        raise SessionEnded("no session: log in again on the map page")
    session = resume_session(conn, cookie, 60 * settings.session_idle_minutes)
    if request.method not in SAFE_METHODS:
        check_csrf(session, request.headers.get(CSRF_HEADER))
    return session.principal


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


# One round trip opens a request's transaction: its statement timeout and the caller's scope,
# the deployment's version (for DeploymentCache) and, for a key taken from KeyCache, the key.
# jit off: a request's queries are short, and the planner's estimates of the grid layers'
# queries (no statistics on computed squares) pass jit_above_cost, so JIT compiling would
# cost seconds a tile then waits for (1.9 s against 88 ms per density tile at 1M incidents)
SCOPE_SQL = text("""
    SELECT set_config('statement_timeout', :ms, true), set_config('jit', 'off', true),
           set_config('est.org_id', :org, true),
           set_config('est.role', :role, true), d.version, k.id IS NOT NULL AS known,
           k.revoked_at, k.expires_at
    FROM est.deployment d LEFT JOIN est.api_key k ON k.id = :key
    WHERE d.id = 1
""")


def get_session(
    principal: CurrentPrincipal, engine: EngineDep, settings: SettingsDep
) -> Iterator[Session]:
    """Yield a session in one transaction scoped to the caller's organisation and role.

    SET LOCAL (set_config(..., true)) ends with the transaction, so a pooled connection never
    carries one caller's scope into the next request. No statement runs longer than
    EST_STATEMENT_TIMEOUT_S: PostgreSQL ends it, and the caller gets 503.
    """
    recheck = principal.key_id if principal.cached else None
    try:
        with session_scope(engine) as session:
            scope = session.execute(
                SCOPE_SQL,
                {
                    "ms": str(max(1, int(settings.statement_timeout_s * 1000))),
                    "org": str(principal.organisation_id),
                    "role": principal.role.value,
                    "key": recheck,
                },
            ).one()
            if recheck is not None:
                refusal = (
                    key_refusal(scope.revoked_at, scope.expires_at)
                    if scope.known
                    else "unknown API key"
                )
                if refusal is not None:  # until KeyCache lets the key go, so is every request
                    raise Unauthorized(refusal)
            with known_version(session.connection(), scope.version):
                yield session
    except OperationalError as exc:
        if was_canceled(exc):
            raise Unavailable(
                "the query ran longer than the service allows; narrow it (a smaller bbox, a "
                "shorter period, a smaller page) or try again later"
            ) from exc
        raise Unavailable("the database is not reachable; try again shortly") from exc


SessionDep = Annotated[Session, Depends(get_session)]


def require_roles(*roles: Role) -> Callable[[Principal], Principal]:
    """Return a dependency that lets only the given roles through (403 for the others)."""
    allowed = ", ".join(r.value for r in roles)

    def check(principal: CurrentPrincipal) -> Principal:
        if principal.role not in roles:
            raise Forbidden(f"this needs the role {allowed}; your key has {principal.role.value}")
        return principal

    return check


AdminPrincipal = Annotated[Principal, Depends(require_roles(Role.admin))]
AnalystPrincipal = Annotated[Principal, Depends(require_roles(Role.analyst))]
RawReaderPrincipal = Annotated[Principal, Depends(require_roles(Role.analyst, Role.reporter))]
WriterPrincipal = Annotated[
    Principal, Depends(require_roles(Role.reporter, Role.analyst, Role.ingest))
]
LayerReaderPrincipal = Annotated[
    Principal, Depends(require_roles(Role.analyst, Role.viewer, Role.admin, Role.reporter))
]
ProfileReaderPrincipal = Annotated[Principal, Depends(require_roles(Role.analyst, Role.admin))]
ReportReaderPrincipal = Annotated[Principal, Depends(require_roles(Role.analyst, Role.viewer))]
