"""The collections /ogc serves, each described once: rows, geometry, properties, who sees them.

A collection has one or two *sources*. A source is the SQL of its rows (a FROM … WHERE …), its
geometry and the SQL of each property, for one audience: a run layer has an analyst source
(hulls, exact counts, p values: for areas the caller covers raw, see app.access.coverage) and
a viewer source (the privacy module's viewer version: for every other area the caller covers).
The query (app.api.ogc.query) stacks the sources a caller gets with UNION ALL and applies every
filter, bbox, sort and count to that stack, so they only ever see the values the caller may see.

Sources of run layers read the CTE `runs` (one row per run the request selects, with `raw`
saying which version the caller gets); incidents read the visibility rule of app.access.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Literal

from app.access.visibility import VISIBLE_SQL
from app.core.vocabulary import PRECISIONS, ChangeLabel, Role

PropertyType = Literal["string", "integer", "number", "boolean", "date-time", "object"]
Audience = Literal["analyst", "viewer"]

SQL_TYPES: Mapping[str, str] = MappingProxyType(
    {
        "string": "text",
        "integer": "bigint",
        "number": "double precision",
        "boolean": "boolean",
        "date-time": "timestamptz",
        "object": "jsonb",
    }
)


@dataclass(frozen=True)
class Property:
    """A property of a collection's features, and a queryable."""

    name: str
    type: PropertyType
    description: str
    enum: tuple[str, ...] = ()
    output: bool = True  # False: a filter only, not written in the features
    equals: str | None = None  # SQL of `name = {value}` when it is not a column comparison
    merged: str | None = None  # SQL aggregate of the values of cells a coarse tile merges

    @property
    def sortable(self) -> bool:
        """Whether sortby may name it: plain values that are written out."""
        return self.output and self.type != "object"


@dataclass(frozen=True)
class Source:
    """One version of a collection's rows, for one audience (None: for everyone who may see
    the collection)."""

    audience: Audience | None
    rows: str  # FROM … WHERE … (without the words FROM)
    geometry: str  # in the storage CRS
    columns: Mapping[str, str]  # property or id column → SQL of its value
    cells: CellRows | None = None  # a grid layer's cells: how a box finds them by their index


@dataclass(frozen=True)
class CellRows:
    """The rows of a grid layer (`table` as `c`, joined to `runs r`), for a box.

    A cell's square is computed, not stored, so no spatial index can answer a box. The table's
    primary key (run, [layer,] cell size, ix, iy) can: for each run and each of its cell sizes
    (found by a loose index scan, a few index probes) the columns and rows under the box are
    index ranges. The square is still tested against the box afterwards.
    """

    table: str  # e.g. est.density_cell (read as c)
    where: str  # what else its rows meet, over c (e.g. c.layer = 'density')
    sees: str  # which runs' rows this audience gets, over r

    def rows(self, x0: str, y0: str, x1: str, y1: str) -> str:
        """FROM … WHERE … of the cells of the selected runs whose squares may meet the box
        (x0, y0, x1, y1: placeholders of its bounds in the storage CRS)."""
        one = f"FROM {self.table} c WHERE c.run_id = r.run_id AND {self.where}"
        sizes = f"""WITH RECURSIVE s(size) AS (
                SELECT min(c.cell_size_m) {one}
                UNION ALL
                SELECT (SELECT min(c.cell_size_m) {one} AND c.cell_size_m > s.size)
                FROM s WHERE s.size IS NOT NULL)
            SELECT size FROM s WHERE size IS NOT NULL"""

        def span(low: str, high: str, column: str) -> str:
            # from the cell before: a square whose edge touches the box meets it
            first, last = f"floor({low} / sz.size)::bigint - 1", f"floor({high} / sz.size)::bigint"
            return f"{column} BETWEEN {first} AND {last}"

        # LATERAL twice: per run and size, one range scan of the key. OFFSET 0 keeps the
        # planner from pulling the scan up into a join it then drives from the cells (it
        # cannot estimate the computed squares, and did: a scan of all 2.6M cells per tile)
        return (
            f"runs r CROSS JOIN LATERAL ({sizes}) sz "
            f"CROSS JOIN LATERAL (SELECT * FROM {self.table} c "
            f"WHERE c.run_id = r.run_id AND {self.where} AND c.cell_size_m = sz.size "
            f"AND {span(x0, x1, 'c.ix')} AND {span(y0, y1, 'c.iy')} OFFSET 0) c "
            f"WHERE {self.sees}"
        )


