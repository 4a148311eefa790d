"""The one rule for every value a viewer sees (aggregate grants, the viewer role).

A viewer (a ledningsgrupp member, a property owner's representative) may see aggregates only,
and must not be able to work out where a single incident happened however many questions they
ask. So every viewer-facing value comes from est.viewer_grid, and that function allows only:

1. cells of a few nested sizes on one origin (est.privacy.cell_sizes, 125 to 2000 m);
2. fixed periods (PERIODS: an ISO week, aligned blocks of 4 and 12 weeks, a tertial, a year,
   in the deployment's time zone) and named category groups or all categories;
3. counts formed on the smallest cell, left out below k, perturbed by a cell key derived from
   the incidents' record keys (the same incidents always get the same noise; a changed cell
   gets new noise), summed into the larger cells and then rounded;
4. with k, the base, the noise table and the secret read inside the database, where the app
   role can neither change them nor pass others.

An incident alone in its smallest cell therefore counts in no answer at all. Everything else
that viewers will see (density, Gi*, trends, forecasts, report figures) is to be computed from
these shown counts only. Analysts with a raw grant may ask for exact counts at any cell size
(`exact_grid`), because they may see the incidents themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal, get_args
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import shapely
from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from app.access.auth import Principal
from app.access.visibility import VISIBLE_SQL
from app.core.errors import InvalidInput
from geo.grid import cell_polygons

IntArray = npt.NDArray[np.int64]
PeriodKind = Literal["week", "4weeks", "12weeks", "tertial", "year"]
PERIODS: tuple[str, ...] = get_args(PeriodKind)
EPOCH_MONDAY = date(1970, 1, 5)  # the blocks of 4 and 12 weeks count from this Monday
EXACT_CELL_SIZES = (10, 5000)  # what analysts with a raw grant may ask for, in metres


@dataclass(frozen=True)
class Protection:
    """The parameters of est.privacy, as the database holds them."""

    cell_sizes: tuple[int, ...]
    suppression_k: int
    rounding_base: int
    noise: tuple[int, ...]
    noise_weights: tuple[int, ...]

    @property
    def max_error(self) -> int:
        """The largest difference between a shown count of the smallest cell and the truth."""
        return max(abs(n) for n in self.noise) + self.rounding_base // 2

    def describe(self) -> dict[str, object]:
        """What an answer says about how its counts were protected."""
        return {
            "cell_sizes_m": list(self.cell_sizes),
            "suppression_k": self.suppression_k,
            "rounding_base": self.rounding_base,
            "noise": list(self.noise),
            "noise_weights": list(self.noise_weights),
        }


def protection(conn: Connection) -> Protection:
    """Read the protection parameters (the app role may read them, never write them)."""
    row = conn.execute(
        text(
            "SELECT cell_sizes, suppression_k, rounding_base, noise, noise_weights "
            "FROM est.privacy WHERE id = 1"
        )
    ).one()
    return Protection(
        tuple(row.cell_sizes),
        row.suppression_k,
        row.rounding_base,
        tuple(row.noise),
        tuple(row.noise_weights),
    )


@dataclass(frozen=True)
class Period:
    """An allowed period: from its first day to its end day (exclusive), local dates."""

    kind: str
    first_day: date
    end_day: date

    @property
    def label(self) -> str:
        """E.g. 2026-W41, 2026-W41–2026-W44, 2026-T3, 2026."""
        if self.kind == "week":
            return _week_label(self.first_day)
        if self.kind in ("4weeks", "12weeks"):
            return f"{_week_label(self.first_day)}–{_week_label(self.end_day - timedelta(7))}"
        if self.kind == "tertial":
            return f"{self.first_day.year}-T{(self.first_day.month - 1) // 4 + 1}"
        return str(self.first_day.year)

    def bounds(self, timezone: str) -> tuple[datetime, datetime]:
        """The period's start and end instants: local midnights in `timezone`."""
        zone = ZoneInfo(timezone)
        start = datetime(self.first_day.year, self.first_day.month, self.first_day.day)
        end = datetime(self.end_day.year, self.end_day.month, self.end_day.day)
        return start.replace(tzinfo=zone), end.replace(tzinfo=zone)


