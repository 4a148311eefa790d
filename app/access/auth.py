"""Who is calling: API keys (Bearer, or the password of HTTP Basic) and OIDC bearer tokens.

An API key looks like `est_<id>_<secret>`. Only the SHA-256 of the secret is stored; the id is
the visible part people use to recognise and revoke a key.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import hmac
import logging
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import jwt
from sqlalchemy import Connection, text

from app.core.errors import Forbidden, Unauthorized, Unavailable
from app.core.vocabulary import Role
from app.settings import Settings

KEY_PREFIX = "est"


log = logging.getLogger("est")


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: who, for which organisation, in which role."""

    subject: str
    organisation_id: int
    organisation_code: str
    role: Role
    key_id: str | None = None
    cached: bool = False  # taken from KeyCache: the request's transaction checks the key again


@dataclass(frozen=True)
class NewKey:
    """A freshly created key: `token` is shown once and never stored."""

    key_id: str
    token: str
    expires_at: datetime | None


def hash_secret(secret: str) -> str:
    """Return the stored form of a key's secret."""
    return hashlib.sha256(secret.encode()).hexdigest()


def create_api_key(
    conn: Connection,
    organisation_id: int,
    role: Role,
    name: str | None = None,
    expires_days: int | None = None,
) -> NewKey:
    """Create a key for an organisation and role; return it with its one-time token."""
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    expires_at = datetime.now(UTC) + timedelta(days=expires_days) if expires_days else None
    conn.execute(
        text("""
            INSERT INTO est.api_key (id, secret_sha256, organisation_id, role, name, expires_at)
            VALUES (:id, :hash, :org, :role, :name, :expires)
        """),
        {
            "id": key_id,
            "hash": hash_secret(secret),
            "org": organisation_id,
            "role": role.value,
            "name": name,
            "expires": expires_at,
        },
    )
    return NewKey(key_id=key_id, token=f"{KEY_PREFIX}_{key_id}_{secret}", expires_at=expires_at)


def credentials_from_header(authorization: str | None) -> str:
    """Return the key or token carried by an Authorization header (Bearer or Basic)."""
    if not authorization:
        raise Unauthorized(
            "send an API key as 'Authorization: Bearer <key>' or as the password "
            "of HTTP Basic, or an OIDC bearer token"
        )
    scheme, _, value = authorization.partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and value:
        return value
    if scheme.lower() == "basic" and value:
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise Unauthorized(
                "the Basic credentials are not valid base64 of user:password"
            ) from None
        _, sep, password = decoded.partition(":")
        if sep and password:
            return password
        raise Unauthorized("HTTP Basic needs the API key as the password")
    raise Unauthorized(f"unsupported authorization scheme {scheme!r}; use Bearer or Basic")


def is_api_key(credential: str) -> bool:
    """Tell an API key from a JWT by its form."""
    return credential.startswith(f"{KEY_PREFIX}_") and credential.count(".") != 2


