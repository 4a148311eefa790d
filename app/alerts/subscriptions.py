"""Alert subscriptions: an organisation's webhook or e-mail address for one area.

Kept by the organisation's admins over the API, or by the operator with `est alerts`. An
organisation subscribes only to areas it holds a grant on (either level: alerts carry viewer
values only). A webhook gets a secret, shown once; rotating makes a new one and keeps the
previous one accepted (both sign every delivery) until the next rotation or until it is
dropped. Every change goes to the audit log. The functions take the organisation whose
subscriptions they may touch (None: any, for the operator's command line); another
organisation's subscription is "not found".
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.exc import IntegrityError

from app.access import audit, privacy
from app.access.auth import Principal
from app.alerts.mail import check_address
from app.alerts.webhook import check_url
from app.core.errors import Conflict, InvalidInput, NotFound

SECRET_PREFIX = "whsec_"


@dataclass(frozen=True)
class Who:
    """Who changes subscriptions, as the audit log names them."""

    principal: Principal | None
    actor: str
    endpoint: str | None = None
    request_id: str | None = None


@dataclass(frozen=True)
class Subscription:
    """A subscription without its secrets (channel: webhook or email)."""

    id: int
    organisation: str
    area: str
    area_name: str
    channel: str
    target: str
    active: bool
    has_previous_secret: bool
    secret_rotated_at: datetime | None
    created_by: str
    created_at: datetime
    updated_at: datetime


# The service's role may read these columns only: the secrets are for the nightly role.
_SELECT = """
    SELECT s.id, o.code AS organisation, a.code AS area, a.name AS area_name, s.channel,
           s.target, s.active, s.has_previous_secret, s.secret_rotated_at, s.created_by,
           s.created_at, s.updated_at
    FROM est.alert_subscription s
    JOIN est.organisation o ON o.id = s.organisation_id
    JOIN est.area a ON a.id = s.area_id
    WHERE (CAST(:org AS integer) IS NULL OR s.organisation_id = :org)
"""


def new_secret() -> str:
    """A webhook secret: 256 random bits."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def checked_target(
    url: str | None, email: str | None, allowed: Sequence[str], channel: str | None = None
) -> tuple[str, str]:
    """The channel and target of a url or an email (exactly one; of `channel` when given)."""
    if (url is None) == (email is None):
        raise InvalidInput("url: give either url (a webhook) or email", field="url")
    if url is not None:
        if channel not in (None, "webhook"):
            raise InvalidInput("url: this subscription sends e-mail; change its email", field="url")
        return "webhook", check_url(url, allowed).url
    assert email is not None
    if channel not in (None, "email"):
        raise InvalidInput("email: this subscription is a webhook; change its url", field="email")
    return "email", check_address(email)


def _audit(conn: Connection, who: Who, action: str, what: dict[str, Any]) -> None:
    audit.record_change(conn, who, action, what)


def create(
    conn: Connection,
    who: Who,
    organisation_id: int,
    area_code: str,
    *,
    url: str | None = None,
    email: str | None = None,
    allowed: Sequence[str] = (),
) -> tuple[Subscription, str | None]:
    """Subscribe an organisation to an area; return it and a webhook's secret (shown once)."""
    channel, target = checked_target(url, email, allowed)
    # unknown and not granted answer alike, so that nobody learns which areas exist
    if not privacy.has_grant(conn, organisation_id, area_code):
        raise InvalidInput(
            f"area: no area {area_code!r} that the organisation holds a grant on", field="area"
        )
    secret = new_secret() if channel == "webhook" else None
    made = conn.scalar(
        text("""
        INSERT INTO est.alert_subscription (organisation_id, area_id, channel, target, secret,
                                            created_by)
        SELECT :org, a.id, :channel, :target, :secret, :by FROM est.area a WHERE a.code = :area
        ON CONFLICT (organisation_id, area_id, channel, target) DO NOTHING
        RETURNING id
    """),
        {
            "org": organisation_id,
            "area": area_code,
            "channel": channel,
            "target": target,
            "secret": secret,
            "by": who.actor[:128],
        },
    )
    if made is None:
        raise Conflict(f"the organisation already subscribes {target} to area {area_code}")
    subscription = get(conn, int(made), organisation_id)
    _audit(
        conn,
        who,
        "alert_subscription.create",
        {"id": subscription.id, "area": area_code, "channel": channel, "target": target},
    )
    return subscription, secret


def list_subscriptions(
    conn: Connection, organisation_id: int | None, area_code: str | None = None
) -> list[Subscription]:
    """The subscriptions of an organisation (None: all), of one area when given."""
    rows = conn.execute(
        text(_SELECT + "AND (CAST(:area AS text) IS NULL OR a.code = :area) ORDER BY s.id"),
        {"org": organisation_id, "area": area_code},
    ).all()
    return [Subscription(**r._mapping) for r in rows]


