"""The `est` command line: database, areas, demo data and the server."""

from __future__ import annotations

import getpass
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, cast

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import Engine, create_engine, pool, text

from app.access import admin, audit
from app.core.errors import DomainError
from app.core.taxonomy import load_taxonomy
from app.core.vocabulary import GrantLevel, Role
from app.db import migrate
from app.db.bootstrap import Extent, InitError, init_database
from app.db.reference import sync_taxonomy
from app.ingest.areas import DEFAULT_AREAS_FILE, create_union_area, load_areas, read_kommun_file
from app.ingest.imports import (
    ImportSummary,
    file_sha256,
    finish_import,
    run_import,
    start_import,
    write_rejects,
)
from app.ingest.mapping import MappingError, load_mapping, preset_names
from app.ingest.readers import ReadBatch, ReadError, read_batches
from app.settings import OWNER_ROLE, SYSTEM_ROLE, get_settings

app = typer.Typer(
    help="EST Lägesbild: situational picture of crimes and incidents.", no_args_is_help=True
)
db_app = typer.Typer(help="Create and migrate the database.", no_args_is_help=True)
areas_app = typer.Typer(
    help="Load and combine areas (kommuner, län, LPO unions).", no_args_is_help=True
)
orgs_app = typer.Typer(help="Organisations (kommun, LPO, business…).", no_args_is_help=True)
grants_app = typer.Typer(help="Which organisation may see which area.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys: shown once, stored hashed.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(areas_app, name="areas")
app.add_typer(orgs_app, name="orgs")
app.add_typer(grants_app, name="grants")
app.add_typer(keys_app, name="keys")
console = Console()
err = Console(stderr=True)


def _engine(role: str) -> Engine:
    return create_engine(get_settings().role_url(role), poolclass=pool.NullPool)


def _fail(message: str) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}")
    return typer.Exit(code=1)


@db_app.command("init")
def db_init(
    srid: Annotated[
        int, typer.Option(help="EPSG code of the storage CRS (projected, metres).")
    ] = 3006,
    extent: Annotated[
        str | None,
        typer.Option(
            help="Accepted extent minx,miny,maxx,maxy in the storage CRS; default: the "
            "loaded areas buffered by a few km."
        ),
    ] = None,
) -> None:
    """Create the database, PostGIS, roles and schema, migrate to head and load the categories."""
    try:
        box = Extent.parse(extent) if extent else None
        console.print(init_database(get_settings(), srid, box))
    except InitError as exc:
        raise _fail(str(exc)) from None
    engine = _engine(SYSTEM_ROLE)
    with engine.begin() as conn:
        n = sync_taxonomy(conn, load_taxonomy())
    console.print(f"{n} categories loaded")


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Apply the migrations up to a revision (default: head)."""
    migrate.upgrade(_engine(OWNER_ROLE), revision)
    console.print(f"database at {revision}")


@db_app.command("downgrade")
def db_downgrade(revision: Annotated[str, typer.Argument(help='e.g. "-1" or "base"')]) -> None:
    """Revert the migrations down to a revision."""
    migrate.downgrade(_engine(OWNER_ROLE), revision)
    console.print(f"database at {revision}")


@db_app.command("current")
def db_current() -> None:
    """Print the revision the database is at and the code's head."""
    with _engine(OWNER_ROLE).connect() as conn:
        current = migrate.current_revision(conn)
    console.print(f"database: {current or 'empty'}; code head: {migrate.head_revision()}")


@areas_app.command("load")
def areas_load(
    path: Annotated[
        Path, typer.Argument(help="GeoPackage with layers 'kommuner' and/or 'lan'.")
    ] = (DEFAULT_AREAS_FILE),
) -> None:
    """Load kommun and län boundaries (SCB layout); a changed boundary becomes a new version."""
    if not path.exists():
        raise _fail(f"{path} does not exist")
    frame = read_kommun_file(path)
    with _engine(SYSTEM_ROLE).begin() as conn:
        result = load_areas(conn, frame)
    console.print(
        f"{len(frame)} areas from {path.name}: {result.created} created, "
        f"{result.updated} updated, {result.unchanged} unchanged"
    )


