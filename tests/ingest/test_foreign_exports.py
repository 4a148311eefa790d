"""Foreign exports read through a mapping with nothing lost: rows without an id, months and dates
that are periods, a time from two columns, the format from the file, the value of every error.

The files are small copies of two real shapes: a police force's street-level CSV (a month, no id
for anti-social behaviour, a snapped point shared by many reports) and a city's open-data crime
file (local midnight written as UTC in one column, the hour in another).
"""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from pathlib import Path

import geopandas as gpd
import pytest
import shapely

from app.ingest.mapping import Mapping, load_mapping, parse_mapping
from app.ingest.readers import ReadError, read_batches
from app.ingest.readers.ids import PREFIX
from app.ingest.validate import MAX_ID
from tests.ingest.test_readers import read_all

STREET_HEADER = [
    "Crime ID",
    "Month",
    "Reported by",
    "Falls within",
    "Longitude",
    "Latitude",
    "Location",
    "LSOA code",
    "LSOA name",
    "Crime type",
    "Last outcome category",
    "Context",
]
STREET_MAPPING = {
    "source": "street-level",
    "id": {"column": "Crime ID", "derive": True},
    "time": {"column": "Month", "timezone": "Europe/London"},
    "category": {
        "column": "Crime type",
        "map": {
            "Anti-social behaviour": "ordningsstorning",
            "Bicycle theft": "tillgrepp.cykelstold",
            "Violence and sexual offences": "vald.ej_atskilt",
        },
    },
    "location": {"lon": "Longitude", "lat": "Latitude"},
    "precision": "street",
    "description": "{Crime type} ({Location})",
}


def street_row(crime_id: str, kind: str, lon: str = "13.3035", **other: str) -> list[str]:
    """One row of a street-level file: a month, a snapped point, a kind."""
    values = {
        "Crime ID": crime_id,
        "Month": "2018-07",
        "Reported by": "Skåne police",
        "Falls within": "Skåne police",
        "Longitude": lon,
        "Latitude": "55.8392",
        "Location": "On or near Stortorget",
        "LSOA code": "E01000001",
        "LSOA name": "Eslöv 001A",
        "Crime type": kind,
        "Last outcome category": "",
        "Context": "",
        **other,
    }
    return [values[name] for name in STREET_HEADER]


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path


def street_file(path: Path, rows: list[list[str]] | None = None) -> Path:
    """Three identical anti-social-behaviour reports, one more elsewhere, two crimes with ids."""
    rows = rows or [
        street_row("", "Anti-social behaviour"),
        street_row("", "Anti-social behaviour"),
        street_row("", "Anti-social behaviour"),
        street_row("", "Anti-social behaviour", lon="13.3069"),
        street_row("a1f9", "Violence and sexual offences"),
        street_row("b2c7", "Bicycle theft", **{"Last outcome category": "Under investigation"}),
    ]
    return write_csv(path, STREET_HEADER, rows)


# --- rows without an id ----------------------------------------------------------------------


def test_rows_without_an_id_get_one_from_their_content_and_identical_rows_stay_apart(
    tmp_path: Path,
) -> None:
    read = read_all(street_file(tmp_path / "street.csv"), parse_mapping(STREET_MAPPING))
    ids = read.external_id
    assert ids[4:] == ["a1f9", "b2c7"]  # a row with an id keeps it
    assert len(set(ids)) == 6  # the three identical reports are three incidents
    assert all(i.startswith(PREFIX) and len(i) <= MAX_ID for i in ids[:4])
    assert [i.rsplit("-", 1)[1] for i in ids[:4]] == ["1", "2", "3", "1"]
    assert read.errors == []


def test_derived_ids_are_the_same_on_every_read_whatever_the_batches_and_unmapped_columns(
    tmp_path: Path,
) -> None:
    mapping = parse_mapping(STREET_MAPPING)
    first = read_all(street_file(tmp_path / "a.csv"), mapping).external_id
    assert read_all(street_file(tmp_path / "a.csv"), mapping, batch_size=2).external_id == first
    # the next export fills in a column the mapping does not read
    rows = [street_row("", "Anti-social behaviour", Context="Reported by phone")] * 3
    rows += [street_row("", "Anti-social behaviour", lon="13.3069")]
    later = read_all(street_file(tmp_path / "b.csv", rows), mapping).external_id
    assert later == first[:4]
    # a report that says something else is another incident
    moved = [street_row("", "Anti-social behaviour", lon="13.3070")]
    assert read_all(street_file(tmp_path / "c.csv", moved), mapping).external_id[0] != first[3]


