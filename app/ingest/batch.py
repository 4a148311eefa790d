"""The columnar form every input takes before validation: one array per field, one row per record.

Readers (CSV, GeoJSON, GeoPackage, the REST body) produce RawBatch objects; validation turns a
batch into storable records and rejections. Keeping the columns as numpy arrays lets the bulk
path validate and transform a whole batch at once instead of record by record.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

ObjectArray = npt.NDArray[np.object_]


@dataclass(frozen=True)
class RowError:
    """Why one input row cannot be stored: its row number, the field, the reason and the value
    at fault as written (None when there is none to show, such as a missing field)."""

    row: int
    field: str
    reason: str
    value: str | None = None


@dataclass
class RawBatch:
    """Records as read, before validation.

    - `row`: the row number in the source as a person counts it (the first data row of a CSV
      is 1; the first feature of a GeoJSON is 1; the first record of a REST body is 1).
    - `external_id`, `category`, `location_precision`, `description`: str or None per row;
      `category` is already mapped to a taxonomy code when the mapping has a value map.
    - `occurred_from`, `occurred_to`: datetime64[us] in UTC, NaT when absent.
    - `x`, `y`: float64 in `crs` (for EPSG:4326 x is the longitude), NaN when absent.
    - `errors`: what the reader could not parse, by row and field (those rows are rejected).
    - `source`: per row, when the input names it (REST bodies); None means the import's source.
    - `period_end`: True where `occurred_to` is the end of a period the input wrote as a month
      or a date (validation ends a period that is still running at the time of the import).
    """

    row: npt.NDArray[np.int64]
    external_id: ObjectArray
    category: ObjectArray
    occurred_from: npt.NDArray[np.datetime64]
    occurred_to: npt.NDArray[np.datetime64]
    x: npt.NDArray[np.float64]
    y: npt.NDArray[np.float64]
    crs: str
    location_precision: ObjectArray
    description: ObjectArray
    errors: list[RowError] = field(default_factory=list)
    source: ObjectArray | None = None
    period_end: npt.NDArray[np.bool_] | None = None

    def __len__(self) -> int:
        return int(self.row.size)
