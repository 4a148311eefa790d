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

.PHONY: run test stop lint typecheck pytest sysdeps venv clean bench

sysdeps:
	@if ! ls /usr/share/postgresql/*/extension/postgis.control >/dev/null 2>&1 \
	   || ! $(PYTHON) -c 'import ensurepip' >/dev/null 2>&1; then \
	  echo "Installing PostgreSQL 15 + PostGIS 3 and python3-venv with apt"; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    postgresql-15-postgis-3 python3-venv; \
	fi

$(BIN)/est: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "Python 3.11 or newer is needed (found $$($(PYTHON) --version))"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

venv: $(BIN)/est

# The service with demo data on http://127.0.0.1:8000 (EST_PORT to change).
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
test: sysdeps venv lint typecheck pytest

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
bench: venv
	$(BIN)/pip install -q -e '.[dev,bench]'
	@for b in bench_dbscan bench_kde bench_gistar bench_emerging bench_reads bench_startup bench_recompute; do \
	  echo "== $$b"; $(BIN)/python bench/$$b.py || exit 1; done
	@if [ -f "$(CHICAGO)" ]; then \
	  for b in bench_readers bench_ingest evaluate_chicago; do \
	    echo "== $$b"; $(BIN)/python bench/$$b.py "$(CHICAGO)" || exit 1; done; \
	else echo "$(CHICAGO) not found: skipping the Chicago benchmarks"; fi

clean: stop
	rm -rf $(VENV) .data .pytest_cache .mypy_cache .ruff_cache
