"""`est orgs`, `est grants`, `est keys`, `est sessions`: who may see which area, with which key,
and who is logged in to the map page."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table

from app.cli.common import cli_actor, console, err, fail, reported, system_engine
from app.core.vocabulary import GrantLevel, OrganisationKind, Role

orgs_app = typer.Typer(help="Organisations (kommun, LPO, business…).", no_args_is_help=True)
grants_app = typer.Typer(help="Which organisation may see which area.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys: shown once, stored hashed.", no_args_is_help=True)
sessions_app = typer.Typer(help="Logins to the map page (browser sessions).", no_args_is_help=True)
KINDS = ", ".join(kind.value for kind in OrganisationKind)


@orgs_app.command("create")
def orgs_create(
    code: Annotated[str, typer.Argument(help="Stable code, e.g. kommun-1214 or lpo-klippan.")],
    name: Annotated[str, typer.Option(help="Display name, e.g. 'Svalövs kommun'.")],
    kind: Annotated[str, typer.Option(help=KINDS)] = "kommun",
) -> None:
    """Register an organisation."""
    from app.access import admin, audit

    with system_engine().begin() as conn:
        with reported():
            admin.create_organisation(conn, code, name, kind)
        audit.record(
            conn,
            None,
            "organisation.create",
            actor=cli_actor(),
            filters={"code": code, "name": name, "kind": kind},
        )
    console.print(f"organisation {code} created")


@orgs_app.command("list")
def orgs_list() -> None:
    """List organisations."""
    from app.access import admin

    with system_engine().connect() as conn:
        rows = admin.list_organisations(conn)
    table = Table("code", "name", "kind", title="Organisations")
    for r in rows:
        table.add_row(r["code"], r["name"], r["kind"])
    console.print(table)


@grants_app.command("add")
def grants_add(
    organisation: Annotated[str, typer.Argument(help="Organisation code.")],
    area: Annotated[str, typer.Argument(help="Area code, e.g. 1214 or lpo-klippan.")],
    level: Annotated[GrantLevel, typer.Option(help="raw: incidents; aggregate: layers only.")],
    expires: Annotated[str | None, typer.Option(help="Expiry date, YYYY-MM-DD.")] = None,
) -> None:
    """Give an organisation access to an area (replacing an earlier grant)."""
    from app.access import admin, audit

    try:
        expires_at = datetime.fromisoformat(expires).replace(tzinfo=UTC) if expires else None
    except ValueError:
        fail(f"--expires must be a date YYYY-MM-DD, got {expires!r}")
    with system_engine().begin() as conn:
        with reported():
            admin.grant_area(conn, organisation, area, level, cli_actor(), expires_at)
        audit.record(
            conn,
            None,
            "grant.put",
            actor=cli_actor(),
            filters={"organisation": organisation, "area": area, "level": level.value},
        )
    console.print(f"{organisation} may now see area {area} at level {level.value}")


@grants_app.command("list")
def grants_list(
    organisation: Annotated[str | None, typer.Option("--org", help="Only this one.")] = None,
) -> None:
    """List grants."""
    from app.access import admin

    with system_engine().connect() as conn:
        with reported():
            org_id = admin.organisation_id(conn, organisation) if organisation else None
        grants = admin.list_grants(conn, org_id)
    table = Table("organisation", "area", "name", "level", "expires", title="Grants")
    for g in grants:
        table.add_row(
            g.organisation,
            g.area,
            g.area_name,
            g.level.value,
            g.expires_at.date().isoformat() if g.expires_at else "",
        )
    console.print(table)


@grants_app.command("revoke")
def grants_revoke(
    organisation: Annotated[str, typer.Argument()], area: Annotated[str, typer.Argument()]
) -> None:
    """Remove an organisation's grant on an area."""
    from app.access import admin, audit

    with system_engine().begin() as conn:
        with reported():
            admin.revoke_grant(conn, organisation, area)
        audit.record(
            conn,
            None,
            "grant.delete",
            actor=cli_actor(),
            filters={"organisation": organisation, "area": area},
        )
    console.print(f"grant of {organisation} on {area} revoked")


@keys_app.command("create")
def keys_create(
    org: Annotated[str, typer.Option(help="Organisation code.")],
    role: Annotated[Role, typer.Option(help="What the key may do.")],
    expires: Annotated[int | None, typer.Option(help="Days until it expires.", min=1)] = None,
    name: Annotated[str | None, typer.Option(help="What it is for, e.g. 'QGIS Anna'.")] = None,
    create_org: Annotated[
        bool, typer.Option("--create-org", help="Register the organisation when missing.")
    ] = False,
) -> None:
    """Create an API key and print it once."""
    from app.access import admin, audit

    with system_engine().begin() as conn:
        with reported():
            if create_org and not admin.organisation_exists(conn, org):
                admin.create_organisation(conn, org, org, "other")
            key = admin.new_key(conn, org, role, name, expires)
        audit.record(
            conn,
            None,
            "key.create",
            actor=cli_actor(),
            filters={"organisation": org, "key": key.key_id, "role": role.value},
        )
    err.print(f"API key {key.key_id} for {org} ({role.value}); it is shown only now:")
    console.print(key.token, soft_wrap=True)


KEY_COLUMNS = ("id", "organisation", "role", "name", "expires_at", "revoked_at", "last_used_at")


@keys_app.command("list")
def keys_list(
    org: Annotated[str | None, typer.Option(help="Only this organisation.")] = None,
) -> None:
    """List keys (never their secrets)."""
    from app.access import admin

    with system_engine().connect() as conn:
        with reported():
            org_id = admin.organisation_id(conn, org) if org else None
        keys = admin.list_keys(conn, org_id)
    table = Table("id", "organisation", "role", "name", "expires", "revoked", "last used")
    for k in keys:
        table.add_row(*(str(k[c]) if k[c] is not None else "" for c in KEY_COLUMNS))
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="The key's id (est_<id>_…).")]) -> None:
    """Revoke a key at once."""
    from app.access import admin, audit

    with system_engine().begin() as conn:
        with reported():
            admin.revoke_key(conn, key_id)
        audit.record(conn, None, "key.revoke", actor=cli_actor(), filters={"key": key_id})
    console.print(f"key {key_id} revoked")


@sessions_app.command("revoke")
def sessions_revoke(
    org: Annotated[str | None, typer.Option(help="End every session of this organisation.")] = None,
    subject: Annotated[
        str | None, typer.Option(help="End the sessions of one login: key:<id> or oidc:<sub>.")
    ] = None,
) -> None:
    """End map-page sessions at once (their cookies are refused from the next request on)."""
    from app.access import audit
    from app.access.sessions import revoke_sessions

    if org is None and subject is None:
        fail("name --org, --subject or both")
    with system_engine().begin() as conn:
        ended = revoke_sessions(conn, organisation_code=org, subject=subject)
        audit.record(
            conn,
            None,
            "session.revoke",
            actor=cli_actor(),
            filters={"organisation": org, "subject": subject},
            row_count=ended,
        )
    console.print(f"{ended} session(s) ended")
