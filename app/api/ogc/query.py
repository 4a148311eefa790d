"""The SQL of /ogc: one query shape for every collection of the registry.

    WITH covered AS (…), runs AS NOT MATERIALIZED (…)      -- run layers only
    SELECT … FROM (<source> UNION ALL <source>) AS v      -- the sources the caller gets
    WHERE <bbox, datetime, properties, CQL2, cursor>
    ORDER BY <sortby, then the feature id> LIMIT …

Everything after FROM sees `v` only: the rows and values of the version the caller may see
(app.api.ogc.collections). Pages are read by keyset: a cursor carries the sort values of the
row a page ended with, so page 100 costs what page 1 costs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import shapely
from sqlalchemy import Connection, CursorResult, text

from app.access.coverage import COVERED_AREAS_SQL
from app.api.ogc import cql
from app.api.ogc.collections import SQL_TYPES, Collection, Property, Source, intersects
from app.api.ogc.params import Crs, Cursor, ItemsQuery, read_cursor, to_storage
from app.core.vocabulary import Role
from geo.crs import swap_axes

COUNT_AT_MOST = 100_000  # numberMatched is exact up to here and left out beyond
MATCHED = "_matched"  # the window count's column (no property is named so)
RunMode = Literal["current", "latest", "any"]

PERIOD_START = """((r.window_end AT TIME ZONE d.timezone)
        - CASE WHEN r.period_kind = 'week' THEN interval '7 days' ELSE interval '4 months' END)
        AT TIME ZONE d.timezone"""
RUNS_SQL = f"""
    SELECT r.id AS run_id, a.code AS area, p.name AS profile, r.period_label AS week,
           r.provisional, {PERIOD_START} AS period_start, r.window_end AS period_end, cv.raw
    FROM est.hotspot_run r
    JOIN covered cv ON cv.area_id = r.area_id
    JOIN est.area a ON a.id = r.area_id
    JOIN est.analysis_profile p ON p.id = r.profile_id
    CROSS JOIN est.deployment d
    WHERE r.status = 'succeeded' AND r.published_at IS NOT NULL
      AND (p.organisation_id IS NULL OR p.organisation_id = est.current_org())