def test_a_file_with_no_id_column_at_all_is_read_with_derive(tmp_path: Path) -> None:
    header = [name for name in STREET_HEADER if name != "Crime ID"]
    rows = [street_row("", "Anti-social behaviour")[1:]] * 2
    path = write_csv(tmp_path / "no-id.csv", header, rows)
    mapping = parse_mapping({**STREET_MAPPING, "id": {"derive": True}})
    ids = read_all(path, mapping).external_id
    assert len(set(ids)) == 2 and all(i.startswith(PREFIX) for i in ids)


# --- periods ---------------------------------------------------------------------------------


def test_a_month_alone_is_the_month_from_its_first_to_its_last_local_midnight(
    tmp_path: Path,
) -> None:
    read = read_all(street_file(tmp_path / "street.csv"), parse_mapping(STREET_MAPPING))
    # July 2018 in London is British Summer Time (UTC+1)
    assert set(read.occurred_from) == {datetime(2018, 6, 30, 23, 0, tzinfo=UTC)}
    assert set(read.occurred_to) == {datetime(2018, 7, 31, 23, 0, tzinfo=UTC)}


def times_csv(tmp_path: Path, values: list[tuple[str, str]]) -> Path:
    header = ["id", "from", "to", "c", "lon", "lat"]
    rows = [[f"r{i}", a, b, "ovrigt", "13.3", "55.8"] for i, (a, b) in enumerate(values)]
    return write_csv(tmp_path / "times.csv", header, rows)


def test_a_date_is_its_day_a_year_its_year_and_a_time_stays_an_instant(tmp_path: Path) -> None:
    path = times_csv(
        tmp_path,
        [("2026-03-28", ""), ("20260328", ""), ("2025", ""), ("2026-03-28 14:30", "")],
    )
    mapping = parse_mapping(
        {
            "id": "id",
            "time": {"column": "from", "timezone": "Europe/Stockholm"},
            "category": "c",
            "location": {"lon": "lon", "lat": "lat"},
        }
    )
    read = read_all(path, mapping)
    day = (datetime(2026, 3, 27, 23, tzinfo=UTC), datetime(2026, 3, 28, 23, tzinfo=UTC))
    assert list(zip(read.occurred_from, read.occurred_to, strict=True)) == [
        day,
        day,
        (datetime(2024, 12, 31, 23, tzinfo=UTC), datetime(2025, 12, 31, 23, tzinfo=UTC)),
        (datetime(2026, 3, 28, 13, 30, tzinfo=UTC), None),
    ]


def test_a_period_in_the_to_column_ends_where_the_period_ends(tmp_path: Path) -> None:
    path = times_csv(
        tmp_path,
        [("2026-03-27 18:00", "2026-03-30"), ("2026-03-27", "2026-03-30 07:30"), ("2026-03", "")],
    )
    read = read_all(path, interval_mapping())
    # the clocks go forward in the night to 29 March: the 30th ends at 22:00 UTC
    assert read.occurred_to == [
        datetime(2026, 3, 30, 22, tzinfo=UTC),
        datetime(2026, 3, 30, 5, 30, tzinfo=UTC),
        datetime(2026, 3, 31, 22, tzinfo=UTC),
    ]
    assert read.occurred_from[1:] == [
        datetime(2026, 3, 26, 23, tzinfo=UTC),
        datetime(2026, 2, 28, 23, tzinfo=UTC),
    ]


def interval_mapping() -> Mapping:
    return parse_mapping(
        {
            "id": "id",
            "time": {
                "from": {"column": "from"},
                "to": {"column": "to"},
                "timezone": "Europe/Stockholm",
            },
            "category": "c",
            "location": {"lon": "lon", "lat": "lat"},
        }
    )