@areas_app.command("union")
def areas_union(
    code: Annotated[str, typer.Argument(help="Code of the new area, e.g. lpo-klippan.")],
    name: Annotated[str, typer.Option(help="Its name.")],
    of: Annotated[str, typer.Option(help="Comma-separated area codes, e.g. 1276,1214.")],
) -> None:
    """Create (or replace) an area that is the union of other areas, such as an LPO."""
    with _engine(SYSTEM_ROLE).begin() as conn:
        try:
            create_union_area(conn, code, name, [c.strip() for c in of.split(",") if c.strip()])
        except ValueError as exc:
            raise _fail(str(exc)) from None
    console.print(f"area {code} = union of {of}")


@contextmanager
def _reported() -> Iterator[None]:
    """Turn a domain error (unknown code, duplicate, …) into a clear message and exit status 1."""
    try:
        yield
    except DomainError as exc:
        raise _fail(exc.detail) from None


def _cli_actor() -> str:
    return f"cli:{getpass.getuser()}"


@orgs_app.command("create")
def orgs_create(
    code: Annotated[str, typer.Argument(help="Stable code, e.g. kommun-1214 or lpo-klippan.")],
    name: Annotated[str, typer.Option(help="Display name, e.g. 'Svalövs kommun'.")],
    kind: Annotated[str, typer.Option(help=", ".join(admin.ORGANISATION_KINDS))] = "kommun",
) -> None:
    """Register an organisation."""
    with _engine(SYSTEM_ROLE).begin() as conn:
        with _reported():
            admin.create_organisation(conn, code, name, kind)
        audit.record(
            conn,
            None,
            "organisation.create",
            actor=_cli_actor(),
            filters={"code": code, "name": name, "kind": kind},
        )
    console.print(f"organisation {code} created")


@orgs_app.command("list")
def orgs_list() -> None:
    """List organisations."""
    with _engine(SYSTEM_ROLE).connect() as conn:
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
    try:
        expires_at = datetime.fromisoformat(expires).replace(tzinfo=UTC) if expires else None
    except ValueError:
        raise _fail(f"--expires must be a date YYYY-MM-DD, got {expires!r}") from None
    with _engine(SYSTEM_ROLE).begin() as conn:
        with _reported():
            admin.grant_area(conn, organisation, area, level, _cli_actor(), expires_at)
        audit.record(
            conn,
            None,
            "grant.put",
            actor=_cli_actor(),
            filters={"organisation": organisation, "area": area, "level": level.value},
        )
    console.print(f"{organisation} may now see area {area} at level {level.value}")