"""
# a run is superseded when a later run of its area, profile and period was published
LATEST_SQL = """NOT EXISTS (
        SELECT 1 FROM est.hotspot_run n
        WHERE n.area_id = r.area_id AND n.profile_id = r.profile_id
          AND n.period_kind = r.period_kind AND n.period_label = r.period_label
          AND n.status = 'succeeded' AND n.published_at > r.published_at)"""
RUN_SELECTORS = {"week": "r.period_label", "run": "r.id", "area": "a.code", "profile": "p.name"}


@dataclass(frozen=True)
class Page:
    """One page of features, and whether there are more before and after it."""

    rows: list[dict[str, Any]]
    before: bool
    after: bool
    matched: int | None


@dataclass
class Statement:
    """A query being built: its SQL parts and bound values."""

    collection: Collection
    role: Role
    srid: int
    bindings: cql.Bindings

    @classmethod
    def of(cls, collection: Collection, role: Role, srid: int, org: int) -> Statement:
        """A statement over the collection for a caller (its organisation and role)."""
        bindings = cql.Bindings()
        bindings.values.update(srid=srid, org=org, role=role.value)
        return cls(collection, role, srid, bindings)

    @property
    def sources(self) -> tuple[Source, ...]:
        """The sources the caller gets rows from."""
        return self.collection.sources_for(self.role)

    @property
    def columns(self) -> list[str]:
        """Every column of `v`, in the order of the sources' first mention."""
        names: dict[str, None] = {}
        for source in self.sources:
            names.update(dict.fromkeys(source.columns))
        return list(names)

    def stacked(
        self, selection: dict[str, Any], mode: RunMode, box: shapely.Geometry | None = None
    ) -> tuple[str, str]:
        """The WITH … and FROM (…) AS v parts: the caller's rows of the selected runs (of grid
        layers: only the cells whose index places them near `box`, when one is given)."""
        names = self.columns
        branches = []
        bounds = None
        if box is not None:
            # held within ±1e12 m, so a cell index of any box fits a bigint
            held = [min(max(float(v), -1e12), 1e12) for v in box.bounds]
            bounds = [self.bindings.bind(v, "double precision") for v in held]
        for source in self.sources:
            values = [f'{self._value(source, n)} AS "{n}"' for n in names]
            values.append(f"{source.geometry} AS geom")
            rows = source.rows
            if bounds is not None and source.cells is not None:
                rows = source.cells.rows(*bounds)
            branches.append(f"SELECT {', '.join(values)} FROM {rows}")
        rows = f"FROM ({' UNION ALL '.join(branches)}) AS v"
        if self.collection.layer is None:
            return "", rows
        runs = RUNS_SQL + self._selection(selection, mode)
        return f"WITH covered AS ({COVERED_AREAS_SQL}), runs AS NOT MATERIALIZED ({runs})", rows

    def _value(self, source: Source, name: str) -> str:
        if name in source.columns:
            return source.columns[name]
        prop = self.collection.property(name)
        return f"CAST(NULL AS {SQL_TYPES[prop.type]})" if prop else "NULL"

    def _selection(self, selection: dict[str, Any], mode: RunMode) -> str:
        clauses = []
        if mode == "current":
            layer = self.bindings.bind(self.collection.layer, "text")
            clauses.append(
                f"r.id IN (SELECT c.run_id FROM est.layer_current c WHERE c.layer = {layer})"
            )
        elif mode == "latest":
            clauses.append(LATEST_SQL)
        for name, column in RUN_SELECTORS.items():
            if selection.get(name) is not None:
                clauses.append(f"{column} = {self.bindings.bind(selection[name])}")
        return "".join(f" AND {c}" for c in clauses)

    def conditions(self, query: ItemsQuery) -> list[str]:
        """The WHERE conditions of a request's filters (bbox, datetime, properties, CQL2)."""
        found = []
        if query.bbox is not None:
            box = self.bindings.bind(shapely.to_wkb(query.bbox))
            found.append(intersects(box))
        if query.datetime is not None:
            found.extend(self._during(*query.datetime))
        for name, value in query.equals.items():
            prop = self.collection.property(name)
            assert prop is not None
            placeholder = self.bindings.bind(value, SQL_TYPES[prop.type])
            if prop.equals is not None:
                found.append(prop.equals.format(value=placeholder))
            else:
                found.append(f'v."{name}" = {placeholder}')
        if query.filter is not None:
            found.append(self._filter(query.filter, query.filter_crs))
        return found

    def _during(self, start: Any, end: Any) -> list[str]:
        temporal = self.collection.temporal
        if temporal is None:
            return ["false"]  # features without time do not meet a datetime (OGC 17-069r4)
        first, last = temporal
        found = []
        if end is not None:
            found.append(f'v."{first}" <= {self.bindings.bind(end, "timestamptz")}')
        if start is not None:
            word = ">" if self.collection.temporal_end_exclusive else ">="
            found.append(f'v."{last}" {word} {self.bindings.bind(start, "timestamptz")}')
        return found

    def _filter(self, filter_text: str, crs: Crs | None) -> str:
        assert crs is not None

        def storage_wkb(geometry: shapely.Geometry) -> bytes:
            given = swap_axes(geometry) if crs.north_first else geometry
            return bytes(shapely.to_wkb(to_storage(given, crs, self.srid, "filter")))

        queryables = {p.name: p for p in self.collection.queryables(self.role)}
        queryables[cql.GEOMETRY] = Property(cql.GEOMETRY, "object", "the geometry")
        translator = cql.Translator(queryables, self.bindings, storage_wkb, self.srid)
        return translator.sql(cql.parse(filter_text))

    def key_types(self, keys: Sequence[tuple[str, bool]]) -> list[str]:
        """The property type of each sort key (an id column that is no property: integer)."""
        out: list[str] = []
        for name, _ in keys:
            prop = self.collection.property(name)
            out.append(prop.type if prop else "integer")
        return out

    def position(self, keys: Sequence[tuple[str, bool]], cursor: Cursor) -> str:
        """The rows after (or before) the cursor's row in the order of `keys`, nulls last."""
        ors = []
        types = self.key_types(keys)
        for i, ((name, descending), value) in enumerate(zip(keys, cursor.values, strict=True)):
            column = f'v."{name}"'
            sql_type = SQL_TYPES[types[i]]
            same = [
                f'v."{k}" IS NOT DISTINCT FROM {self.bindings.bind(v, SQL_TYPES[t])}'
                for (k, _), v, t in zip(keys[:i], cursor.values[:i], types[:i], strict=True)
            ]
            if cursor.forward:
                if value is None:
                    continue  # nothing comes after a null but nulls, which the next keys order
                op = "<" if descending else ">"
                beyond = (
                    f"({column} {op} {self.bindings.bind(value, sql_type)} OR {column} IS NULL)"
                )
            elif value is None:
                beyond = f"{column} IS NOT NULL"
            else:
                op = ">" if descending else "<"
                beyond = f"{column} {op} {self.bindings.bind(value, sql_type)}"
            ors.append("(" + " AND ".join([*same, beyond]) + ")")
        return "(" + (" OR ".join(ors) or "false") + ")"


