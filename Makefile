# Carnet — two commands: `make run` and `make test`. `make help` lists the rest.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RUN_STAMP := $(VENV)/.installed-run
T ?= tests
# The browser the end-to-end tests drive (tests/browser); they are skipped where it is missing.
CHROMIUM ?= $(or $(CARNET_TEST_CHROMIUM),/usr/bin/chromium)

.DEFAULT_GOAL := help
.PHONY: help run test lint fmt typecheck clean screens

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

# What running needs, without the test toolchain (browsers' drivers, S3 mock, linters): a stamp
# of its own, satisfied by a test install that is up to date.
$(RUN_STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@if [ $(STAMP) -nt pyproject.toml ]; then touch $(RUN_STAMP); else \
	  echo "Installing Carnet and what it needs to run (first time only, a minute or two)..."; \
	  $(BIN)/python -m pip install --quiet --disable-pip-version-check -e . && touch $(RUN_STAMP); fi

run: $(RUN_STAMP) ## Set up and serve Carnet with its demo data on http://127.0.0.1:8000
	$(BIN)/carnet db upgrade
	$(BIN)/carnet demo
	exec $(BIN)/carnet serve

test: $(STAMP) lint ## Set up, lint, and run the whole suite on SQLite and PostgreSQL (T=path to focus)
	@test -x "$(CHROMIUM)" || command -v chromium >/dev/null || echo "notice: Chromium not found at $(CHROMIUM): the browser tests (tests/browser) will be skipped, or fail where CI is set (apt-get install chromium)"
	$(BIN)/python -m pytest $(T) --cov --cov-report=term

screens: $(STAMP) ## Refresh the screenshots kept under docs/screens (the phone-first browser tests)
	CARNET_UPDATE_SCREENS=1 $(BIN)/python -m pytest tests/browser/test_phone_first.py tests/browser/test_care_contact.py -q

lint: $(STAMP) ## ruff, mypy, the import contracts and the patient-table lint
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python tests/architecture/patient_tables.py src/carnet

fmt: $(STAMP) ## Format and fix what ruff can
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

clean: ## Remove the venv and local data (var/)
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .coverage
