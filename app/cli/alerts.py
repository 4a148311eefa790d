"""`est alerts`: subscriptions to an area's alerts, their delivery log, and sending what is due.

The operator's tool: it works on every organisation's subscriptions (an organisation's admins
keep their own over the API). Every change goes to the audit log under the operating-system
user.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from app.cli.common import cli_actor, console, fail, reported, system_engine

if TYPE_CHECKING:
    from app.alerts.subscriptions import Who

app = typer.Typer(
    help="Alerts: who is told when a hotspot enters a class that needs attention.",
    no_args_is_help=True,
)

IdArgument = Annotated[int, typer.Argument(help="The subscription's id (est alerts list).", min=1)]


def _who() -> Who:
    from app.alerts.subscriptions import Who

    return Who(None, cli_actor())


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value is not None else ""


@app.command("subscribe")
def subscribe(
    org: Annotated[str, typer.Option("--org", help="The organisation that is told.")],
    area: Annotated[str, typer.Option("--area", help="Area code, e.g. 1285.")],
    webhook: Annotated[str | None, typer.Option("--webhook", help="A URL to POST to.")] = None,
    email: Annotated[str | None, typer.Option("--email", help="An address to mail.")] = None,
) -> None:
    """Subscribe an organisation's webhook or e-mail address to an area's alerts."""
    from app.access import admin
    from app.alerts import subscriptions
    from app.settings import get_settings

    if (webhook is None) == (email is None):
        fail("give either --webhook URL or --email ADDRESS")
    with reported(), system_engine().begin() as conn:
        made, secret = subscriptions.create(
            conn,
            _who(),
            admin.organisation_id(conn, org),
            area,
            url=webhook,
            email=email,
            allowed=get_settings().alert_allow_hosts,
        )
    console.print(f"subscription {made.id}: {made.target} is told of area {made.area}")
    if secret is not None:
        console.print(f"secret (shown once, for checking X-EST-Signature): {secret}")


@app.command("list")
def list_command(
    org: Annotated[str | None, typer.Option("--org", help="Only this organisation's.")] = None,
    area: Annotated[str | None, typer.Option("--area", help="Only this area's.")] = None,
) -> None:
    """List subscriptions: organisation, area, channel, address, active."""
    from app.access import admin
    from app.alerts import subscriptions

    with reported(), system_engine().connect() as conn:
        org_id = admin.organisation_id(conn, org) if org else None
        found = subscriptions.list_subscriptions(conn, org_id, area)
    columns = ("id", "organisation", "area", "channel", "target", "active", "previous secret")
    table = Table(*columns, title="Alert subscriptions")
    for s in found:
        table.add_row(
            str(s.id),
            s.organisation,
            f"{s.area} {s.area_name}",
            s.channel,
            s.target,
            "yes" if s.active else "paused",
            "accepted" if s.has_previous_secret else "",
        )
    console.print(table)
    if not found:
        console.print("no subscriptions")


@app.command("remove")
def remove(subscription_id: IdArgument) -> None:
    """Remove a subscription and its delivery log."""
    from app.alerts import subscriptions

    with reported(), system_engine().begin() as conn:
        subscriptions.delete(conn, _who(), subscription_id, None)
    console.print(f"subscription {subscription_id} removed")


@app.command("rotate")
def rotate(
    subscription_id: IdArgument,
    drop_previous: Annotated[
        bool,
        typer.Option(
            "--drop-previous",
            help="Instead of rotating, stop accepting the secret from before the last rotation.",
        ),
    ] = False,
) -> None:
    """Give a webhook a new secret; the current one stays accepted until the next rotation."""
    from app.alerts import subscriptions

    with reported(), system_engine().begin() as conn:
        if drop_previous:
            subscriptions.update(conn, _who(), subscription_id, None, drop_previous_secret=True)
        else:
            secret = subscriptions.rotate_secret(conn, _who(), subscription_id, None)
    if drop_previous:
        console.print(f"subscription {subscription_id} accepts only its current secret now")
        return
    console.print(f"new secret of subscription {subscription_id} (shown once): {secret}")
    console.print("the previous secret stays accepted until the next rotation or --drop-previous")


@app.command("deliveries")
def deliveries(
    subscription_id: Annotated[
        int | None, typer.Argument(help="Only this subscription's.", min=1)
    ] = None,
    limit: Annotated[int, typer.Option(help="How many, newest first.", min=1)] = 50,
) -> None:
    """The delivery log: each event, its status, attempts and the last error."""
    from app.alerts import subscriptions

    with reported(), system_engine().connect() as conn:
        found = subscriptions.deliveries(conn, subscription_id, None, limit)
    columns = ("id", "subscription", "event", "kind", "subject", "period", "status", "attempts")
    table = Table(*columns, "next attempt", "last error", title="Alert deliveries")
    for d in found:
        table.add_row(
            str(d["id"]),
            str(d["subscription_id"]),
            str(d["event_id"]),
            d["kind"],
            d["subject"],
            d["period"],
            d["status"],
            str(d["attempts"]),
            _when(d["next_attempt_at"]),
            d["last_error"] or "",
        )
    console.print(table)
    if not found:
        console.print("no deliveries")


@app.command("deliver")
def deliver() -> None:
    """Send the due deliveries now (the service does so after every night's runs)."""
    from app.alerts.deliver import deliver_due
    from app.settings import get_settings

    with reported():
        report = deliver_due(system_engine(), get_settings())
    console.print(f"alerts: {report.describe()}")
