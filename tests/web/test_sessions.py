"""The map page's login with an API key: a server-side session behind an HttpOnly cookie that
the page's reads of /ogc and /api/v1 are authenticated with, ended by logout, revocation, idle
time or the key's end, and no state-changing request made with it without its CSRF token."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text

from app.access import admin
from app.access.sessions import CSRF_HEADER, SESSION_COOKIE, revoke_sessions
from app.core.vocabulary import Role
from app.main import create_app
from tests.web.conftest import AREA, Web

VIEWER = ("kommun-1285", "viewer")
ANALYST = ("kommun-1285", "analyst")


@pytest.fixture(scope="module")
def app(web: Web) -> FastAPI:
    """The service of the web world (one app: its rate limiters see every test)."""
    return create_app(web.settings)


@pytest.fixture()
def client(app: FastAPI) -> Iterator[TestClient]:
    """A client with a cookie jar of its own, redirects not followed."""
    with TestClient(app, raise_server_exceptions=False, follow_redirects=False) as c:
        yield c


def form_token(client: TestClient) -> str:
    page = client.get("/login")
    assert page.status_code == 200
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found is not None
    return found.group(1)


def log_in(client: TestClient, token: str, next_url: str = "/") -> str:
    """Log in through the form; return the page's CSRF token."""
    answer = client.post(
        "/login", data={"api_key": token, "csrf_token": form_token(client), "next": next_url}
    )
    assert answer.status_code == 303, answer.text
    page = client.get("/")
    assert page.status_code == 200
    found = re.search(r'<meta name="csrf-token" content="([^"]+)">', page.text)
    assert found is not None
    return found.group(1)


def session_rows(web: Web, subject: str) -> list[dict]:
    with web.engine.connect() as conn:
        rows = conn.execute(
            text("SELECT * FROM est.web_session WHERE subject = :s ORDER BY id"), {"s": subject}
        ).all()
    return [dict(r._mapping) for r in rows]


def subject_of(token: str) -> str:
    return f"key:{token.split('_')[1]}"


def test_the_page_without_a_session_sends_the_browser_to_the_login(client: TestClient) -> None:
    answer = client.get("/", params={"area": AREA, "week": "2026-W48"})
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=%2F%3Farea%3D1285%26week%3D2026-W48"
    assert client.get("/map").headers["location"].startswith("/login?next=%2Fmap")


