"""Names the hotspot methods give their results, shared with whoever shows them."""

from __future__ import annotations

import enum


class ChangeLabel(enum.StrEnum):
    """How a hotspot changed against the previous run: a successor's label, or `gone`."""

    new = "new"
    grown = "grown"
    shrunk = "shrunk"
    stable = "stable"
    gone = "gone"
