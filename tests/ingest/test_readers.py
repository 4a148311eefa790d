"""Readers: every preset on real rows, CSV edge cases, times, categories, locations, REST bodies."""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
import tracemalloc
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import geopandas as gpd
import numpy as np
import pytest
import shapely

from app.ingest.batch import RowError
from app.ingest.mapping import Mapping, MappingError, load_mapping, parse_mapping
from app.ingest.readers import (
    ReadError,
    ReadTotals,
    csv_bytes,
    parse_polisen_time,
    read_batches,
    read_feature_collection,
    read_records,
)

FILES = Path(__file__).parent / "files"
CHICAGO_SAMPLE = FILES / "chicago_2017_sample.csv"  # 20 rows of the Chicago 2017 file
POLISEN_SAMPLE = FILES / "polisen_events_sample.csv"  # 20 rows of the polisen.se archive
EST_HEADER = "external_id;category;occurred_from;occurred_to;lon;lat;location_precision;description"
STOCKHOLM = "Europe/Stockholm"


@dataclass
class Read:
    """Every batch of a file put together, for comparing with what the file says."""

    row: list[int]
    external_id: list[Any]
    category: list[Any]
    occurred_from: list[Any]
    occurred_to: list[Any]
    x: list[float | None]
    y: list[float | None]
    crs: set[str]
    precision: list[Any]
    description: list[Any]
    errors: list[RowError]
    not_incident: Counter[str]
    warnings: list[str]
    batches: int

    def by_id(self, external_id: str) -> dict[str, Any]:
        """One row's fields by its id."""
        i = self.external_id.index(external_id)
        return {
            "row": self.row[i],
            "category": self.category[i],
            "occurred_from": self.occurred_from[i],
            "occurred_to": self.occurred_to[i],
            "x": self.x[i],
            "y": self.y[i],
            "precision": self.precision[i],
            "description": self.description[i],
        }

    def error_rows(self) -> dict[int, tuple[str, str]]:
        """The first error of each row: (field, reason)."""
        out: dict[int, tuple[str, str]] = {}
        for e in self.errors:
            out.setdefault(e.row, (e.field, e.reason))
        return out


def read_all(path: Path, mapping: Mapping, **kwargs: Any) -> Read:
    totals = ReadTotals()
    parts = list(read_batches(path, mapping, **kwargs))
    for part in parts:
        totals.add(part)
    batches = [p.batch for p in parts]

    def column(name: str) -> list[Any]:
        return [v for b in batches for v in getattr(b, name).tolist()]

    return Read(
        row=column("row"),
        external_id=column("external_id"),
        category=column("category"),
        occurred_from=[_utc(t) for b in batches for t in b.occurred_from],
        occurred_to=[_utc(t) for b in batches for t in b.occurred_to],
        x=[None if math.isnan(v) else v for v in column("x")],  # NaN != NaN in comparisons
        y=[None if math.isnan(v) else v for v in column("y")],
        crs={b.crs for b in batches},
        precision=column("location_precision"),
        description=column("description"),
        errors=[e for b in batches for e in b.errors],
        not_incident=totals.not_incident,
        warnings=totals.warnings,
        batches=len(batches),
    )


def _utc(value: np.datetime64) -> datetime | None:
    if np.isnat(value):
        return None
    micros = int(value.astype("datetime64[us]").astype(np.int64))
    return datetime.fromtimestamp(micros / 1e6, UTC)


def est(tmp_path: Path, *lines: str, name: str = "est.csv", header: str = EST_HEADER) -> Path:
    path = tmp_path / name
    path.write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
    return path


def row_line(external_id: str, when: str = "2026-03-01T10:00:00+01:00", **kw: str) -> str:
    fields = {
        "category": "skadegorelse.klotter",
        "occurred_to": "",
        "lon": "13.3035",
        "lat": "55.8392",
        "precision": "",
        "description": "Klotter",
        **kw,
    }
    return ";".join(
        [
            external_id,
            fields["category"],
            when,
            fields["occurred_to"],
            fields["lon"],
            fields["lat"],
            fields["precision"],
            fields["description"],
        ]
    )


def simple_mapping(**changes: Any) -> Mapping:
    raw: dict[str, Any] = {
        "format": "csv",
        "id": "id",
        "time": {"column": "t", "timezone": STOCKHOLM},
        "category": "c",
        "location": {"lon": "lon", "lat": "lat"},
    }
    return parse_mapping({**raw, **changes})


def simple_csv(tmp_path: Path, rows: list[tuple[str, ...]], header: str = "id,t,c,lon,lat") -> Path:
    path = tmp_path / "simple.csv"
    with path.open("w", encoding="utf-8", newline="") as f:
        f.write(header + "\n")
        csv.writer(f, lineterminator="\n").writerows(rows)
    return path


# --- the presets on real rows ----------------------------------------------------------------

CHICAGO_CATEGORIES = {
    "OFFENSE INVOLVING CHILDREN": "vald.nara_relation",
    "DECEPTIVE PRACTICE": "bedrageri",
    "CRIM SEXUAL ASSAULT": "vald.sexualbrott.valdtakt",
    "THEFT": "tillgrepp",
    "ROBBERY": "tillgrepp.ran",
    "OTHER OFFENSE": "ovrigt",
    "BATTERY": "vald.misshandel",
    "CRIMINAL DAMAGE": "skadegorelse",
}