def test_a_pattern_without_a_clock_is_a_period_too(tmp_path: Path) -> None:
    path = times_csv(tmp_path, [("07/2018", ""), ("31/12/2018", "")])
    month = parse_mapping(
        {
            "id": "id",
            "time": {"column": "from", "format": "%m/%Y", "timezone": "UTC"},
            "category": "c",
            "location": {"lon": "lon", "lat": "lat"},
        }
    )
    read = read_all(path, month)
    assert (read.occurred_from[0], read.occurred_to[0]) == (
        datetime(2018, 7, 1, tzinfo=UTC),
        datetime(2018, 8, 1, tzinfo=UTC),
    )
    assert read.error_rows() == {
        2: ("occurred_from", "'31/12/2018' does not match the time format '%m/%Y'")
    }


# --- a time from two columns -----------------------------------------------------------------


CITY_MAPPING = {
    "source": "city",
    "id": "uid",
    "time": {"column": "date", "time_of_day": "hour", "timezone": "America/Chicago"},
    "category": {"column": "offense_type", "map": {"personal robbery": "tillgrepp.ran.person"}},
    "location": {"lon": "lon", "lat": "lat"},
}


def city_file(path: Path, rows: list[tuple[str, str, str]]) -> Path:
    """A city's file: local midnight written as UTC in `date`, the hour in `hour`."""
    header = ["uid", "offense_type", "date", "hour", "lon", "lat"]
    lines = [[uid, "personal robbery", d, h, "-89.942", "35.149"] for uid, d, h in rows]
    return write_csv(path, header, lines)


def test_a_date_and_an_hour_in_two_columns_are_one_local_time(tmp_path: Path) -> None:
    path = city_file(
        tmp_path / "city.csv",
        [
            ("1", "2019-01-01T00:00:00.000Z", "13"),
            ("2", "2019-07-04T00:00:00.000Z", "7:45"),
            ("3", "2019-07-04T00:00:00.000Z", "23:59:30"),
            ("4", "2019-07-05T00:00:00.000Z", ""),
        ],
    )
    read = read_all(path, parse_mapping(CITY_MAPPING))
    assert read.occurred_from == [
        datetime(2019, 1, 1, 19, 0, tzinfo=UTC),  # 13:00 CST, not 13:00 UTC
        datetime(2019, 7, 4, 12, 45, tzinfo=UTC),  # 07:45 CDT
        datetime(2019, 7, 5, 4, 59, 30, tzinfo=UTC),
        datetime(2019, 7, 5, 5, 0, tzinfo=UTC),  # no hour: the whole day
    ]
    assert read.occurred_to == [None, None, None, datetime(2019, 7, 6, 5, 0, tzinfo=UTC)]
    assert read.errors == []


def test_a_bad_hour_or_date_rejects_its_row_with_the_value(tmp_path: Path) -> None:
    path = city_file(
        tmp_path / "city.csv",
        [
            ("1", "2019-01-01T00:00:00.000Z", "25"),
            ("2", "1 January", "13"),
            ("3", "2019-03-10T00:00:00.000Z", "2"),  # the hour the clocks skip
            ("4", "2019-01-02T00:00:00.000Z", "2215"),
        ],
    )
    errors = {
        (e.row, e.value): e.reason for e in read_all(path, parse_mapping(CITY_MAPPING)).errors
    }
    assert errors == {
        (1, "25"): "'25' is not a time of day such as 13, 13:30 or 13:30:15",
        (2, "1 January"): "'1 January' is not a date such as 2026-03-01",
        (3, "2019-03-10T00:00:00.000Z 2"): (
            "'2019-03-10T00:00:00.000Z 2' does not exist in America/Chicago (DST change)"
        ),
        (4, "2215"): (
            "'2215' is not a time of day such as 13, 13:30 or 13:30:15 (for 2215 as 22:15, "
            "give format: '%H%M')"
        ),
    }


def test_a_time_of_day_pattern_and_a_date_pattern_read_like_strptime(tmp_path: Path) -> None:
    path = city_file(
        tmp_path / "la.csv",
        [("1", "01/08/2020 12:00:00 AM", "2215"), ("2", "01/08/2020 12:00:00 AM", "930")],
    )
    mapping = parse_mapping(
        {
            **CITY_MAPPING,
            "time": {
                "column": "date",
                "format": "%m/%d/%Y %I:%M:%S %p",
                "time_of_day": {"column": "hour", "format": "%H%M"},
                "timezone": "America/Los_Angeles",
            },
        }
    )
    read = read_all(path, mapping)
    assert read.occurred_from == [
        datetime(2020, 1, 9, 6, 15, tzinfo=UTC),
        datetime(2020, 1, 8, 17, 30, tzinfo=UTC),
    ]