@grants_app.command("list")
def grants_list(
    organisation: Annotated[str | None, typer.Option("--org", help="Only this one.")] = None,
) -> None:
    """List grants."""
    with _engine(SYSTEM_ROLE).connect() as conn:
        with _reported():
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
    with _engine(SYSTEM_ROLE).begin() as conn:
        with _reported():
            admin.revoke_grant(conn, organisation, area)
        audit.record(
            conn,
            None,
            "grant.delete",
            actor=_cli_actor(),
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
    with _engine(SYSTEM_ROLE).begin() as conn:
        with _reported():
            if (
                create_org
                and conn.scalar(text("SELECT 1 FROM est.organisation WHERE code = :c"), {"c": org})
                is None
            ):
                admin.create_organisation(conn, org, org, "other")
            key = admin.new_key(conn, org, role, name, expires)
        audit.record(
            conn,
            None,
            "key.create",
            actor=_cli_actor(),
            filters={"organisation": org, "key": key.key_id, "role": role.value},
        )
    err.print(f"API key {key.key_id} for {org} ({role.value}); it is shown only now:")
    console.print(key.token, soft_wrap=True)


@keys_app.command("list")
def keys_list(
    org: Annotated[str | None, typer.Option(help="Only this organisation.")] = None,
) -> None:
    """List keys (never their secrets)."""
    with _engine(SYSTEM_ROLE).connect() as conn:
        with _reported():
            org_id = admin.organisation_id(conn, org) if org else None
        keys = admin.list_keys(conn, org_id)
    table = Table("id", "organisation", "role", "name", "expires", "revoked", "last used")
    for k in keys:
        table.add_row(
            *(
                str(k[c]) if k[c] is not None else ""
                for c in (
                    "id",
                    "organisation",
                    "role",
                    "name",
                    "expires_at",
                    "revoked_at",
                    "last_used_at",
                )
            )
        )
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="The key's id (est_<id>_…).")]) -> None:
    """Revoke a key at once."""
    with _engine(SYSTEM_ROLE).begin() as conn:
        with _reported():
            admin.revoke_key(conn, key_id)
        audit.record(conn, None, "key.revoke", actor=_cli_actor(), filters={"key": key_id})
    console.print(f"key {key_id} revoked")


@app.command()
def purge(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only count.")] = False,
    archive_dir: Annotated[Path | None, typer.Option(help="Default: EST_ARCHIVE_DIR.")] = None,
) -> None:
    """Archive (GeoPackage + CSV) and delete incidents older than EST_RETENTION_MONTHS."""
    from app.runs.purge import purge as run_purge

    settings = get_settings()
    target = archive_dir or Path(settings.archive_dir)
    with _engine(SYSTEM_ROLE).begin() as conn:
        result = run_purge(conn, settings.retention_months, target, dry_run=dry_run)
    verb = "would purge" if dry_run else "purged"
    console.print(
        f"{verb} {result.incidents} incidents that ended before "
        f"{result.cutoff:%Y-%m-%d} ({settings.retention_months} months)"
    )
    for f in result.files:
        console.print(f"archive: {f}")


@app.command()
def demo(
    seed: Annotated[int, typer.Option(help="Seed of the synthetic incidents.")] = 0,
    weeks: Annotated[int, typer.Option(min=1, max=260, help="Complete ISO weeks of data.")] = 26,
    polisen: Annotated[
        Path | None, typer.Option(help="Also load the polisen.se events archive (CSV, .gz ok).")
    ] = None,
    keys: Annotated[bool, typer.Option(help="Print fresh demo API keys.")] = True,
) -> None:
    """Load demo incidents for Svalöv, Eslöv, Klippan, Sölvesborg and Älmhult."""
    from app.ops.demo import POLISEN_ORGANISATION, demo_keys, ensure_organisation, load_demo

    taxonomy = load_taxonomy()
    with _engine(SYSTEM_ROLE).begin() as conn:
        try:
            results = load_demo(conn, taxonomy, date.today(), seed=seed, weeks=weeks)
        except ValueError as exc:
            raise _fail(str(exc)) from None
    table = Table("kommun", "created", "updated", "unchanged", title="Demo incidents")
    for name, r in results.items():
        table.add_row(name, str(r.created), str(r.updated), str(r.unchanged))
    console.print(table)
    if polisen is not None:
        # the archive is imported like any file, with the polisen-csv preset (area_centroid)
        with _engine(SYSTEM_ROLE).begin() as conn:
            ensure_organisation(conn, *POLISEN_ORGANISATION, "police")
        import_file(polisen, org=POLISEN_ORGANISATION[0], mapping="polisen-csv", accept_valid=True)
    if keys:
        with _engine(SYSTEM_ROLE).begin() as conn:
            created = demo_keys(conn)
        console.print("Demo API keys (earlier demo keys are revoked):")
        for org, role, token in created:
            console.print(f"  {role.value:<8} {org:<12} {token}", soft_wrap=True)
        console.print("Try: curl -H 'Authorization: Bearer <key>' http://127.0.0.1:8000/api/v1/me")