@dataclass(frozen=True)
class Collection:
    """A collection of features: what it is, where its rows come from, who may see it."""

    id: str
    title: str
    description: str
    geometry_type: str
    roles: frozenset[Role]
    id_columns: tuple[str, ...]  # the feature id: these columns' values joined with ':'
    properties: tuple[Property, ...]
    sources: tuple[Source, ...]
    layer: str | None = None  # the layer_current name of its runs; None: not a run layer
    temporal: tuple[str, str] | None = None  # columns of its features' start and end instants
    temporal_end_exclusive: bool = False
    raw_incidents: bool = False  # every read is written to the audit trail
    extent_of: Literal["all", "covered", "raw"] = "all"  # which areas bound its extent
    keywords: tuple[str, ...] = field(default_factory=tuple)

    def sources_for(self, role: Role) -> tuple[Source, ...]:
        """The sources a role may get rows from: analysts every one, others the viewer's."""
        if role == Role.analyst:
            return self.sources
        return tuple(s for s in self.sources if s.audience != "analyst")

    def queryables(self, role: Role) -> tuple[Property, ...]:
        """The properties a role may filter and sort on: those of its sources."""
        named = {name for s in self.sources_for(role) for name in s.columns}
        return tuple(p for p in self.properties if p.name in named or p.equals)

    def property(self, name: str) -> Property | None:
        """The property of that name, if there is one."""
        return next((p for p in self.properties if p.name == name), None)


LAYER_READERS = frozenset({Role.analyst, Role.viewer, Role.admin, Role.reporter})
RAW_READERS = frozenset({Role.analyst, Role.reporter})
EVERYONE = frozenset(Role)

RUN_PROPERTIES = (
    Property("area", "string", "Code of the run's area (kommun, or a union such as a police area)"),
    Property("profile", "string", "Name of the analysis profile the run used"),
    Property("week", "string", "The run's ISO week (2026-W47) or tertial (2026-T3)"),
    Property("run", "integer", "Id of the run (GET /api/v1/runs/{id} for analysts)"),
    Property("provisional", "boolean", "The week was still open when the run computed it"),
    Property("period_start", "date-time", "Start of the run's week or tertial (local midnight)"),
    Property("period_end", "date-time", "End of the run's week or tertial (exclusive)"),
    Property(
        "audience",
        "string",
        "Which version this feature is: analyst (computed from the incidents) or viewer "
        "(computed from the protected counts only)",
        enum=("analyst", "viewer"),
    ),
)
RUN_COLUMNS: Mapping[str, str] = MappingProxyType(
    {
        "run": "r.run_id",
        "area": "r.area",
        "profile": "r.profile",
        "week": "r.week",
        "provisional": "r.provisional",
        "period_start": "r.period_start",
        "period_end": "r.period_end",
    }
)
CELL_PROPERTIES = (
    Property("cell_size_m", "integer", "Side of the grid cell in metres"),
    Property("ix", "integer", "Column of the cell: floor(x / cell_size_m) in the storage CRS"),
    Property("iy", "integer", "Row of the cell: floor(y / cell_size_m) in the storage CRS"),
)
CELL_ID = ("run", "cell_size_m", "ix", "iy")
CELL_GEOMETRY = (
    "ST_MakeEnvelope(c.ix::float8 * c.cell_size_m, c.iy::float8 * c.cell_size_m, "
    "(c.ix + 1)::float8 * c.cell_size_m, (c.iy + 1)::float8 * c.cell_size_m, :srid)"
)
SEES_RUN = {"analyst": "r.raw", "viewer": "NOT r.raw", None: "true"}


