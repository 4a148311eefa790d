"""Compute: hotspot analyses on files, backtests, the retention purge; next the nightly runs."""
