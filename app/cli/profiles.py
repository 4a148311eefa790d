"""`est profiles`: the analysis profiles of areas, their versions, and files of profiles.

Without --org a command works on an area's default profile (kept by no organisation); with it,
on the profile that organisation keeps, which needs the organisation's grant on the area.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from app.cli.common import cli_actor, console, fail, reported, system_engine
from app.core.errors import InvalidInput, NotFound

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from app.runs.profiles import Profile, ProfileSettings

app = typer.Typer(
    help="Analysis profiles: what a run computes for an area, with every version.",
    no_args_is_help=True,
)

OrgOption = Annotated[
    str | None,
    typer.Option("--org", help="The organisation that keeps the profile (none: the default)."),
]


@app.command("list")
def list_command(
    area: Annotated[str | None, typer.Option(help="Only this area's profiles.")] = None,
) -> None:
    """List profiles: area, keeper, name, version, group, window and viewer cell size."""
    from app.runs.profiles import list_profiles

    with system_engine().connect() as conn:
        found = list_profiles(conn, area)
    columns = ("area", "organisation", "name", "version", "group", "window weeks", "cell size")
    table = Table(*columns, title="Analysis profiles")
    for p in found:
        s = p.settings
        table.add_row(
            p.area_code,
            p.organisation_code or "—",
            p.name,
            str(p.version),
            s.category_group,
            str(s.window_weeks),
            f"{s.cell_size_m} m",
        )
    console.print(table)
    if not found:
        console.print("no profiles" + (f" for area {area}" if area else ""))


@app.command("show")
def show(
    area: Annotated[str, typer.Argument(help="Area code, e.g. 1285.")],
    name: Annotated[str, typer.Argument(help="Profile name.")] = "standard",
    org: OrgOption = None,
) -> None:
    """Print a profile's settings as YAML, and its versions."""
    import yaml

    from app.runs.profiles import versions

    with reported(), system_engine().connect() as conn:
        profile = _existing(conn, area, name, _organisation(conn, org))
        history = versions(conn, profile.id)
    console.print(f"# {_label(profile)}, version {profile.version}", highlight=False)
    document = profile.settings.model_dump(mode="json")
    console.print(yaml.safe_dump(document, sort_keys=False, allow_unicode=True), highlight=False)
    table = Table("version", "changed_by", "changed_at", title="Versions")
    for v in history:
        table.add_row(str(v["version"]), v["changed_by"], v["changed_at"])
    console.print(table)


@app.command("set")
def set_fields(
    area: Annotated[str, typer.Argument(help="Area code, e.g. 1285.")],
    assignments: Annotated[
        list[str],
        typer.Argument(
            metavar="[NAME] KEY=VALUE...",
            help="[NAME] KEY=VALUE …: the profile (default standard) and its fields by dotted "
            "path, values as YAML (window_weeks=6 methods.dbscan.eps_m=200 category_group=andts).",
        ),
    ],
    org: OrgOption = None,
) -> None:
    """Change fields of a profile (one that does not exist yet starts from the defaults)."""
    from app.runs.profiles import DEFAULT_NAME, ProfileSettings, find_profile, parse_settings

    name = DEFAULT_NAME
    if assignments and "=" not in assignments[0]:
        name, assignments = assignments[0], assignments[1:]
    if not assignments:
        fail("give at least one KEY=VALUE, e.g. window_weeks=6")
    with reported():
        changes = [_assignment(a) for a in assignments]
    with reported(), system_engine().begin() as conn:
        organisation_id = _organisation(conn, org, area)
        existing = find_profile(conn, area, name, organisation_id)
        start = existing.settings if existing is not None else ProfileSettings()
        document = start.model_dump(mode="json")
        for path, value in changes:
            _put(document, path, value)
        settings = parse_settings(document, f"{area}/{name}")
        outcome, profile = _save(conn, area, name, settings, organisation_id)
    console.print(f"{outcome} {_label(profile)}, version {profile.version}", highlight=False)


@app.command("import")
def import_command(
    path: Annotated[Path, typer.Argument(help="YAML or JSON: one profile or a list of them.")],
    org: OrgOption = None,
) -> None:
    """Store the profiles of a file (area, name and settings each), all or none."""
    if not path.exists():
        fail(f"{path} does not exist")
    with reported():
        items = _validated(_read(path))
    outcomes = []
    with reported(), system_engine().begin() as conn:
        for index, (area, name, settings) in enumerate(items, start=1):
            try:
                organisation_id = _organisation(conn, org, area)
                outcomes.append(_save(conn, area, name, settings, organisation_id))
            except (InvalidInput, NotFound) as exc:
                raise type(exc)(f"item {index}: {exc.detail}") from None
    for outcome, profile in outcomes:
        console.print(f"{outcome:<9} {_label(profile)}, version {profile.version}", highlight=False)