def chicago_rows() -> list[dict[str, str]]:
    with CHICAGO_SAMPLE.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def test_chicago_rows_read_with_local_times_categories_and_block_level_points(
    tmp_path: Path,
) -> None:
    path = tmp_path / "chicago.csv.gz"
    path.write_bytes(gzip.compress(CHICAGO_SAMPLE.read_bytes()))
    read = read_all(path, load_mapping("chicago"))
    chicago = ZoneInfo("America/Chicago")
    expected_ids = []
    for number, raw in enumerate(chicago_rows(), start=1):
        if raw["Primary Type"] == "NON-CRIMINAL":
            continue
        expected_ids.append(raw["ID"])
        got = read.by_id(raw["ID"])
        assert got["row"] == number
        category = CHICAGO_CATEGORIES[raw["Primary Type"]]
        if raw["Domestic"] == "true" and category in ("vald.misshandel", "vald.hot"):
            category = "vald.nara_relation"  # battery between partners or family: sensitive
        assert got["category"] == category
        assert got["precision"] == "street"
        assert got["description"] == (
            f"{raw['Primary Type']}: {raw['Description']} ({raw['Location Description']})"
        )
        if raw["Latitude"]:
            assert (got["x"], got["y"]) == (float(raw["Longitude"]), float(raw["Latitude"]))
        else:
            assert got["x"] is None and got["y"] is None
        if raw["ID"] != "10875571":  # 02:04 on 12 March 2017 does not exist in Chicago
            local = datetime.strptime(raw["Date"], "%m/%d/%Y %I:%M:%S %p")
            assert got["occurred_from"] == local.replace(tzinfo=chicago).astimezone(UTC)
        assert got["occurred_to"] is None
    assert read.external_id == expected_ids
    assert read.crs == {"EPSG:4326"}
    assert read.not_incident == Counter({"NON-CRIMINAL": 1})
    assert read.by_id("10851339")["category"] == "vald.nara_relation"  # DOMESTIC BATTERY SIMPLE
    assert read.by_id("10816721")["category"] == "ovrigt"  # a domestic telephone threat stays
    quoted = read.by_id("10867779")["description"]
    assert quoted == "DECEPTIVE PRACTICE: COUNTERFEIT CHECK (SCHOOL, PUBLIC, BUILDING)"


def test_chicago_reads_the_repeated_hour_as_daylight_time_and_rejects_the_skipped_one() -> None:
    read = read_all(CHICAGO_SAMPLE, load_mapping("chicago"))
    # 01:00 on 5 November 2017 happened twice in Chicago: first at UTC-5 (daylight time).
    assert read.by_id("11140460")["occurred_from"] == datetime(2017, 11, 5, 6, 0, tzinfo=UTC)
    assert read.error_rows() == {
        19: (
            "occurred_from",
            "'03/12/2017 02:04:00 AM' does not exist in America/Chicago (DST change)",
        )
    }
    assert read.warnings == [
        "1 time in the repeated hour when summer time ends in America/Chicago was read as "
        "summer time (the first of the two)"
    ]


POLISEN_CATEGORIES = {
    "Brand": "brand",
    "Stöld": "tillgrepp",
    "Misshandel": "vald.misshandel",
    "Trafikolycka": "trafik.olycka",
    "Rattfylleri": "trafik.rattfylleri",
    "Skadegörelse": "skadegorelse",
    "Inbrott": "tillgrepp.inbrott",
    "Lagen om hundar och katter ": "ovrigt",
}
POLISEN_NOT_INCIDENTS = Counter(
    {"Trafikkontroll": 1, "Övrigt": 1, "Sammanfattning natt": 1, "Sammanfattning kväll och natt": 1}
)


def polisen_rows() -> list[dict[str, str]]:
    with POLISEN_SAMPLE.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def test_polisen_csv_rows_read_with_unpadded_hours_at_area_centroids() -> None:
    read = read_all(POLISEN_SAMPLE, load_mapping("polisen-csv"))
    incidents = [r for r in polisen_rows() if r["type"] in POLISEN_CATEGORIES]
    assert read.external_id == [r["id"] for r in incidents]
    for raw in incidents:
        got = read.by_id(raw["id"])
        assert got["category"] == POLISEN_CATEGORIES[raw["type"]]
        day, clock, offset = raw["datetime"].split()
        padded = f"{day}T{int(clock.split(':')[0]):02d}{clock[clock.index(':') :]}{offset}"
        assert got["occurred_from"] == datetime.fromisoformat(padded).astimezone(UTC)
        assert (got["x"], got["y"]) == (float(raw["lon"]), float(raw["lat"]))
        assert got["precision"] == "area_centroid"
        assert got["description"] == f"{raw['summary']} ({raw['name']})"
    assert read.errors == []
    assert read.by_id("650277")["occurred_from"] == datetime(2026, 8, 22, 7, 48, 12, tzinfo=UTC)


def test_polisen_types_mapped_to_null_are_counted_as_not_incident_not_rejected() -> None:
    read = read_all(POLISEN_SAMPLE, load_mapping("polisen-csv"))
    assert read.not_incident == POLISEN_NOT_INCIDENTS
    assert len(read.row) + sum(read.not_incident.values()) == 20


def test_polisen_json_gives_the_same_incidents_as_the_polisen_csv(tmp_path: Path) -> None:
    api = [
        {
            "id": int(r["id"]),
            "datetime": r["datetime"],
            "name": r["name"],
            "summary": r["summary"],
            "url": r["url"],
            "type": r["type"],
            "location": {"name": r["location_name"], "gps": f"{r['lat']},{r['lon']}"},
        }
        for r in polisen_rows()
    ]
    path = tmp_path / "events.json"
    path.write_text(json.dumps(api, ensure_ascii=False), encoding="utf-8")
    from_json = read_all(path, load_mapping("polisen-json"), batch_size=6)
    from_csv = read_all(POLISEN_SAMPLE, load_mapping("polisen-csv"))
    for name in ("row", "external_id", "category", "occurred_from", "x", "y", "description"):
        assert getattr(from_json, name) == getattr(from_csv, name), name
    assert from_json.not_incident == from_csv.not_incident
    assert from_json.batches == 4


def test_parse_polisen_time_reads_unpadded_hours_with_their_offset() -> None:
    assert parse_polisen_time("2023-03-25 9:43:15 +01:00") == datetime(
        2023, 3, 25, 8, 43, 15, tzinfo=UTC
    )


