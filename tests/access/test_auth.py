"""Authentication: API keys as Bearer or Basic, and OIDC tokens from a trusted issuer only."""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from app.access.admin import new_key, revoke_key
from app.core.vocabulary import Role
from app.main import create_app
from app.settings import Settings
from tests.conftest import World

ISSUER = "https://login.example.test/tenant/v2.0"
AUDIENCE = "api://est-lagesbild"


def _basic(password: str, user: str = "qgis") -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def test_no_credentials_is_401_with_a_basic_challenge(client: TestClient) -> None:
    r = client.get("/api/v1/me")
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"
    assert r.headers["www-authenticate"].startswith("Basic ")


def test_a_key_works_as_bearer_and_as_the_password_of_basic(
    client: TestClient, world: World
) -> None:
    token = world.tokens[("kommun-1285", "analyst")]
    bearer = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    basic = client.get("/api/v1/me", headers=_basic(token))
    assert bearer.status_code == basic.status_code == 200
    assert bearer.json()["organisation"] == basic.json()["organisation"] == "kommun-1285"
    assert bearer.json()["role"] == "analyst"
    assert {g["area"] for g in bearer.json()["grants"]} == {"1285"}


@pytest.mark.parametrize(
    "header",
    [
        "Bearer est_000000000000_wrongsecret",
        "Bearer est_nonsense",
        "Basic !!!notbase64",
        "Basic " + base64.b64encode(b"user-without-password").decode(),
        "Digest abc",
    ],
)
def test_malformed_or_unknown_credentials_are_401(client: TestClient, header: str) -> None:
    r = client.get("/api/v1/me", headers={"Authorization": header})
    assert r.status_code == 401
    assert r.json()["detail"]


def test_a_wrong_secret_for_a_real_key_id_is_refused(client: TestClient, world: World) -> None:
    token = world.tokens[("kommun-1285", "analyst")]
    prefix, key_id, secret = token.split("_", 2)
    forged = f"{prefix}_{key_id}_{secret[:-1]}{'A' if secret[-1] != 'A' else 'B'}"
    assert (
        client.get("/api/v1/me", headers={"Authorization": f"Bearer {forged}"}).status_code == 401
    )


def test_revoked_and_expired_keys_are_refused(client: TestClient, system_engine: Engine) -> None:
    with system_engine.begin() as conn:
        revoked = new_key(conn, "kommun-1285", Role.viewer, "to revoke", None)
        expired = new_key(conn, "kommun-1285", Role.viewer, "to expire", 1)
        revoke_key(conn, revoked.key_id)
        conn.execute(
            text("UPDATE est.api_key SET expires_at = now() - interval '1 second' WHERE id = :id"),
            {"id": expired.key_id},
        )
    r1 = client.get("/api/v1/me", headers={"Authorization": f"Bearer {revoked.token}"})
    r2 = client.get("/api/v1/me", headers={"Authorization": f"Bearer {expired.token}"})
    assert (r1.status_code, r2.status_code) == (401, 401)
    assert "revoked" in r1.json()["detail"] and "expired" in r2.json()["detail"]


def test_a_key_revoked_or_expired_while_it_is_kept_in_memory_is_refused_at_once(
    client: TestClient, system_engine: Engine
) -> None:
    with system_engine.begin() as conn:
        revoked = new_key(conn, "kommun-1285", Role.viewer, "kept, then revoked", None)
        expired = new_key(conn, "kommun-1285", Role.viewer, "kept, then expired", 1)
    for key in (revoked, expired):  # checked once: the worker keeps them (EST_KEY_CACHE_S)
        auth = {"Authorization": f"Bearer {key.token}"}
        assert client.get("/api/v1/me", headers=auth).status_code == 200
    with system_engine.begin() as conn:
        revoke_key(conn, revoked.key_id)
        conn.execute(
            text("UPDATE est.api_key SET expires_at = now() - interval '1 second' WHERE id = :id"),
            {"id": expired.key_id},
        )
    for key, why in ((revoked, "revoked"), (expired, "expired")):
        auth = {"Authorization": f"Bearer {key.token}"}
        for path in ("/api/v1/me", "/ogc/collections/hotspots/items", "/api/v1/areas"):
            r = client.get(path, headers=auth)
            assert r.status_code == 401, (path, r.text)
            assert why in r.json()["detail"]


def test_only_the_hash_of_a_key_is_stored(system_engine: Engine, world: World) -> None:
    token = world.tokens[("kommun-1285", "analyst")]
    secret = token.split("_", 2)[2]
    with system_engine.connect() as conn:
        hits = conn.scalar(
            text("SELECT count(*) FROM est.api_key WHERE secret_sha256 = :s OR id = :s"),
            {"s": secret},
        )
    assert hits == 0