def _read(path: Path) -> Any:
    import orjson
    import yaml

    raw = path.read_bytes()
    try:
        return orjson.loads(raw) if path.suffix.lower() == ".json" else yaml.safe_load(raw)
    except (orjson.JSONDecodeError, yaml.YAMLError) as exc:
        kind = "JSON" if path.suffix.lower() == ".json" else "YAML"
        raise InvalidInput(f"{path.name} is no valid {kind}: {exc}") from None


def _validated(data: Any) -> list[tuple[str, str, ProfileSettings]]:
    """Every item of a file checked, before anything is stored: (area, name, settings)."""
    from app.runs.profiles import check_name, parse_settings

    items = data if isinstance(data, list) else [data]
    if not items:
        raise InvalidInput("the file holds no profiles")
    seen: dict[tuple[str, str], int] = {}
    out = []
    for index, item in enumerate(items, start=1):
        where = f"item {index}"
        if not isinstance(item, dict):
            raise InvalidInput(f"{where}: must be a mapping with area, name and settings")
        document = dict(item)
        area, name = document.pop("area", None), document.pop("name", None)
        for field, value in (("area", area), ("name", name)):
            if not isinstance(value, str):
                raise InvalidInput(
                    f"{where}: {field}: required, as text (quote codes such as '0765')"
                )
        assert isinstance(area, str) and isinstance(name, str)
        try:
            check_name(name)
        except InvalidInput as exc:
            raise InvalidInput(f"{where}: {exc.detail}") from None
        if (area, name) in seen:
            raise InvalidInput(f"{where}: area {area}, name {name} is item {seen[area, name]} too")
        seen[area, name] = index
        out.append((area, name, parse_settings(document, where)))
    return out


def _assignment(text: str) -> tuple[list[str], Any]:
    """KEY=VALUE as the dotted path and the value read as a YAML scalar."""
    import yaml

    key, sep, value = text.partition("=")
    path = key.strip().split(".")
    if not sep or not all(path):
        raise InvalidInput(f"{text!r}: write KEY=VALUE, e.g. methods.dbscan.eps_m=200")
    try:
        return path, yaml.safe_load(value) if value.strip() else None
    except yaml.YAMLError:
        raise InvalidInput(f"{key}: {value!r} is no YAML value") from None


def _put(document: dict[str, Any], path: list[str], value: Any) -> None:
    """Set a field by its dotted path; an unknown field is left for the validation to name."""
    node = document
    for depth, part in enumerate(path[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            field = ".".join(path[: depth + 1])
            raise InvalidInput(f"{'.'.join(path)}: {field} is a value, not a group of fields")
        node = child
    node[path[-1]] = value


def _organisation(conn: Connection, code: str | None, area: str | None = None) -> int | None:
    """The id of the --org organisation (None without it); to write, it needs a grant."""
    from app.access import admin, privacy

    if code is None:
        return None
    organisation_id = admin.organisation_id(conn, code)
    if area is not None and not privacy.has_grant(conn, organisation_id, area):
        raise NotFound(f"{code} holds no grant on area {area!r}, so it keeps no profile there")
    return organisation_id


def _existing(conn: Connection, area: str, name: str, organisation_id: int | None) -> Profile:
    from app.runs.profiles import find_profile

    profile = find_profile(conn, area, name, organisation_id)
    if profile is None:
        keeper = "the default" if organisation_id is None else "the organisation's"
        raise NotFound(f"area {area!r} has no profile {name!r} ({keeper})")
    return profile


def _save(
    conn: Connection,
    area: str,
    name: str,
    settings: ProfileSettings,
    organisation_id: int | None,
) -> tuple[str, Profile]:
    """Store a profile and audit a change; return created, changed or unchanged and the profile."""
    from app.access import audit
    from app.runs.profiles import save_profile

    actor = cli_actor()
    profile, changed = save_profile(
        conn, area, name, settings, organisation_id=organisation_id, changed_by=actor
    )
    if not changed:
        return "unchanged", profile
    audit.record(
        conn,
        None,
        "profile.change",
        actor=actor,
        filters={
            "area": area,
            "name": name,
            "version": profile.version,
            "organisation": profile.organisation_code,
        },
    )
    return ("created" if profile.version == 1 else "changed"), profile


def _label(profile: Profile) -> str:
    keeper = profile.organisation_code or "default"
    return f"{profile.area_code}/{profile.name} ({keeper})"