@app.command("import")
def import_file(
    path: Annotated[Path, typer.Argument(help="CSV (, or ;), GeoJSON or GeoPackage; .gz ok.")],
    org: Annotated[str, typer.Option(help="Code of the reporting organisation.")],
    source: Annotated[
        str | None, typer.Option(help="Source name; records are keyed by (source, id).")
    ] = None,
    mapping: Annotated[
        str, typer.Option(help="A mapping file, or a preset: " + ", ".join(preset_names()))
    ] = "est",
    crs: Annotated[str | None, typer.Option(help="CRS of the coordinates, e.g. EPSG:3006.")] = None,
    timezone: Annotated[
        str | None, typer.Option(help="Time zone of times without offset, e.g. Europe/Stockholm.")
    ] = None,
    accept_valid: Annotated[
        bool,
        typer.Option("--accept-valid", help="Store the valid rows; write the rejects to a CSV."),
    ] = False,
    batch_size: Annotated[int, typer.Option(min=1000, help="Rows per batch.")] = 50_000,
    rejects: Annotated[
        Path | None,
        typer.Option(help="Where to write rejected rows (default: FILE.rejects.csv beside FILE)."),
    ] = None,
) -> None:
    """Import incidents from a file: all or nothing, unless --accept-valid."""
    settings = get_settings()
    if not path.is_file():
        raise _fail(f"{path} does not exist")
    rejects = rejects or path.with_name(path.name + ".rejects.csv")
    folder = rejects.parent.resolve()
    if not (folder.is_dir() and os.access(folder, os.W_OK)):
        # Checked before the import, so that its rejects are not lost after the commit.
        raise _fail(
            f"cannot write the rejects to {rejects}: choose a writable place with --rejects"
        )
    with _reported():
        try:
            chosen = load_mapping(mapping)
        except MappingError as exc:
            raise _fail(str(exc)) from None
        engine = _engine(SYSTEM_ROLE)
        with engine.connect() as conn:
            org_id = admin.organisation_id(conn, org)
    effective_source = source or chosen.source
    if not effective_source:
        raise _fail("give --source (the mapping names none): records are keyed by source and id")
    import_id = start_import(
        engine,
        org_id,
        _cli_actor(),
        effective_source,
        path.name,
        file_sha256(path),
        chosen.model_dump(mode="json"),
    )
    summary = ImportSummary(import_id=import_id)
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rows]} rows"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as progress:
        task = progress.add_task(path.name, total=None, rows=0)

        def on_batch(read: ReadBatch, s: ImportSummary) -> None:
            total = read.bytes_total or read.rows_total
            done = read.bytes_read if read.bytes_total else read.rows_read
            progress.update(task, total=total, completed=done, rows=s.rows)

        try:
            with engine.begin() as conn:
                batches = read_batches(
                    path,
                    chosen,
                    source_override=source,
                    timezone_override=timezone,
                    crs_override=crs,
                    batch_size=batch_size,
                )
                run_import(
                    conn,
                    settings,
                    summary,
                    org_id,
                    _cli_actor(),
                    effective_source,
                    batches,
                    accept_valid=accept_valid,
                    on_batch=on_batch,
                )
                if not summary.stored:
                    conn.rollback()
        except (ReadError, ValueError) as exc:
            with engine.begin() as conn:
                finish_import(conn, summary, "failed")
            raise _fail(str(exc)) from None
    if not summary.stored:
        with engine.begin() as conn:
            finish_import(conn, summary, "failed")
    _print_import(summary, path)
    if summary.rejected:
        write_rejects(summary.rejected, rejects)
        err.print(f"{len(summary.rejected)} rejected rows with their reasons: {rejects}")
    if not summary.stored:
        raise _fail(
            "nothing was imported because rows were rejected (the first: row "
            f"{summary.rejected[0].row}, {summary.rejected[0].field}: "
            f"{summary.rejected[0].reason}); fix them, or use --accept-valid"
        )