# --- the format comes from the file ----------------------------------------------------------


def incident_collection() -> dict[str, object]:
    properties = {
        "external_id": "g1",
        "category": "skadegorelse.klotter",
        "occurred_from": "2026-11-20T22:15:00+01:00",
        "occurred_to": None,
        "location_precision": "address",
        "description": "Klotter på busskuren",
    }
    point = {"type": "Point", "coordinates": [13.3035, 55.8392]}
    feature = {"type": "Feature", "properties": properties, "geometry": point}
    return {"type": "FeatureCollection", "features": [feature]}


@pytest.mark.parametrize("name", ["incidenter.geojson", "incidenter.csv", "upload"])
def test_the_est_preset_reads_a_geojson_whatever_its_name(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text(json.dumps(incident_collection()), encoding="utf-8")
    read = read_all(path, load_mapping("est"))
    assert (read.external_id, read.x, read.y, read.errors) == (["g1"], [13.3035], [55.8392], [])


def test_the_est_preset_reads_a_geopackage_of_points_in_its_own_crs(tmp_path: Path) -> None:
    frame = gpd.GeoDataFrame(
        {
            "external_id": ["p1"],
            "category": ["ovrigt"],
            "occurred_from": ["2026-06-01T12:00:00+02:00"],
            "occurred_to": [None],
            "location_precision": ["exact"],
            "description": [None],
        },
        geometry=[shapely.Point(393760, 6189485)],
        crs="EPSG:3006",
    )
    written = tmp_path / "kommun.gpkg"
    frame.to_file(written, driver="GPKG")
    path = written.rename(tmp_path / "kommun")  # no suffix: the content says GeoPackage
    read = read_all(path, load_mapping("est"))
    assert (read.external_id, read.crs, read.x, read.errors) == (
        ["p1"],
        {"EPSG:3006"},
        [393760.0],
        [],
    )


def test_a_mapping_that_forces_csv_on_a_geojson_says_so_instead_of_reading_json_as_columns(
    tmp_path: Path,
) -> None:
    path = tmp_path / "export.geojson"
    path.write_text(json.dumps(incident_collection()), encoding="utf-8")
    with pytest.raises(ReadError) as caught:
        list(read_batches(path, load_mapping("chicago")))
    assert str(caught.value) == (
        "export.geojson is a GeoJSON file, but the mapping data/mappings/chicago.yaml reads a "
        "CSV file (format: csv): use a mapping for a GeoJSON file, or leave format out of it "
        "so that the file decides"
    )


def test_a_damaged_geopackage_is_a_read_error_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "trasig.gpkg"
    path.write_bytes(b"SQLite format 3\x00" + b"\x00" * 200)
    with pytest.raises(ReadError, match=r"trasig\.gpkg"):
        list(read_batches(path, load_mapping("est")))


# --- every error carries its value -----------------------------------------------------------


def test_reader_errors_carry_the_value_as_written(tmp_path: Path) -> None:
    header = ["id", "t", "c", "lon", "lat"]
    rows = [
        ["a", "2026-06-01T12:00Z", "Fortkörning", "13", "55"],
        ["b", "igår", "Klotter", "13", "55"],
        ["c", "2026-06-01T12:00Z", "Klotter", "13,30", "55"],
    ]
    path = write_csv(tmp_path / "fel.csv", header, rows)
    mapping = parse_mapping(
        {
            "id": "id",
            "time": {"column": "t", "timezone": "Europe/Stockholm"},
            "category": {"column": "c", "map": {"Klotter": "skadegorelse.klotter"}},
            "location": {"lon": "lon", "lat": "lat"},
        }
    )
    errors = read_all(path, mapping).errors
    assert [(e.row, e.field, e.value) for e in errors] == [
        (1, "category", "Fortkörning"),
        (2, "occurred_from", "igår"),
        (3, "lon", "13,30"),
    ]
