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


def change_label(label: str) -> str:
    """Return the Swedish word for a change label (a ChangeLabel or its value)."""
    return _name(CHANGE_LABELS, label, "change label")


def emerging_class(key: str) -> str:
    """Return the Swedish name of an emerging hotspot pattern, e.g. 'ny hotspot' for new_hot."""
    return _name(EMERGING_CLASSES, key, "emerging hotspot pattern")


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