def _print_import(summary: ImportSummary, path: Path) -> None:
    table = Table(
        "rows read",
        "created",
        "updated",
        "unchanged",
        "rejected",
        "not incidents",
        title=f"Import {summary.import_id}: {path.name}",
    )
    table.add_row(
        *(
            str(v)
            for v in (
                summary.rows,
                summary.created,
                summary.updated,
                summary.unchanged,
                len(summary.rejected),
                sum(summary.not_incident.values()),
            )
        )
    )
    console.print(table)
    for note in summary.notes:
        console.print(f"- {note}")


@app.command()
def analyze(
    path: Annotated[Path, typer.Argument(help="Incidents: CSV, GeoJSON or GeoPackage.")],
    method: Annotated[str, typer.Option(help="dbscan, kde or gistar.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="GeoJSON to write.")],
    mapping: Annotated[str, typer.Option(help="A mapping file or a preset.")] = "est",
    crs: Annotated[str | None, typer.Option(help="CRS of the file's coordinates.")] = None,
    metric_crs: Annotated[
        str | None, typer.Option(help="CRS to compute in (metres); default: the UTM zone.")
    ] = None,
    timezone: Annotated[str | None, typer.Option(help="Time zone of times without offset.")] = None,
    eps_m: Annotated[float, typer.Option(help="DBSCAN: neighbourhood radius, metres.")] = 150.0,
    min_samples: Annotated[int, typer.Option(help="DBSCAN: points to make a core.")] = 10,
    cell_size_m: Annotated[float, typer.Option(help="KDE and Gi*: grid cell, metres.")] = 100.0,
    bandwidth_m: Annotated[
        float | None, typer.Option(help="KDE: bandwidth in metres; default: ArcGIS's rule.")
    ] = None,
    distance_band_m: Annotated[float, typer.Option(help="Gi*: neighbours within, metres.")] = 300.0,
    since: Annotated[str | None, typer.Option("--from", help="Only from this date.")] = None,
    until: Annotated[str | None, typer.Option("--to", help="Only before this date.")] = None,
) -> None:
    """Run a hotspot method on a file and write the result as GeoJSON; no database needed."""
    from app.runs.analyze import Method, read_points, write_geojson
    from app.runs.analyze import analyze as run_method
    from clustering.gistar import TooFewIncidents

    if method not in ("dbscan", "kde", "gistar"):
        raise _fail(f"--method must be dbscan, kde or gistar, not {method!r}")
    try:
        chosen = load_mapping(mapping)
        points = read_points(
            path,
            chosen,
            crs=crs,
            timezone=timezone,
            metric_crs=metric_crs,
            since=_date(since, "--from"),
            until=_date(until, "--to"),
        )
        result = run_method(
            points,
            cast(Method, method),
            eps_m=eps_m,
            min_samples=min_samples,
            cell_size_m=cell_size_m,
            bandwidth_m=bandwidth_m,
            distance_band_m=distance_band_m,
        )
    except TooFewIncidents as exc:
        raise _fail(f"{exc}: Gi* cannot conclude anything on so few") from None
    except (MappingError, ReadError, ValueError) as exc:
        raise _fail(str(exc)) from None
    write_geojson(result, output)
    console.print(
        f"{method}: {len(points.xy)} points of {points.read} read ({points.skipped} without a "
        f"location or time, or outside --from/--to), computed in {points.crs.name}; "
        f"{len(result)} features written to {output}"
    )


@app.command()
def evaluate(
    path: Annotated[Path, typer.Argument(help="Incidents: CSV, GeoJSON or GeoPackage.")],
    mapping: Annotated[str, typer.Option(help="A mapping file or a preset.")] = "est",
    area: Annotated[
        Path | None, typer.Option(help="Study area polygon file; default: cells with incidents.")
    ] = None,
    train_weeks: Annotated[int, typer.Option(min=1, help="Weeks before each test week.")] = 12,
    test_weeks: Annotated[int, typer.Option(min=1, help="Weeks forecast each time.")] = 1,
    coverage: Annotated[float, typer.Option(min=0.001, max=1.0, help="Share of area.")] = 0.05,
    cell_size_m: Annotated[float, typer.Option(min=10, help="Grid cell, metres.")] = 150.0,
    since: Annotated[str | None, typer.Option("--from", help="Only from this date.")] = None,
    until: Annotated[str | None, typer.Option("--to", help="Only before this date.")] = None,
    crs: Annotated[str | None, typer.Option(help="CRS of the file's coordinates.")] = None,
    metric_crs: Annotated[str | None, typer.Option(help="CRS to compute in (metres).")] = None,
    timezone: Annotated[str | None, typer.Option(help="Time zone of times without offset.")] = None,
    week_timezone: Annotated[
        str, typer.Option(help="Weeks start on Monday 00:00 in this zone.")
    ] = "Europe/Stockholm",
    out: Annotated[Path, typer.Option(help="Folder for summary.csv, weeks.csv, pai.png.")] = Path(
        "evaluation"
    ),
) -> None:
    """Rolling backtest: which method's hotspots catch next week's incidents (PAI, hit rate)."""
    import geopandas as gpd
    import shapely

    from app.runs.analyze import read_points
    from clustering.evaluation import Backtest
    from clustering.report import backtest_chart, results_table_csv

    try:
        points = read_points(
            path,
            load_mapping(mapping),
            crs=crs,
            timezone=timezone,
            metric_crs=metric_crs,
            since=_date(since, "--from"),
            until=_date(until, "--to"),
        )
        polygon = None
        if area is not None:
            polygon = shapely.union_all(gpd.read_file(area).to_crs(points.crs).geometry.values)
        # prospective hotspotting looks 8 weeks back, but never past the training window
        backtest = Backtest(
            train_weeks,
            test_weeks,
            coverage,
            cell_size_m,
            tz=week_timezone,
            prospective_weeks=min(8, train_weeks),
        )
        backtest.fit(points.xy, points.time, area=polygon)
    except (MappingError, ReadError, ValueError) as exc:
        raise _fail(str(exc)) from None
    out.mkdir(parents=True, exist_ok=True)
    results_table_csv(backtest.summary_, out / "summary.csv")
    results_table_csv(backtest.results_, out / "weeks.csv")
    backtest_chart(backtest.results_, out / "pai.png", title=path.name)
    summary = backtest.summary_
    table = Table(
        "method",
        *(str(c) for c in summary.columns),
        title=f"Backtest: train {train_weeks} weeks, test {test_weeks}, "
        f"coverage {coverage:.0%}, cells {cell_size_m:g} m",
    )
    for method, row in summary.iterrows():
        cells = [str(int(v)) if c == "weeks_evaluated" else f"{v:.3f}" for c, v in row.items()]
        table.add_row(str(method), *cells)
    console.print(table)
    console.print(
        f"{len(points.xy)} incidents in {points.crs.name}; wrote {out / 'summary.csv'}, "
        f"{out / 'weeks.csv'}, {out / 'pai.png'}"
    )


def _date(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    except ValueError:
        raise _fail(f"{option} must be a date YYYY-MM-DD, got {value!r}") from None


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Default: EST_HOST.")] = None,
    port: Annotated[int | None, typer.Option(help="Default: EST_PORT.")] = None,
    workers: Annotated[int, typer.Option(min=1)] = 1,
) -> None:
    """Serve the API with uvicorn."""
    import uvicorn

    settings = get_settings()
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        log_level=settings.log_level,
    )


def main() -> None:
    """Entry point of the `est` script."""
    app()


if __name__ == "__main__":
    main()