def test_the_est_preset_reads_semicolons_with_a_bom_and_crlf(tmp_path: Path) -> None:
    lines = [
        EST_HEADER,
        "k-1;skadegorelse.klotter;2026-11-20 22:15;2026-11-20T23:00:00+01:00;13.3035;55.8392;"
        "address;Klotter på busskuren",
        "k-2;tillgrepp.cykelstold;2026-11-21T08:00:00Z;;13.30;55.84;;",
    ]
    path = tmp_path / "kommun.csv"
    path.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(lines).encode("utf-8") + b"\r\n")
    read = read_all(path, load_mapping("est"))
    assert read.external_id == ["k-1", "k-2"]
    first, second = read.by_id("k-1"), read.by_id("k-2")
    assert first["occurred_from"] == datetime(2026, 11, 20, 21, 15, tzinfo=UTC)  # CET, UTC+1
    assert first["occurred_to"] == datetime(2026, 11, 20, 22, 0, tzinfo=UTC)
    assert (first["x"], first["y"], first["precision"]) == (13.3035, 55.8392, "address")
    assert first["description"] == "Klotter på busskuren"
    assert second["precision"] is None and second["description"] is None
    assert read.crs == {"EPSG:4326"} and read.errors == []


def test_the_est_preset_reads_commas_the_same_way(tmp_path: Path) -> None:
    semicolons = est(tmp_path, row_line("a"), row_line("b", description="två ord"))
    commas = tmp_path / "commas.csv"
    commas.write_text(semicolons.read_text(encoding="utf-8").replace(";", ","), encoding="utf-8")
    assert read_all(commas, load_mapping("est")) == read_all(semicolons, load_mapping("est"))


def test_the_est_preset_reads_sweref_x_y_when_there_is_no_lon_lat(tmp_path: Path) -> None:
    header = EST_HEADER.replace("lon;lat", "x;y")
    path = est(tmp_path, row_line("a", lon="393760", lat="6189485"), header=header)
    read = read_all(path, load_mapping("est"))
    assert read.crs == {"EPSG:3006"} and (read.x, read.y) == ([393760.0], [6189485.0])
    other = read_all(path, load_mapping("est"), crs_override="EPSG:3008")
    assert other.crs == {"EPSG:3008"}


def test_a_gzipped_csv_reads_like_the_plain_one_and_reports_bytes(tmp_path: Path) -> None:
    plain = est(tmp_path, *(row_line(f"r{i}") for i in range(30)))
    packed = tmp_path / "est.csv.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    assert read_all(packed, load_mapping("est")) == read_all(plain, load_mapping("est"))
    progress = [
        (b.rows_read, b.bytes_read, b.bytes_total)
        for b in read_batches(packed, load_mapping("est"), batch_size=10)
    ]
    assert [p[0] for p in progress] == [10, 20, 30]
    assert progress[-1][1] == progress[-1][2] == packed.stat().st_size


def test_a_gzip_of_nothing_but_newlines_reads_in_bounded_memory(tmp_path: Path) -> None:
    """48 MiB of empty lines: counted, not held. Memory stays a few blocks whatever the size."""
    path = tmp_path / "blank.csv.gz"
    lines = 48 << 20
    with gzip.open(path, "wb", compresslevel=1) as f:
        f.write(EST_HEADER.encode() + b"\n" + b"\n" * lines + row_line("last").encode() + b"\n")
    tracemalloc.start()
    try:
        batches = list(read_batches(path, load_mapping("est")))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sum(b.blank_rows for b in batches) == lines
    assert [r for b in batches for r in b.batch.row.tolist()] == [lines + 1]
    blocks = csv_bytes.BLOCK_BYTES
    assert peak < 10 * blocks, f"{peak / 2**20:.0f} MiB traced for a file of empty lines"


# --- CSV structure ---------------------------------------------------------------------------


def test_a_quoted_line_break_is_one_row_and_later_rows_keep_their_numbers(tmp_path: Path) -> None:
    path = est(
        tmp_path,
        row_line("a"),
        row_line("b", description='"Klotter\npå två\nrader"'),
        row_line("c", category=""),
        row_line("d"),
    )
    read = read_all(path, load_mapping("est"))
    assert read.external_id == ["a", "b", "c", "d"]
    assert read.row == [1, 2, 3, 4]
    assert read.by_id("b")["description"] == "Klotter\npå två\nrader"


def test_a_row_with_too_many_or_too_few_fields_is_an_error_and_the_rest_is_read(
    tmp_path: Path,
) -> None:
    path = est(
        tmp_path,
        row_line("a"),
        row_line("b", description="Klotter; på två ställen"),  # an unquoted delimiter
        row_line("c"),
        "d;skadegorelse.klotter;2026-03-01T10:00:00+01:00",  # cut short
        row_line("e"),
    )
    read = read_all(path, load_mapping("est"))
    assert read.row == [1, 2, 3, 4, 5]
    assert read.external_id == ["a", None, "c", None, "e"]
    assert read.error_rows() == {
        2: (
            "record",
            "has 9 fields where the header has 8 (a delimiter inside a value that is not in "
            "quotes?)",
        ),
        4: (
            "record",
            "has 3 fields where the header has 8 (a line break inside a value that is not in "
            "quotes, or a cut line?)",
        ),
    }


def test_an_unclosed_quote_at_the_end_is_an_error_on_its_row(tmp_path: Path) -> None:
    path = est(tmp_path, row_line("a"), row_line("b", description='"Klotter'), row_line("c"))
    read = read_all(path, load_mapping("est"))
    assert read.external_id == ["a", None]
    assert read.error_rows()[2][1].startswith("a quoted field is not closed")


def test_quotes_inside_an_unquoted_value_are_read_as_text(tmp_path: Path) -> None:
    path = est(
        tmp_path,
        row_line("a", description='en 5" skärm'),
        row_line("b", description='"citat ""så"" sa hon"'),
        row_line("c", description='sa "hej"'),
    )
    read = read_all(path, load_mapping("est"))
    assert read.description == ['en 5" skärm', 'citat "så" sa hon', 'sa "hej"']
    assert read.errors == []


def test_empty_lines_and_rows_of_only_delimiters_are_skipped_and_counted(tmp_path: Path) -> None:
    path = est(tmp_path, row_line("a"), "", ";;;;;;;", row_line("d"))
    read = read_all(path, load_mapping("est"))
    assert (read.external_id, read.row) == (["a", "d"], [1, 4])
    assert read.warnings == ["2 empty rows were skipped"]