def intersects(placeholder: str) -> str:
    """SQL of `v.geom` meeting a bound storage-CRS geometry (WKB).

    `&&` first: it is what the GiST index answers, and the one operator PostgreSQL lets into an
    index scan under row-level security (declared LEAKPROOF, see the README); ST_Intersects then
    keeps what really meets the geometry.
    """
    given = f"ST_GeomFromWKB({placeholder}, :srid)"
    return f"(v.geom && {given} AND ST_Intersects(v.geom, {given}))"


def run_source(
    audience: Audience | None, table: str, where: str, geometry: str, columns: dict[str, str]
) -> Source:
    """A source of a run layer: a result table joined to the selected runs."""
    alias = table.split()[-1]
    shown = "viewer" if audience is None else audience
    return Source(
        audience,
        rows=f"{table} JOIN runs r ON r.run_id = {alias}.run_id "
        f"WHERE {SEES_RUN[audience]} AND {where}",
        geometry=geometry,
        columns={**RUN_COLUMNS, "audience": f"'{shown}'", **columns},
    )


def cell_source(
    audience: Audience | None, table: str, where: str, columns: dict[str, str]
) -> Source:
    """A source of a grid layer: cells of a run's table, their squares as geometry."""
    cells = {"cell_size_m": "c.cell_size_m", "ix": "c.ix", "iy": "c.iy", **columns}
    source = run_source(audience, f"{table} c", where, CELL_GEOMETRY, cells)
    return replace(source, cells=CellRows(table, where, SEES_RUN[audience]))


def viewer_cells(layer: str, columns: dict[str, str]) -> Source:
    """The viewer version of a grid layer: the run's est.viewer_cell rows of that layer."""
    return cell_source("viewer", "est.viewer_cell", f"c.layer = '{layer}'", columns)


def run_layer(
    collection_id: str,
    title: str,
    description: str,
    layer: str,
    properties: tuple[Property, ...],
    sources: tuple[Source, ...],
    geometry_type: str = "Polygon",
    id_columns: tuple[str, ...] = CELL_ID,
) -> Collection:
    """A layer of the published runs: grid cells unless told otherwise, for layer readers."""
    cells = CELL_PROPERTIES if id_columns == CELL_ID else ()
    return Collection(
        id=collection_id,
        title=title,
        description=description,
        geometry_type=geometry_type,
        roles=LAYER_READERS,
        id_columns=id_columns,
        layer=layer,
        temporal=("period_start", "period_end"),
        temporal_end_exclusive=True,
        extent_of="covered",
        properties=(*RUN_PROPERTIES, *cells, *properties),
        sources=sources,
    )


HOTSPOTS = run_layer(
    "hotspots",
    "Hotspots",
    "DBSCAN hotspots of each area's published run. Analysts with a raw grant on the whole area "
    "get the buffered hulls and exact counts; everyone else the union of the shown grid cells "
    "a hotspot touches and their protected total (never a hull).",
    "hotspots",
    geometry_type="MultiPolygon",
    id_columns=("id",),
    properties=(
        Property("hotspot_key", "string", "Stable identity of the hotspot across weeks"),
        Property("method", "string", "The method that found it", enum=("dbscan",)),
        Property(
            "incident_count",
            "integer",
            "Incidents in the hotspot: exact (analyst version) or the protected total of its "
            "shown cells (viewer version)",
        ),
        Property("area_m2", "number", "Area of the feature's geometry in square metres"),
        Property(
            "change_label",
            "string",
            "Change since the previous week's run (analyst version only: it compares hulls)",
            enum=tuple(label.value for label in ChangeLabel),
        ),
        Property("stats", "object", "Counts by category and week, busiest hours (analysts)"),
    ),
    sources=(
        run_source(
            "analyst",
            "est.hotspot h",
            "h.geom IS NOT NULL",
            "h.geom",
            {
                "id": "h.id",
                "hotspot_key": "h.hotspot_key",
                "method": "h.method",
                "incident_count": "h.incident_count",
                "area_m2": "h.area_m2",
                "change_label": "h.change_label::text",
                "stats": "h.stats",
            },
        ),
        run_source(
            "viewer",
            "est.hotspot h",
            "h.viewer_geom IS NOT NULL",
            "h.viewer_geom",
            {
                "id": "h.id",
                "hotspot_key": "h.hotspot_key",
                "method": "h.method",
                "incident_count": "h.viewer_count",
                "area_m2": "ST_Area(h.viewer_geom)",
            },
        ),
    ),
)

