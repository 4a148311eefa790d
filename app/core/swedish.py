"""Swedish names people read: hotspot changes, emerging hotspot classes and category groups.

The methods name their results in English keys (clustering.labels.ChangeLabel, the patterns of
clustering.emerging); charts, the map and the weekly report show these words instead. Category
groups already have their Swedish names in the taxonomy (data/categories.yaml), read from there.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

from app.core.taxonomy import Taxonomy, load_taxonomy
from clustering.labels import ChangeLabel

# How a hotspot changed against the previous run.
CHANGE_LABELS: dict[str, str] = {
    ChangeLabel.new: "ny",
    ChangeLabel.grown: "växande",
    ChangeLabel.shrunk: "krympande",
    ChangeLabel.stable: "oförändrad",
    ChangeLabel.gone: "försvunnen",
}

# The emerging hotspot patterns (clustering.emerging.PATTERNS), as ArcGIS's classes in Swedish.
EMERGING_CLASSES: dict[str, str] = {
    "new_hot": "ny hotspot",
    "consecutive_hot": "sammanhängande hotspot",
    "intensifying_hot": "tilltagande hotspot",
    "persistent_hot": "ihållande hotspot",
    "diminishing_hot": "avtagande hotspot",
    "sporadic_hot": "sporadisk hotspot",
    "oscillating_hot": "oscillerande hotspot",
    "historical_hot": "historisk hotspot",
    "new_cold": "ny kallfläck",
    "consecutive_cold": "sammanhängande kallfläck",
    "intensifying_cold": "tilltagande kallfläck",
    "persistent_cold": "ihållande kallfläck",
    "diminishing_cold": "avtagande kallfläck",
    "sporadic_cold": "sporadisk kallfläck",
    "oscillating_cold": "oscillerande kallfläck",
    "historical_cold": "historisk kallfläck",
    "no_pattern": "inget mönster",
}


# What each emerging hotspot class means, in one sentence (ArcGIS's definitions, weekly).
EMERGING_EXPLAINED: dict[str, str] = {
    "new_hot": "Platsen är en hotspot den senaste veckan och har aldrig varit det förut.",
    "consecutive_hot": "Platsen har varit en hotspot de senaste veckorna i rad, men inte tidigare.",
    "intensifying_hot": "Platsen har varit en hotspot nästan varje vecka och blir allt hetare.",
    "persistent_hot": "Platsen har varit en hotspot nästan varje vecka, utan tydlig trend.",
    "diminishing_hot": "Platsen har varit en hotspot nästan varje vecka men svalnar.",
    "sporadic_hot": "Platsen är en hotspot då och då, och har aldrig varit en kallfläck.",
    "oscillating_hot": "Platsen är en hotspot nu men har tidigare också varit en kallfläck.",
    "historical_hot": "Platsen var en hotspot nästan varje vecka förut, men inte den senaste "
    "veckan.",
    "new_cold": "Platsen har färre händelser än omgivningen den senaste veckan, för första gången.",
    "consecutive_cold": "Platsen har haft färre händelser än omgivningen de senaste veckorna i "
    "rad, men inte tidigare.",
    "intensifying_cold": "Platsen har nästan varje vecka haft färre händelser än omgivningen, "
    "allt tydligare.",
    "persistent_cold": "Platsen har nästan varje vecka haft färre händelser än omgivningen, "
    "utan tydlig trend.",
    "diminishing_cold": "Platsen har nästan varje vecka haft färre händelser än omgivningen, "
    "allt mindre tydligt.",
    "sporadic_cold": "Platsen har då och då färre händelser än omgivningen, och har aldrig "
    "varit en hotspot.",
    "oscillating_cold": "Platsen är en kallfläck nu men har tidigare också varit en hotspot.",
    "historical_cold": "Platsen var en kallfläck nästan varje vecka förut, men inte den "
    "senaste veckan.",
    "no_pattern": "Platsen visar inget mönster över veckorna.",
}


def change_label(label: str) -> str:
    """Return the Swedish word for a change label (a ChangeLabel or its value)."""
    return _name(CHANGE_LABELS, label, "change label")


def emerging_class(key: str) -> str:
    """Return the Swedish name of an emerging hotspot pattern, e.g. 'ny hotspot' for new_hot."""
    return _name(EMERGING_CLASSES, key, "emerging hotspot pattern")


def emerging_explained(key: str) -> str:
    """Return what an emerging hotspot pattern means, in one Swedish sentence."""
    return _name(EMERGING_EXPLAINED, key, "emerging hotspot pattern")


def tested_change(direction: str, significant: bool) -> str:
    """A tested change in words: "ökning utöver slumpen" only when the test says so, else
    "ökning som kan vara slump" (and the same for a decrease)."""
    if direction == "same":
        return "ingen förändring"
    word = {"up": "ökning", "down": "minskning"}[direction]
    return f"{word} utöver slumpen" if significant else f"{word} som kan vara slump"


def category_group(code: str, taxonomy: Taxonomy | None = None) -> str:
    """Return the Swedish name of a category group, from the taxonomy (default: the shipped one)."""
    names = {g.code: g.sv for g in (taxonomy or _shipped_taxonomy()).groups}
    return _name(names, code, "category group")


@lru_cache(maxsize=1)
def _shipped_taxonomy() -> Taxonomy:
    """Return data/categories.yaml, read once."""
    return load_taxonomy()


def _name(names: Mapping[str, str], key: str, what: str) -> str:
    """Return names[key]; an unknown key is a programming error, said in a ValueError."""
    if key not in names:
        raise ValueError(f"no Swedish name for the {what} {key!r}; known: {', '.join(names)}")
    return names[key]