def period_of(kind: str, day: date) -> Period:
    """The allowed period of a kind that holds `day` (the same rule as est.period_days)."""
    monday = day - timedelta(days=day.weekday())
    if kind == "week":
        return Period(kind, monday, monday + timedelta(7))
    if kind in ("4weeks", "12weeks"):
        weeks = 4 if kind == "4weeks" else 12
        block = (monday - EPOCH_MONDAY).days // (7 * weeks)
        first = EPOCH_MONDAY + timedelta(7 * weeks * block)
        return Period(kind, first, first + timedelta(7 * weeks))
    if kind == "tertial":
        first = date(day.year, 4 * ((day.month - 1) // 4) + 1, 1)
        end_month = first.month + 4
        end = date(first.year + 1, 1, 1) if end_month > 12 else date(first.year, end_month, 1)
        return Period(kind, first, end)
    if kind == "year":
        return Period(kind, date(day.year, 1, 1), date(day.year + 1, 1, 1))
    raise InvalidInput(f"period must be one of {', '.join(PERIODS)}, not {kind!r}")


def _week_label(monday: date) -> str:
    year, week, _ = monday.isocalendar()
    return f"{year}-W{week:02d}"


@dataclass(frozen=True)
class Grid:
    """Cells (column ix, row iy of cell_size_m on the storage CRS's origin) and their counts."""

    cell_size_m: int
    period: Period
    ix: IntArray
    iy: IntArray
    count: IntArray


def has_grant(conn: Connection, organisation_id: int, area_code: str) -> bool:
    """Whether the organisation holds a live grant (of either level) on the area."""
    found = conn.scalar(
        text(
            "SELECT 1 FROM est.area a JOIN est.area_grant g ON g.area_id = a.id "
            "WHERE a.code = :area AND g.organisation_id = :org "
            "AND (g.expires_at IS NULL OR g.expires_at > now())"
        ),
        {"area": area_code, "org": organisation_id},
    )
    return found is not None


def has_raw_grant(conn: Connection, principal: Principal, area_code: str) -> bool:
    """Whether the caller is an analyst whose organisation holds a live raw grant on the area."""
    found = conn.scalar(
        text(
            "SELECT 1 FROM est.area a WHERE a.code = :area "
            "AND a.id IN (SELECT est.raw_granted_areas())"
        ),
        {"area": area_code},
    )
    return found is not None and principal.role.value == "analyst"


def viewer_grid(
    conn: Connection,
    protected: Protection,
    area_code: str,
    cell_size_m: int,
    period: Period,
    group: str | None,
) -> Grid:
    """Shown counts per cell, through est.viewer_grid (which checks everything again)."""
    _check_size(protected, cell_size_m)
    rows = _answer(
        conn,
        "SELECT ix, iy, shown FROM est.viewer_grid(:area, :size, :kind, :day, :group)",
        {
            "area": area_code,
            "size": cell_size_m,
            "kind": period.kind,
            "day": period.first_day,
            "group": group,
        },
    )
    return _grid(cell_size_m, period, [(r.ix, r.iy, r.shown) for r in rows])


def viewer_grids(
    conn: Connection,
    protected: Protection,
    area_code: str,
    cell_size_m: int,
    periods: list[Period],
    groups: list[str | None],
) -> list[list[Grid]]:
    """est.viewer_grid's answers for every period (outer list) and group (inner list), read
    in one call of est.viewer_grids (the nightly run's system role only): each answer is the
    one est.viewer_grid gives, and the incidents are read and keyed once."""
    _check_size(protected, cell_size_m)
    if not periods or not groups:
        return [[] for _ in periods]
    rows = _answer(
        conn,
        "SELECT period_no, group_no, ix, iy, shown FROM est.viewer_grids("
        ":area, :size, CAST(:kinds AS text[]), CAST(:days AS date[]), CAST(:groups AS text[]))",
        {
            "area": area_code,
            "size": cell_size_m,
            "kinds": [p.kind for p in periods],
            "days": [p.first_day for p in periods],
            "groups": groups,
        },
    )
    table = np.array(
        [(r.period_no, r.group_no, r.ix, r.iy, r.shown) for r in rows], dtype=np.int64
    ).reshape(-1, 5)
    order = np.lexsort((table[:, 1], table[:, 0]))  # stable: keeps each answer's cell order
    table = table[order]
    keys = table[:, 0] * (len(groups) + 1) + table[:, 1]
    answers: list[list[Grid]] = []
    for i, period in enumerate(periods, start=1):
        row: list[Grid] = []
        for j in range(1, len(groups) + 1):
            lo, hi = np.searchsorted(
                keys, [i * (len(groups) + 1) + j, i * (len(groups) + 1) + j + 1]
            )
            part = table[lo:hi]
            row.append(Grid(cell_size_m, period, part[:, 2], part[:, 3], part[:, 4]))
        answers.append(row)
    return answers


def _check_size(protected: Protection, cell_size_m: int) -> None:
    if cell_size_m not in protected.cell_sizes:
        sizes = ", ".join(str(s) for s in protected.cell_sizes)
        raise InvalidInput(f"cell_size_m must be one of {sizes} for aggregate layers")


def _answer(conn: Connection, sql: str, values: dict[str, object]) -> list[Any]:
    """The rows of a viewer function; its own refusals (SQLSTATE 22023) as InvalidInput."""
    try:
        with conn.begin_nested():
            return list(conn.execute(text(sql), values).all())
    except DBAPIError as exc:
        if getattr(exc.orig, "sqlstate", None) == "22023":
            raise InvalidInput(str(exc.orig).splitlines()[0]) from None
        raise


def exact_grid(
    conn: Connection,
    principal: Principal,
    area_code: str,
    cell_size_m: int,
    period: Period,
    timezone: str,
    categories: list[str] | None,
) -> Grid:
    """Exact counts per cell of any size, of the incidents the caller may see (raw grants).

    Points that stand for an area (area_centroid, unknown) are left out: they are no place.
    """
    low, high = EXACT_CELL_SIZES
    if not low <= cell_size_m <= high:
        raise InvalidInput(f"cell_size_m must lie between {low} and {high}")
    since, until = period.bounds(timezone)
    rows = conn.execute(
        text(f"""
        SELECT floor(ST_X(i.geom) / :size)::integer AS ix,
               floor(ST_Y(i.geom) / :size)::integer AS iy, count(*)::integer AS n
        FROM est.incident i
        JOIN est.incident_area ia ON ia.incident_id = i.id
        JOIN est.area a ON a.id = ia.area_id AND a.code = :area
        WHERE i.deleted_at IS NULL AND {VISIBLE_SQL}
          AND i.location_precision IN ('exact', 'address', 'street')
          AND i.occurred_from >= :since AND i.occurred_from < :until
          AND (CAST(:codes AS text[]) IS NULL OR i.category_code = ANY(CAST(:codes AS text[])))
        GROUP BY 1, 2 ORDER BY 2, 1
    """),
        {
            "size": cell_size_m,
            "area": area_code,
            "since": since,
            "until": until,
            "codes": categories,
            "org": principal.organisation_id,
            "role": principal.role.value,
        },
    ).all()
    return _grid(cell_size_m, period, [(r.ix, r.iy, r.n) for r in rows])


def _grid(cell_size_m: int, period: Period, rows: list[tuple[int, int, int]]) -> Grid:
    table = np.array(rows, dtype=np.int64).reshape(-1, 3)
    return Grid(cell_size_m, period, table[:, 0], table[:, 1], table[:, 2])


def as_system(conn: Connection) -> None:
    """Let est.viewer_grid answer the nightly run for every area (a session of est_system only).

    The database checks the session's role itself, so the app role cannot use this.
    """
    conn.execute(text("SELECT set_config('est.role', 'system', true)"))


def weekly_grids(
    conn: Connection,
    protected: Protection,
    area_code: str,
    cell_size_m: int,
    mondays: list[date],
    group: str | None,
) -> list[Grid]:
    """The shown counts of each of the weeks that start on the given Mondays (one call)."""
    weeks = [period_of("week", m) for m in mondays]
    return [row[0] for row in viewer_grids(conn, protected, area_code, cell_size_m, weeks, [group])]


def summed(grids: list[Grid], cell_size_m: int) -> Grid:
    """The cell-by-cell sum of shown counts (of one cell size): what a viewer could add up
    from the weekly answers themselves, so it tells no more than they do."""
    if not grids:
        empty = np.zeros(0, dtype=np.int64)
        return Grid(cell_size_m, Period("week", date.min, date.min), empty, empty, empty)
    ix = np.concatenate([g.ix for g in grids])
    iy = np.concatenate([g.iy for g in grids])
    count = np.concatenate([g.count for g in grids])
    keys, inverse = np.unique(np.column_stack([iy, ix]), axis=0, return_inverse=True)
    totals = np.bincount(inverse.ravel(), weights=count, minlength=len(keys)).astype(np.int64)
    first = min(g.period.first_day for g in grids)
    end = max(g.period.end_day for g in grids)
    return Grid(cell_size_m, Period("weeks", first, end), keys[:, 1], keys[:, 0], totals)


def covered_cells(grid: Grid, polygons: list[object]) -> list[tuple[IntArray, int]]:
    """Per analyst polygon (a hotspot hull), the shown cells it touches and their shown total.

    This is the viewer version of a hotspot: the union of cells that already show a count, and
    that count; no vertex of the hull (an incident's coordinates) reaches the viewer.
    """
    cells = cell_polygons(grid.ix, grid.iy, grid.cell_size_m)
    tree = shapely.STRtree(cells)
    out = []
    for polygon in polygons:
        hit = np.sort(tree.query(polygon, predicate="intersects")).astype(np.int64)
        hit = hit[grid.count[hit] > 0]
        out.append((hit, int(grid.count[hit].sum())))
    return out
