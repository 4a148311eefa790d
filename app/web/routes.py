"""The map page and its login, and the week's picture it reads.

    GET  /, /map          the page (Swedish); without a live session, a redirect to /login
    GET  /login           the login: the issuer's button when OIDC is set up, else a key form
    POST /login           an API key typed into the form opens a session
    GET  /login/oidc      starts the authorisation code flow (app.web.oidc)
    GET  /login/callback  where the issuer sends the browser back
    POST /logout          ends the session
    GET  /api/v1/lagesbild   the week's picture beside the map (app.web.picture)

A session is a row of est.web_session behind an HttpOnly, SameSite=Lax cookie (Secure when the
service is reached over HTTPS); app.api.deps accepts the cookie for every route, so the page's
reads of /ogc and /api/v1 need nothing else. Forms carry a CSRF token: the logout form the
session's, the login form one of its own (a double-submit cookie), so another site can neither
log a browser out nor into an account of its choosing.
"""

from __future__ import annotations

import hmac
import json
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError

from app.access import audit
from app.access.auth import Principal, authenticate_key, is_api_key
from app.access.sessions import (
    SESSION_COOKIE,
    Login,
    WebSession,
    end_session,
    resume_session,
    start_session,
)
from app.api.deps import (
    DeploymentDep,
    EngineDep,
    LayerReaderPrincipal,
    SessionDep,
    SettingsDep,
    request_id,
)
from app.api.middleware import client_address
from app.api.ogc.links import Links
from app.core import swedish
from app.core.errors import DomainError, RateLimited, SessionEnded, Unauthorized, Unavailable
from app.core.vocabulary import Role
from app.settings import Settings
from app.web import oidc, picture

TEMPLATES = Path(__file__).with_name("templates")
STATIC = Path(__file__).with_name("static")
MAPLIBRE = "vendor/maplibre-gl-5.24.1"  # the vendored release (its LICENSE.txt beside it)
STATE_COOKIE = "est_login_state"  # the OIDC state of a login under way, on /login only
FORM_COOKIE = "est_login_form"  # the login form's CSRF token
PAGE_ROLES = frozenset({Role.viewer, Role.analyst, Role.admin, Role.reporter})
WEEK_PATTERN = r"^\d{4}-W(0[1-9]|[1-4]\d|5[0-3])$"

router = APIRouter(include_in_schema=False)
data_router = APIRouter(prefix="/api/v1/lagesbild", tags=["lagesbild"])


@lru_cache(maxsize=1)
def _templates() -> Environment:
    return Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))


def _origin(url: str | None) -> str:
    parts = urlsplit(url or "")
    return f"{parts.scheme}://{parts.netloc}" if parts.netloc else ""


def _page_headers(settings: Settings) -> dict[str, str]:
    """What every HTML answer carries: a strict content security policy and no caching."""
    basemap = _origin(settings.basemap_url)
    policy = "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            f"img-src 'self' data: blob: {basemap}".strip(),
            f"connect-src 'self' {basemap}".strip(),
            "worker-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )
    return {
        "Content-Security-Policy": policy,
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "X-Frame-Options": "DENY",
    }


