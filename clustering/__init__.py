"""Hotspot methods as estimators on points in metres: no web, no database, no settings."""
