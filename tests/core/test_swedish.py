"""Swedish names: every label and class the methods can emit has one, taken from the code."""

from __future__ import annotations

import numpy as np
import pytest

from app.core.swedish import (
    CHANGE_LABELS,
    EMERGING_CLASSES,
    category_group,
    change_label,
    emerging_class,
)
from app.core.taxonomy import load_taxonomy
from clustering.emerging import PATTERNS, classify
from clustering.labels import ChangeLabel


def test_every_change_label_has_a_swedish_word() -> None:
    assert set(CHANGE_LABELS) == {label.value for label in ChangeLabel}
    assert change_label(ChangeLabel.new) == "ny"
    assert change_label("gone") == change_label(ChangeLabel.gone)


def test_every_emerging_pattern_has_a_swedish_name() -> None:
    assert set(EMERGING_CLASSES) == set(PATTERNS)
    assert emerging_class("new_hot") == "ny hotspot"
    assert emerging_class("new_cold") == "ny kallfläck"


def test_classify_emits_only_patterns_with_a_swedish_name() -> None:
    rng = np.random.default_rng(0)
    steps, n = 12, 20_000
    state = rng.choice(3, size=(steps, n), p=[0.5, 0.3, 0.2])  # neither, hot, cold
    trend_z = rng.normal(0, 3, n)
    trend_p = rng.uniform(0, 0.2, n)
    emitted = set(classify(state == 1, state == 2, trend_z, trend_p).tolist())
    assert emitted <= set(EMERGING_CLASSES)


def test_swedish_names_tell_the_classes_apart() -> None:
    for names in (CHANGE_LABELS, EMERGING_CLASSES):
        assert len(set(names.values())) == len(names)


def test_category_groups_are_named_from_the_taxonomy() -> None:
    taxonomy = load_taxonomy()
    assert taxonomy.groups
    for group in taxonomy.groups:
        assert category_group(group.code) == group.sv
    assert category_group("vald") == "Våld och hot"


def test_an_unknown_key_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="'warm_spot'"):
        emerging_class("warm_spot")
    with pytest.raises(ValueError, match="change label"):
        change_label("vanished")
    with pytest.raises(ValueError, match="category group"):
        category_group("no_such_group")