class KeyCache:
    """API keys this process checked lately: a request with one skips the key's own query.

    Only a positive answer is kept, for `seconds`, under the SHA-256 of the whole credential.
    It never outlives the key: the request's transaction reads the key again in the statement
    that scopes it (app.api.deps.get_session), so a revoked or expired key is refused at once
    wherever data is read; routes that read nothing (the OGC landing page, /conformance) may
    answer a revoked key for `seconds` more.
    """

    def __init__(self, seconds: float, size: int = 4096) -> None:
        self.seconds = seconds
        self.size = size
        self._kept: dict[str, tuple[Principal, float]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _name(credential: str) -> str:
        return hashlib.sha256(credential.encode()).hexdigest()

    def get(self, credential: str) -> Principal | None:
        """The principal of a credential checked less than `seconds` ago, or None."""
        if self.seconds <= 0:
            return None
        kept = self._kept.get(self._name(credential))
        if kept is None or kept[1] < time.monotonic():
            return None
        return dataclasses.replace(kept[0], cached=True)

    def keep(self, credential: str, principal: Principal) -> None:
        """Remember a credential that was just checked."""
        if self.seconds <= 0:
            return
        with self._lock:
            if len(self._kept) >= self.size:
                now = time.monotonic()
                self._kept = {k: v for k, v in self._kept.items() if v[1] >= now}
                if len(self._kept) >= self.size:
                    self._kept.clear()
            self._kept[self._name(credential)] = (principal, time.monotonic() + self.seconds)


def key_refusal(revoked_at: datetime | None, expires_at: datetime | None) -> str | None:
    """Why a known key may not be used now, or None when it may."""
    if revoked_at is not None:
        return "this API key was revoked"
    if expires_at is not None and expires_at <= datetime.now(UTC):
        return "this API key has expired"
    return None


def authenticate_key(conn: Connection, token: str) -> Principal:
    """Return the principal of a valid, unexpired, unrevoked API key."""
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or not parts[1] or not parts[2]:
        raise Unauthorized("malformed API key")
    key_id, secret = parts[1], parts[2]
    row = conn.execute(
        text("""
            SELECT k.secret_sha256, k.role, k.expires_at, k.revoked_at, o.id AS org_id, o.code
            FROM est.api_key k JOIN est.organisation o ON o.id = k.organisation_id
            WHERE k.id = :id
        """),
        {"id": key_id},
    ).one_or_none()
    # Compare a hash even for unknown ids, so timing does not tell which ids exist.
    stored = row.secret_sha256 if row is not None else hash_secret("")
    if not hmac.compare_digest(stored, hash_secret(secret)) or row is None:
        raise Unauthorized("unknown API key")
    refusal = key_refusal(row.revoked_at, row.expires_at)
    if refusal is not None:
        raise Unauthorized(refusal)
    conn.execute(
        text(
            "UPDATE est.api_key SET last_used_at = now() WHERE id = :id "
            "AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')"
        ),
        {"id": key_id},
    )
    return Principal(
        subject=f"key:{key_id}",
        organisation_id=row.org_id,
        organisation_code=row.code,
        role=Role(row.role),
        key_id=key_id,
    )


@lru_cache(maxsize=8)
def _jwks_client(url: str) -> jwt.PyJWKClient:
    return jwt.PyJWKClient(url, cache_keys=True, lifespan=3600)


def verify_oidc_token(settings: Settings, token: str) -> dict[str, Any]:
    """Return the claims of a token signed by the configured issuer for our audience."""
    if not (settings.oidc_issuer and settings.oidc_audience and settings.oidc_jwks_url):
        raise Unauthorized("OIDC tokens are not accepted here: use an API key")
    return verify_jwt(
        token,
        settings.oidc_jwks_url,
        settings.oidc_algorithms,
        audience=settings.oidc_audience,
        issuer=settings.oidc_issuer,
    )


def verify_jwt(
    token: str, jwks_url: str, algorithms: list[str], *, audience: str, issuer: str
) -> dict[str, Any]:
    """Return the claims of a JWT signed with a key of `jwks_url`, from `issuer` for `audience`
    (bearer tokens, and the ID tokens of the map page's login)."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise Unauthorized("the bearer token is neither an API key nor a JWT") from None
    if header.get("alg") not in algorithms:
        raise Unauthorized(f"token algorithm {header.get('alg')!r} is not accepted")
    try:
        key = _jwks_client(jwks_url).get_signing_key_from_jwt(token)
        claims: dict[str, Any] = jwt.decode(
            token,
            key.key,
            algorithms=algorithms,
            audience=audience,
            issuer=issuer,
            options={"require": ["exp", "iss", "aud", "sub"]},
            leeway=30,
        )
    except jwt.PyJWKClientConnectionError:
        log.warning("the OIDC key set at %s could not be fetched", jwks_url)
        raise Unavailable(
            "the identity provider's signing keys cannot be fetched just now; try again shortly"
        ) from None
    except jwt.ExpiredSignatureError:
        raise Unauthorized("the token has expired") from None
    except jwt.InvalidAudienceError:
        raise Unauthorized("the token is for another audience") from None
    except jwt.InvalidIssuerError:
        raise Unauthorized("the token comes from an issuer that is not trusted") from None
    except (jwt.PyJWTError, jwt.PyJWKClientError) as exc:
        raise Unauthorized(f"the token is not valid: {exc}") from None
    return claims


def role_from_claims(settings: Settings, claims: dict[str, Any]) -> Role:
    """Return the one role a token's role claim carries (a string or a list, as Entra sends)."""
    value = claims.get(settings.oidc_role_claim)
    values = value if isinstance(value, list) else [value] if value else []
    roles = {Role(v) for v in values if isinstance(v, str) and v in Role.__members__}
    if len(roles) != 1:
        raise Forbidden(
            f"the token's {settings.oidc_role_claim!r} claim must name exactly one of "
            f"{', '.join(Role.__members__)}; it has {values!r}"
        )
    return roles.pop()


def authenticate_oidc(conn: Connection, settings: Settings, token: str) -> Principal:
    """Return the principal of a valid OIDC token whose organisation is known here."""
    return principal_from_claims(conn, settings, verify_oidc_token(settings, token))


def principal_from_claims(
    conn: Connection, settings: Settings, claims: dict[str, Any]
) -> Principal:
    """Return the principal of verified OIDC claims: their role, and their organisation if it
    is known here."""
    role = role_from_claims(settings, claims)
    org_code = claims.get(settings.oidc_org_claim)
    if not isinstance(org_code, str) or not org_code:
        raise Forbidden(
            f"the token has no {settings.oidc_org_claim!r} claim naming an organisation"
        )
    org_id = conn.scalar(text("SELECT id FROM est.organisation WHERE code = :c"), {"c": org_code})
    if org_id is None:
        raise Forbidden(f"organisation {org_code!r} of the token is not registered here")
    return Principal(
        subject=f"oidc:{claims['sub']}",
        organisation_id=int(org_id),
        organisation_code=org_code,
        role=role,
    )


def authenticate(conn: Connection, settings: Settings, authorization: str | None) -> Principal:
    """Return the caller behind an Authorization header, or raise Unauthorized."""
    credential = credentials_from_header(authorization)
    if is_api_key(credential):
        return authenticate_key(conn, credential)
    return authenticate_oidc(conn, settings, credential)