def test_a_nul_byte_rejects_its_row(tmp_path: Path) -> None:
    path = est(tmp_path, row_line("a", description="x\x00y"), row_line("b"))
    read = read_all(path, load_mapping("est"))
    assert read.error_rows() == {
        1: ("record", "contains a NUL byte: is the file UTF-16? save it as UTF-8")
    }
    assert read.external_id == [None, "b"]


def test_a_cp1252_file_reads_with_its_encoding_and_is_refused_without(tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    text = f"{EST_HEADER}\n{row_line('ä-1', description='Skadegörelse på förskolan')}\n"
    path.write_bytes(text.encode("cp1252"))
    mapping = load_mapping("est").model_copy(update={"encoding": "cp1252"})
    read = read_all(path, mapping)
    assert (read.external_id, read.description) == (["ä-1"], ["Skadegörelse på förskolan"])
    with pytest.raises(ReadError, match=r"not valid UTF-8.*set encoding"):
        read_all(path, load_mapping("est"))


def test_a_missing_column_is_named_with_a_suggestion(tmp_path: Path) -> None:
    path = est(tmp_path, row_line("a"), header=EST_HEADER.replace("category", "kategory"))
    with pytest.raises(ReadError, match="no column 'category'; did you mean 'kategory'"):
        read_all(path, load_mapping("est"))


def test_no_location_columns_is_refused_naming_the_alternatives(tmp_path: Path) -> None:
    header = EST_HEADER.replace("lon;lat", "e;n")
    path = est(tmp_path, row_line("a"), header=header)
    with pytest.raises(ReadError, match="no columns 'lon' and 'lat' or columns 'x' and 'y'"):
        read_all(path, load_mapping("est"))


def twenty_rows() -> list[str]:
    """Twenty records of every kind: good, malformed, blank, unmapped, not an incident."""
    lines = []
    for i in range(1, 21):
        if i == 4:
            lines.append("")
        elif i == 7:
            lines.append("r7;ovrigt;2026-03-01T10:00:00Z")
        elif i == 8:
            lines.append(row_line("r8", description='"två\nrader"'))
        elif i == 11:
            lines.append(row_line("r11", category="NOPE"))
        elif i == 14:
            lines.append(row_line("r14", category="SKIP"))
        elif i == 17:
            lines.append(row_line("r17", "2026-10-25 02:30"))
        else:
            lines.append(row_line(f"r{i}", lon=f"13.{i:02d}"))
    return lines


def test_batch_size_7_on_20_rows_gives_the_same_result_as_one_batch(tmp_path: Path) -> None:
    path = est(tmp_path, *twenty_rows())
    mapping = parse_mapping(
        {
            "format": "csv",
            "id": "external_id",
            "time": {"column": "occurred_from", "timezone": STOCKHOLM},
            "category": {
                "column": "category",
                "map": {"skadegorelse.klotter": "skadegorelse.klotter", "SKIP": None},
            },
            "location": {"lon": "lon", "lat": "lat"},
            "description": "description",
        }
    )
    whole = read_all(path, mapping)
    sevens = read_all(path, mapping, batch_size=7)
    assert (whole.batches, sevens.batches) == (1, 3)
    assert sevens.__dict__ == {**whole.__dict__, "batches": 3}
    assert whole.row == [1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12, 13, 15, 16, 17, 18, 19, 20]
    assert whole.not_incident == Counter({"SKIP": 1})
    assert [e.row for e in whole.errors] == [7, 11]
    assert whole.warnings == [
        "1 time in the repeated hour when summer time ends in Europe/Stockholm was read as "
        "summer time (the first of the two)",
        "1 empty row was skipped",
    ]


def test_text_in_a_number_column_is_a_row_error(tmp_path: Path) -> None:
    path = est(
        tmp_path,
        row_line("a", lon="abc"),
        row_line("b", lon="inf"),
        row_line("c", lat="55,84"),
        row_line("d", lon="", lat=""),
    )
    read = read_all(path, load_mapping("est"))
    assert read.error_rows() == {
        1: ("lon", "not a number: 'abc'"),
        2: ("lon", "not a finite number: 'inf'"),
        3: ("lat", "not a number: '55,84' (a decimal comma? add decimal: ',' to the mapping)"),
    }
    assert read.by_id("d")["x"] is None  # empty is no location, for validation to say


def test_a_decimal_comma_is_read_when_the_mapping_says_so(tmp_path: Path) -> None:
    path = est(tmp_path, row_line("a", lon="13,3035", lat="55,8392"))
    mapping = load_mapping("est").model_copy(update={"decimal": ","})
    read = read_all(path, mapping)
    assert (read.x, read.y, read.errors) == ([13.3035], [55.8392], [])


# --- times -----------------------------------------------------------------------------------


def test_the_repeated_hour_in_october_is_summer_time_in_stockholm_and_counted(
    tmp_path: Path,
) -> None:
    path = est(tmp_path, row_line("a", "2026-10-25 02:30"), row_line("b", "2026-10-25 03:30"))
    read = read_all(path, load_mapping("est"))
    assert read.by_id("a")["occurred_from"] == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # CEST
    assert read.by_id("b")["occurred_from"] == datetime(2026, 10, 25, 2, 30, tzinfo=UTC)  # CET
    assert read.warnings == [
        "1 time in the repeated hour when summer time ends in Europe/Stockholm was read as "
        "summer time (the first of the two)"
    ]


def test_the_skipped_hour_in_march_does_not_exist_in_stockholm(tmp_path: Path) -> None:
    path = est(tmp_path, row_line("a", "2026-03-29 02:30"), row_line("b", "2026-03-29 03:30"))
    read = read_all(path, load_mapping("est"))
    assert read.error_rows() == {
        1: ("occurred_from", "'2026-03-29 02:30' does not exist in Europe/Stockholm (DST change)")
    }
    assert read.by_id("b")["occurred_from"] == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)


