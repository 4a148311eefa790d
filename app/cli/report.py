"""`est report`: the lägesbild of a week or tertial as PDF or HTML, the analysts' texts and
hotspot names, how e-mail subscribers get it, and mailing a week's report now.

    est report --area 1285 --week 2026-W48 -o lagesbild.pdf
    est report --area 1285 --tertial 2026-T3 --audience analyst --format html
    est report texts --area 1285 --week 2026-W48 --assessment-file bedomning.txt
    est report name 48ff18e0a2 "Stationsområdet" --area 1285 --week 2026-W48
    est report mailing 12 attachment
    est report send --week 2026-W48 --area 1285

The operator's tool: it reads and writes as the system role. The report defaults to the viewer
version (the one that may be passed on); --audience analyst adds exact counts and hulls.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast
from zoneinfo import ZoneInfo

import typer

from app.cli.common import cli_actor, console, fail, reported, system_engine

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from app.alerts.subscriptions import Who
    from app.runs.recompute import RunPeriod

app = typer.Typer(
    help="The weekly and tertial lägesbild: the document, its texts, and its mailing.",
    invoke_without_command=True,
)
AreaOption = Annotated[str, typer.Option("--area", help="Area code, e.g. 1285.")]
WeekOption = Annotated[
    str | None, typer.Option("--week", help="ISO week, e.g. 2026-W48 (or last: the closed week).")
]
TertialOption = Annotated[str | None, typer.Option("--tertial", help="Tertial, e.g. 2026-T3.")]


def _who() -> Who:
    from app.alerts.subscriptions import Who

    return Who(None, cli_actor())


def _label(week: str | None, tertial: str | None) -> str:
    """The period a command is for: --week or --tertial, exactly one."""
    if (week is None) == (tertial is None):
        fail("give either --week 2026-W48 or --tertial 2026-T3")
    return str(week or tertial)


def _period(conn: Connection, label: str) -> RunPeriod:
    """The period of a label; `last` is the last closed week in the deployment's time zone."""
    from app.db.deployment import read_deployment
    from app.reports.content import parse_period
    from app.runs.recompute import run_period

    tz = read_deployment(conn).timezone
    if label == "last":
        return run_period("last", tz, datetime.now(ZoneInfo(tz)))
    return parse_period(label, tz, "--week")


@app.callback()
def report(
    ctx: typer.Context,
    area: Annotated[str | None, typer.Option("--area", help="Area code, e.g. 1285.")] = None,
    week: WeekOption = None,
    tertial: TertialOption = None,
    profile: Annotated[str, typer.Option(help="The area's profile of that name.")] = "standard",
    fmt: Annotated[str, typer.Option("--format", help="pdf or html.")] = "pdf",
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", help="File to write (default: lagesbild-AREA-PERIOD.*)."),
    ] = None,
    audience: Annotated[
        str, typer.Option(help="viewer (protected values, to pass on) or analyst (exact).")
    ] = "viewer",
) -> None:
    """Write the lägesbild of an area's week or tertial, made from its published run."""
    if ctx.invoked_subcommand is not None:
        return
    if area is None:
        fail("give --area CODE and --week 2026-W48 (or --tertial 2026-T3)")
    if fmt not in ("pdf", "html"):
        fail(f"--format must be pdf or html, not {fmt!r}")
    if audience not in ("viewer", "analyst"):
        fail(f"--audience must be viewer or analyst, not {audience!r}")
    from app.reports import content, render

    label = _label(week, tertial)
    with reported(), system_engine().begin() as conn:
        period = _period(conn, label)
        request = content.ReportRequest(area, period, profile, cast(content.Audience, audience))
        built = content.build(conn, request, system=True)
    target = output or Path(f"lagesbild-{area}-{period.label}.{fmt}")
    if fmt == "pdf":
        target.write_bytes(render.render_pdf(built))
    else:
        target.write_text(render.render_html(built), encoding="utf-8")
    console.print(
        f"{target}: the {audience} report of {built.run.area_name} {period.label} "
        f"(run {built.run.id}, {len(built.hotspots)} hotspots)"
    )


