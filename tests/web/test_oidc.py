"""The map page's OIDC login, end to end against a provider the tests start on loopback: the
authorisation code flow with PKCE S256, state and nonce succeeds, and fails with a wrong state,
a replayed nonce or callback, a missing PKCE verifier, another issuer or another audience."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import text

from app.access.sessions import SESSION_COOKIE
from tests.conftest import serve
from tests.web.conftest import Web, wait_ready
from tests.web.oidc_provider import Provider, running

CLIENT_ID = "est-karta"
CLIENT_SECRET = "karta-hemlighet"


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    with running(CLIENT_ID, CLIENT_SECRET) as started:
        yield started


@pytest.fixture(autouse=True)
def behaving(provider: Provider) -> Iterator[None]:
    """Every test starts with a provider that behaves."""
    yield
    provider.overrides.clear()
    provider.nonce = None
    provider.role = "viewer"


@pytest.fixture(scope="module")
def oidc_server(web: Web, provider: Provider) -> Iterator[str]:
    """The service with the browser login through the provider."""
    settings = web.settings.model_copy(
        update={
            "oidc_issuer": provider.issuer,
            "oidc_client_id": CLIENT_ID,
            "oidc_client_secret": SecretStr(CLIENT_SECRET),
        }
    )
    yield from serve(settings)


@pytest.fixture()
def browser_client(oidc_server: str) -> Iterator[httpx.Client]:
    """A client that keeps cookies like a browser, following no redirect by itself."""
    with httpx.Client(base_url=oidc_server, follow_redirects=False, timeout=10) as c:
        yield c


def start(client: httpx.Client, next_url: str = "/") -> tuple[str, dict[str, str]]:
    """Start a login: the authorisation URL and what it asks."""
    answer = client.get("/login/oidc", params={"next": next_url})
    assert answer.status_code == 303, answer.text
    url = answer.headers["location"]
    asked = dict(httpx.URL(url).params)
    return url, asked


def authorize(client: httpx.Client, url: str) -> str:
    """The provider approves: the callback URL it sends the browser back to."""
    answer = client.get(url)
    assert answer.status_code == 302, answer.text
    return str(answer.headers["location"])


def log_in(client: httpx.Client, next_url: str = "/") -> httpx.Response:
    url, _ = start(client, next_url)
    return client.get(authorize(client, url))


def has_session(client: httpx.Client) -> bool:
    return SESSION_COOKIE in client.cookies


def test_the_login_page_offers_the_organisations_login_and_no_key_form(
    browser_client: httpx.Client,
) -> None:
    page = browser_client.get("/login")
    assert 'id="oidc-login"' in page.text and 'name="api_key"' not in page.text
    form = browser_client.post("/login", data={"api_key": "est_x_y", "csrf_token": "x"})
    assert form.status_code == 403


def test_the_flow_succeeds_and_its_session_reads_the_lagesbild(
    browser_client: httpx.Client, web: Web, provider: Provider
) -> None:
    answer = log_in(browser_client, "/?area=1285&week=2026-W48")
    assert answer.status_code == 303 and answer.headers["location"] == "/?area=1285&week=2026-W48"
    assert has_session(browser_client)
    picture = browser_client.get("/api/v1/lagesbild")
    assert picture.status_code == 200 and picture.json()["audience"] == "viewer"
    with web.engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT login, role::text, oidc_nonce FROM est.web_session WHERE subject = :s "
                "ORDER BY id DESC LIMIT 1"
            ),
            {"s": f"oidc:{provider.subject}"},
        ).one()
    assert row.login == "oidc" and row.role == "viewer"
    assert row.oidc_nonce == provider.authorizations[-1]["nonce"]


def test_the_login_proves_pkce_s256_state_and_nonce(
    browser_client: httpx.Client, provider: Provider
) -> None:
    log_in(browser_client)
    asked, redeemed = provider.authorizations[-1], provider.token_requests[-1]
    assert asked["code_challenge_method"] == "S256"
    digest = hashlib.sha256(redeemed["code_verifier"].encode()).digest()
    assert asked["code_challenge"] == base64.urlsafe_b64encode(digest).decode().rstrip("=")
    assert len(asked["state"]) >= 32 and len(asked["nonce"]) >= 32
    assert "openid" in asked["scope"].split()


def test_a_wrong_state_opens_no_session(browser_client: httpx.Client) -> None:
    url, _ = start(browser_client)
    callback = httpx.URL(authorize(browser_client, url))
    forged = callback.copy_set_param("state", "a-state-of-another-login")
    answer = browser_client.get(forged)
    assert answer.status_code == 401 and "fel state" in answer.text
    assert not has_session(browser_client)


def test_a_callback_from_another_browser_opens_no_session(
    browser_client: httpx.Client, oidc_server: str
) -> None:
    # a code and state caught on their way back are useless without the browser's cookie
    url, _ = start(browser_client)
    callback = authorize(browser_client, url)
    with httpx.Client(follow_redirects=False) as other:
        answer = other.get(callback)
        assert answer.status_code == 401 and SESSION_COOKIE not in other.cookies


def test_a_replayed_callback_opens_no_second_session(browser_client: httpx.Client) -> None:
    url, _ = start(browser_client)
    callback = authorize(browser_client, url)
    state_cookie = browser_client.cookies.get("est_login_state")
    assert browser_client.get(callback).status_code == 303
    browser_client.cookies.clear()
    browser_client.cookies.set("est_login_state", state_cookie or "")
    again = browser_client.get(callback)
    assert again.status_code == 401 and "redan använd" in again.text
    assert not has_session(browser_client)


def test_a_replayed_nonce_opens_no_session(
    browser_client: httpx.Client, provider: Provider
) -> None:
    log_in(browser_client)
    used = provider.authorizations[-1]["nonce"]
    browser_client.cookies.clear()
    provider.nonce = used  # the provider hands back an ID token of the earlier login
    answer = log_in(browser_client)
    assert answer.status_code == 401 and "hör inte till den här inloggningen" in answer.text
    assert not has_session(browser_client)


def test_a_missing_pkce_verifier_opens_no_session(
    browser_client: httpx.Client, web: Web, provider: Provider
) -> None:
    url, _ = start(browser_client)
    with web.engine.begin() as conn:  # the login's verifier is lost on the way
        conn.execute(text("UPDATE est.web_login SET code_verifier = ''"))
    answer = browser_client.get(authorize(browser_client, url))
    assert not provider.token_requests[-1].get("code_verifier")  # sent without one
    assert answer.status_code == 401 and "godtog inte inloggningen" in answer.text
    assert not has_session(browser_client)


@pytest.mark.parametrize(
    "override",
    [{"iss": "http://127.0.0.1:1/another-issuer"}, {"aud": "another-client"}],
    ids=["another issuer", "another audience"],
)
def test_an_id_token_of_another_issuer_or_audience_opens_no_session(
    browser_client: httpx.Client, provider: Provider, override: dict[str, Any]
) -> None:
    provider.overrides.update(override)
    answer = log_in(browser_client)
    assert answer.status_code == 401 and "fel utfärdare" in answer.text
    assert not has_session(browser_client)


def test_an_organisation_unknown_here_opens_no_session(
    browser_client: httpx.Client, provider: Provider
) -> None:
    provider.overrides["est_org"] = "kommun-okand"
    answer = log_in(browser_client)
    assert answer.status_code == 401 and "saknar en roll eller en organisation" in answer.text
    assert not has_session(browser_client)


def test_a_role_that_may_not_use_the_map_opens_no_session(
    browser_client: httpx.Client, provider: Provider
) -> None:
    provider.role = "ingest"
    answer = log_in(browser_client)
    assert answer.status_code == 401 and "roll kan inte använda kartan" in answer.text
    assert not has_session(browser_client)


def test_the_flow_in_the_browser_ends_on_the_map(browser: Any, oidc_server: str) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(f"{oidc_server}/?area=1285&layers=hotspots")
    page.click("#oidc-login")
    wait_ready(page)
    assert page.url.startswith(f"{oidc_server}/?area=1285")
    assert "Eslöv" in page.inner_text("h1")
    context.close()
