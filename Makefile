# Ponte: two commands matter. `make demo` runs the main job on the embedded default (SQLite + sandbox);
# `make test` runs the whole suite against SQLite and PostgreSQL. Both set everything up first.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
export PONTE_TEST_POSTGRES_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test

.PHONY: setup system-packages services test demo lint schemas bench ui chaos clean topology screenshots

$(STAMP): requirements.lock pyproject.toml | system-packages
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements.lock
	$(PY) -m pip install --quiet --no-deps -e .
	@touch $(STAMP)

# bytecode compiled ahead: a process that starts (a CLI call, a Dagster run, the import workers' fork
# server) then loads it instead of compiling every module again where the environment forbids
# writing it (PYTHONDONTWRITEBYTECODE); stale files are recompiled from their source's timestamp
setup: system-packages $(STAMP)
	@$(PY) -m compileall -q -j 0 ponte schemas connectors mappings pipelines orchestration > /dev/null

# Debian packages the PDF renderer and the tests need (pdftotext, qpdf, fonts, Pango, chromium)
system-packages:
	@bash .ci/system-packages

services:
	@bash .ci/services

test: setup services
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -n 2 --dist loadgroup

demo: setup
	$(VENV)/bin/ponte demo

lint: setup
	$(VENV)/bin/ruff check .

schemas: setup
	$(VENV)/bin/ponte schemas export

bench: setup services
	$(PY) -m bench

# every flow under 20 % injected faults, lost/duplicated webhooks and SIGKILLs (CI runs a reduced size)
chaos: setup services
	PONTE_CHAOS_SCALE=full $(PY) -m pytest tests/chaos -q -p no:randomly -s

# the production topology on this machine: PostgreSQL storage, celery workers on Redis, two gateways
topology: setup services
	$(PY) -m pytest tests/deploy -q

ui: setup
	$(VENV)/bin/ponte ui

# docs/screenshots/*.png: Ponte's public pages (the browser tests, saving what they see) and the Dagster UI
# (asset lineage, a warning asset check, the import job's launchpad) after one import run
screenshots: setup
	PONTE_SCREENSHOTS=docs/screenshots $(PY) -m pytest tests/browser -q -p no:cacheprovider
	$(PY) -m tests.browser.screenshots_dagster docs/screenshots

clean:
	rm -rf $(VENV) .ponte .pytest_cache
