"""The HTTP interface: REST under /api/v1, health and readiness."""
