"""The `est` command line: one module per command group, each command a thin call into the
layer that does the work (app.db, app.access, app.ingest, app.runs, app.ops).

Importing this package loads only Typer, Rich and the light vocabulary; each command imports
what it needs when it runs, so `est --help` is quick.
"""

from __future__ import annotations

import typer

from app.cli import (
    access,
    alerts,
    areas,
    db,
    demo,
    evaluate,
    imports,
    profiles,
    recompute,
    report,
    runs,
    serve,
)

app = typer.Typer(
    help="EST Lägesbild: situational picture of crimes and incidents.", no_args_is_help=True
)
app.add_typer(db.app, name="db")
app.add_typer(areas.app, name="areas")
app.add_typer(access.orgs_app, name="orgs")
app.add_typer(access.grants_app, name="grants")
app.add_typer(access.keys_app, name="keys")
app.add_typer(access.sessions_app, name="sessions")
app.add_typer(profiles.app, name="profiles")
app.add_typer(alerts.app, name="alerts")
app.add_typer(report.app, name="report")
app.command("import")(imports.import_file)
app.command()(demo.demo)
app.command()(runs.analyze)
app.command()(evaluate.evaluate)
app.command()(runs.purge)
app.command()(recompute.recompute)
app.add_typer(recompute.runs_app, name="runs")
app.command()(serve.serve)


def main() -> None:
    """Entry point of the `est` script."""
    app()
