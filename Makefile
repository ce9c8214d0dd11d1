# wearable_assets: the two set-up commands are `make demo` and `make test` (see README.md).
# Every target installs what it needs and is a fast no-op when nothing changed.

SHELL       := /bin/bash
.SHELLFLAGS := -euo pipefail -c
PYTHON      ?= python3
VENV        := .venv
BIN         := $(VENV)/bin
# The development CLI (simulators, demo) is not part of the installed package: `python -m` run from
# the checkout (make runs recipes here) finds wearable_assets_dev/ next to wearable_assets/.
DEV         := $(BIN)/python -m wearable_assets_dev
STATE       := $(or $(WEARABLES_STATE_DIR),$(CURDIR)/.state)
export DAGSTER_HOME ?= $(STATE)/dagster_home

# Demo size: `make demo PARTICIPANTS=5 DAYS=3` (defaults keep it under a few minutes on 2 cores).
PARTICIPANTS ?= 5
DAYS         ?= 3

.PHONY: help venv db db-stop dagster-home test lint demo dev serve lock clean-state browser ci-smoke

help:
	@echo "make demo    - install, start the local stack, run the main job on the demo cohort, print a summary"
	@echo "make test    - install and run the whole test suite (real TimescaleDB + simulators)"
	@echo "make lint    - ruff (style, imports, likely bugs) and mypy (types of wearable_assets and wearable_assets_dev)"
	@echo "make db      - install/start the project-local TimescaleDB and apply migrations (prints the DSN last)"
	@echo "make db-stop - stop the project-local TimescaleDB"
	@echo "make dev     - the Dagster UI on http://127.0.0.1:3000 (with the simulators)"
	@echo "make serve   - the read API + dashboard on http://127.0.0.1:8000"

# The venv is rebuilt only when the lock file or pyproject change.
$(BIN)/.installed: requirements.lock pyproject.toml
	@bash scripts/python.sh $(PYTHON)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

venv: $(BIN)/.installed

db: venv
	@bash scripts/timescaledb.sh start >&2
	@$(BIN)/wearable-assets db migrate >&2
	@bash scripts/timescaledb.sh dsn

db-stop:
	@bash scripts/timescaledb.sh stop

# DAGSTER_HOME holds dagster.yaml (run queue, pools) and local sqlite storage.
dagster-home: venv
	@mkdir -p "$(DAGSTER_HOME)"
	@cp -u dagster.yaml "$(DAGSTER_HOME)/dagster.yaml"
	@DAGSTER_HOME="$(DAGSTER_HOME)" $(BIN)/python -m wearable_assets.orchestration.pools

browser:
	@if [ -f scripts/browser.sh ]; then bash scripts/browser.sh; fi

test: venv browser
	$(BIN)/pytest

# Checks only, never rewrites files (no formatter): CI fails when either fails.
lint: venv
	$(BIN)/ruff check .
	$(BIN)/mypy wearable_assets wearable_assets_dev

demo: venv db dagster-home
	$(DEV) demo --participants $(PARTICIPANTS) --days $(DAYS)

dev: venv db dagster-home
	$(BIN)/wearable-assets roster sync
	$(DEV) simulators exec -- $(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

serve: venv db
	$(BIN)/wearable-assets serve

# One participant-day through the Dagster CLI against the simulators, as CI does.
ci-smoke: venv db dagster-home
	bash .ci/smoke.sh

# Re-resolve the pinned dependency set after editing pyproject.toml.
lock: venv
	$(BIN)/pip-compile --quiet --extra dev --no-emit-index-url --no-emit-find-links --strip-extras -o requirements.lock pyproject.toml

clean-state: db-stop
	rm -rf "$(STATE)"
