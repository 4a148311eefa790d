"""Mapping files: the presets load, and every mistake is refused with the key that is wrong."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from app.core.taxonomy import load_taxonomy
from app.ingest.mapping import (
    MappingError,
    load_mapping,
    parse_mapping,
    preset_names,
    template_parts,
)

MINIMAL: dict[str, Any] = {"id": "id", "time": "t", "category": "c"}

# The 32 `Primary Type` values of the Chicago 2017 file (SOURCE.md), with their counts.
CHICAGO_2017_TYPES = {
    "THEFT": 64334,
    "BATTERY": 49212,
    "CRIMINAL DAMAGE": 29040,
    "ASSAULT": 19298,
    "DECEPTIVE PRACTICE": 18807,
    "OTHER OFFENSE": 17217,
    "BURGLARY": 12999,
    "ROBBERY": 11878,
    "NARCOTICS": 11653,
    "MOTOR VEHICLE THEFT": 11409,
    "CRIMINAL TRESPASS": 6812,
    "WEAPONS VIOLATION": 4686,
    "OFFENSE INVOLVING CHILDREN": 2248,
    "CRIM SEXUAL ASSAULT": 1609,
    "PUBLIC PEACE VIOLATION": 1498,
    "INTERFERENCE WITH PUBLIC OFFICER": 1086,
    "SEX OFFENSE": 1016,
    "PROSTITUTION": 735,
    "HOMICIDE": 674,
    "ARSON": 444,
    "LIQUOR LAW VIOLATION": 191,
    "GAMBLING": 191,
    "KIDNAPPING": 190,
    "STALKING": 188,
    "INTIMIDATION": 151,
    "OBSCENITY": 87,
    "CONCEALED CARRY LICENSE VIOLATION": 69,
    "NON-CRIMINAL": 38,
    "OTHER NARCOTIC VIOLATION": 11,
    "PUBLIC INDECENCY": 10,
    "HUMAN TRAFFICKING": 9,
    "NON-CRIMINAL (SUBJECT SPECIFIED)": 2,
}


def mapping_error(raw: dict[str, Any]) -> str:
    with pytest.raises(MappingError) as caught:
        parse_mapping(raw)
    return str(caught.value)


def test_the_four_presets_are_shipped_and_load() -> None:
    assert preset_names() == ["chicago", "est", "polisen-csv", "polisen-json"]
    for name in preset_names():
        assert load_mapping(name).id


def test_the_chicago_preset_maps_every_primary_type_of_2017_to_a_known_code_or_null() -> None:
    mapping = load_mapping("chicago")
    taxonomy = load_taxonomy()
    assert isinstance(mapping.category.map, dict)
    assert set(CHICAGO_2017_TYPES) <= set(mapping.category.map)
    targets = {mapping.category.map[t] for t in CHICAGO_2017_TYPES}
    assert {t for t in targets if t is not None} <= set(taxonomy.by_code)
    assert not mapping.category.has_default  # a new type is an error, not a silent guess


@pytest.mark.parametrize(
    "primary_type",
    [
        "CRIM SEXUAL ASSAULT",
        "SEX OFFENSE",
        "OFFENSE INVOLVING CHILDREN",
        "PUBLIC INDECENCY",
        "OBSCENITY",
        "PROSTITUTION",
    ],
)
def test_chicago_sexual_and_child_offences_map_to_sensitive_categories(primary_type: str) -> None:
    mapping = load_mapping("chicago")
    assert isinstance(mapping.category.map, dict)
    code = mapping.category.map[primary_type]
    assert code is not None and load_taxonomy().is_sensitive(code)


def test_chicago_reads_local_times_at_street_precision_in_lon_lat() -> None:
    m = load_mapping("chicago")
    assert (m.source, m.id.columns, m.time.start.column, m.time.timezone) == (
        "chicago-data-portal",
        ["ID"],
        "Date",
        "America/Chicago",
    )
    assert m.time.start.format == "%m/%d/%Y %I:%M:%S %p"
    assert (m.location[0].kind, m.location[0].lon, m.location[0].lat) == (
        "lonlat",
        "Longitude",
        "Latitude",
    )
    assert m.precision is not None and m.precision.default == "street"


def test_the_polisen_presets_share_the_source_and_use_the_taxonomys_polisen_table() -> None:
    csv_mapping, json_mapping = load_mapping("polisen-csv"), load_mapping("polisen-json")
    assert csv_mapping.source == json_mapping.source == "polisen.se"
    for m in (csv_mapping, json_mapping):
        assert m.category.map == "polisen"
        assert m.time.start.format == "polisen"
        assert m.precision is not None and m.precision.default == "area_centroid"
    assert json_mapping.location[0].latlon == "location.gps"


def test_the_est_preset_takes_a_geometry_lon_lat_or_sweref_x_y_and_no_format() -> None:
    m = load_mapping("est")
    assert [(loc.kind, loc.crs) for loc in m.location] == [
        ("geometry", None),
        ("lonlat", None),
        ("xy", "EPSG:3006"),
    ]
    assert m.format is None  # the file decides: a CSV, a GeoJSON or a GeoPackage
    assert m.time.end is not None and m.time.end.column == "occurred_to"


def test_an_unknown_top_level_key_is_refused_by_name_with_a_suggestion() -> None:
    message = mapping_error({**MINIMAL, "locaton": {"lon": "a", "lat": "b"}})
    assert "unknown key 'locaton'" in message and "did you mean 'location'" in message


def test_an_unknown_nested_key_is_refused_with_its_path() -> None:
    message = mapping_error({**MINIMAL, "category": {"column": "c", "mapp": {"A": "ovrigt"}}})
    assert "unknown key 'category.mapp'" in message and "'map'" in message


def test_an_unknown_key_in_a_location_alternative_names_the_alternative() -> None:
    message = mapping_error({**MINIMAL, "location": [{"lon": "a", "lat": "b"}, {"wtk": "g"}]})
    assert "unknown key 'location[1].wtk'" in message


def test_a_missing_required_key_is_named() -> None:
    assert "category is missing" in mapping_error({"id": "id", "time": "t"})


def test_shorthands_expand_to_columns() -> None:
    m = parse_mapping(MINIMAL)
    assert (m.id.columns, m.time.start.column, m.time.start.format, m.category.column) == (
        ["id"],
        "t",
        "iso",
        "c",
    )
    assert [loc.kind for loc in m.location] == ["geometry"]


def test_an_id_of_several_columns_is_kept_in_order() -> None:
    assert parse_mapping({**MINIMAL, "id": ["district", "number"]}).id.columns == [
        "district",
        "number",
    ]


@pytest.mark.parametrize(
    ("time", "words"),
    [
        ({"column": "a", "from": {"column": "b"}}, "either column"),
        ({"to": {"column": "b"}}, "either column"),
        ({"from": {"column": "a"}, "format": "iso"}, "each its own format"),
        ({"column": "a", "format": "dd/mm/yyyy"}, "not a time format"),
        ({"column": "a", "format": "%Q"}, "not a usable strptime pattern"),
        ({"column": "a", "timezone": "Europe/Stokholm"}, "unknown time zone 'Europe/Stokholm'"),
    ],
)
def test_a_bad_time_spec_is_refused(time: dict[str, Any], words: str) -> None:
    assert words in mapping_error({**MINIMAL, "time": time})


def test_a_time_interval_has_a_from_and_an_optional_to() -> None:
    m = parse_mapping(
        {
            **MINIMAL,
            "time": {
                "from": {"column": "start", "format": "%d.%m.%Y %H:%M"},
                "to": {"column": "end"},
                "timezone": "Europe/Stockholm",
            },
        }
    )
    assert m.time.start.format == "%d.%m.%Y %H:%M"
    assert m.time.end is not None and m.time.end.format == "iso"


@pytest.mark.parametrize(
    ("location", "words"),
    [
        ({"x": "e"}, "give both x and y"),
        ({"lon": "a", "lat": "b", "wkt": "g"}, "give one of"),
        ({"x": "e", "y": "n", "crs": "EPSG:99999"}, "unknown CRS 'EPSG:99999'"),
    ],
)
def test_a_bad_location_is_refused(location: dict[str, Any], words: str) -> None:
    assert words in mapping_error({**MINIMAL, "location": location})


def test_location_kinds_are_told_apart() -> None:
    kinds = {
        "xy": {"x": "e", "y": "n", "crs": "EPSG:3006"},
        "lonlat": {"lon": "a", "lat": "b"},
        "wkt": {"wkt": "g"},
        "latlon": {"latlon": "gps"},
        "geometry": {"crs": "EPSG:3006"},
    }
    for kind, location in kinds.items():
        assert parse_mapping({**MINIMAL, "location": location}).location[0].kind == kind


def test_precision_is_a_constant_a_column_or_a_column_with_a_default() -> None:
    constant = parse_mapping({**MINIMAL, "precision": "street"}).precision
    assert constant is not None and (constant.column, constant.default) == (None, "street")
    spec = {"column": "p", "default": "address"}
    column = parse_mapping({**MINIMAL, "precision": spec}).precision
    assert column is not None and (column.column, column.default) == ("p", "address")
    assert "'somewhere' is not one of" in mapping_error({**MINIMAL, "precision": "somewhere"})


def test_category_map_keys_are_text_and_stripped_and_default_null_is_kept() -> None:
    m = parse_mapping(
        {**MINIMAL, "category": {"column": "c", "map": {9001: "tillgrepp", " A ": None}}}
    )
    assert m.category.map == {"9001": "tillgrepp", "A": None}
    assert not m.category.has_default
    with_default = parse_mapping(
        {**MINIMAL, "category": {"column": "c", "map": {"A": "ovrigt"}, "default": None}}
    )
    assert with_default.category.has_default and with_default.category.default is None


@pytest.mark.parametrize(
    ("category", "words"),
    [
        ({"column": "c", "map": {True: "ovrigt"}}, "put the value in quotes"),
        ({"column": "c", "map": {"A": "x", "A ": "y"}}, "'A' is mapped twice"),
        ({"column": "c", "map": "polis"}, "must be polisen or a mapping"),
        ({"column": "c", "map": {"A": 3}}, "give a category code or null"),
        ({"column": "c", "default": "ovrigt"}, "only applies together with 'map'"),
    ],
)
def test_a_bad_category_map_is_refused(category: dict[str, Any], words: str) -> None:
    assert words in mapping_error({**MINIMAL, "category": category})


def test_csv_options_are_checked() -> None:
    assert "must be one character" in mapping_error({**MINIMAL, "delimiter": ";;"})
    assert "unknown encoding 'utf-9'" in mapping_error({**MINIMAL, "encoding": "utf-9"})
    both = {**MINIMAL, "delimiter": ",", "decimal": ","}
    assert "cannot be the same" in mapping_error(both)
    assert parse_mapping({**MINIMAL, "encoding": "UTF8"}).encoding == "utf-8"


def test_description_templates_split_into_columns_and_text() -> None:
    assert template_parts("Summary") == [("Summary", True)]
    assert template_parts("{Primary Type}: {Description} ({Location Description})") == [
        ("Primary Type", True),
        (": ", False),
        ("Description", True),
        (" (", False),
        ("Location Description", True),
        (")", False),
    ]
    assert template_parts("{{literal}} {a}") == [("{literal} ", False), ("a", True)]
    assert "unmatched '{'" in mapping_error({**MINIMAL, "description": "{a} {"})
    assert "empty placeholder" in mapping_error({**MINIMAL, "description": "{} x"})


def test_columns_lists_every_column_once() -> None:
    m = parse_mapping(
        {
            **MINIMAL,
            "location": [{"lon": "lon", "lat": "lat"}, {"x": "x", "y": "y", "crs": "EPSG:3006"}],
            "description": "{c}: {text}",
        }
    )
    assert m.columns() == ["id", "t", "c", "text", "lon", "lat", "x", "y"]


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("a.csv", "csv"),
        ("a.CSV.gz", "csv"),
        ("a.txt", "csv"),
        ("a.geojson", "geojson"),
        ("a.json", "geojson"),
        ("a.gpkg", "gpkg"),
    ],
)
def test_the_format_follows_the_suffix(name: str, fmt: str) -> None:
    assert parse_mapping(MINIMAL).format_for(Path(name)) == fmt


def test_an_unknown_suffix_asks_for_a_format_and_a_given_format_wins() -> None:
    with pytest.raises(MappingError, match="add format"):
        parse_mapping(MINIMAL).format_for(Path("export.xlsx"))
    assert parse_mapping({**MINIMAL, "format": "csv"}).format_for(Path("x.dat")) == "csv"


def test_a_mapping_file_is_read_from_a_path(tmp_path: Path) -> None:
    path = tmp_path / "kommun.yaml"
    path.write_text("id: Ärendenummer\ntime: Datum\ncategory: Kategori\n", encoding="utf-8")
    assert load_mapping(path).id.columns == ["Ärendenummer"]


def test_a_duplicate_key_in_the_yaml_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "twice.yaml"
    path.write_text("id: a\nid: b\ntime: t\ncategory: c\n", encoding="utf-8")
    with pytest.raises(MappingError, match="duplicate key 'id'"):
        load_mapping(path)


def test_an_unknown_mapping_name_lists_the_presets() -> None:
    with pytest.raises(MappingError, match="presets: chicago, est, polisen-csv, polisen-json"):
        load_mapping("stockholm")


def test_a_mapping_dumped_as_json_reads_back_the_same() -> None:
    for name in preset_names():
        mapping = load_mapping(name)
        dumped = mapping.model_dump(mode="json", exclude_unset=True)
        assert parse_mapping(dumped, mapping.origin) == mapping


def test_a_category_rule_takes_an_unquoted_yes_as_written() -> None:
    raw = {
        **MINIMAL,
        "category": {
            "column": "c",
            "when": [{"column": "Domestic", "is": True, "category": "vald.nara_relation"}],
        },
    }
    rule = parse_mapping(raw).category.when[0]
    assert rule.values == ["true"]
    assert "Domestic" in parse_mapping(raw).columns()


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ({"column": "d", "category": "vald"}, "category.when[0].is is missing"),
        ({"column": "d", "is": [], "category": "vald"}, "category.when[0].is: List should have"),
        ({"column": "d", "is": None, "category": "vald"}, "an empty value cannot be matched"),
        (
            {"column": "d", "is": "x", "category": "vald", "unless": "y"},
            "unknown key 'category.when[0].unless'",
        ),
    ],
)
def test_a_category_rule_with_a_mistake_is_refused(rule: dict[str, Any], expected: str) -> None:
    raw = {**MINIMAL, "category": {"column": "c", "when": [rule]}}
    assert expected in mapping_error(raw)


# --- ids that a file does not have, and times in two columns --------------------------------


def test_a_mapping_may_say_the_file_has_no_id_or_that_some_rows_lack_one() -> None:
    none = parse_mapping({**MINIMAL, "id": {"derive": True}}).id
    some = parse_mapping({**MINIMAL, "id": {"column": "Crime ID", "derive": True}}).id
    assert (none.columns, none.derive) == ([], True)
    assert (some.columns, some.derive) == (["Crime ID"], True)
    assert parse_mapping({**MINIMAL, "id": {"derive": True}}).field_columns() == ["t", "c"]


@pytest.mark.parametrize(
    ("id_spec", "words"),
    [
        (None, "write id: {derive: true} when the file has no identifier"),
        ({"derive": False}, "or write derive: true when the file has none"),
        ({"column": ""}, "a column name cannot be empty"),
    ],
)
def test_an_id_that_names_nothing_is_refused_with_the_way_to_say_there_is_none(
    id_spec: Any, words: str
) -> None:
    assert words in mapping_error({**MINIMAL, "id": id_spec})


def test_a_missing_id_says_how_to_write_a_file_without_one() -> None:
    message = mapping_error({"time": "t", "category": "c"})
    assert "id is missing" in message and "id: {derive: true}" in message


def test_a_date_column_may_take_its_time_of_day_from_another_column() -> None:
    one = parse_mapping({**MINIMAL, "time": {"column": "Date", "time_of_day": "Hour"}}).time
    assert one.start.time_of_day is not None and one.start.time_of_day.column == "Hour"
    assert one.start.time_of_day.format == "iso"
    both = {
        "from": {"column": "D1", "time_of_day": {"column": "T1", "format": "%H%M"}},
        "to": {"column": "D2", "time_of_day": "T2"},
    }
    m = parse_mapping({**MINIMAL, "time": both})
    assert m.field_columns() == ["id", "D1", "T1", "D2", "T2", "c"]


@pytest.mark.parametrize(
    ("time", "words"),
    [
        ({"column": "d", "time_of_day": {"column": "h", "format": "%d"}}, "only hours, minutes"),
        ({"column": "d", "time_of_day": {"column": "h", "format": "hhmm"}}, "time-of-day format"),
        ({"from": {"column": "d"}, "time_of_day": "h"}, "each its own time_of_day"),
    ],
)
def test_a_bad_time_of_day_is_refused(time: dict[str, Any], words: str) -> None:
    assert words in mapping_error({**MINIMAL, "time": time})
