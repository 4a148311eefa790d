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
- `ids`: the ids of rows that have none, from their content and their ordinal;
- `times`: polisen.se and strptime times, fixed-width parsing by numpy, localising to UTC,
  months and dates as the periods they name, a date and a time of day from two columns;
- `csv_bytes`: a CSV file's bytes, gunzipped and transcoded on a thread ahead, and its header;
- `csv_records`: CSV records cut and checked by numpy, parsed by pandas, in batches;
- `ogr`: GeoPackage and GeoJSON files through pyogrio;
- `polisen_json`: the polisen.se JSON files;
- `rest`: REST bodies, records and FeatureCollections;
- this module: `read_batches`, which sends a file to its reader, and `file_format`, which
  tells what the file is (the mapping's format, else its content, else its suffix).
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from pathlib import Path

from app.core.taxonomy import Taxonomy
from app.ingest.mapping import Format, Mapping
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
    "file_format",
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
    fmt = file_format(path, mapping)
    check_options(mapping, fmt)
    if fmt == "csv":
        yield from read_csv(path, mapping, opts, batch_size)
    elif fmt == "polisen-json":
        yield from read_json_file(path, mapping, opts, batch_size)
    else:
        yield from read_ogr(path, mapping, fmt, opts, batch_size)


_NAMES: dict[Format, str] = {
    "csv": "a CSV file",
    "geojson": "a GeoJSON file",
    "gpkg": "a GeoPackage",
    "polisen-json": "a JSON array",
}


def file_format(path: Path, mapping: Mapping) -> Format:
    """The format of a file: the mapping's, else what its content is (GeoJSON, GeoPackage, a
    JSON array), else its suffix. A mapping's format that the content contradicts is refused
    rather than read as something it is not (a GeoJSON read as CSV has JSON for columns)."""
    sniffed = sniff_format(path)
    if mapping.format is None:
        return sniffed or mapping.format_for(path)
    if sniffed is not None and sniffed != mapping.format:
        raise ReadError(
            f"{path.name} is {_NAMES[sniffed]}, but the mapping {mapping.origin} reads "
            f"{_NAMES[mapping.format]} (format: {mapping.format}): use a mapping for "
            f"{_NAMES[sniffed]}, or leave format out of it so that the file decides"
        )
    return mapping.format


def sniff_format(path: Path) -> Format | None:
    """What the first bytes of a file (gunzipped) say it is; None for text such as CSV."""
    with path.open("rb") as f:
        head = f.read(4096)
    if head[:2] == b"\x1f\x8b":
        try:
            with gzip.open(path, "rb") as g:
                head = g.read(4096)
        except (OSError, EOFError, zlib.error):
            return None  # the CSV reader says what is wrong with the gzip
    if head.startswith(b"SQLite format 3\x00"):
        return "gpkg"
    text = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    if text[:1] == b"{" and text[1:].lstrip()[:1] in (b'"', b"}"):
        return "geojson"
    if text[:1] == b"[" and text[1:].lstrip()[:1] in (b"{", b"]"):
        return "polisen-json"
    return None