def test_a_key_typed_into_the_form_opens_a_session_row_behind_an_httponly_cookie(
    client: TestClient, web: Web
) -> None:
    token = web.token(*VIEWER)
    answer = client.post(
        "/login",
        data={"api_key": token, "csrf_token": form_token(client), "next": "/?area=1285"},
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/?area=1285"
    cookie = next(c for c in answer.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain http on loopback
    value = client.cookies[SESSION_COOKIE]
    row = session_rows(web, subject_of(token))[-1]
    assert (row["role"], row["login"], row["ended_at"]) == (Role.viewer, "key", None)
    assert value not in str(row) and len(row["token_sha256"]) == 64  # the token itself is not kept


def test_the_cookie_is_secure_when_the_service_is_reached_over_https(web: Web) -> None:
    proxied = create_app(web.settings.model_copy(update={"trusted_proxies": ["testclient"]}))
    with TestClient(proxied, follow_redirects=False) as c:
        headers = {"X-Forwarded-Proto": "https"}
        page = c.get("/login", headers=headers)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        c.cookies.set("est_login_form", token)
        answer = c.post(
            "/login",
            data={"api_key": web.token(*VIEWER), "csrf_token": token},
            headers=headers,
        )
    cookie = next(x for x in answer.headers.get_list("set-cookie") if x.startswith(SESSION_COOKIE))
    assert "Secure" in cookie and "HttpOnly" in cookie


def test_the_session_cookie_authenticates_the_pages_reads_of_ogc_and_the_api(
    client: TestClient, web: Web
) -> None:
    log_in(client, web.token(*VIEWER))
    items = client.get("/ogc/collections/hotspots/items", params={"limit": 1})
    assert items.status_code == 200 and items.json()["features"]
    assert items.json()["features"][0]["properties"]["audience"] == "viewer"
    assert client.get("/api/v1/lagesbild").json()["audience"] == "viewer"


def test_an_authorization_header_is_used_as_before_whatever_cookie_comes_with_it(
    client: TestClient, web: Web
) -> None:
    client.cookies.set(SESSION_COOKIE, "not-a-session")
    answer = client.get("/api/v1/lagesbild", headers=web.headers(*ANALYST))
    assert answer.status_code == 200 and answer.json()["audience"] == "analyst"


def test_without_a_session_nothing_is_read_and_the_page_gets_no_password_prompt(
    client: TestClient,
) -> None:
    plain = client.get("/api/v1/lagesbild")
    assert plain.status_code == 401 and "Basic" in plain.headers["www-authenticate"]
    page_fetch = {"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "cors"}
    answer = client.get("/ogc/collections/hotspots/items", headers=page_fetch)
    assert answer.status_code == 401
    assert "www-authenticate" not in answer.headers  # no Basic dialog over the map page
    client.cookies.set(SESSION_COOKIE, "made-up")
    assert client.get("/api/v1/lagesbild").status_code == 401


def test_a_wrong_key_opens_no_session(client: TestClient) -> None:
    answer = client.post(
        "/login", data={"api_key": "est_000000000000_nope", "csrf_token": form_token(client)}
    )
    assert answer.status_code == 401
    assert "Nyckeln gäller inte" in answer.text
    assert SESSION_COOKIE not in client.cookies


def test_the_login_form_refuses_a_post_without_its_own_csrf_token(
    client: TestClient, web: Web
) -> None:
    # another site's form can post a key of its own, but not the token of this browser's form
    answer = client.post("/login", data={"api_key": web.token(*VIEWER), "csrf_token": "forged"})
    assert answer.status_code == 403
    assert SESSION_COOKIE not in client.cookies


def test_an_ingest_key_does_not_open_the_map(client: TestClient, web: Web) -> None:
    answer = client.post(
        "/login",
        data={"api_key": web.token("kommun-1285", "ingest"), "csrf_token": form_token(client)},
    )
    assert answer.status_code == 403 and SESSION_COOKIE not in client.cookies


def test_the_login_goes_on_only_to_a_page_of_this_service(client: TestClient, web: Web) -> None:
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        client.cookies.clear()
        data = {"api_key": web.token(*VIEWER), "csrf_token": form_token(client), "next": target}
        answer = client.post("/login", data=data)
        assert answer.headers["location"] == "/", target


def test_logout_ends_the_session_and_its_cookie_is_refused_afterwards(
    client: TestClient, web: Web
) -> None:
    token = web.token(*VIEWER)
    csrf = log_in(client, token)
    cookie = client.cookies[SESSION_COOKIE]
    answer = client.post("/logout", data={"csrf_token": csrf})
    assert answer.status_code == 303 and answer.headers["location"] == "/login?utloggad=1"
    assert f'{SESSION_COOKIE}=""' in answer.headers["set-cookie"]
    row = next(r for r in session_rows(web, subject_of(token)) if r["ended_why"] == "logout")
    assert row["ended_at"] is not None
    client.cookies.set(SESSION_COOKIE, cookie)  # the old cookie, sent again
    refused = client.get("/ogc/collections/hotspots/items")
    assert refused.status_code == 401 and "www-authenticate" not in refused.headers
    assert client.get("/").status_code == 303


def test_logout_without_the_sessions_csrf_token_is_refused_and_the_session_lives(
    client: TestClient, web: Web
) -> None:
    log_in(client, web.token(*VIEWER))
    assert client.post("/logout", data={"csrf_token": "forged"}).status_code == 403
    assert client.get("/api/v1/lagesbild").status_code == 200


def test_a_cross_site_post_with_the_cookie_but_without_the_csrf_token_is_refused(
    client: TestClient, web: Web
) -> None:
    csrf = log_in(client, web.token(*ANALYST))
    body = {"area": AREA, "week": "2026-W48"}
    cross_site = {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
    refused = client.post("/api/v1/runs", json=body, headers=cross_site)
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
    forged = client.post("/api/v1/runs", json=body, headers={CSRF_HEADER: "forged"})
    assert forged.status_code == 403
    allowed = client.post("/api/v1/runs", json=body, headers={CSRF_HEADER: csrf})
    assert allowed.status_code in (200, 202), allowed.text  # the page's own request goes through


def test_a_revoked_session_is_refused(client: TestClient, web: Web) -> None:
    token = web.token(*VIEWER)
    log_in(client, token)
    with web.engine.begin() as conn:
        assert revoke_sessions(conn, subject=subject_of(token)) >= 1
    assert client.get("/api/v1/lagesbild").status_code == 401
    assert client.get("/").status_code == 303


def test_a_session_unused_longer_than_the_idle_time_has_ended(client: TestClient, web: Web) -> None:
    token = web.token(*VIEWER)
    log_in(client, token)
    assert client.get("/api/v1/lagesbild").status_code == 200
    idle = web.settings.session_idle_minutes
    with web.engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE est.web_session SET last_seen_at = now() - make_interval(mins => :m) "
                "WHERE subject = :s AND ended_at IS NULL"
            ),
            {"m": idle + 1, "s": subject_of(token)},
        )
    assert client.get("/api/v1/lagesbild").status_code == 401


def test_revoking_the_key_ends_the_sessions_opened_with_it(client: TestClient, web: Web) -> None:
    with web.engine.begin() as conn:
        key = admin.new_key(conn, "kommun-1285", Role.viewer, "web revoked", None)
    log_in(client, key.token)
    assert client.get("/api/v1/lagesbild").status_code == 200
    with web.engine.begin() as conn:
        admin.revoke_key(conn, key.key_id)
    assert client.get("/api/v1/lagesbild").status_code == 401


def test_the_pages_forbid_inline_scripts_framing_and_caching(client: TestClient, web: Web) -> None:
    log_in(client, web.token(*VIEWER))
    for path in ("/", "/login"):
        answer = client.get(path, follow_redirects=True)
        policy = answer.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy, path
        assert "unsafe-inline" not in policy
        assert answer.headers["cache-control"] == "no-store"


def test_est_sessions_revoke_ends_an_organisations_sessions(
    client: TestClient, web: Web, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from app.cli import app as cli
    from app.settings import get_settings

    log_in(client, web.token(*VIEWER))
    monkeypatch.setenv("EST_DATABASE_URL", web.settings.database_url)
    for name in ("EST_APP_DATABASE_URL", "EST_OWNER_DATABASE_URL", "EST_SYSTEM_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    try:
        done = CliRunner().invoke(cli, ["sessions", "revoke", "--org", "kommun-1285"])
    finally:
        get_settings.cache_clear()
    assert done.exit_code == 0, done.output
    assert "session(s) ended" in done.output
    assert client.get("/api/v1/lagesbild").status_code == 401