def test_a_time_without_offset_needs_a_time_zone_which_the_caller_may_give(
    tmp_path: Path,
) -> None:
    path = simple_csv(tmp_path, [("a", "2026-06-01 12:00", "ovrigt", "13", "55")])
    no_zone = simple_mapping(time="t")
    read = read_all(path, no_zone)
    assert read.error_rows() == {1: ("occurred_from", "no time zone: give --timezone or an offset")}
    given = read_all(path, no_zone, timezone_override="America/Chicago")
    assert given.occurred_from == [datetime(2026, 6, 1, 17, 0, tzinfo=UTC)]
    overridden = read_all(path, simple_mapping(), timezone_override="UTC")
    assert overridden.occurred_from == [datetime(2026, 6, 1, 12, 0, tzinfo=UTC)]


def test_a_time_with_an_offset_keeps_it_whatever_the_time_zone(tmp_path: Path) -> None:
    rows = [
        ("a", "2026-06-01T12:00:00-05:00", "ovrigt", "13", "55"),
        ("b", "2026-06-01T12:00Z", "ovrigt", "13", "55"),
        ("c", "20260601T120000+0200", "ovrigt", "13", "55"),
        ("d", "not a time", "ovrigt", "13", "55"),
    ]
    read = read_all(simple_csv(tmp_path, rows), simple_mapping())
    assert read.occurred_from[:3] == [
        datetime(2026, 6, 1, 17, 0, tzinfo=UTC),
        datetime(2026, 6, 1, 12, 0, tzinfo=UTC),
        datetime(2026, 6, 1, 10, 0, tzinfo=UTC),
    ]
    assert read.error_rows() == {
        4: (
            "occurred_from",
            "'not a time' is not an ISO 8601 time such as 2026-03-01T14:30:00+01:00",
        )
    }


def test_words_and_zone_names_are_not_times(tmp_path: Path) -> None:
    rows = [
        ("a", "now", "ovrigt", "13", "55"),
        ("b", "today", "ovrigt", "13", "55"),
        ("c", "2026-06-01T12:00:00 UTC", "ovrigt", "13", "55"),
        ("d", "2026-06-01T12:00:00", "ovrigt", "13", "55"),
        ("e", "  ", "ovrigt", "13", "55"),
    ]
    read = read_all(simple_csv(tmp_path, rows), simple_mapping())
    assert sorted(read.error_rows()) == [1, 2, 3]
    assert read.occurred_from[3:] == [datetime(2026, 6, 1, 10, 0, tzinfo=UTC), None]


@pytest.mark.parametrize(
    "pattern",
    ["%m/%d/%Y %I:%M:%S %p", "%d.%m.%Y %H:%M", "%Y-%m-%d %H:%M:%S", "%Y%m%d %H%M", "%d/%m/%Y"],
)
def test_strptime_patterns_read_like_python_strptime(tmp_path: Path, pattern: str) -> None:
    rng = np.random.default_rng(7)
    start = datetime(1999, 1, 1)
    good = [
        (start + (datetime(2030, 1, 1) - start) * float(f)).strftime(pattern)
        for f in rng.random(300)
    ]
    odd = ["02/30/2017 10:00:00 AM", "31.04.2026 10:00", "2026-13-01 10:00:00", "x", "1.1.2026 1:5"]
    odd += ["12/31/2017 12:00:00 am", "2024-02-29 23:59:59", "29/02/2023"]
    values = good + odd
    rows = [(f"r{i}", v, "ovrigt", "13", "55") for i, v in enumerate(values)]
    mapping = simple_mapping(time={"column": "t", "format": pattern, "timezone": "UTC"})
    read = read_all(simple_csv(tmp_path, rows), mapping)
    errors = read.error_rows()
    for i, value in enumerate(values):
        try:
            expected = datetime.strptime(value, pattern).replace(tzinfo=UTC)
        except ValueError:
            assert errors[i + 1] == (
                "occurred_from",
                f"{value!r} does not match the time format {pattern!r}",
            )
            continue
        assert read.occurred_from[i] == expected, value


# --- categories ------------------------------------------------------------------------------


def category_rows(tmp_path: Path) -> Path:
    rows = [
        ("a", "2026-06-01T12:00Z", "Klotter", "13", "55"),
        ("b", "2026-06-01T12:00Z", " Stöld ", "13", "55"),
        ("c", "2026-06-01T12:00Z", "Fortkörning", "13", "55"),
        ("d", "2026-06-01T12:00Z", "Info", "13", "55"),
        ("e", "2026-06-01T12:00Z", "", "13", "55"),
    ]
    return simple_csv(tmp_path, rows)


def test_a_value_map_maps_values_and_names_the_values_it_lacks(tmp_path: Path) -> None:
    category = {
        "column": "c",
        "map": {"Klotter": "skadegorelse.klotter", "Stöld": "tillgrepp", "Info": None},
    }
    read = read_all(category_rows(tmp_path), simple_mapping(category=category))
    assert read.category == ["skadegorelse.klotter", "tillgrepp", None, None]
    assert read.external_id == ["a", "b", "c", "e"]  # d (Info) is not an incident
    assert read.error_rows() == {
        3: (
            "category",
            "'Fortkörning' is not in the category map (add it to map, or give a default)",
        )
    }
    assert read.not_incident == Counter({"Info": 1})


def test_a_default_code_takes_the_values_missing_from_the_map(tmp_path: Path) -> None:
    category = {"column": "c", "map": {"Klotter": "skadegorelse.klotter"}, "default": "ovrigt"}
    read = read_all(category_rows(tmp_path), simple_mapping(category=category))
    assert read.category == ["skadegorelse.klotter", "ovrigt", "ovrigt", "ovrigt", None]
    assert read.errors == []


def test_a_null_default_skips_the_values_missing_from_the_map(tmp_path: Path) -> None:
    category = {"column": "c", "map": {"Klotter": "skadegorelse.klotter"}, "default": None}
    read = read_all(category_rows(tmp_path), simple_mapping(category=category))
    assert read.external_id == ["a", "e"]
    assert read.not_incident == Counter({"Stöld": 1, "Fortkörning": 1, "Info": 1})


def test_without_a_map_the_column_holds_taxonomy_codes(tmp_path: Path) -> None:
    read = read_all(category_rows(tmp_path), simple_mapping())
    assert read.category == ["Klotter", "Stöld", "Fortkörning", "Info", None]


