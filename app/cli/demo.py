"""`est demo`: synthetic incidents for five kommuner, optionally the polisen.se archive, keys."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from app.cli.common import console, reported, system_engine
from app.cli.imports import import_file


def demo(
    seed: Annotated[int, typer.Option(help="Seed of the synthetic incidents.")] = 0,
    weeks: Annotated[int, typer.Option(min=1, max=260, help="Complete ISO weeks of data.")] = 26,
    polisen: Annotated[
        Path | None, typer.Option(help="Also load the polisen.se events archive (CSV, .gz ok).")
    ] = None,
    keys: Annotated[bool, typer.Option(help="Print fresh demo API keys.")] = True,
    recompute: Annotated[
        bool, typer.Option(help="Compute and publish the demo areas' runs afterwards.")
    ] = True,
) -> None:
    """Load demo incidents for Svalöv, Eslöv, Klippan, Sölvesborg and Älmhult."""
    from app.core.taxonomy import load_taxonomy
    from app.ops.demo import POLISEN_ORGANISATION, demo_keys, ensure_organisation, load_demo
    from app.settings import get_settings

    taxonomy = load_taxonomy()
    with reported(), system_engine().begin() as conn:
        results = load_demo(conn, get_settings(), taxonomy, date.today(), seed=seed, weeks=weeks)
    table = Table("kommun", "created", "updated", "unchanged", title="Demo incidents")
    for name, r in results.items():
        table.add_row(name, str(r.created), str(r.updated), str(r.unchanged))
    console.print(table)
    if recompute:
        # the newcomer sees a published lägesbild: last week's (closed) and this week's so far
        from app.cli.recompute import recompute_areas
        from app.ops.demo import load_demo_plan

        kommuner, unions = load_demo_plan()
        codes = [k.code for k in kommuner] + [str(u["code"]) for u in unions]
        recompute_areas(codes, ["last", "current"])
    if polisen is not None:
        # the archive is imported like any file, with the polisen-csv preset (area_centroid)
        with system_engine().begin() as conn:
            ensure_organisation(conn, *POLISEN_ORGANISATION, "police")
        import_file(polisen, org=POLISEN_ORGANISATION[0], mapping="polisen-csv", accept_valid=True)
    if keys:
        with system_engine().begin() as conn:
            created = demo_keys(conn)
        console.print("Demo API keys (earlier demo keys are revoked):")
        for org, role, token in created:
            console.print(f"  {role.value:<8} {org:<12} {token}", soft_wrap=True)
        console.print("Try: curl -H 'Authorization: Bearer <key>' http://127.0.0.1:8000/api/v1/me")
        console.print(
            "Map page: open http://127.0.0.1:8000/ and log in with the viewer or analyst key"
        )