@app.command("texts")
def texts_command(
    area: AreaOption,
    week: WeekOption = None,
    tertial: TertialOption = None,
    assessment: Annotated[str | None, typer.Option(help="The assessment (bedömning).")] = None,
    assessment_file: Annotated[
        Path | None, typer.Option(help="The assessment from a UTF-8 text file.")
    ] = None,
    causes: Annotated[str | None, typer.Option(help="The analysis of causes.")] = None,
    causes_file: Annotated[
        Path | None, typer.Option(help="The analysis of causes from a UTF-8 text file.")
    ] = None,
) -> None:
    """Show the texts of an area's week or tertial, or set them."""
    from app.reports import texts

    label = _label(week, tertial)
    if assessment_file is not None:
        assessment = assessment_file.read_text(encoding="utf-8")
    if causes_file is not None:
        causes = causes_file.read_text(encoding="utf-8")
    with reported(), system_engine().begin() as conn:
        label = _period(conn, label).label
        texts.area_id(conn, area)
        if assessment is None and causes is None:
            found = texts.read_texts(conn, area, label)
        else:
            found = texts.write_texts(
                conn, _who(), None, area, label, assessment=assessment, causes=causes
            )
    who = f"{found.updated_by}, {found.updated_at:%Y-%m-%d %H:%M}" if found.updated_at else "–"
    console.print(f"[bold]{area} {label}[/bold] (last written: {who})", highlight=False)
    console.print(f"Bedömning:\n{found.assessment or '(none)'}", highlight=False)
    console.print(f"Analys av orsaker:\n{found.causes or '(none)'}", highlight=False)


@app.command("name")
def name_command(
    key: Annotated[str, typer.Argument(help="The hotspot's id (hotspot_key).")],
    area: AreaOption,
    name: Annotated[str | None, typer.Argument(help="Its name, e.g. Stationsområdet.")] = None,
    week: WeekOption = None,
    tertial: TertialOption = None,
    remove: Annotated[bool, typer.Option(help="Remove the hotspot's name.")] = False,
) -> None:
    """Name a hotspot from a week on (the name follows its id), or remove its name."""
    from app.reports import texts

    with reported(), system_engine().begin() as conn:
        if remove:
            texts.unname_hotspot(conn, _who(), area, key)
            console.print(f"hotspot {key} of {area} has no name now")
            return
        if name is None:
            fail("give the name, or --remove")
        named_in = _period(conn, _label(week, tertial)).label
        named = texts.name_hotspot(conn, _who(), None, area, key, name, named_in)
    console.print(f"hotspot {key} of {area} is {named.name!r} from {named.named_in} on")


@app.command("mailing")
def mailing_command(
    subscription: Annotated[int, typer.Argument(help="The e-mail subscription's id.", min=1)],
    delivery: Annotated[
        str | None, typer.Argument(help="link, attachment (the viewer PDF) or none.")
    ] = None,
) -> None:
    """Show or choose how an e-mail alert subscription gets Monday's report."""
    from app.reports import mailing

    with reported(), system_engine().begin() as conn:
        if delivery is None:
            chosen = mailing.delivery_of(conn, subscription, None)
        else:
            chosen = mailing.set_delivery(conn, _who(), subscription, None, delivery)
    console.print(f"subscription {subscription} gets the weekly report as: {chosen}")


@app.command("send")
def send_command(
    week: Annotated[str, typer.Option(help="ISO week, e.g. 2026-W48, or last.")] = "last",
    area: Annotated[
        list[str] | None, typer.Option("--area", help="Only these areas; repeatable.")
    ] = None,
) -> None:
    """Mail a week's report to the e-mail subscribers not yet served (as Monday night does)."""
    from app.reports import mailing
    from app.settings import get_settings

    engine = system_engine()
    with reported():
        with engine.connect() as conn:
            period = _period(conn, week)
        if period.kind != "week":
            fail("--week must be an ISO week: the report mail is weekly")
        done = mailing.send_reports(engine, get_settings(), period, area)
    console.print(f"weekly reports {done.describe()}")
    if done.failed:
        raise typer.Exit(code=4)
