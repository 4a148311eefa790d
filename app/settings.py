"""The one settings class of the service: every setting is an environment variable EST_…."""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache
from typing import Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import URL, make_url

# The three database roles of a deployment. Roles are global to a PostgreSQL cluster, so the
# names are fixed: every database of a cluster uses the same three.
OWNER_ROLE = "est_owner"
APP_ROLE = "est_app"
SYSTEM_ROLE = "est_system"
_HOST_NAME = re.compile(r"[a-z0-9]([a-z0-9.-]*[a-z0-9])?")


class Settings(BaseSettings):
    """Configuration read from EST_* environment variables (and an optional .env file)."""

    model_config = SettingsConfigDict(env_prefix="EST_", env_file=".env", extra="ignore")

    database_url: str = Field(
        "postgresql://postgres@127.0.0.1:54329/est",
        description="An administrative login to the deployment's database (superuser, or owner "
        "with CREATEROLE): used by `est db init`, and the base the role URLs are derived from.",
    )
    app_database_url: str | None = Field(
        None, description="The service's connection (role est_app); derived when unset."
    )
    owner_database_url: str | None = Field(
        None, description="The migrations' connection (role est_owner); derived when unset."
    )
    system_database_url: str | None = Field(
        None, description="The nightly jobs' connection (role est_system); derived when unset."
    )
    db_pool_size: int = Field(10, ge=1, le=200)

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    environment: Literal["development", "production"] = "development"
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    timezone: str = Field(
        "Europe/Stockholm",
        description="IANA time zone of what people read; its Mondays start the weeks. "
        "`est db init` writes it into the database, whose aggregates count in it.",
    )
    retention_months: int = Field(36, ge=1)
    scheduler: bool = Field(
        True, description="Run the nightly schedule inside the service (every replica may)."
    )
    metrics_public: bool = Field(
        False, description="Serve /metrics without a key (else the operator's admin key)."
    )
    recompute_schedule: str = Field(
        "03:30",
        pattern=r"^([01]\d|2[0-3]):[0-5]\d$",
        description="Local time (EST_TIMEZONE) of the night's runs and purge, HH:MM.",
    )
    recompute_workers: int = Field(
        0,
        ge=0,
        description="Dask worker processes of a local cluster for the night's runs "
        "(0: in the process itself).",
    )
    dask_scheduler: str | None = Field(
        None,
        description="An existing Dask cluster for the night's runs, tls://HOST:8786 "
        "(TLS through Dask's own DASK_DISTRIBUTED__COMM__TLS__* settings).",
    )
    archive_dir: str = Field(
        ".data/archive", description="Where `est purge` writes what it deletes (GPKG + CSV)."
    )
    suppression_k: int = Field(
        5, ge=3, description="Counts below k are hidden from viewers (written by `est db init`)."
    )
    rounding_base: int = Field(
        5, ge=1, description="Viewer counts are rounded to it (written by `est db init`)."
    )

    oidc_issuer: str | None = Field(None, description="Issuer (iss) of accepted OIDC tokens.")
    oidc_audience: str | None = Field(None, description="Audience (aud) the tokens must carry.")
    oidc_jwks_url: str | None = Field(None, description="Where the issuer's signing keys are.")
    oidc_algorithms: list[str] = Field(
        default_factory=lambda: ["RS256"], description="Signature algorithms accepted."
    )
    oidc_role_claim: str = Field("roles", description="Claim with the role (Entra app roles).")
    oidc_org_claim: str = Field("est_org", description="Claim with the organisation code.")
    oidc_client_id: str | None = Field(
        None,
        description="The map page's client id at the issuer: set, the page logs people in with "
        "the authorisation code flow (PKCE S256, state, nonce) instead of an API key form.",
    )
    oidc_client_secret: SecretStr | None = Field(
        None, description="The client's secret (a confidential client; unset for a public one)."
    )
    oidc_redirect_uri: str | None = Field(
        None,
        description="Where the issuer sends the browser back, registered with it: "
        "https://…/login/callback (unset: EST_PUBLIC_BASE_URL + /login/callback, else the "
        "address the browser used).",
    )
    oidc_discovery_url: str | None = Field(
        None,
        description="The issuer's discovery document (unset: EST_OIDC_ISSUER + "
        "/.well-known/openid-configuration).",
    )
    oidc_scopes: list[str] = Field(
        default_factory=lambda: ["openid", "profile"],
        description="Scopes the map page asks for (openid is always one).",
    )
    session_idle_minutes: int = Field(
        30, ge=1, le=24 * 60, description="A map-page session ends after this long unused."
    )
    session_max_hours: int = Field(
        12, ge=1, le=7 * 24, description="…and this long after its login at the latest."
    )

    basemap_url: str | None = Field(
        None,
        description="A basemap for the map page: a MapLibre style (…/style.json) or raster "
        "tiles ({z}/{x}/{y}); unset, no basemap (a tile server would learn where people look).",
    )
    basemap_attribution: str | None = Field(
        None, description="The basemap's attribution, shown on the map (e.g. © Lantmäteriet)."
    )

    default_locations: list[str] = Field(
        default_factory=list,
        description='Points records fall back to, as "name:lon,lat"; records there are marked '
        "area_centroid (kommun and län centroids and 0/0 are always checked).",
    )
    default_location_tolerance_m: float = Field(25.0, ge=0, le=1000)
    shared_point_warning: int = Field(
        50, ge=2, description="Warn when this many records of one import share a point."
    )
    max_batch_records: int = Field(10_000, ge=1, description="Records in one POST.")

    cors_origins: list[str] = Field(default_factory=list, description="Allowed browser origins.")
    max_body_bytes: int = Field(50 * 1024 * 1024, ge=1024, description="Largest request body.")
    statement_timeout_s: float = Field(
        30, gt=0, description="A query of a request that runs longer ends with 503."
    )
    export_timeout_s: float = Field(
        600, gt=0, description="The same for exports, which read without a page limit."
    )
    max_page_size: int = Field(10_000, ge=10, description="Largest page of items.")
    rate_limit_per_minute: int = Field(600, ge=1, description="Requests per key and minute.")
    auth_failures_per_minute: int = Field(
        30, ge=1, description="Failed authentications per client address and minute."
    )
    key_cache_s: float = Field(
        30.0,
        ge=0,
        description="Seconds a checked API key is kept in memory (0: ask the database every "
        "time). Routes that read data check the key again in their own first statement.",
    )
    tile_cache_mb: float = Field(
        64.0,
        ge=0,
        description="Memory per worker for vector tiles already made, kept by their ETag for at "
        "most 10 minutes (0: make every tile anew).",
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Proxy addresses whose X-Forwarded-For names the client (JSON list).",
    )
    root_path: str = Field(
        "",
        pattern=r"^(/[^/?#]+)*$",
        description="The path a reverse proxy serves the service under (e.g. /lagesbild); "
        "absolute links in answers start with it unless a trusted proxy sends X-Forwarded-Prefix.",
    )

    public_base_url: str | None = Field(
        None,
        description="Where people open the service, e.g. https://lagesbild.example.se: alerts "
        "link to its map page (/map?area=…&week=…&hotspot=…); unset, they carry no link.",
    )
    alert_allow_hosts: list[str] = Field(
        default_factory=list,
        description="Hosts or networks (JSON list: names, addresses, CIDRs) that webhooks may "
        "reach although they are internal (loopback, private, link-local, …).",
    )
    alert_timeout_s: float = Field(
        10, gt=0, le=120, description="Seconds a webhook receiver or the SMTP server has."
    )
    smtp_host: str | None = Field(None, description="The SMTP server alerts are mailed through.")
    smtp_port: int = Field(587, ge=1, le=65535)
    smtp_from: str | None = Field(None, description="The sender of alert mails.")
    smtp_username: str | None = Field(None, description="SMTP login, when the server needs one.")
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = Field(True, description="Upgrade the SMTP connection with STARTTLS.")
    smtp_ca_file: str | None = Field(
        None, description="PEM file of the CA that signed the SMTP server's certificate."
    )

    @field_validator("oidc_algorithms")
    @classmethod
    def _asymmetric_only(cls, value: list[str]) -> list[str]:
        if not value or any(a.lower() == "none" or a.upper().startswith("HS") for a in value):
            raise ValueError("only asymmetric algorithms (RS256, ES256, …) are accepted")
        return value

    @field_validator("public_base_url", "oidc_redirect_uri", "oidc_discovery_url", "basemap_url")
    @classmethod
    def _web_address(cls, value: str | None) -> str | None:
        if value is not None and not (
            value.startswith(("http://", "https://")) and urlsplit(value).hostname
        ):
            raise ValueError("must be an http:// or https:// address, e.g. https://lagesbild.se")
        return value.rstrip("/") if value is not None else None

    @field_validator("alert_allow_hosts")
    @classmethod
    def _hosts_or_networks(cls, value: list[str]) -> list[str]:
        entries = [entry.strip().lower() for entry in value]
        for entry in entries:
            if _HOST_NAME.fullmatch(entry) is None and not _network(entry):
                raise ValueError(f"{entry!r} is neither a host name nor an address or CIDR")
        return entries

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}: use e.g. Europe/Stockholm") from None
        return value

    @field_validator(
        "database_url", "app_database_url", "owner_database_url", "system_database_url"
    )
    @classmethod
    def _valid_url(cls, value: str | None) -> str | None:
        if value is not None:
            url = make_url(value)
            if not url.drivername.startswith("postgresql"):
                raise ValueError("must be a postgresql:// URL")
        return value

    def admin_url(self) -> URL:
        """Return the administrative URL, with the psycopg 3 driver."""
        return _psycopg(make_url(self.database_url))

    def role_url(self, role: str) -> URL:
        """Return the URL of one of the deployment's roles: explicit when set, else derived."""
        explicit = self._explicit_role_url(role)
        if explicit is None:
            return self.admin_url().set(username=role, password=None)
        if explicit.username != role:
            raise ValueError(f"the URL for role {role} logs in as {explicit.username!r}")
        return _psycopg(explicit)

    def role_password(self, role: str) -> str | None:
        """Return the password given for a role in its explicit URL, if any."""
        explicit = self._explicit_role_url(role)
        return explicit.password if explicit is not None else None

    def _explicit_role_url(self, role: str) -> URL | None:
        value = {
            OWNER_ROLE: self.owner_database_url,
            APP_ROLE: self.app_database_url,
            SYSTEM_ROLE: self.system_database_url,
        }[role]
        return make_url(value) if value is not None else None


def _network(entry: str) -> bool:
    try:
        ipaddress.ip_network(entry, strict=False)
    except ValueError:
        return False
    return True


def _psycopg(url: URL) -> URL:
    return url.set(drivername="postgresql+psycopg")


@lru_cache
def get_settings() -> Settings:
    """Return the process's settings, read once from the environment."""
    return Settings()
