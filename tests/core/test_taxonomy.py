"""The shipped category taxonomy: its tree, sensitive flags, groups and the polisen.se mapping."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from app.core.taxonomy import Taxonomy, load_taxonomy

# Every distinct `type` of the polisen.se events archive 2022-09 .. 2026-08 (97 values, copied
# as they are: "Lagen om hundar och katter " really ends with a blank).
POLISEN_TYPES = [
    "Alkohollagen",
    "Anträffad död",
    "Anträffat gods",
    "Arbetsplatsolycka",
    "Bedrägeri",
    "Bombhot",
    "Brand",
    "Brand automatlarm",
    "Bråk",
    "Detonation",
    "Djur",
    "Efterlyst person",
    "Ekobrott",
    "Explosion",
    "Farligt föremål, misstänkt",
    "Fjällräddning",
    "Fylleri",
    "Fylleri/LOB",
    "Förfalskningsbrott",
    "Försvunnen person",
    "Hemfridsbrott",
    "Hets mot folkgrupp",
    "Häleri",
    "Inbrott",
    "Inbrott, försök",
    "Information",
    "Knivlagen",
    "Kontroll",
    "Kontroll person/fordon",
    "Lagen om hundar och katter ",
    "Larm Inbrott",
    "Larm Överfall",
    "Luftfartslagen",
    "Miljöbrott",
    "Missbruk av urkund",
    "Misshandel",
    "Misshandel, grov",
    "Mord/dråp",
    "Mord/dråp, försök",
    "Mordbrand",
    "Motorfordon, anträffat stulet",
    "Motorfordon, stöld",
    "Narkotikabrott",
    "Ofredande/förargelse",
    "Olaga frihetsberövande/människorov",
    "Olaga hot",
    "Olaga intrång",
    "Olovlig körning",
    "Ordningslagen",
    "Polisinsats/kommendering",
    "Rattfylleri",
    "Räddningsinsats",
    "Rån",
    "Rån väpnat",
    "Rån övrigt",
    "Rån, försök",
    "Sabotage mot blåljusverksamhet",
    "Sammanfattning dag",
    "Sammanfattning dygn",
    "Sammanfattning eftermiddag",
    "Sammanfattning helg",
    "Sammanfattning kväll",
    "Sammanfattning kväll och natt",
    "Sammanfattning natt",
    "Sammanfattning vecka",
    "Sedlighetsbrott",
    "Sexualbrott",
    "Sjukdom/olycksfall",
    "Sjölagen",
    "Skadegörelse",
    "Skottlossning",
    "Skottlossning, misstänkt",
    "Skyddslagen",
    "Smällar",
    "Spridning smitta/kemikalier",
    "Stöld",
    "Stöld, försök",
    "Stöld/inbrott",
    "Trafikbrott",
    "Trafikhinder",
    "Trafikkontroll",
    "Trafikolycka",
    "Trafikolycka, personskada",
    "Trafikolycka, singel",
    "Trafikolycka, smitning från",
    "Trafikolycka, vilt",
    "Uppdatering",
    "Upphittat föremål",
    "Utlänningslagen",
    "Vapenlagen",
    "Varningslarm/haveri",
    "Våld/hot mot tjänsteman",
    "Våldtäkt",
    "Våldtäkt, försök",
    "Vållande till kroppsskada",
    "Åldringsbrott",
    "Övrigt",
]

REQUIRED_CODES = [
    "skadegorelse",
    "skadegorelse.klotter",
    "skadegorelse.glaskross",
    "skadegorelse.fordon",
    "skadegorelse.offentlig_miljo",
    "skadegorelse.ovrig",
    "otrygghet.samling",
    "ordningsstorning.storande_beteende",
    "ordningsstorning.brak",
    "ordningsstorning.fyrverkerier",
    "otrygg_plats.belysning",
    "otrygg_plats.skymd_sikt",
    "otrygg_plats.nedskrapning",
    "otrygg_plats.overgiven_byggnad",
    "otrygg_plats.ovrig",
    "narkotika.innehav",
    "narkotika.oppen_handel",
    "narkotika.avfall",
    "alkohol.langning",
    "alkohol.fortaring_allman_plats",
    "alkohol.berusning",
    "tobak",
    "dopning",
    "spel",
    "tillgrepp.snatteri",
    "tillgrepp.fickstold",
    "tillgrepp.cykelstold",
    "tillgrepp.inbrott.bil",
    "tillgrepp.inbrott.bostad",
    "tillgrepp.inbrott.butik",
    "tillgrepp.ran",
    "tillgrepp.ovrig",
    "vald.misshandel",
    "vald.hot",
    "vald.nara_relation",
    "vald.sexualbrott",
    "brand.anlagd",
    "brand.fordon",
    "brand.container",
    "brand.ovrig",
    "trafik.hastighet",
    "trafik.olycka",
    "trafik.rattfylleri",
    "trafik.storande",
    "trafik.parkering",
    "bedrageri",
    "vapen",
    "ovrigt",
]


@pytest.fixture(scope="module")
def taxonomy() -> Taxonomy:
    """The shipped taxonomy, loaded once."""
    return load_taxonomy()


def _write(tmp_path: Path, text: str) -> Path:
    """Write a taxonomy document to a temporary file and return its path."""
    path = tmp_path / "categories.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_the_shipped_taxonomy_loads_with_categories_groups_and_a_polisen_mapping(
    taxonomy: Taxonomy,
) -> None:
    assert len(taxonomy.categories) > 50
    assert {g.code for g in taxonomy.groups} >= {
        "andts",
        "tillgrepp",
        "skadegorelse",
        "trafik",
        "vald",
        "otrygghet",
        "all",
    }
    assert taxonomy.polisen


def test_every_code_is_unique_and_nested_under_its_parent_which_comes_first(
    taxonomy: Taxonomy,
) -> None:
    codes = [c.code for c in taxonomy.categories]
    assert len(codes) == len(set(codes))
    seen: set[str] = set()
    for c in taxonomy.categories:
        if c.parent_code is None:
            assert "." not in c.code and c.depth == 0
        else:
            assert c.parent_code in seen, f"{c.code} comes before its parent"
            assert c.code.startswith(c.parent_code + ".")
            assert c.depth == taxonomy.by_code[c.parent_code].depth + 1
        seen.add(c.code)


def test_codes_are_lowercase_ascii_and_labels_are_filled_in(taxonomy: Taxonomy) -> None:
    for c in taxonomy.categories:
        assert c.code.isascii() and c.code == c.code.lower(), c.code
        assert c.sv and c.en, c.code
    assert taxonomy.by_code["skadegorelse"].sv == "Skadegörelse"
    assert taxonomy.by_code["tillgrepp.inbrott.bostad"].sv == "Bostadsinbrott"


@pytest.mark.parametrize("code", REQUIRED_CODES)
def test_the_categories_an_est_group_registers_exist(taxonomy: Taxonomy, code: str) -> None:
    assert code in taxonomy.by_code


def test_the_codes_the_demo_uses_exist(taxonomy: Taxonomy) -> None:
    from app.ops.demo import BACKGROUND_CATEGORIES, PLACE_PROFILES

    used = set(BACKGROUND_CATEGORIES).union(*(p["categories"] for p in PLACE_PROFILES.values()))
    assert used - set(taxonomy.by_code) == set()


def test_vald_i_nara_relation_and_sexualbrott_are_sensitive_and_their_children_inherit_it(
    taxonomy: Taxonomy,
) -> None:
    for parent in ("vald.nara_relation", "vald.sexualbrott"):
        assert taxonomy.is_sensitive(parent)
        children = taxonomy.children(parent)
        assert children, f"{parent} has no children to inherit the flag"
        for child in children:
            assert taxonomy.is_sensitive(child.code)
            assert child.sensitive


def test_ordinary_crimes_are_not_sensitive(taxonomy: Taxonomy) -> None:
    for code in ("vald", "vald.misshandel", "vald.dodligt", "tillgrepp.inbrott.bostad"):
        assert not taxonomy.is_sensitive(code), code


def test_is_sensitive_refuses_an_unknown_code(taxonomy: Taxonomy) -> None:
    with pytest.raises(KeyError, match="no_such"):
        taxonomy.is_sensitive("no_such.code")


def test_andts_holds_every_narkotika_and_alkohol_code_and_nothing_from_tillgrepp(
    taxonomy: Taxonomy,
) -> None:
    andts = set(taxonomy.group_codes("andts"))
    for c in taxonomy.categories:
        if c.code.split(".")[0] in ("narkotika", "alkohol", "tobak", "dopning", "spel"):
            assert c.code in andts, c.code
        if c.code.split(".")[0] == "tillgrepp":
            assert c.code not in andts, c.code


def test_a_star_pattern_is_the_node_and_its_descendants_and_an_exact_code_only_the_node(
    taxonomy: Taxonomy,
) -> None:
    inbrott = taxonomy.expand("tillgrepp.inbrott.*")
    assert inbrott[0] == "tillgrepp.inbrott"
    assert "tillgrepp.inbrott.bostad" in inbrott and "tillgrepp.ran" not in inbrott
    assert taxonomy.expand("tillgrepp.inbrott") == ["tillgrepp.inbrott"]
    with pytest.raises(ValueError, match=re.escape("'tillgrepp.inbrot.*' matches no category")):
        taxonomy.expand("tillgrepp.inbrot.*")


def test_otrygghet_groups_unsafe_places_gatherings_and_disorder(taxonomy: Taxonomy) -> None:
    group = set(taxonomy.group_codes("otrygghet"))
    assert {"otrygg_plats.belysning", "otrygghet.samling", "ordningsstorning.brak"} <= group
    assert not any(code.startswith(("vald", "tillgrepp")) for code in group)


def test_the_all_group_holds_every_code_and_group_codes_are_sorted(taxonomy: Taxonomy) -> None:
    assert set(taxonomy.group_codes("all")) == set(taxonomy.by_code)
    for g in taxonomy.groups:
        assert g.codes == sorted(set(g.codes)), g.code
    with pytest.raises(KeyError, match="nope"):
        taxonomy.group_codes("nope")


def test_every_polisen_type_is_mapped_to_a_known_code_or_null(taxonomy: Taxonomy) -> None:
    assert len(POLISEN_TYPES) == len(set(POLISEN_TYPES)) == 97
    missing = [t for t in POLISEN_TYPES if t not in taxonomy.polisen]
    assert missing == []
    for event_type, code in taxonomy.polisen.items():
        assert code is None or code in taxonomy.by_code, event_type


def test_polisen_types_map_to_the_closest_category(taxonomy: Taxonomy) -> None:
    p = taxonomy.polisen
    assert p["Misshandel"] == "vald.misshandel"
    assert p["Misshandel, grov"] is not None and p["Misshandel, grov"].startswith("vald.misshandel")
    assert p["Rån väpnat"] == "tillgrepp.ran"
    assert p["Skadegörelse"] == "skadegorelse"
    assert p["Narkotikabrott"] is not None and p["Narkotikabrott"].startswith("narkotika")
    assert p["Rattfylleri"] == "trafik.rattfylleri"
    assert p["Trafikolycka, personskada"] is not None
    assert p["Trafikolycka, personskada"].startswith("trafik.olycka")
    assert p["Mordbrand"] == "brand.anlagd"
    for event_type in ("Våldtäkt", "Sexualbrott", "Sedlighetsbrott"):
        code = p[event_type]
        assert code is not None and taxonomy.is_sensitive(code), event_type


def test_summaries_police_activity_and_missing_persons_are_not_incidents(
    taxonomy: Taxonomy,
) -> None:
    not_incidents = [t for t in POLISEN_TYPES if t.startswith("Sammanfattning")] + [
        "Trafikkontroll",
        "Polisinsats/kommendering",
        "Försvunnen person",
        "Information",
        "Uppdatering",
    ]
    for event_type in not_incidents:
        assert taxonomy.polisen[event_type] is None, event_type


def test_a_minimal_taxonomy_file_loads(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
        categories:
          - code: a
            sv: Å
            en: A
            sensitive: true
            children:
              - {code: a.b, sv: B, en: B}
        groups:
          - {code: g, sv: G, en: G, patterns: [a.*]}
        polisen:
          Något: a.b
          Annat: null
        """,
    )
    t = load_taxonomy(path)
    assert [c.code for c in t.categories] == ["a", "a.b"]
    assert t.by_code["a.b"].parent_code == "a" and t.is_sensitive("a.b")
    assert t.group_codes("g") == ["a", "a.b"]
    assert t.polisen == {"Något": "a.b", "Annat": None}


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (
            """
            categories:
              - {code: a, sv: A, en: A}
              - {code: a, sv: A2, en: A2}
            """,
            "duplicate category code 'a'",
        ),
        (
            """
            categories:
              - code: a
                sv: A
                en: A
                children:
                  - {code: b.c, sv: C, en: C}
            """,
            "'b.c' must be its parent's code 'a'",
        ),
        (
            """
            categories:
              - code: a
                sv: A
                en: A
                children:
                  - {code: a.b.c, sv: C, en: C}
            """,
            "'a.b.c' must be its parent's code 'a'",
        ),
        (
            """
            categories:
              - {code: skadegörelse, sv: Skadegörelse, en: Damage}
            """,
            "'skadegörelse' is invalid",
        ),
        (
            """
            categories:
              - {code: Klotter, sv: Klotter, en: Graffiti}
            """,
            "'Klotter' is invalid",
        ),
        (
            """
            categories:
              - {code: a, en: A}
            """,
            "category 'a' is missing its 'sv' label",
        ),
        (
            """
            categories:
              - {code: a, sv: A, en: "  "}
            """,
            "category 'a' is missing its 'en' label",
        ),
        (
            """
            categories:
              - {code: a, sv: A, en: A}
            groups:
              - {code: g, sv: G, en: G, patterns: [x.*]}
            """,
            "group 'g': pattern 'x.*' matches no category",
        ),
        (
            """
            categories:
              - {code: a, sv: A, en: A}
            polisen:
              Misshandel: vald.misshandel
            """,
            "'Misshandel' maps to unknown category code 'vald.misshandel'",
        ),
        (
            """
            categories:
              - code: a
                sv: A
                en: A
                sensitive: true
                children:
                  - {code: a.b, sv: B, en: B, sensitive: false}
            """,
            "'a.b' cannot be sensitive: false under a sensitive parent",
        ),
        (
            """
            categories:
              - {code: a, sv: A, en: A, sensitiv: true}
            """,
            "category 'a' has unknown keys: sensitiv",
        ),
        (
            """
            categories:
              - {code: a, sv: A, en: A}
            polisen:
              Brand: a
              Brand: null
            """,
            "duplicate key 'Brand'",
        ),
    ],
    ids=[
        "duplicate-code",
        "child-not-under-parent",
        "child-skips-a-level",
        "non-ascii-code",
        "uppercase-code",
        "missing-sv",
        "blank-en",
        "pattern-matches-nothing",
        "polisen-unknown-code",
        "sensitive-switched-off",
        "misspelt-key",
        "duplicate-polisen-type",
    ],
)
def test_invalid_taxonomies_are_rejected_naming_the_offending_code(
    tmp_path: Path, document: str, message: str
) -> None:
    path = _write(tmp_path, document)
    with pytest.raises(ValueError, match=re.escape(message)):
        load_taxonomy(path)