def test_a_map_to_a_code_outside_the_taxonomy_is_refused_naming_the_file_and_the_value(
    tmp_path: Path,
) -> None:
    path = tmp_path / "rapporter.yaml"
    path.write_text(
        "id: id\ntime: {column: t, timezone: Europe/Stockholm}\nlocation: {lon: lon, lat: lat}\n"
        "category:\n  column: c\n  map: {Klotter: skadegorelse.kloter, Info: null}\n",
        encoding="utf-8",
    )
    expected = (
        f"{path}: category.map: 'Klotter' maps to 'skadegorelse.kloter': not a category code of "
        "the taxonomy (data/categories.yaml)"
    )
    with pytest.raises(ValueError) as caught:
        read_all(category_rows(tmp_path), load_mapping(path))
    assert str(caught.value) == expected


def test_an_unknown_polisen_type_is_an_error_naming_it(tmp_path: Path) -> None:
    rows = polisen_rows()[:2]
    rows[1]["type"] = "Ny händelsetyp"
    path = tmp_path / "polisen.csv"
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    read = read_all(path, load_mapping("polisen-csv"))
    assert read.error_rows() == {
        2: (
            "category",
            "'Ny händelsetyp' is not in the taxonomy's polisen mapping (add it to map, or give "
            "a default)",
        )
    }


# --- locations -------------------------------------------------------------------------------


def test_wkt_points_are_read_and_other_geometries_are_row_errors(tmp_path: Path) -> None:
    rows = [
        ("a", "2026-06-01T12:00Z", "ovrigt", "POINT (393760 6189485)"),
        ("b", "2026-06-01T12:00Z", "ovrigt", "LINESTRING (0 0, 1 1)"),
        ("c", "2026-06-01T12:00Z", "ovrigt", "POINT EMPTY"),
        ("d", "2026-06-01T12:00Z", "ovrigt", "PUNKT (1 2)"),
        ("e", "2026-06-01T12:00Z", "ovrigt", ""),
    ]
    path = simple_csv(tmp_path, rows, header="id,t,c,geom")
    read = read_all(path, simple_mapping(location={"wkt": "geom", "crs": "EPSG:3006"}))
    assert (read.x[0], read.y[0], read.crs) == (393760.0, 6189485.0, {"EPSG:3006"})
    assert read.x[1:] == [None] * 4
    assert read.error_rows() == {
        2: ("geometry", "is a LineString, not a Point"),
        4: ("geometry", "not WKT: 'PUNKT (1 2)'"),
    }


def test_a_lat_lon_string_is_read_as_lon_lat(tmp_path: Path) -> None:
    rows = [
        ("a", "2026-06-01T12:00Z", "ovrigt", "55.8392,13.3035"),
        ("b", "2026-06-01T12:00Z", "ovrigt", "55.8392"),
        ("c", "2026-06-01T12:00Z", "ovrigt", ""),
    ]
    path = simple_csv(tmp_path, rows, header="id,t,c,gps")
    read = read_all(path, simple_mapping(location={"latlon": "gps"}))
    assert (read.x[0], read.y[0], read.crs) == (13.3035, 55.8392, {"EPSG:4326"})
    assert read.error_rows() == {2: ("location", "not 'lat,lon': '55.8392'")}
    assert read.x[2] is None


def test_x_y_without_a_crs_is_refused_unless_the_caller_gives_one(tmp_path: Path) -> None:
    rows = [("a", "2026-06-01T12:00Z", "ovrigt", "393760", "6189485")]
    path = simple_csv(tmp_path, rows, header="id,t,c,e,n")
    mapping = simple_mapping(location={"x": "e", "y": "n"})
    with pytest.raises(ReadError, match="no CRS for xy coordinates"):
        read_all(path, mapping)
    assert read_all(path, mapping, crs_override="EPSG:3006").crs == {"EPSG:3006"}


# --- GeoJSON and GeoPackage ------------------------------------------------------------------


def feature(fid: str, geometry: dict[str, Any] | None, when: str = "2026-10-25T02:30:00") -> Any:
    return {
        "type": "Feature",
        "properties": {"id": fid, "t": when, "c": "ovrigt"},
        "geometry": geometry,
    }


def geojson_mapping() -> Mapping:
    return parse_mapping(
        {"id": "id", "time": {"column": "t", "timezone": STOCKHOLM}, "category": "c"}
    )


def test_a_geojson_file_is_read_with_its_points_in_lon_lat(tmp_path: Path) -> None:
    features = [
        feature("g1", {"type": "Point", "coordinates": [13.3035, 55.8392]}),
        feature("g2", {"type": "LineString", "coordinates": [[13, 55], [13.1, 55.1]]}),
        feature("g3", None, "2026-06-01T12:00:00+02:00"),
    ]
    path = tmp_path / "incidents.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    read = read_all(path, geojson_mapping(), batch_size=2)
    assert (read.external_id, read.row, read.batches) == (["g1", "g2", "g3"], [1, 2, 3], 2)
    assert (read.x[0], read.y[0], read.crs) == (13.3035, 55.8392, {"EPSG:4326"})
    assert read.occurred_from[0] == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    assert read.occurred_from[2] == datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
    assert read.error_rows() == {2: ("geometry", "is a LineString, not a Point")}
    assert read.x[2] is None


def test_a_geojson_file_with_a_crs_member_is_refused(tmp_path: Path) -> None:
    collection = {
        "type": "FeatureCollection",
        "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::3006"}},
        "features": [feature("g1", {"type": "Point", "coordinates": [393760, 6189485]})],
    }
    path = tmp_path / "sweref.geojson"
    path.write_text(json.dumps(collection))
    with pytest.raises(ReadError, match=r'top-level "crs" member.*always lon/lat.*ogr2ogr'):
        read_all(path, geojson_mapping())


