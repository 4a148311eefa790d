"""The map page's OIDC login: the authorisation code flow with PKCE (S256), state and nonce.

1. `begin` makes a random state, nonce and PKCE code verifier, keeps them in est.web_login
   (the state as its SHA-256) and returns the issuer's authorisation URL; the browser also gets
   the state in a short-lived cookie, so that a callback is only taken from the browser that
   started the login.
2. `finish`, on the callback, takes the pending login of the state (once: a replayed callback
   finds nothing), redeems the code at the token endpoint with the code verifier, and checks the
   ID token: signed with a key of the issuer's JWKS, from the issuer of the discovery document,
   for our client id, unexpired, carrying the nonce of this login. Its role and organisation
   claims (EST_OIDC_ROLE_CLAIM, EST_OIDC_ORG_CLAIM) make the principal, as for bearer tokens.

Failures raise LoginFailed with the Swedish sentence the login page shows; the log gets the
technical reason.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, text

from app.access.auth import Principal, hash_secret, principal_from_claims, verify_jwt
from app.core.errors import DomainError, Forbidden, Unavailable
from app.settings import Settings

LOGIN_MAX_AGE_S = 600  # a login must come back from the issuer within ten minutes
HTTP_TIMEOUT_S = 10
DISCOVERY_TTL_S = 3600
WELL_KNOWN = "/.well-known/openid-configuration"
log = logging.getLogger("est")


class LoginFailed(DomainError):
    """An OIDC login that did not prove who the user is; `detail` is what the page says."""


@dataclass(frozen=True)
class Provider:
    """What the discovery document says about the issuer."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str


@dataclass(frozen=True)
class Login:
    """A finished login: who logged in, the ID token's nonce and where to go next."""

    principal: Principal
    nonce: str
    return_to: str


def enabled(settings: Settings) -> bool:
    """Whether the page logs people in through the issuer (else with an API key form)."""
    return bool(settings.oidc_client_id and (settings.oidc_discovery_url or settings.oidc_issuer))


def discovery_url(settings: Settings) -> str:
    """Where the issuer's discovery document is."""
    if settings.oidc_discovery_url:
        return settings.oidc_discovery_url
    assert settings.oidc_issuer is not None
    return settings.oidc_issuer.rstrip("/") + WELL_KNOWN


