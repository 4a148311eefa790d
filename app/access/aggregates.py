"""What every grant may see, viewers included: counts per cell, suppressed inside the database.

The viewer-facing values are computed by est.grid_counts (a SECURITY DEFINER function): the
app role cannot read incidents of areas it has no raw grant on, but may ask for these counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection, text

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class GridCounts:
    """Cells (column ix, row iy of cell_size_m on the storage CRS's origin) and their counts."""

    cell_size_m: int
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


def grid_counts(
    conn: Connection,
    area_code: str,
    cell_size_m: int,
    since: datetime,
    until: datetime,
    categories: list[str] | None,
    k: int,
    rounding_base: int,
) -> GridCounts:
    """Counts per cell of an area over whole weeks (in the deployment's time zone)."""
    rows = conn.execute(
        text(
            "SELECT ix, iy, incident_count FROM est.grid_counts(:area, :size, :since, :until, "
            "CAST(:codes AS text[]), :k, :base)"
        ),
        {
            "area": area_code,
            "size": cell_size_m,
            "since": since,
            "until": until,
            "codes": categories,
            "k": k,
            "base": rounding_base,
        },
    ).all()
    return GridCounts(
        cell_size_m,
        np.array([r.ix for r in rows], dtype=np.int64),
        np.array([r.iy for r in rows], dtype=np.int64),
        np.array([r.incident_count for r in rows], dtype=np.int64),
    )
