"""Data coming in: areas, incidents (one at a time and in bulk)."""