def provider(settings: Settings) -> Provider:
    """The issuer's endpoints, read from its discovery document (kept for an hour)."""
    found = _discover(discovery_url(settings), int(time.time() // DISCOVERY_TTL_S))
    if settings.oidc_issuer and found.issuer != settings.oidc_issuer:
        log.warning(
            "discovery names issuer %s, EST_OIDC_ISSUER %s", found.issuer, settings.oidc_issuer
        )
        raise LoginFailed("Identitetsleverantören är inte den som tjänsten är inställd på.")
    return found


@lru_cache(maxsize=4)
def _discover(url: str, _period: int) -> Provider:
    document = _fetch_json(urllib.request.Request(url, headers={"Accept": "application/json"}))
    try:
        return Provider(
            issuer=str(document["issuer"]),
            authorization_endpoint=str(document["authorization_endpoint"]),
            token_endpoint=str(document["token_endpoint"]),
            jwks_uri=str(document["jwks_uri"]),
        )
    except (KeyError, TypeError):
        log.warning("the discovery document at %s lacks an endpoint", url)
        raise Unavailable("the identity provider's discovery document is incomplete") from None


def _fetch_json(request: urllib.request.Request) -> Any:
    """The JSON answer of a request to the issuer; Unavailable when it cannot be had."""
    if urllib.parse.urlsplit(request.full_url).scheme not in ("http", "https"):
        raise Unavailable("the identity provider's address must be http or https")
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as answer:
            return json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        body = exc.read()[:500].decode("utf-8", "replace")
        log.warning("the identity provider answered %s %s: %s", exc.code, request.full_url, body)
        raise LoginFailed("Identitetsleverantören godtog inte inloggningen.") from None
    except (urllib.error.URLError, TimeoutError, json.JSONDecodeError) as exc:
        log.warning("the identity provider at %s cannot be reached: %s", request.full_url, exc)
        raise Unavailable("the identity provider cannot be reached just now") from None


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def code_challenge(verifier: str) -> str:
    """The PKCE S256 challenge of a code verifier (RFC 7636)."""
    return _b64url(hashlib.sha256(verifier.encode("ascii")).digest())


def begin(
    conn: Connection, settings: Settings, redirect_uri: str, return_to: str
) -> tuple[str, str]:
    """Start a login: return the issuer's authorisation URL and the state the browser keeps."""
    found = provider(settings)
    state, nonce, verifier = (
        secrets.token_urlsafe(32),
        secrets.token_urlsafe(32),
        secrets.token_urlsafe(48),
    )
    conn.execute(
        text("SELECT est.web_login_start(:state, :nonce, :verifier, :return_to)"),
        {"state": hash_secret(state), "nonce": nonce, "verifier": verifier, "return_to": return_to},
    )
    scopes = list(dict.fromkeys(["openid", *settings.oidc_scopes]))
    query = urllib.parse.urlencode(
        {
            "response_type": "code",
            "client_id": settings.oidc_client_id,
            "redirect_uri": redirect_uri,
            "scope": " ".join(scopes),
            "state": state,
            "nonce": nonce,
            "code_challenge": code_challenge(verifier),
            "code_challenge_method": "S256",
        }
    )
    separator = "&" if "?" in found.authorization_endpoint else "?"
    return f"{found.authorization_endpoint}{separator}{query}", state


def finish(
    conn: Connection,
    settings: Settings,
    redirect_uri: str,
    *,
    state: str | None,
    browser_state: str | None,
    code: str | None,
) -> Login:
    """Finish a login from its callback (see the module docstring)."""
    if not state or not browser_state or not hmac.compare_digest(state, browser_state):
        raise LoginFailed(
            "Inloggningen gick inte att slutföra: den startades inte i den här webbläsaren "
            "(fel state). Logga in igen."
        )
    pending = conn.execute(
        text("SELECT * FROM est.web_login_take(:state, :age)"),
        {"state": hash_secret(state), "age": LOGIN_MAX_AGE_S},
    ).one_or_none()
    if pending is None:
        raise LoginFailed(
            "Inloggningen gick inte att slutföra: den är redan använd eller för gammal. "
            "Logga in igen."
        )
    if not code:
        raise LoginFailed("Identitetsleverantören skickade ingen kod. Logga in igen.")
    found = provider(settings)
    tokens = _redeem(settings, found, code, pending.code_verifier, redirect_uri)
    claims = _id_token_claims(settings, found, tokens)
    if not isinstance(claims.get("nonce"), str) or not hmac.compare_digest(
        claims["nonce"], pending.nonce
    ):
        log.warning("an ID token came back with another nonce than its login's")
        raise LoginFailed("Inloggningen godtogs inte: svaret hör inte till den här inloggningen.")
    try:
        principal = principal_from_claims(conn, settings, claims)
    except Forbidden as exc:
        log.warning("an OIDC login was refused: %s", exc.detail)
        raise LoginFailed(
            "Ditt konto saknar en roll eller en organisation som tjänsten känner till. "
            "Kontakta den som administrerar tjänsten."
        ) from None
    return Login(principal, pending.nonce, pending.return_to)


def _redeem(
    settings: Settings, found: Provider, code: str, verifier: str, redirect_uri: str
) -> dict[str, Any]:
    """The token endpoint's answer to the code and its PKCE verifier."""
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "client_id": settings.oidc_client_id,
        "code_verifier": verifier,
    }
    if settings.oidc_client_secret is not None:
        form["client_secret"] = settings.oidc_client_secret.get_secret_value()
    request = urllib.request.Request(
        found.token_endpoint,
        data=urllib.parse.urlencode(form).encode(),
        headers={"Accept": "application/json", "Content-Type": "application/x-www-form-urlencoded"},
        method="POST",
    )
    answer = _fetch_json(request)
    if not isinstance(answer, dict) or not isinstance(answer.get("id_token"), str):
        log.warning("the token endpoint answered without an ID token")
        raise LoginFailed("Identitetsleverantören skickade ingen ID-token.")
    return answer


def _id_token_claims(settings: Settings, found: Provider, tokens: dict[str, Any]) -> dict[str, Any]:
    """The checked claims of the ID token (signature, issuer, audience, expiry)."""
    assert settings.oidc_client_id is not None
    try:
        claims = verify_jwt(
            tokens["id_token"],
            found.jwks_uri,
            settings.oidc_algorithms,
            audience=settings.oidc_client_id,
            issuer=found.issuer,
        )
    except DomainError as exc:
        log.warning("an ID token was refused: %s", exc.detail)
        if isinstance(exc, Unavailable):
            raise
        raise LoginFailed(
            "Inloggningen godtogs inte: ID-token kommer från fel utfärdare, är avsedd för en "
            "annan tjänst, har gått ut eller är inte rätt signerad."
        ) from None
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    if len(audiences) > 1 and claims.get("azp") != settings.oidc_client_id:
        raise LoginFailed("Inloggningen godtogs inte: ID-token är avsedd för en annan tjänst.")
    return claims
