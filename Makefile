# heeldrop: `make run` serves, `make test` runs everything. Both build .venv from the lock files.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
COHORT_ROWS ?= 50000

.PHONY: install install-dev model run test lint bench clean

$(BIN)/uv:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check uv==0.13.9

$(VENV)/.installed: requirements.lock pyproject.toml | $(BIN)/uv
	$(BIN)/uv pip install -q --compile-bytecode --python $(BIN)/python -r requirements.lock
	$(BIN)/uv pip install -q --python $(BIN)/python --no-deps -e .
	touch $@

$(VENV)/.installed-dev: requirements-dev.lock pyproject.toml | $(BIN)/uv
	$(BIN)/uv pip install -q --compile-bytecode --python $(BIN)/python -r requirements-dev.lock
	$(BIN)/uv pip install -q --python $(BIN)/python --no-deps -e .
	touch $(VENV)/.installed $@

install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev

# Train a model from the simulated cohort when no champion is registered, or when this code
# cannot serve it (say, one trained on the inputs of an earlier version).
model: install
	@$(BIN)/heeldrop models check champion || { \
		$(BIN)/heeldrop cohort --rows $(COHORT_ROWS) --seed 1 -o data/cohort.csv && \
		$(BIN)/heeldrop retrain --data data/cohort.csv --promote force; }

run: model
	$(BIN)/heeldrop serve --host $(HOST) --port $(PORT)

lint: install-dev
	$(BIN)/ruff check service tests scripts
	$(BIN)/ruff format --check service tests scripts
	$(BIN)/mypy

# axe-core, the accessibility checker the browser tests inject (pinned in package-lock.json).
node_modules/.package-lock.json: package-lock.json
	@if command -v npm >/dev/null; then npm ci --no-audit --no-fund --ignore-scripts; \
	else echo "npm not found: the browser tests' accessibility checks will be skipped"; fi

test: lint node_modules/.package-lock.json
	$(BIN)/python -m pytest

bench: install-dev
	$(BIN)/python scripts/bench_recommend.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis node_modules test-output
