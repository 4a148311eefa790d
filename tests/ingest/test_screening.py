"""Free text: valid Swedish personal identity numbers and registration numbers are masked."""

from __future__ import annotations

import pytest

from app.ingest.screening import PLATE_MASK, PNR_MASK, luhn_ok, screen_text


@pytest.mark.parametrize(
    "number", ["811218-9876", "8112189876", "19811218-9876", "198112189876", "811218+9876"]
)
def test_valid_personal_numbers_are_masked_in_every_written_form(number: str) -> None:
    screened = screen_text(f"Anmälare {number} hörd.")
    assert screened.text == f"Anmälare {PNR_MASK} hörd."
    assert screened.personal_numbers == 1


def test_a_samordningsnummer_is_masked_too() -> None:
    # day 03 + 60 = 63; 1 is the check digit that makes the Luhn sum a multiple of ten
    assert luhn_ok("7010632391")
    assert screen_text("id 701063-2391").text == f"id {PNR_MASK}"


@pytest.mark.parametrize("text", ["811218-9877", "ärende 2026-11-20", "tel 0701234567", "LV200"])
def test_numbers_that_are_not_valid_personal_numbers_stay(text: str) -> None:
    screened = screen_text(text)
    assert screened.text == text and screened.personal_numbers == 0


@pytest.mark.parametrize("plate", ["ABC 123", "ABC123", "XYZ 99A", "abc123", "mlb77e"])
def test_registration_numbers_are_masked(plate: str) -> None:
    screened = screen_text(f"Bil {plate} stod kvar.")
    assert screened.text == f"Bil {PLATE_MASK} stod kvar." and screened.plates == 1


@pytest.mark.parametrize(
    "text", ["och 123 personer", "vid 12A", "Väg E22", "IQV 123", "Öst 123", "ABCD 123"]
)
def test_ordinary_swedish_is_not_taken_for_a_plate(text: str) -> None:
    assert screen_text(text).text == text


def test_luhn_matches_a_hand_computation() -> None:
    # Skatteverket's rule: double the 1st, 3rd, … digit, add the digits of every product and
    # the other digits as they are; a valid number sums to a multiple of ten.
    digits = [8, 1, 1, 2, 1, 8, 9, 8, 7, 6]
    total = sum(sum(divmod(d * 2, 10)) if i % 2 == 0 else d for i, d in enumerate(digits))
    assert total % 10 == 0
    assert luhn_ok("8112189876") and not luhn_ok("8112189875")
