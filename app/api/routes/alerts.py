"""Alert subscriptions: where an organisation is told that a hotspot entered a class that needs
attention, and the log of what was delivered.

Only the organisation's admins keep them, for areas the organisation holds a grant on; another
organisation's subscription is "not found". A webhook's secret is shown once, when it is made
and when it is rotated.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Request, Response
from pydantic import BaseModel, Field

from app.access.auth import Principal
from app.alerts import subscriptions
from app.alerts.subscriptions import Subscription, Who
from app.api.deps import AdminPrincipal, SessionDep, SettingsDep, request_id
from app.api.params import ListPageDep
from app.api.schemas import StrictModel

router = APIRouter(prefix="/api/v1/alerts/subscriptions", tags=["alerts"])

SubscriptionId = Annotated[int, Path(ge=1, le=2**31 - 1, description="the subscription's id")]
Url = Field(None, min_length=1, max_length=2048, description="a webhook: https://…")
Email = Field(None, min_length=3, max_length=254, description="an e-mail address")


class SubscriptionIn(StrictModel):
    """A subscription to make: an area, and either a webhook URL or an e-mail address."""

    area: str = Field(min_length=1, max_length=64, examples=["1285"])
    url: str | None = Url
    email: str | None = Email


class SubscriptionPatch(StrictModel):
    """What to change: the address, paused or active, dropping the previous secret."""

    url: str | None = Url
    email: str | None = Email
    active: bool | None = None
    drop_previous_secret: bool = Field(
        False, description="stop accepting the secret from before the last rotation"
    )


@dataclass(frozen=True)
class SubscriptionCreated(Subscription):
    """A subscription just made: a webhook's `secret` is shown this once."""

    secret: str | None


class SecretOut(BaseModel):
    """A webhook's new secret, shown this once; the previous one stays accepted."""

    id: int
    secret: str
    previous_secret_accepted: bool


class AttemptOut(BaseModel):
    """One try of a delivery."""

    attempt: int
    at: datetime
    outcome: Literal["sent", "failed"]
    status_code: int | None
    error: str | None
    duration_ms: int


class DeliveryOut(BaseModel):
    """One event delivered (or to be) to the subscription, with every attempt."""

    id: int
    subscription_id: int
    event_id: int
    kind: str
    subject: str
    period: str
    status: Literal["pending", "sent", "failed"]
    attempts: int
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_error: str | None
    last_status_code: int | None
    delivered_at: datetime | None
    created_at: datetime
    log: list[AttemptOut]


def _who(principal: Principal, request: Request) -> Who:
    return Who(principal, principal.subject, request.url.path, request_id(request))


@router.get("", summary="The organisation's alert subscriptions (admins)")
def list_subscriptions(principal: AdminPrincipal, session: SessionDep) -> list[Subscription]:
    """Return the subscriptions of the caller's organisation."""
    return subscriptions.list_subscriptions(session.connection(), principal.organisation_id)


@router.post("", status_code=201, summary="Subscribe to an area's alerts (admins)")
def create_subscription(
    body: SubscriptionIn,
    principal: AdminPrincipal,
    session: SessionDep,
    settings: SettingsDep,
    request: Request,
) -> SubscriptionCreated:
    """Subscribe a webhook or an e-mail address to an area the organisation holds a grant on."""
    made, secret = subscriptions.create(
        session.connection(),
        _who(principal, request),
        principal.organisation_id,
        body.area,
        url=body.url,
        email=body.email,
        allowed=settings.alert_allow_hosts,
    )
    return SubscriptionCreated(**made.__dict__, secret=secret)


@router.get("/{subscription_id}", summary="One alert subscription")
def get_subscription(
    subscription_id: SubscriptionId, principal: AdminPrincipal, session: SessionDep
) -> Subscription:
    """Return one of the organisation's subscriptions."""
    return subscriptions.get(session.connection(), subscription_id, principal.organisation_id)


@router.patch("/{subscription_id}", summary="Change, pause or resume a subscription")
def patch_subscription(
    subscription_id: SubscriptionId,
    body: SubscriptionPatch,
    principal: AdminPrincipal,
    session: SessionDep,
    settings: SettingsDep,
    request: Request,
) -> Subscription:
    """Change the address, pause or resume, or drop the secret from before the last rotation."""
    return subscriptions.update(
        session.connection(),
        _who(principal, request),
        subscription_id,
        principal.organisation_id,
        url=body.url,
        email=body.email,
        active=body.active,
        drop_previous_secret=body.drop_previous_secret,
        allowed=settings.alert_allow_hosts,
    )


@router.delete("/{subscription_id}", status_code=204, summary="Remove a subscription")
def delete_subscription(
    subscription_id: SubscriptionId,
    principal: AdminPrincipal,
    session: SessionDep,
    request: Request,
) -> Response:
    """Remove one of the organisation's subscriptions and its delivery log."""
    subscriptions.delete(
        session.connection(), _who(principal, request), subscription_id, principal.organisation_id
    )
    return Response(status_code=204)


@router.post("/{subscription_id}/rotate-secret", summary="Give a webhook a new secret")
def rotate_secret(
    subscription_id: SubscriptionId,
    principal: AdminPrincipal,
    session: SessionDep,
    request: Request,
) -> SecretOut:
    """Make a new secret (shown once); the current one stays accepted until the next rotation
    or until it is dropped (PATCH drop_previous_secret)."""
    secret = subscriptions.rotate_secret(
        session.connection(), _who(principal, request), subscription_id, principal.organisation_id
    )
    return SecretOut(id=subscription_id, secret=secret, previous_secret_accepted=True)


@router.get("/{subscription_id}/deliveries", summary="What was delivered, attempt by attempt")
def list_deliveries(
    subscription_id: SubscriptionId,
    principal: AdminPrincipal,
    session: SessionDep,
    page: ListPageDep,
) -> list[DeliveryOut]:
    """Return the subscription's deliveries, newest first, each with its attempts."""
    found = subscriptions.deliveries(
        session.connection(), subscription_id, principal.organisation_id, page.limit, page.offset
    )
    return [DeliveryOut(**d) for d in found]
