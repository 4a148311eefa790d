"""Profile versions: two changes of one profile at the same time never lose a version."""

from __future__ import annotations

import threading
import uuid

import pytest
from sqlalchemy import Engine

from app.core.errors import Conflict, InvalidInput
from app.runs.profiles import ProfileSettings, find_profile, parse_settings, save_profile

AREA = "2523"  # Gällivare: no other test uses it


def test_a_change_racing_another_is_a_conflict_not_a_lost_version(system_engine: Engine) -> None:
    name = f"race-{uuid.uuid4().hex[:8]}"
    with system_engine.begin() as conn:
        save_profile(conn, AREA, name, ProfileSettings(), organisation_id=None, changed_by="t")
    outcome: list[BaseException | int] = []

    def later_change() -> None:
        try:
            with system_engine.begin() as conn:
                profile, _ = save_profile(
                    conn,
                    AREA,
                    name,
                    ProfileSettings(window_weeks=3),
                    organisation_id=None,
                    changed_by="later",
                )
                outcome.append(profile.version)
        except Conflict as exc:
            outcome.append(exc)

    with system_engine.begin() as first:
        save_profile(
            first, AREA, name, ProfileSettings(window_weeks=2), organisation_id=None, changed_by="t"
        )
        racer = threading.Thread(target=later_change)
        racer.start()
        racer.join(timeout=1)  # it read version 1 and now waits for this transaction's lock
        assert racer.is_alive()
    racer.join(timeout=10)
    assert len(outcome) == 1 and isinstance(outcome[0], Conflict)
    with system_engine.connect() as conn:
        stored = find_profile(conn, AREA, name, None)
    assert stored is not None and stored.version == 2 and stored.settings.window_weeks == 2


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({"methods": {"dbscan": {"eps": 1}}}, "methods.dbscan.eps"),
        ({"cell_size_m": 300}, "cell_size_m"),
        ({"methods": {"kde": {"shares": []}}}, "methods.kde.shares"),
        ([], "document"),
    ],
)
def test_an_invalid_document_names_its_field(document: object, field: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        parse_settings(document, "item 3")  # type: ignore[arg-type]
    assert raised.value.detail.startswith(f"item 3: {field}: ")
    assert raised.value.extra == {"field": field}


def test_a_profile_name_is_checked_before_it_is_stored(system_engine: Engine) -> None:
    with system_engine.begin() as conn, pytest.raises(InvalidInput, match="name"):
        save_profile(conn, AREA, "x" * 65, ProfileSettings(), organisation_id=None, changed_by="t")