def get(conn: Connection, subscription_id: int, organisation_id: int | None) -> Subscription:
    """One subscription of the organisation (None: of any)."""
    row = conn.execute(
        text(_SELECT + "AND s.id = :id"), {"org": organisation_id, "id": subscription_id}
    ).one_or_none()
    if row is None:
        raise NotFound(f"no alert subscription {subscription_id}")
    return Subscription(**row._mapping)


def update(
    conn: Connection,
    who: Who,
    subscription_id: int,
    organisation_id: int | None,
    *,
    url: str | None = None,
    email: str | None = None,
    active: bool | None = None,
    drop_previous_secret: bool = False,
    allowed: Sequence[str] = (),
) -> Subscription:
    """Change a subscription's address, pause or resume it, or drop its previous secret."""
    current = get(conn, subscription_id, organisation_id)
    target = None
    if url is not None or email is not None:
        _, target = checked_target(url, email, allowed, current.channel)
    if drop_previous_secret and current.channel != "webhook":
        raise InvalidInput(
            "drop_previous_secret: an e-mail subscription has no secret",
            field="drop_previous_secret",
        )
    try:
        with conn.begin_nested():
            conn.execute(
                text("""
                UPDATE est.alert_subscription
                SET target = coalesce(:target, target), active = coalesce(:active, active),
                    updated_at = now()
                WHERE id = :id
            """),
                {"id": subscription_id, "target": target, "active": active},
            )
    except IntegrityError:
        raise Conflict(f"the organisation already subscribes {target} to this area") from None
    if drop_previous_secret:
        conn.execute(
            text("UPDATE est.alert_subscription SET previous_secret = NULL WHERE id = :id"),
            {"id": subscription_id},
        )
    changes = {"target": target, "active": active, "drop_previous_secret": drop_previous_secret}
    said = {k: v for k, v in changes.items() if v not in (None, False)}
    _audit(conn, who, "alert_subscription.change", {"id": subscription_id, **said})
    return get(conn, subscription_id, organisation_id)


def delete(conn: Connection, who: Who, subscription_id: int, organisation_id: int | None) -> None:
    """Remove a subscription and its delivery log."""
    current = get(conn, subscription_id, organisation_id)
    conn.execute(text("DELETE FROM est.alert_subscription WHERE id = :id"), {"id": subscription_id})
    _audit(
        conn,
        who,
        "alert_subscription.delete",
        {"id": subscription_id, "area": current.area, "target": current.target},
    )


def rotate_secret(
    conn: Connection, who: Who, subscription_id: int, organisation_id: int | None
) -> str:
    """Give a webhook a new secret, keeping the current one as the previous; return the new."""
    current = get(conn, subscription_id, organisation_id)
    if current.channel != "webhook":
        raise Conflict(f"subscription {subscription_id} sends e-mail, which has no secret")
    secret = new_secret()
    rotated = conn.scalar(
        text("SELECT est.rotate_alert_secret(:id, :secret)"),
        {"id": subscription_id, "secret": secret},
    )
    if not rotated:
        raise NotFound(f"no alert subscription {subscription_id}")
    _audit(conn, who, "alert_subscription.rotate", {"id": subscription_id})
    return secret


def deliveries(
    conn: Connection,
    subscription_id: int | None,
    organisation_id: int | None,
    limit: int = 100,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """The delivery log of a subscription (None: of all the organisation's), newest first,
    each with its attempts."""
    if subscription_id is not None:
        get(conn, subscription_id, organisation_id)
    rows = conn.execute(
        text("""
        SELECT d.id, d.subscription_id, d.event_id, e.kind, e.subject, e.period_label AS period,
               d.status, d.attempts, d.next_attempt_at, d.last_attempt_at, d.last_error,
               d.last_status_code, d.delivered_at, d.created_at,
               coalesce((
                   SELECT json_agg(json_build_object(
                       'attempt', t.attempt, 'at', t.attempted_at, 'outcome', t.outcome,
                       'status_code', t.status_code, 'error', t.error,
                       'duration_ms', t.duration_ms) ORDER BY t.attempt)
                   FROM est.alert_attempt t WHERE t.delivery_id = d.id), '[]') AS log
        FROM est.alert_delivery d
        JOIN est.alert_event e ON e.id = d.event_id
        JOIN est.alert_subscription s ON s.id = d.subscription_id
        WHERE (CAST(:id AS integer) IS NULL OR d.subscription_id = :id)
          AND (CAST(:org AS integer) IS NULL OR s.organisation_id = :org)
        ORDER BY d.id DESC
        LIMIT :limit OFFSET :offset
    """),
        {
            "id": subscription_id,
            "org": organisation_id,
            "limit": limit,
            "offset": offset,
        },
    ).all()
    return [dict(r._mapping) for r in rows]
