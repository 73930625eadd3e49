# Two commands on a fresh machine:  make run   |   make test
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PACKAGES := -e . -e plugins/sms -e plugins/geolocation -e plugins/marketing -e plugins/accounting
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: install install-test run test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel

install: $(BIN)/python
	$(BIN)/pip install --quiet -c constraints.txt $(PACKAGES)

install-test: $(BIN)/python
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test]' $(PACKAGES)

## Install everything, migrate the SQLite database, load demo data, print the login, serve on :5000.
run: install
	$(BIN)/crm db upgrade
	$(BIN)/crm demo
	$(BIN)/crm run --host $(HOST) --port $(PORT)

## Install everything with test tools and run the whole suite (PostgreSQL when CRM_TEST_DATABASE_URL is set).
test: install-test
	$(BIN)/ruff check crmcore plugins tests benchmarks
	$(BIN)/pytest $(PYTEST_ARGS)

lint: install-test
	$(BIN)/ruff check crmcore plugins tests benchmarks
	$(BIN)/ruff format --check crmcore plugins tests benchmarks

bench: install-test
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) instance .pytest_cache