def test_a_geopackage_layer_is_read_in_its_own_crs_across_batches(tmp_path: Path) -> None:
    frame = gpd.GeoDataFrame(
        {
            "id": [f"p{i}" for i in range(5)],
            "t": ["2026-06-01 12:00"] * 5,
            "c": ["ovrigt"] * 5,
            "n": [1, 2, None, 4, 5],
        },
        geometry=[shapely.Point(393760 + i, 6189485) for i in range(4)] + [shapely.box(0, 0, 1, 1)],
        crs="EPSG:3006",
    )
    path = tmp_path / "kommun.gpkg"
    frame.to_file(path, layer="incidents")
    frame.iloc[:1].to_file(path, layer="other")
    mapping = geojson_mapping().model_copy(
        update={"layer": "incidents", "description": "n", "format": "gpkg"}
    )
    read = read_all(path, mapping, batch_size=2)
    assert (read.external_id, read.batches, read.crs) == (
        [f"p{i}" for i in range(5)],
        3,
        {"EPSG:3006"},
    )
    assert read.x[:4] == [393760.0, 393761.0, 393762.0, 393763.0]
    assert read.description == ["1", "2", None, "4", "5"]
    assert read.occurred_from[0] == datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
    assert read.error_rows() == {5: ("geometry", "is a Polygon, not a Point")}
    with pytest.raises(ReadError, match="say which one with layer"):
        read_all(path, geojson_mapping())


# --- REST bodies -----------------------------------------------------------------------------

GOOD_RECORD = {
    "source": "trygghetsappen",
    "external_id": "2026-000123",
    "category": "skadegorelse.klotter",
    "occurred_from": "2026-11-20T22:15:00+01:00",
    "lon": 13.3035,
    "lat": 55.8392,
    "location_precision": "address",
    "description": "Klotter på busskuren",
}


def record_errors(*records: Any) -> dict[int, tuple[str, str]]:
    out: dict[int, tuple[str, str]] = {}
    for e in read_records(list(records)).errors:
        out.setdefault(e.row, (e.field, e.reason))
    return out


def test_a_good_record_reads_every_field() -> None:
    batch = read_records([GOOD_RECORD])
    assert batch.errors == []
    assert (batch.source[0] if batch.source is not None else None) == "trygghetsappen"
    assert (batch.external_id[0], batch.category[0]) == ("2026-000123", "skadegorelse.klotter")
    assert _utc(batch.occurred_from[0]) == datetime(2026, 11, 20, 21, 15, tzinfo=UTC)
    assert np.isnat(batch.occurred_to[0])
    assert (batch.x[0], batch.y[0], batch.crs) == (13.3035, 55.8392, "EPSG:4326")
    assert batch.description[0] == "Klotter på busskuren"


def test_record_times_need_an_offset() -> None:
    assert record_errors({**GOOD_RECORD, "occurred_from": "2026-11-20T22:15:00"}) == {
        1: ("occurred_from", "needs a time zone offset")
    }


def test_record_coordinates_may_be_json_numbers_or_numeric_strings() -> None:
    batch = read_records([{**GOOD_RECORD, "lon": "13.3035", "lat": 55}])
    assert (batch.x[0], batch.y[0], batch.errors) == (13.3035, 55.0, [])


@pytest.mark.parametrize(
    ("lon", "reason"),
    [
        (float("nan"), "not a finite number"),
        (float("inf"), "not a finite number"),
        (10**400, "not a finite number"),
        ("1e400", "not a finite number"),
        ("öster", "not a number: 'öster'"),
        (True, "must be a number"),
        ([13.3], "must be a number"),
    ],
)
def test_record_coordinates_that_are_not_finite_numbers_are_row_errors(
    lon: Any, reason: str
) -> None:
    assert record_errors({**GOOD_RECORD, "lon": lon}) == {1: ("lon", reason)}


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("description", "a\x00b", "contains a NUL character"),
        ("external_id", "\ud800", "contains a lone surrogate (not valid Unicode text)"),
        ("category", 12, "must be a string"),
    ],
)
def test_bad_text_in_a_record_is_a_row_error_naming_the_field(
    field: str, value: Any, reason: str
) -> None:
    assert record_errors({**GOOD_RECORD, field: value}) == {1: (field, reason)}


def test_text_is_passed_through_unchanged_for_validation_to_normalise() -> None:
    batch = read_records([{**GOOD_RECORD, "description": "  Klotter\u0301 "}])
    assert batch.description[0] == "  Klotter\u0301 "


def test_unknown_record_fields_and_non_objects_are_row_errors() -> None:
    assert record_errors({**GOOD_RECORD, "ocurred_from": "x"}, "nope") == {
        1: ("ocurred_from", "unknown field (did you mean 'occurred_from'?)"),
        2: ("record", "is not an object of incident fields"),
    }


def test_x_y_records_need_a_crs_and_a_request_has_one() -> None:
    xy = {k: v for k, v in GOOD_RECORD.items() if k not in ("lon", "lat")}
    sweref = {**xy, "x": 393760, "y": 6189485, "crs": "EPSG:3006"}
    batch = read_records([sweref, {**sweref, "crs": "epsg:3006"}])
    assert (batch.crs, batch.errors) == ("EPSG:3006", [])
    assert record_errors({**sweref, "crs": None}) == {
        1: ("crs", "missing: x and y need a crs such as EPSG:3006")
    }
    assert record_errors(sweref, sweref, GOOD_RECORD)[3] == (
        "crs",
        "differs from the other records (EPSG:3006): one CRS per request",
    )
    assert record_errors({**GOOD_RECORD, "x": 1.0})[1][0] == "location"


def test_a_feature_collection_reads_properties_and_its_point() -> None:
    properties = {k: v for k, v in GOOD_RECORD.items() if k not in ("lon", "lat")}
    collection = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": properties,
                "geometry": {"type": "Point", "coordinates": [13.3035, 55.8392]},
            },
            {
                "type": "Feature",
                "properties": properties,
                "geometry": {"type": "Polygon", "coordinates": [[[13, 55], [13, 56], [14, 55]]]},
            },
            {"type": "Nope"},
        ],
    }
    batch = read_feature_collection(collection)
    assert (batch.x[0], batch.y[0], batch.crs) == (13.3035, 55.8392, "EPSG:4326")
    assert [(e.row, e.field, e.reason) for e in batch.errors] == [
        (2, "geometry", "is a Polygon, not a Point"),
        (3, "feature", "is not a GeoJSON Feature"),
    ]


