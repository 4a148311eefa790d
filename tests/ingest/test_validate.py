"""Validation of a batch: each bad row is named with its field and reason; good rows pass."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from shapely import box

from app.ingest.batch import RawBatch, RowError
from app.ingest.validate import (
    DefaultLocation,
    IngestContext,
    describe,
    validate,
)

NOW = datetime(2026, 11, 22, 12, tzinfo=UTC)
# a box around Skåne in SWEREF 99 TM
CTX = IngestContext(
    srid=3006,
    accepted_area=box(300_000, 6_130_000, 500_000, 6_280_000),
    categories=frozenset({"skadegorelse.klotter", "tillgrepp.cykelstold"}),
    now=NOW,
    default_locations=(DefaultLocation("the centroid of Eslöv kommun", 395_000.0, 6_190_000.0),),
)
GOOD = {
    "external_id": "r1",
    "category": "skadegorelse.klotter",
    "occurred_from": "2026-11-20T21:15:00",
    "occurred_to": None,
    "x": 13.3035,
    "y": 55.8392,
    "location_precision": "address",
    "description": "Klotter",
}


def batch(*changes: dict[str, object], crs: str = "EPSG:4326") -> RawBatch:
    rows = [{**GOOD, "external_id": f"r{i + 1}", **c} for i, c in enumerate(changes)]

    def col(name: str) -> np.ndarray:
        return np.array([r[name] for r in rows], dtype=object)

    def times(name: str) -> np.ndarray:
        return np.array([r[name] or "NaT" for r in rows], dtype="datetime64[us]")

    return RawBatch(
        row=np.arange(1, len(rows) + 1, dtype=np.int64),
        external_id=col("external_id"),
        category=col("category"),
        occurred_from=times("occurred_from"),
        occurred_to=times("occurred_to"),
        x=np.array([r["x"] for r in rows], dtype=float),
        y=np.array([r["y"] for r in rows], dtype=float),
        crs=crs,
        location_precision=col("location_precision"),
        description=col("description"),
    )


def only_error(b: RawBatch) -> RowError:
    v = validate(b, CTX, source="test")
    assert len(v) == 0 and len(v.rejected) == 1
    return v.rejected[0]


def test_a_good_row_passes_and_is_transformed_to_the_storage_crs() -> None:
    v = validate(batch({}), CTX, source="test")
    assert v.rejected == [] and len(v) == 1
    assert abs(v.x[0] - 393_760) < 5 and abs(v.y[0] - 6_189_485) < 5


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"x": np.nan, "y": np.nan}, "location", "no location"),
        ({"x": np.inf}, "location", "not finite"),
        ({"x": 1e300, "y": 1e300}, "location", "outside"),
        ({"x": 18.07, "y": 59.33}, "location", "outside the accepted extent"),  # Stockholm
        ({"x": 55.8392, "y": 13.3035}, "location", "look swapped"),
        ({"category": "nope"}, "category", "unknown category 'nope'"),
        ({"category": None}, "category", "missing"),
        ({"external_id": ""}, "external_id", "missing"),
        ({"external_id": "x" * 129}, "external_id", "longer than 128"),
        ({"occurred_from": None}, "occurred_from", "missing"),
        ({"occurred_from": "2026-11-22T12:30:00"}, "occurred_from", "future"),
        ({"occurred_to": "2026-11-20T20:00:00"}, "occurred_to", "before occurred_from"),
        ({"description": "a\x00b"}, "description", "NUL"),
        ({"description": "a\ud800b"}, "description", "lone surrogate"),
        ({"description": "   "}, "description", "empty"),
        ({"description": "x" * 4001}, "description", "longer than 4000"),
        ({"location_precision": "roughly"}, "location_precision", "is not one of"),
    ],
)
def test_each_bad_value_is_rejected_naming_row_field_and_reason(
    change: dict[str, object], field: str, words: str
) -> None:
    error = only_error(batch(change))
    assert (error.row, error.field) == (1, field)
    assert words in error.reason


def test_swapped_coordinates_name_the_fix() -> None:
    error = only_error(batch({"x": 55.8392, "y": 13.3035}))
    assert "longitude=13.3035" in error.reason and "latitude=55.8392" in error.reason


def test_a_small_clock_skew_is_tolerated() -> None:
    assert validate(batch({"occurred_from": "2026-11-22T12:04:00"}), CTX, "t").rejected == []


def test_text_is_nfc_normalised_and_personal_numbers_masked() -> None:
    v = validate(batch({"description": "Fo\u0308retag, anma\u0308lare 811218-9876"}), CTX, "t")
    assert v.description[0] == "Företag, anmälare [personnummer]"
    assert v.masked == {1: "Företag, anmälare [personnummer]"}
    assert +v.masked_counts == {"personnummer": 1}
    assert describe(v.masked_counts, v.at_default_location, [], 50) == [
        "1 personal identity number was masked in free text"
    ]


def test_records_at_a_kommun_centroid_are_marked_and_reported() -> None:
    from pyproj import Transformer

    lon, lat = Transformer.from_crs(3006, 4326, always_xy=True).transform(395_005.0, 6_190_000.0)
    v = validate(batch({"x": lon, "y": lat}, {"x": lon, "y": lat}, {}), CTX, "t")
    assert list(v.location_precision) == ["area_centroid", "area_centroid", "address"]
    assert describe(v.masked_counts, v.at_default_location, [], 50) == [
        "2 records at the centroid of Eslöv kommun, marked area_centroid"
    ]


def test_errors_from_the_reader_reject_their_rows_and_others_pass() -> None:
    b = batch({}, {}, {})
    b.errors.append(RowError(2, "occurred_from", "not a time: 'igår'"))
    v = validate(b, CTX, "t")
    assert list(v.row) == [1, 3]
    assert v.rejected == [RowError(2, "occurred_from", "not a time: 'igår'")]


def test_rows_without_a_source_are_rejected_when_the_import_names_none() -> None:
    v = validate(batch({}), CTX, source=None)
    assert [(e.field, e.reason) for e in v.rejected] == [("source", "missing")]


def test_a_point_outside_the_extent_is_told_what_the_extent_is() -> None:
    error = validate(batch({"x": 18.07, "y": 59.33}), CTX, "t").rejected[0]
    assert error.reason == (
        "(18.07, 59.33) in EPSG:4326 lies outside the accepted extent (it lies within lon 11.74 "
        "to 15.00, lat 55.28 to 56.66)"
    )
    assert error.value == "18.07, 59.33"


@pytest.mark.parametrize(
    ("change", "value"),
    [
        ({"category": "nope"}, "nope"),
        ({"external_id": "x" * 129}, "x" * 129),
        ({"occurred_from": "2026-11-22T12:30:00"}, "2026-11-22T12:30:00.000000Z"),
        ({"location_precision": "roughly"}, "roughly"),
        ({"external_id": ""}, None),  # nothing to show
    ],
)
def test_a_rejection_carries_the_value_at_fault(change: dict[str, object], value: str) -> None:
    assert only_error(batch(change)).value == value


def test_a_period_still_running_ends_now_and_one_that_ended_keeps_its_end() -> None:
    b = batch(
        {"occurred_from": "2026-10-31T23:00:00", "occurred_to": "2026-11-30T23:00:00"},
        {"occurred_from": "2026-09-30T22:00:00", "occurred_to": "2026-10-31T23:00:00"},
        {"occurred_from": "2026-11-20T10:00:00", "occurred_to": "2026-11-30T23:00:00"},
    )
    b.period_end = np.array([True, True, False])  # the third's end was written as a time
    v = validate(b, CTX, "t")
    assert [e.row for e in v.rejected] == [3] and v.rejected[0].field == "occurred_to"
    assert list(v.occurred_to) == [
        np.datetime64(NOW.replace(tzinfo=None), "us"),
        np.datetime64("2026-10-31T23:00:00", "us"),
    ]