DENSITY = run_layer(
    "density",
    "Kernel density",
    "Kernel density per grid cell of each area's published run, with the share of the density "
    "held by denser cells (isopleth) for analysts.",
    "density",
    properties=(
        Property("density", "number", "Estimated incidents per square kilometre", merged="avg"),
        Property(
            "isopleth", "number", "Share of the density in cells at least this dense", merged="min"
        ),
    ),
    sources=(
        cell_source(
            "analyst",
            "est.density_cell",
            "true",
            {"density": "c.density", "isopleth": "c.isopleth"},
        ),
        viewer_cells("density", {"density": "c.value"}),
    ),
)

GISTAR = run_layer(
    "gistar",
    "Getis-Ord Gi*",
    "Gi* hot and cold spots per grid cell of each area's published run: z score, ArcGIS-style "
    "confidence bin (-3 to 3) and, for analysts, p values (FDR-adjusted).",
    "gistar",
    properties=(
        Property("incident_count", "integer", "Incidents in the cell (viewers: shown count)"),
        Property("z", "number", "Gi* z score"),
        Property("p", "number", "Two-sided p value (analysts)"),
        Property("p_adjusted", "number", "p value after the false discovery rate correction"),
        Property("bin", "integer", "Confidence bin: ±3 at 99 %, ±2 at 95 %, ±1 at 90 %, 0"),
    ),
    sources=(
        cell_source(
            "analyst",
            "est.gistar_cell",
            "true",
            {
                "incident_count": "c.incident_count",
                "z": "c.z",
                "p": "c.p",
                "p_adjusted": "c.p_adjusted",
                "bin": "c.bin",
            },
        ),
        viewer_cells("gistar", {"incident_count": "c.shown", "z": "c.value", "bin": "c.bin"}),
    ),
)

EMERGING = run_layer(
    "emerging",
    "Emerging hotspots",
    "Emerging-hotspot class of each grid cell of each area's published run (new, consecutive, "
    "intensifying, persistent, diminishing, sporadic, oscillating, historical, and the "
    "cold-spot mirror), with the Mann-Kendall trend.",
    "emerging",
    properties=(
        Property("pattern", "string", "The emerging-hotspot class"),
        Property("trend_z", "number", "Mann-Kendall z of the cell's weekly Gi* z scores"),
        Property("trend_p", "number", "p value of the trend (analysts)"),
        Property("hot_steps", "integer", "Weeks the cell was a significant hot spot (analysts)"),
        Property("cold_steps", "integer", "Weeks it was a significant cold spot (analysts)"),
    ),
    sources=(
        cell_source(
            "analyst",
            "est.emerging_cell",
            "true",
            {
                "pattern": "c.pattern",
                "trend_z": "c.trend_z",
                "trend_p": "c.trend_p",
                "hot_steps": "c.hot_steps",
                "cold_steps": "c.cold_steps",
            },
        ),
        viewer_cells("emerging", {"pattern": "c.pattern", "trend_z": "c.value"}),
    ),
)

FORECAST = run_layer(
    "forecast",
    "Forecast",
    "Risk of each grid cell for the week after the run's week, ranked (1 is the highest); "
    "analysts also see which cells make the flagged top share of the area.",
    "forecast",
    properties=(
        Property("risk", "number", "Forecast risk of the cell"),
        Property("rank", "integer", "Rank of the cell's risk in the area, 1 the highest"),
        Property("flagged", "boolean", "Among the top share of the area's cells (analysts)"),
    ),
    sources=(
        cell_source(
            "analyst",
            "est.forecast_cell",
            "true",
            {"risk": "c.risk", "rank": "c.rank", "flagged": "c.flagged"},
        ),
        viewer_cells("forecast", {"risk": "c.value", "rank": "c.bin"}),
    ),
)