# OIDC ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def signing_key() -> rsa.RSAPrivateKey:
    """A local RSA key standing in for the identity provider's."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def jwks_url(signing_key: rsa.RSAPrivateKey) -> Iterator[str]:
    """The identity provider's key set, served over HTTP on the loopback interface."""
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(signing_key.public_key()))
    body = json.dumps({"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            return

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/keys"
    server.shutdown()


@pytest.fixture()
def oidc_client(settings: Settings, jwks_url: str, world: World) -> Iterator[TestClient]:
    """A client of an app that trusts the local issuer."""
    configured = settings.model_copy(
        update={"oidc_issuer": ISSUER, "oidc_audience": AUDIENCE, "oidc_jwks_url": jwks_url}
    )
    with TestClient(create_app(configured), raise_server_exceptions=False) as c:
        yield c


def _token(key: Any, alg: str = "RS256", **claims: Any) -> str:
    now = int(time.time())
    body = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "user-1",
        "iat": now,
        "exp": now + 600,
        "roles": ["analyst"],
        "est_org": "kommun-1285",
        **claims,
    }
    return jwt.encode(body, key, algorithm=alg, headers={"kid": "k1"})


def _me(client: TestClient, token: str) -> Any:
    return client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})


def test_a_valid_oidc_token_with_an_entra_app_role_is_accepted(
    oidc_client: TestClient, signing_key: rsa.RSAPrivateKey
) -> None:
    r = _me(oidc_client, _token(signing_key))
    assert r.status_code == 200
    assert r.json() | {"grants": None} == {
        "subject": "oidc:user-1",
        "organisation": "kommun-1285",
        "role": "analyst",
        "grants": None,
    }


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"aud": "api://someone-else"}, "audience"),
        ({"iss": "https://evil.example.test"}, "issuer"),
        ({"exp": int(time.time()) - 3600}, "expired"),
    ],
)
def test_tokens_for_another_audience_issuer_or_expired_are_refused(
    oidc_client: TestClient, signing_key: rsa.RSAPrivateKey, claims: dict[str, Any], reason: str
) -> None:
    r = _me(oidc_client, _token(signing_key, **claims))
    assert r.status_code == 401
    assert reason in r.json()["detail"]


def test_unsigned_alg_none_tokens_are_refused(oidc_client: TestClient) -> None:
    now = int(time.time())
    header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
    payload = (
        base64.urlsafe_b64encode(
            json.dumps(
                {
                    "iss": ISSUER,
                    "aud": AUDIENCE,
                    "sub": "x",
                    "exp": now + 600,
                    "roles": ["admin"],
                    "est_org": "kommun-1285",
                }
            ).encode()
        )
        .rstrip(b"=")
        .decode()
    )
    r = _me(oidc_client, f"{header}.{payload}.")
    assert r.status_code == 401


def test_a_token_signed_by_another_key_is_refused(oidc_client: TestClient) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert _me(oidc_client, _token(other)).status_code == 401


def test_a_token_with_a_symmetric_algorithm_is_refused(oidc_client: TestClient) -> None:
    r = _me(oidc_client, _token("a-shared-secret-that-is-long-enough-32b", alg="HS256"))
    assert r.status_code == 401


def test_a_token_without_exactly_one_known_role_or_with_an_unknown_org_is_403(
    oidc_client: TestClient, signing_key: rsa.RSAPrivateKey
) -> None:
    assert _me(oidc_client, _token(signing_key, roles=["analyst", "admin"])).status_code == 403
    assert _me(oidc_client, _token(signing_key, roles=["superuser"])).status_code == 403
    assert _me(oidc_client, _token(signing_key, est_org="kommun-9999")).status_code == 403


def test_oidc_tokens_are_refused_when_no_issuer_is_configured(
    client: TestClient, signing_key: rsa.RSAPrivateKey
) -> None:
    r = _me(client, _token(signing_key))
    assert r.status_code == 401
    assert "not accepted" in r.json()["detail"]


def test_an_unreachable_key_set_is_a_503_that_does_not_show_the_fetch_error(
    settings: Settings, signing_key: rsa.RSAPrivateKey, world: World
) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    configured = settings.model_copy(
        update={
            "oidc_issuer": ISSUER,
            "oidc_audience": AUDIENCE,
            "oidc_jwks_url": f"http://127.0.0.1:{port}/keys",
        }
    )
    with TestClient(create_app(configured), raise_server_exceptions=False) as c:
        r = _me(c, _token(signing_key))
    assert r.status_code == 503 and r.headers["content-type"] == "application/problem+json"
    assert "127.0.0.1" not in r.text and "Connection refused" not in r.text
