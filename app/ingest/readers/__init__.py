"""Readers: files (CSV, GeoJSON, GeoPackage, polisen.se JSON) and REST bodies into RawBatch objects.

Every reader turns its input into columns and hands them to one conversion
(`columns.convert`) that parses ids, times, categories, locations, precision and descriptions
a column at a time with pandas and numpy. What cannot be parsed becomes a RowError with the
row number a person sees; what makes the whole input unreadable (a missing column, a GeoJSON
`crs` member) is a ReadError.

Which module does what:
- `plan`: the caller's options, the plan (a mapping resolved against one input's columns),
  ReadError, ReadBatch and ReadTotals, and the small helpers the other modules share;
- `columns`: columns to a RawBatch (ids, categories and rules, locations, precision, text);
- `times`: polisen.se and strptime times, fixed-width parsing by numpy, localising to UTC;
- `csv_bytes`: a CSV file's bytes, gunzipped and transcoded on a thread ahead, and its header;
- `csv_records`: CSV records cut and checked by numpy, parsed by pandas, in batches;
- `ogr`: GeoPackage and GeoJSON files through pyogrio;
- `polisen_json`: the polisen.se JSON files;
- `rest`: REST bodies, records and FeatureCollections;
- this module: `read_batches`, which sends a file to its reader.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from app.core.taxonomy import Taxonomy
from app.ingest.mapping import Mapping
from app.ingest.readers.csv_records import read_csv
from app.ingest.readers.ogr import read_ogr
from app.ingest.readers.plan import (
    DEFAULT_BATCH_SIZE,
    NO_ZONE_FILE,
    Options,
    ReadBatch,
    ReadError,
    ReadTotals,
    check_options,
    crs_name,
    shipped_taxonomy,
    zone_name,
)
from app.ingest.readers.polisen_json import read_json_file
from app.ingest.readers.rest import RECORD_FIELDS, read_feature_collection, read_records
from app.ingest.readers.times import POLISEN_TIME_FORMAT, parse_polisen_time

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "POLISEN_TIME_FORMAT",
    "RECORD_FIELDS",
    "ReadBatch",
    "ReadError",
    "ReadTotals",
    "parse_polisen_time",
    "read_batches",
    "read_feature_collection",
    "read_records",
]


def read_batches(
    path: Path,
    mapping: Mapping,
    *,
    source_override: str | None = None,
    timezone_override: str | None = None,
    crs_override: str | None = None,
    default_timezone: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    taxonomy: Taxonomy | None = None,
) -> Iterator[ReadBatch]:
    """Read a file batch by batch (at most batch_size rows each) with bounded memory.

    Times without an offset are read in `timezone_override`, else the mapping's zone, else
    `default_timezone` (the deployment's EST_TIMEZONE); with none of them they are rejected.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    path = Path(path)
    if not path.is_file():
        raise ReadError(f"no file {str(path)!r}")
    opts = Options(
        source=source_override or mapping.source,
        timezone=None if timezone_override is None else zone_name(timezone_override),
        crs=None if crs_override is None else crs_name(crs_override),
        taxonomy=taxonomy or shipped_taxonomy(),
        no_zone=NO_ZONE_FILE,
        default_timezone=None if default_timezone is None else zone_name(default_timezone),
    )
    fmt = mapping.format_for(path)
    check_options(mapping, fmt)
    if fmt == "csv":
        yield from read_csv(path, mapping, opts, batch_size)
    elif fmt == "polisen-json":
        yield from read_json_file(path, mapping, opts, batch_size)
    else:
        yield from read_ogr(path, mapping, fmt, opts, batch_size)