def sort_keys(collection: Collection, query: ItemsQuery) -> list[tuple[str, bool]]:
    """The ORDER BY of a page: the request's sortby, then the feature id ascending."""
    keys = list(query.sortby)
    keys += [(c, False) for c in collection.id_columns if c not in dict(keys)]
    return keys


def run_mode(query: ItemsQuery) -> RunMode:
    """Which runs a request reads: a named run, the latest of named weeks, or the current."""
    if query.equals.get("run") is not None:
        return "any"
    if query.equals.get("week") is not None or query.datetime is not None:
        return "latest"
    return "current"


def _outputs(statement: Statement) -> str:
    names = statement.columns
    return ", ".join([*(f'v."{n}"' for n in names), "ST_AsBinary(v.geom) AS wkb"])


def read_page(
    conn: Connection,
    collection: Collection,
    role: Role,
    org: int,
    srid: int,
    query: ItemsQuery,
    count_at_most: int = COUNT_AT_MOST,
) -> Page:
    """A page of the caller's features under the request's filters, and the number matched."""
    statement = Statement.of(collection, role, srid, org)
    ctes, rows_of = statement.stacked(query.equals, run_mode(query), query.bbox)
    where = statement.conditions(query)
    keys = sort_keys(collection, query)
    cursor = read_cursor(query.cursor, statement.key_types(keys))
    paged = [*where, statement.position(keys, cursor)] if cursor else where
    forward = cursor is None or cursor.forward
    order = ", ".join(
        f'v."{name}" {"DESC" if desc == forward else "ASC"} NULLS {"LAST" if forward else "FIRST"}'
        for name, desc in keys
    )
    condition = " AND ".join(paged) or "true"
    # The first page counts; a client paging on has the number already. Under a bbox the page
    # is sorted from every row in the box anyway, so a window count over them costs little;
    # without one, the page stops early on an index and a capped count runs on its own.
    counting = cursor is None and count_at_most > 0
    windowed = counting and query.bbox is not None
    outputs = _outputs(statement) + (f', count(*) OVER () AS "{MATCHED}"' if windowed else "")
    sql = f"{ctes} SELECT {outputs} {rows_of} WHERE {condition}"
    rows = _dicts(
        conn.execute(
            text(f"{sql} ORDER BY {order} LIMIT :limit"),
            {**statement.bindings.values, "limit": query.limit + 1},
        )
    )
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    if not forward:
        rows.reverse()
    matched = None
    if windowed:
        counted = rows[0][MATCHED] if rows else 0
        for row in rows:
            del row[MATCHED]
        matched = int(counted) if counted <= count_at_most else None
    elif counting and not more:  # all of them are on this page
        matched = len(rows)
    elif counting:
        plain = " AND ".join(where) or "true"
        counted = conn.scalar(
            text(f"{ctes} SELECT count(*) FROM (SELECT 1 {rows_of} WHERE {plain} LIMIT :cap) s"),
            {**statement.bindings.values, "cap": count_at_most + 1},
        )
        matched = int(counted or 0) if int(counted or 0) <= count_at_most else None
    return Page(
        rows,
        before=more if not forward else cursor is not None,
        after=more if forward else True,
        matched=matched,
    )


