# Two commands for a newcomer on Debian/Ubuntu: `make run` and `make test`.
# Both install what they need (virtualenv, Python packages, PostGIS through apt) and use a
# private PostgreSQL cluster under .data/ unless EST_DATABASE_URL is set.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PG_DIR := .data/pg
PG_PORT ?= 54329
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test stop lint typecheck pytest sysdeps testdeps venv clean bench

# The report's PDF needs Pango (WeasyPrint), HarfBuzz's subsetter and a font; its tests read the
# PDF back with poppler-utils (pdftotext, pdftoppm).
REPORT_DEBS := libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core poppler-utils
# The GIS client tests of /ogc run GDAL's OGC API - Features driver (ogrinfo, ogr2ogr) and
# QGIS offscreen (its Python bindings, without the desktop's recommended packages).
GIS_DEBS := gdal-bin
# The map page's tests and bench/bench_map.py drive Debian's chromium through Playwright.
BROWSER_DEBS := chromium
QGIS_DEBS := qgis python3-qgis

sysdeps:
	@if ! ls /usr/share/postgresql/*/extension/postgis.control >/dev/null 2>&1 \
	   || ! $(PYTHON) -c 'import ensurepip' >/dev/null 2>&1 \
	   || ! dpkg -s $(REPORT_DEBS) >/dev/null 2>&1; then \
	  echo "Installing PostgreSQL 15 + PostGIS 3, python3-venv and the report's libraries with apt"; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    postgresql-15-postgis-3 python3-venv $(REPORT_DEBS); \
	fi

# What only the tests need: the GIS clients and the browser.
testdeps: sysdeps
	@if ! dpkg -s $(GIS_DEBS) $(BROWSER_DEBS) >/dev/null 2>&1; then \
	  echo "Installing GDAL and chromium (for the tests) with apt"; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    $(GIS_DEBS) $(BROWSER_DEBS); \
	fi
	@if ! dpkg -s $(QGIS_DEBS) >/dev/null 2>&1; then \
	  echo "Installing QGIS (offscreen, for the /ogc client tests) with apt: a few minutes"; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	    $(QGIS_DEBS); \
	fi

$(BIN)/est: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "Python 3.11 or newer is needed (found $$($(PYTHON) --version))"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

venv: $(BIN)/est

# The service with demo data on http://127.0.0.1:8000 (EST_PORT to change): open it in a browser
# and log in to the map page with the viewer or analyst key `est demo` prints.
run: sysdeps venv
	@set -e; \
	if [ -z "$$EST_DATABASE_URL" ]; then \
	  export EST_DATABASE_URL=$$($(BIN)/python -m app.ops.devdb start $(PG_DIR) --port $(PG_PORT)); \
	  echo "PostgreSQL cluster in $(PG_DIR) at $$EST_DATABASE_URL (make stop stops it)"; \
	fi; \
	$(BIN)/est db init; \
	$(BIN)/est areas load; \
	$(BIN)/est demo; \
	$(BIN)/est serve

stop:
	@[ ! -x $(BIN)/python ] || $(BIN)/python -m app.ops.devdb stop $(PG_DIR)

# Every test: lint, types, then pytest on a throwaway cluster (or on EST_DATABASE_URL).
test: testdeps venv lint typecheck pytest

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv
	$(BIN)/mypy

pytest: venv
	$(BIN)/python -m pytest

# Benchmarks print ratios against peers measured in the same run. CHICAGO is the 2017 crimes
# file of the shared data; the scripts that need it are skipped when it is missing.
CHICAGO ?= ../shared/data/chicago-2017/chicago_crimes_2017.csv.gz
# wrk (Debian) is the load generator of bench_serving.
bench: venv
	$(BIN)/pip install -q -e '.[dev,bench]'
	@command -v wrk >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq wrk; }
	@for b in bench_dbscan bench_kde bench_gistar bench_emerging bench_reads bench_startup bench_recompute bench_map bench_tiles; do \
	  echo "== $$b"; $(BIN)/python bench/$$b.py || exit 1; done
	@if [ -f "$(CHICAGO)" ]; then \
	  for b in bench_readers bench_ingest evaluate_chicago bench_serving; do \
	    echo "== $$b"; $(BIN)/python bench/$$b.py "$(CHICAGO)" || exit 1; done; \
	else echo "$(CHICAGO) not found: skipping the Chicago benchmarks"; fi

clean: stop
	rm -rf $(VENV) .data .pytest_cache .mypy_cache .ruff_cache