VIEWER_GRID = run_layer(
    "viewer-grid",
    "Incidents per grid cell (protected)",
    "The run's week as viewers see it: incidents per grid cell, small counts left out, the rest "
    "perturbed and rounded (see 'What viewers see' in the README).",
    "viewer",
    properties=(Property("incident_count", "integer", "The protected count of the cell"),),
    # the same cells for every caller who covers the area: no analyst version
    sources=(
        cell_source(None, "est.viewer_cell", "c.layer = 'counts'", {"incident_count": "c.shown"}),
    ),
)

AREAS = Collection(
    id="areas",
    title="Areas",
    description="Kommuner, län and the unions of kommuner that police areas work in (the "
    "current version of each boundary).",
    geometry_type="MultiPolygon",
    roles=EVERYONE,
    id_columns=("area",),
    properties=(
        Property("area", "string", "Code of the area (1285 for Eslöv)"),
        Property("name", "string", "Name of the area"),
        Property("kind", "string", "kommun, lan, union or custom"),
        Property("version", "integer", "Version of the boundary"),
    ),
    sources=(
        Source(
            None,
            rows="est.area a",
            geometry="a.geom",
            columns={"area": "a.code", "name": "a.name", "kind": "a.kind", "version": "a.version"},
        ),
    ),
)

INCIDENTS = Collection(
    id="incidents",
    title="Incidents",
    description="Raw incidents: those your organisation reported and, for analysts, those in "
    "areas it holds a raw grant on. Every read is written to the audit trail.",
    geometry_type="Point",
    roles=RAW_READERS,
    id_columns=("id",),
    temporal=("occurred_from", "occurred_until"),
    raw_incidents=True,
    extent_of="raw",
    properties=(
        Property("organisation", "string", "Code of the reporting organisation"),
        Property("source", "string", "The reporting system"),
        Property("external_id", "string", "The record's id in that system"),
        Property("category_code", "string", "Category (data/categories.yaml)"),
        Property("label_sv", "string", "The category's Swedish name"),
        Property("occurred_from", "date-time", "When it happened (or began)"),
        Property("occurred_to", "date-time", "When it ended, for an interval"),
        Property("reported_at", "date-time", "When it was reported"),
        Property(
            "location_precision", "string", "How exactly the point locates it", enum=PRECISIONS
        ),
        Property("description", "string", "Free text (personal identity numbers masked)"),
        Property(
            "area",
            "string",
            "Code of an area the incident lies in (a filter: area=1285)",
            output=False,
            equals="v.area_ids && ARRAY(SELECT a.id FROM est.area a WHERE a.code = {value})",
        ),
    ),
    sources=(
        Source(
            None,
            rows="est.incident i JOIN est.organisation o ON o.id = i.organisation_id "
            "JOIN est.category k ON k.code = i.category_code "
            f"WHERE i.deleted_at IS NULL AND {VISIBLE_SQL}",
            geometry="i.geom",
            columns={
                "id": "i.id",
                "organisation": "o.code",
                "source": "i.source",
                "external_id": "i.external_id",
                "category_code": "i.category_code",
                "label_sv": "k.label_sv",
                "occurred_from": "i.occurred_from",
                "occurred_to": "i.occurred_to",
                "reported_at": "i.reported_at",
                "location_precision": "i.location_precision::text",
                "description": "i.description",
                "area_ids": "i.area_ids",
                "occurred_until": "coalesce(i.occurred_to, i.occurred_from)",
            },
        ),
    ),
)

COLLECTIONS: tuple[Collection, ...] = (
    AREAS,
    HOTSPOTS,
    DENSITY,
    GISTAR,
    EMERGING,
    FORECAST,
    VIEWER_GRID,
    INCIDENTS,
)