@dataclass(frozen=True)
class SelectedRun:
    """A run a request reads: its id, its week (or tertial), and whether the caller's grants
    cover its whole area raw (then an analyst gets the analyst version: hulls, exact counts)."""

    id: int
    week: str
    raw: bool


def selected_runs(
    conn: Connection, collection: Collection, role: Role, org: int, srid: int, query: ItemsQuery
) -> list[SelectedRun]:
    """The runs a request for a run layer reads, as its items select them: what its answer is
    made of (a file's runs, an ETag)."""
    statement = Statement.of(collection, role, srid, org)
    ctes, _ = statement.stacked(query.equals, run_mode(query))
    rows = conn.execute(
        text(f"{ctes} SELECT r.run_id, r.week, r.raw FROM runs r ORDER BY r.run_id"),
        statement.bindings.values,
    )
    return [SelectedRun(int(r.run_id), str(r.week), bool(r.raw)) for r in rows]


def next_cursor(page: Page, collection: Collection, query: ItemsQuery, forward: bool) -> str:
    """The cursor of the page after (forward) or before this one."""
    row = page.rows[-1] if forward else page.rows[0]
    return Cursor(tuple(row[k] for k, _ in sort_keys(collection, query)), forward).encode()


def read_feature(
    conn: Connection,
    collection: Collection,
    role: Role,
    org: int,
    srid: int,
    id_values: dict[str, Any],
) -> dict[str, Any] | None:
    """One feature of any published run by its id, if the caller may see it."""
    statement = Statement.of(collection, role, srid, org)
    ctes, rows_of = statement.stacked({}, "any")
    where = " AND ".join(
        f'v."{name}" = {statement.bindings.bind(value)}' for name, value in id_values.items()
    )
    rows = _dicts(
        conn.execute(
            text(f"{ctes} SELECT {_outputs(statement)} {rows_of} WHERE {where} LIMIT 1"),
            statement.bindings.values,
        )
    )
    return rows[0] if rows else None


def _dicts(result: CursorResult[Any]) -> list[dict[str, Any]]:
    """A result's rows as dicts, fetched at once (a page is a thousand rows: row by row through
    the result's mappings costs more than the query)."""
    names = list(result.keys())
    return [dict(zip(names, row, strict=True)) for row in result.all()]


EXTENT_AREAS = {
    "all": "SELECT a.geom FROM est.area a",
    "covered": "SELECT a.geom FROM est.area a JOIN covered cv ON cv.area_id = a.id",
    "raw": "SELECT a.geom FROM est.area a WHERE a.id IN (SELECT est.raw_granted_areas())",
}


def extent(
    conn: Connection, collection: Collection, role: Role, org: int, srid: int
) -> tuple[list[float] | None, list[Any] | None]:
    """The collection's bbox in CRS84 (of the areas it spans for the caller) and its time span."""
    bbox = _bbox(conn, EXTENT_AREAS[collection.extent_of])
    if bbox is None and collection.extent_of == "raw":  # a reporter's own incidents: anywhere
        bbox = _bbox(conn, EXTENT_AREAS["all"])
    return bbox, _span(conn, collection, role, org, srid)


def _bbox(conn: Connection, areas: str) -> list[float] | None:
    box = conn.execute(
        text(f"""
        WITH covered AS ({COVERED_AREAS_SQL}), e AS (
            SELECT ST_Extent(ST_Transform(ST_Segmentize(ST_Envelope(s.geom), 1000), 4326)) AS b
            FROM ({areas}) AS s)
        SELECT ST_XMin(b), ST_YMin(b), ST_XMax(b), ST_YMax(b) FROM e
    """)
    ).one()
    return [round(float(v), 7) for v in box] if box[0] is not None else None


def _span(
    conn: Connection, collection: Collection, role: Role, org: int, srid: int
) -> list[Any] | None:
    if collection.temporal is None:
        return None
    statement = Statement.of(collection, role, srid, org)
    first, last = collection.temporal
    ctes, rows_of = statement.stacked({}, "any")
    row = conn.execute(
        text(f'{ctes} SELECT min(v."{first}"), max(v."{last}") {rows_of}'),
        statement.bindings.values,
    ).one()
    return [row[0], row[1]]
