"""A small OIDC provider for the login tests, on loopback: a discovery document, a JWKS, an
authorisation endpoint that approves at once and a token endpoint that checks PKCE (S256) and
signs ID tokens with an RSA key generated at start.

What it puts into the next ID tokens can be changed (`overrides`: another issuer, audience,
organisation; `nonce`: an old nonce), so the tests can make it misbehave like a provider that
was tampered with. It records what it was asked (`authorizations`, `token_requests`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa


@dataclass
class Provider:
    """The provider's state: its key, the codes it gave out and what it was asked."""

    client_id: str
    client_secret: str
    subject: str = "anna.andersson@eslov.example"
    role: str = "viewer"
    organisation: str = "kommun-1285"
    issuer: str = ""
    key: Any = field(default_factory=lambda: rsa.generate_private_key(65537, 2048))
    kid: str = field(default_factory=lambda: secrets.token_hex(4))
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    overrides: dict[str, Any] = field(default_factory=dict)
    nonce: str | None = None  # put this nonce into the next ID tokens instead of the asked one
    authorizations: list[dict[str, str]] = field(default_factory=list)
    token_requests: list[dict[str, str]] = field(default_factory=list)

    def discovery(self) -> dict[str, Any]:
        """The discovery document."""
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "jwks_uri": f"{self.issuer}/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
        }

    def jwks(self) -> dict[str, Any]:
        """The public key as a JWK set."""
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        return {"keys": [{**public, "kid": self.kid, "use": "sig", "alg": "RS256"}]}

    def authorize(self, asked: dict[str, str]) -> tuple[int, str]:
        """Approve at once: a code for the redirect URI, with the request's state."""
        self.authorizations.append(asked)
        if asked.get("response_type") != "code" or asked.get("client_id") != self.client_id:
            return 400, "unsupported request"
        if asked.get("code_challenge_method") != "S256" or not asked.get("code_challenge"):
            return 400, "PKCE S256 is required"
        code = secrets.token_urlsafe(16)
        self.codes[code] = asked
        query = urlencode({"code": code, "state": asked.get("state", "")})
        return 302, f"{asked['redirect_uri']}?{query}"

    def token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """Redeem a code once, if the client, redirect URI and PKCE verifier are right."""
        self.token_requests.append(form)
        asked = self.codes.pop(form.get("code", ""), None)
        if asked is None:
            return 400, {"error": "invalid_grant", "error_description": "unknown or used code"}
        if (
            form.get("client_id") != self.client_id
            or form.get("client_secret") != self.client_secret
        ):
            return 401, {"error": "invalid_client"}
        if form.get("redirect_uri") != asked["redirect_uri"]:
            return 400, {"error": "invalid_grant", "error_description": "redirect_uri differs"}
        verifier = form.get("code_verifier", "")
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
        if not verifier or challenge.decode().rstrip("=") != asked["code_challenge"]:
            return 400, {"error": "invalid_grant", "error_description": "PKCE verification failed"}
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": self.subject,
            "aud": self.client_id,
            "iat": now,
            "exp": now + 300,
            "nonce": self.nonce or asked.get("nonce"),
            "roles": [self.role],
            "est_org": self.organisation,
            **self.overrides,
        }
        signed = jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": self.kid})
        return 200, {
            "access_token": secrets.token_urlsafe(16),
            "token_type": "Bearer",
            "expires_in": 300,
            "id_token": signed,
        }


def _handler(provider: Provider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def _json(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path == "/.well-known/openid-configuration":
                self._json(200, provider.discovery())
            elif url.path == "/jwks":
                self._json(200, provider.jwks())
            elif url.path == "/authorize":
                asked = {k: v[0] for k, v in parse_qs(url.query).items()}
                status, where = provider.authorize(asked)
                self.send_response(status)
                if status == 302:
                    self.send_header("Location", where)
                self.send_header("Content-Length", "0")
                self.end_headers()
            else:
                self._json(404, {"error": "not found"})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            if urlsplit(self.path).path != "/token":
                self._json(404, {"error": "not found"})
                return
            status, body = provider.token(form)
            self._json(status, body)

    return Handler


@contextmanager
def running(client_id: str, client_secret: str) -> Iterator[Provider]:
    """A provider listening on a free port of loopback until the block ends."""
    provider = Provider(client_id, client_secret)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(provider))
    provider.issuer = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield provider
    finally:
        server.shutdown()
        server.server_close()
