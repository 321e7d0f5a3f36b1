# bioworkbench: `make demo` sets everything up and runs the demo; `make test` runs the tests.
# Both create .venv with a Python >= 3.12 (scripts/find-python.sh) and install the project first.
SHELL := /bin/bash
VENV ?= .venv
BIN := $(VENV)/bin
DEMO ?= data/demo
KERNEL := bioworkbench
PYTEST_ARGS ?=

.PHONY: demo test test-slow lint format venv kernel bytecode benchmark clean

$(BIN)/python:
	@PY="$$(scripts/find-python.sh)" || exit 1; \
	echo "creating $(VENV) with $$PY ($$($$PY --version))"; \
	"$$PY" -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $@

$(VENV)/.kernel: $(VENV)/.installed
	$(BIN)/python -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "Python (bioworkbench)" >/dev/null
	@touch $@

venv: $(VENV)/.installed
kernel: $(VENV)/.kernel

# The package's bytecode, written before every run: pip does not byte-compile an editable install, and where
# PYTHONDONTWRITEBYTECODE is set (as on CI machines) Python never writes it either, so every process (each
# report kernel, each test subprocess) compiled the package's modules from source again (measured: importing the
# 119 modules of the package's subpackages took 1.05 s from source, 0.52-0.67 s from bytecode). compileall skips
# modules whose bytecode is current, and Python checks each file's timestamp, so an edited module is never run
# from stale bytecode.
bytecode: $(VENV)/.installed
	@$(BIN)/python -m compileall -q -j 0 bioworkbench

# the store make demo fills (parameters/campaign_report/store.yaml reports from it) and the files it ingests
demo: STORE := duckdb:///data/plant.duckdb
demo: EXAMPLES := bioworkbench/instruments/examples
demo: STORE_FILES := $(EXAMPLES)/batch_records.csv $(EXAMPLES)/SampleResults2022-06-28_142558.csv $(EXAMPLES)/roche_cedex_hires_example_1.csv
demo: $(VENV)/.kernel bytecode
	$(BIN)/bioworkbench demo --out $(DEMO) --overwrite
	$(BIN)/bioworkbench dataset nistcho --out data/nistcho --overwrite
	$(BIN)/bioworkbench dataset ambr250 --out data/ambr250 --overwrite
	$(BIN)/bioworkbench demo --out data/demo_live --overwrite --running B14=5 --running B22=7 >/dev/null
	@echo "ingest into the store $(STORE) (appended to, never emptied): the demo campaign, batch records and two instrument exports"
	$(BIN)/bioworkbench ingest $(DEMO) $(STORE_FILES) --store $(STORE)
	@echo "the same files again: each is skipped (already ingested)"
	$(BIN)/bioworkbench ingest $(DEMO) $(STORE_FILES) --store $(STORE)
	$(BIN)/bioworkbench run parameters/campaign_report parameters/batch_report parameters/growth_report parameters/doe_report parameters/stability_report parameters/twin_report -o reports
	@echo "Operator dashboard (two batches running): $(BIN)/bioworkbench serve --campaign data/demo_live, then open http://127.0.0.1:5006"

test: $(VENV)/.kernel bytecode
	@bash scripts/ensure-chromium.sh
	@bash scripts/ensure-postgres.sh
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-slow: $(VENV)/.kernel bytecode
	$(BIN)/python -m pytest -m slow $(PYTEST_ARGS)

lint: $(VENV)/.installed
	$(BIN)/ruff check bioworkbench tests benchmarks notebooks
	$(BIN)/ruff format --check bioworkbench tests benchmarks notebooks
	$(BIN)/lint-imports --no-cache --no-logo
	$(BIN)/nbstripout --verify notebooks/*.ipynb

format: $(VENV)/.installed
	$(BIN)/ruff format bioworkbench tests benchmarks notebooks
	$(BIN)/ruff check --fix bioworkbench tests benchmarks notebooks
	$(BIN)/nbstripout notebooks/*.ipynb

benchmark: $(VENV)/.installed
	$(BIN)/python benchmarks/bench_campaign.py

clean:
	rm -rf $(VENV) data reports .pytest_cache .ruff_cache