def _html(settings: Settings, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    body = _templates().get_template(template).render(**context)
    return HTMLResponse(body, status_code=status, headers=_page_headers(settings))


def _base(request: Request, settings: Settings) -> str:
    """The path the service is served under (EST_ROOT_PATH, or a trusted proxy's prefix)."""
    return urlsplit(Links(request, settings).base).path.rstrip("/")


def _secure(request: Request, settings: Settings) -> bool:
    """Whether people reach the service over HTTPS (its cookies are then Secure)."""
    return Links(request, settings).base.startswith("https://") or (
        settings.public_base_url or ""
    ).startswith("https://")


def _cookie(
    response: Response,
    request: Request,
    settings: Settings,
    name: str,
    value: str,
    *,
    max_age: int,
    path: str = "/",
    samesite: str = "lax",
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=_base(request, settings) + path,
        secure=_secure(request, settings),
        httponly=True,
        samesite=samesite,  # type: ignore[arg-type]
    )


def _forget(
    response: Response, request: Request, settings: Settings, name: str, path: str = "/"
) -> None:
    response.delete_cookie(
        name,
        path=_base(request, settings) + path,
        secure=_secure(request, settings),
        httponly=True,
        samesite="lax",
    )


def _local(target: str | None) -> str:
    """A path of this service to go on to after the login (never another site)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    return target


def _redirect(request: Request, settings: Settings, path: str) -> RedirectResponse:
    return RedirectResponse(_base(request, settings) + path, status_code=303)


def _live_session(request: Request, engine: Engine, settings: Settings) -> WebSession | None:
    """The request's live session of a role that may use the map, if it has one."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    try:
        with engine.begin() as conn:
            session = resume_session(conn, token, 60 * settings.session_idle_minutes)
    except SessionEnded:
        return None
    return session if session.principal.role in PAGE_ROLES else None


def _open_session(
    request: Request,
    engine: Engine,
    settings: Settings,
    principal: Principal,
    login: Login,
    return_to: str,
    nonce: str | None = None,
) -> RedirectResponse:
    """Open a session for a caller who just logged in, and send the browser on with its cookie."""
    lifetime = 3600 * settings.session_max_hours
    with engine.begin() as conn:
        opened = start_session(conn, principal, login, lifetime, nonce)
        audit.record(
            conn,
            principal,
            "session.login",
            endpoint=f"{request.method} {request.url.path}",
            request_id=request_id(request),
            filters={"login": login, "session": opened.id},
        )
    response = _redirect(request, settings, _local(return_to))
    _cookie(response, request, settings, SESSION_COOKIE, opened.token, max_age=lifetime)
    return response


def _login_page(
    request: Request, settings: Settings, next_url: str, error: str | None = None, status: int = 200
) -> HTMLResponse:
    """The login page, with a fresh CSRF token for its form."""
    token = secrets.token_urlsafe(24)
    response = _html(
        settings,
        "login.html",
        status,
        base=_base(request, settings),
        oidc=oidc.enabled(settings),
        next=_local(next_url),
        csrf=token,
        error=error,
        logged_out="utloggad" in request.query_params,
    )
    _cookie(
        response,
        request,
        settings,
        FORM_COOKIE,
        token,
        max_age=3600,
        path="/login",
        samesite="strict",
    )
    return response


@router.get("/")
@router.get("/map")
def page(request: Request, engine: EngineDep, settings: SettingsDep) -> Response:
    """The map page for a live session; the login otherwise."""
    session = _live_session(request, engine, settings)
    if session is None:
        here = request.url.path[len(_base(request, settings)) :] or "/"
        query = f"?{request.url.query}" if request.url.query else ""
        return _redirect(request, settings, "/login?next=" + quote(here + query, safe=""))
    with engine.begin() as conn:
        organisation = conn.scalar(
            text("SELECT name FROM est.organisation WHERE id = :id"),
            {"id": session.principal.organisation_id},
        )
    base = _base(request, settings)
    bootstrap = {
        "base": base,
        "csrf": session.csrf_token,
        "role": session.principal.role.value,
        "organisation": organisation,
        "basemap": {"url": settings.basemap_url, "attribution": settings.basemap_attribution},
        "worker": f"{base}/static/{MAPLIBRE}/maplibre-gl-csp-worker.js",
        "names": {"change": swedish.CHANGE_LABELS, "emerging": swedish.EMERGING_CLASSES},
    }
    return _html(
        settings,
        "page.html",
        base=base,
        maplibre=f"{base}/static/{MAPLIBRE}",
        csrf=session.csrf_token,
        role=session.principal.role.value,
        organisation=organisation,
        print_view=request.query_params.get("print") == "1",
        bootstrap=json.dumps(bootstrap, ensure_ascii=False).replace("<", "\\u003c"),
    )


@router.get("/login")
def login_form(
    request: Request,
    engine: EngineDep,
    settings: SettingsDep,
    next_url: Annotated[str | None, Query(alias="next", max_length=2000)] = None,
) -> Response:
    """The login page (or on to the page, for a live session)."""
    if _live_session(request, engine, settings) is not None:
        return _redirect(request, settings, _local(next_url))
    return _login_page(request, settings, next_url or "/")


@router.post("/login")
def login_with_key(
    request: Request,
    engine: EngineDep,
    settings: SettingsDep,
    api_key: Annotated[str, Form(max_length=200)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    next_url: Annotated[str, Form(alias="next", max_length=2000)] = "/",
) -> Response:
    """Open a session with an API key typed into the form."""
    if oidc.enabled(settings):
        return _login_page(
            request, settings, next_url, "Logga in med din organisations konto.", status=403
        )
    expected = request.cookies.get(FORM_COOKIE, "")
    if not expected or not hmac.compare_digest(expected.encode(), csrf_token.encode()):
        return _login_page(
            request, settings, next_url, "Formuläret har gått ut. Försök igen.", status=403
        )
    failures = request.app.state.auth_failures
    address = client_address(
        request.scope.get("client"),
        request.headers.get("x-forwarded-for"),
        settings.trusted_proxies,
    )
    try:
        failures.refuse_if_over(address, "failed logins a minute from this address")
    except RateLimited:
        return _login_page(
            request, settings, next_url, "För många misslyckade försök. Vänta en minut.", 429
        )
    key = api_key.strip()
    try:
        if not is_api_key(key):
            raise Unauthorized("not an API key")
        with engine.begin() as conn:
            principal = authenticate_key(conn, key)
    except Unauthorized:
        failures.count(address)
        return _login_page(
            request, settings, next_url, "Nyckeln gäller inte (okänd, spärrad eller utgången).", 401
        )
    if principal.role not in PAGE_ROLES:
        return _login_page(
            request, settings, next_url, "Nyckelns roll kan inte använda kartan.", status=403
        )
    response = _open_session(request, engine, settings, principal, "key", next_url)
    _forget(response, request, settings, FORM_COOKIE, "/login")
    return response


def _redirect_uri(request: Request, settings: Settings) -> str:
    if settings.oidc_redirect_uri:
        return settings.oidc_redirect_uri
    if settings.public_base_url:
        return f"{settings.public_base_url}/login/callback"
    return Links(request, settings).href("/login/callback")


@router.get("/login/oidc")
def login_with_issuer(
    request: Request,
    engine: EngineDep,
    settings: SettingsDep,
    next_url: Annotated[str | None, Query(alias="next", max_length=2000)] = None,
) -> Response:
    """Send the browser to the issuer's authorisation endpoint."""
    if not oidc.enabled(settings):
        return _login_page(
            request,
            settings,
            next_url or "/",
            "Inloggning via OIDC är inte inställd här.",
            status=404,
        )
    try:
        with engine.begin() as conn:
            url, state = oidc.begin(
                conn, settings, _redirect_uri(request, settings), _local(next_url)
            )
    except (oidc.LoginFailed, Unavailable) as exc:
        return _login_page(request, settings, next_url or "/", _failure(exc), status=503)
    response = RedirectResponse(url, status_code=303)
    _cookie(
        response,
        request,
        settings,
        STATE_COOKIE,
        state,
        max_age=oidc.LOGIN_MAX_AGE_S,
        path="/login",
    )
    return response


def _failure(exc: DomainError) -> str:
    if isinstance(exc, oidc.LoginFailed):
        return exc.detail
    return "Identitetsleverantören svarar inte just nu. Försök igen om en stund."


@router.get("/login/callback")
def login_callback(
    request: Request,
    engine: EngineDep,
    settings: SettingsDep,
    code: Annotated[str | None, Query(max_length=4000)] = None,
    state: Annotated[str | None, Query(max_length=200)] = None,
    error: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """Finish the login the issuer sends the browser back from."""
    response: Response
    if error is not None:
        response = _login_page(request, settings, "/", f"Inloggningen avbröts ({error}).", 400)
        _forget(response, request, settings, STATE_COOKIE, "/login")
        return response
    try:
        with engine.begin() as conn:
            login = oidc.finish(
                conn,
                settings,
                _redirect_uri(request, settings),
                state=state,
                browser_state=request.cookies.get(STATE_COOKIE),
                code=code,
            )
        if login.principal.role not in PAGE_ROLES:
            raise oidc.LoginFailed("Ditt kontos roll kan inte använda kartan.")
        response = _open_session(
            request, engine, settings, login.principal, "oidc", login.return_to, login.nonce
        )
    except IntegrityError:  # the nonce opened a session already: a replayed ID token
        response = _login_page(request, settings, "/", "Inloggningen är redan använd.", 401)
    except (oidc.LoginFailed, Unavailable) as exc:
        status = 401 if isinstance(exc, oidc.LoginFailed) else 503
        response = _login_page(request, settings, "/", _failure(exc), status)
    _forget(response, request, settings, STATE_COOKIE, "/login")
    return response


@router.post("/logout")
def logout(
    request: Request,
    engine: EngineDep,
    settings: SettingsDep,
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """End the session (its form carries the session's CSRF token) and forget the cookie."""
    session = _live_session(request, engine, settings)
    if session is not None:
        if not hmac.compare_digest(session.csrf_token.encode(), csrf_token.encode()):
            return _login_page(request, settings, "/", "Utloggningen kom inte från kartsidan.", 403)
        with engine.begin() as conn:
            end_session(conn, request.cookies[SESSION_COOKIE])
            audit.record(
                conn,
                session.principal,
                "session.logout",
                endpoint="POST /logout",
                request_id=request_id(request),
                filters={"session": session.id},
            )
    response = _redirect(request, settings, "/login?utloggad=1")
    _forget(response, request, settings, SESSION_COOKIE)
    return response


@data_router.get("", summary="The week's picture of an area beside the map (the map page)")
def week_picture(
    principal: LayerReaderPrincipal,
    session: SessionDep,
    deployment: DeploymentDep,
    area: Annotated[
        str | None,
        Query(max_length=64, description="area code (default: the organisation's kommun)"),
    ] = None,
    week: Annotated[
        str | None,
        Query(
            pattern=WEEK_PATTERN, description="ISO week, 2026-W48 (default: the newest closed week)"
        ),
    ] = None,
    profile: Annotated[str | None, Query(max_length=64, description="profile name")] = None,
) -> dict[str, Any]:
    """Hotspots ranked, what changed, concentration, figures and provenance of the area's
    published run, in the version the caller may see (viewers: viewer values only)."""
    conn = session.connection()
    current = deployment.get(conn)
    return picture.week_picture(
        conn, principal, current.timezone, current.srid, area=area, week=week, profile=profile
    )
