# Two commands do all set-up: `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PRESET ?= demo
SEED ?= 42
DATA_DIR ?= data
STAMP := $(VENV)/.installed-$(shell cksum requirements.txt | cut -d' ' -f1)

.PHONY: demo test lint materialize bench venv

venv: $(STAMP)

$(STAMP): requirements.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@rm -f $(VENV)/.installed-*
	@touch $@

## demo: create the venv, generate the world in DATA_DIR when absent, and materialize what exists so far
demo: $(STAMP)
	@if [ -f "$(DATA_DIR)/truth/world.json" ]; then \
		echo "using the existing world in $(DATA_DIR) as it is"; \
	else \
		$(BIN)/python -m simulator generate --preset $(PRESET) --seed $(SEED) --out $(DATA_DIR); \
	fi
	@$(MAKE) --no-print-directory materialize DATA_DIR=$(DATA_DIR)

## materialize: everything downstream of the landing files (ingestion, dbt, checks, models arrive with later issues)
materialize: $(STAMP)
	$(BIN)/python -m simulator summary --out $(DATA_DIR)

## test: ruff (lint and format) and the whole pytest suite
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## bench: time each stage at PRESET (default demo); results go in docs/benchmarks.md by hand
bench: $(STAMP)
	$(BIN)/python -m bench run --preset $(PRESET)