def test_a_feature_collection_with_a_crs_member_is_refused() -> None:
    with pytest.raises(ReadError, match='"crs" member: RFC 7946 removed it'):
        read_feature_collection({"type": "FeatureCollection", "crs": {}, "features": []})


def test_records_may_be_read_with_a_mapping_of_their_own_names() -> None:
    mapping = parse_mapping(
        {
            "source": "larmcentralen",
            "id": "arende",
            "time": {"column": "tid", "timezone": STOCKHOLM},
            "category": {"column": "typ", "map": {"Klotter": "skadegorelse.klotter"}},
            "location": {"latlon": "position"},
        }
    )
    batch = read_records(
        [{"arende": 17, "tid": "2026-06-01 12:00", "typ": "Klotter", "position": "55.84,13.30"}],
        mapping,
    )
    assert (batch.external_id[0], batch.category[0], batch.x[0]) == (
        "17",
        "skadegorelse.klotter",
        13.30,
    )
    assert _utc(batch.occurred_from[0]) == datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
    assert batch.source is not None and batch.source[0] == "larmcentralen"


@pytest.mark.parametrize("block_bytes", [61, 1 << 20])
@pytest.mark.parametrize("seed", range(6))
def test_rows_cut_across_blocks_match_pythons_csv_module(
    tmp_path: Path, seed: int, block_bytes: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Random values with quotes, delimiters and line breaks, read a few bytes at a time."""
    monkeypatch.setattr(csv_bytes, "BLOCK_BYTES", block_bytes)
    rng = np.random.default_rng(seed)
    alphabet = ["a", "b", "å", " ", ";", ",", '"', "\n", "\r\n", "x"]
    out = io.StringIO()
    out.write(EST_HEADER + "\n")
    writer = csv.writer(out, delimiter=";", lineterminator="\n")
    for i in range(60):
        roll = rng.random()
        if roll < 0.08:
            out.write(f"m{i};ovrigt;2026-03-01T10:00Z;;13;55;;a;b\n")  # a delimiter too many
        elif roll < 0.12:
            out.write(f's{i};ovrigt;2026-03-01T10:00Z;;13;55;;en 5" skärm\n')  # a stray quote
        elif roll < 0.15:
            out.write("\n")
        else:
            text = "".join(rng.choice(alphabet, size=int(rng.integers(0, 12))))
            writer.writerow([f"r{i}", "ovrigt", "2026-03-01T10:00Z", "", "13", "55", "", text])
    content = out.getvalue()
    path = tmp_path / "random.csv"
    path.write_text(content, encoding="utf-8", newline="")

    expected_rows, expected_text, expected_errors = [], [], []
    for number, record in enumerate(csv.reader(io.StringIO(content, newline=""), delimiter=";")):
        if number == 0 or not any(record):
            continue
        if len(record) != 8:
            expected_errors.append(number)
        else:
            expected_rows.append(number)
            expected_text.append(record[7] or None)
    read = read_all(path, load_mapping("est"), batch_size=7)
    assert [e.row for e in read.errors] == expected_errors
    good = [i for i, r in enumerate(read.row) if r not in expected_errors]
    assert [read.row[i] for i in good] == expected_rows
    assert [read.description[i] for i in good] == expected_text


def test_category_rules_on_a_second_column_apply_in_order_to_the_codes_they_name(
    tmp_path: Path,
) -> None:
    path = tmp_path / "flags.csv"
    path.write_text(
        "id;typ;flagga;t;x;y\n"
        "1;Misshandel;ja;2026-10-01T12:00:00+02:00;393760;6189485\n"
        "2;Grov misshandel; JA ;2026-10-01T12:00:00+02:00;393760;6189485\n"
        "3;Misshandel;nej;2026-10-01T12:00:00+02:00;393760;6189485\n"
        "4;Stöld;ja;2026-10-01T12:00:00+02:00;393760;6189485\n"
        "5;Hot;ja;2026-10-01T12:00:00+02:00;393760;6189485\n"
        "6;Upphittat;ja;2026-10-01T12:00:00+02:00;393760;6189485\n"
        "7;Stöld;skola;2026-10-01T12:00:00+02:00;393760;6189485\n",
        encoding="utf-8",
    )
    mapping = parse_mapping(
        {
            "id": "id",
            "time": "t",
            "category": {
                "column": "typ",
                "map": {
                    "Misshandel": "vald.misshandel",
                    "Grov misshandel": "vald.misshandel.grov",
                    "Hot": "vald.hot",
                    "Stöld": "tillgrepp",
                    "Upphittat": None,
                },
                "when": [
                    {
                        "column": "flagga",
                        "is": "ja",
                        "for": "vald.misshandel",
                        "category": "vald.nara_relation",
                    },
                    {"column": "flagga", "is": ["ja", "skola"], "category": "ovrigt"},
                ],
            },
            "location": {"x": "x", "y": "y", "crs": "EPSG:3006"},
        }
    )
    read = read_all(path, mapping)
    assert dict(zip(read.external_id, read.category, strict=True)) == {
        "1": "vald.nara_relation",
        "2": "vald.nara_relation",  # below vald.misshandel; the flag's spaces and case ignored
        "3": "vald.misshandel",
        "4": "ovrigt",  # the first rule names other codes: the second applies
        "5": "ovrigt",
        "7": "ovrigt",
    }
    assert read.not_incident == Counter({"Upphittat": 1})  # not an incident, whatever its flag


def test_a_category_rule_naming_an_unknown_code_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "one.csv"
    path.write_text("id;c;d;t;x;y\n1;vald;ja;2026-10-01T12:00:00+02:00;393760;6189485\n")
    rule = {"column": "d", "is": "ja", "for": "vald.nope", "category": "vald.nara_relation"}
    mapping = parse_mapping(
        {
            "id": "id",
            "time": "t",
            "category": {"column": "c", "when": [rule]},
            "location": {"x": "x", "y": "y", "crs": "EPSG:3006"},
        }
    )
    with pytest.raises(MappingError, match=r"category.when\[0\]: for 'vald.nope': not a category"):
        read_all(path, mapping)
