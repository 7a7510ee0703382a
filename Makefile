# Two commands do all set-up: `make demo` and `make test` (see README.md); `make test-fast` is the quick tier of tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PRESET ?= demo
SEED ?= 42
DATA_DIR ?= data
# The demo world is clean, so every data-quality check passes. `FAULTS=--faults` plants the simulator's defects
# (listed in DATA_DIR/truth/faults.csv): ingestion quarantines the bad rows, and the marts' blocking checks stop
# the run on what the quarantined versions leave inconsistent (the run then ends failed, by design).
FAULTS ?=
# The warehouse and the landing folder default to DATA_DIR; the Dagster instance (run history, pool limits) lives
# in .dagster_home, set up from orchestration/dagster.yaml.
export WAREHOUSE_PATH ?= $(abspath $(DATA_DIR))/warehouse.duckdb
export LANDING_DIR ?= $(abspath $(DATA_DIR))/landing
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
# Great Expectations' project and HTML Data Docs
export QUALITY_DIR ?= $(abspath $(DATA_DIR))/quality
# The published copy BI tools read: sales.duckdb and parquet/<schema>/<table>.parquet (README, "Publishing and BI tools")
export PUBLISH_DIR ?= $(abspath $(DATA_DIR))/published
# The win-probability models (content-hashed artifacts and their JSON model cards), never in git
export MODELS_DIR ?= $(abspath $(DATA_DIR))/models
# The packages are used from the checkout (not installed), also by the worker processes the loaders start.
export PYTHONPATH := $(CURDIR)$(if $(PYTHONPATH),:$(PYTHONPATH))
STAMP := $(VENV)/.installed-$(shell cksum requirements.txt | cut -d' ' -f1)

.PHONY: demo test test-fast lint materialize ui bench venv dagster-home

venv: $(STAMP)

$(STAMP): requirements.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@rm -f $(VENV)/.installed-*
	@touch $@

## demo: create the venv, generate the world (with planted defects) in DATA_DIR when absent, and materialize it;
## the report at the end gives each stage's wall time, the world's generation included
demo: $(STAMP)
	@if [ -f "$(DATA_DIR)/truth/world.json" ]; then \
		echo "using the existing world in $(DATA_DIR) as it is"; world=""; \
	else \
		started=$$(date +%s.%N); \
		$(BIN)/python -m simulator generate --preset $(PRESET) --seed $(SEED) --out $(DATA_DIR) $(FAULTS) || exit $$?; \
		world=$$(awk "BEGIN { print $$(date +%s.%N) - $$started }"); \
	fi; \
	$(MAKE) --no-print-directory materialize DATA_DIR=$(DATA_DIR) WORLD_SECONDS=$$world

dagster-home:
	@mkdir -p $(DAGSTER_HOME)
	@cp orchestration/dagster.yaml $(DAGSTER_HOME)/dagster.yaml

## materialize: run the refresh job once over DATA_DIR (ingest new files, build and test the dbt models, score the
## open deals and forecast bookings (the first run backfills a year), build the models on those, audit, publish
## when every audit passed), report what this run did and each stage's wall time, and regenerate the dbt docs when
## it built a model. When nothing new has landed since the last publication, the run stops at its gate
## (landing/new_files), touches nothing, and the report says so in one line; REBUILD=1 builds, audits and
## publishes all the same (after a change to the dbt project, the suites or the models). First, a run whose
## process was killed is marked failed and its pool slot freed (orchestration/lib/recovery.py). Exits with the run's
## status: a run whose audits failed ends failed, after saying which checks withheld the publication.
materialize: $(STAMP) dagster-home
	@started=$$(date +%s.%N); status=0; \
	$(BIN)/python -m orchestration.lib.recovery || status=$$?; \
	$(BIN)/python -W 'ignore:Function `job_execute_command` is superseded' -m dagster job execute \
		-m orchestration.definitions -j refresh -c orchestration/run_config.yaml \
		$(if $(REBUILD),-c orchestration/rebuild.yaml) || status=$$?; \
	$(BIN)/python -m orchestration.lib.report --warehouse $(WAREHOUSE_PATH) --started-at $$started \
		$(if $(WORLD_SECONDS),--world-seconds $(WORLD_SECONDS)) --dbt $(BIN)/dbt --dbt-project-dir dbt_project \
		|| status=$$?; \
	exit $$status

## ui: the Dagster UI (dagster dev) on http://127.0.0.1:3000 for DATA_DIR, with the sensor and schedule
ui: $(STAMP) dagster-home
	$(BIN)/dagster dev -m orchestration.definitions -h 127.0.0.1 -p 3000

## test: ruff (lint and format) and the whole pytest suite, the slow end-to-end tests included (README, "Tests"), on
## two pytest-xdist workers that each take whole test modules
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

## test-fast: the fast tier for the edit-test loop, in well under a minute: every test that needs no generated world,
## dbt build, Dagster run or server (`pytest -m "not slow"`); `make test` runs these and all the others
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## bench: time each stage at PRESET (default demo); results go in docs/benchmarks.md by hand
bench: $(STAMP)
	$(BIN)/python -m bench run --preset $(PRESET)
