# Two commands for a fresh clone: `make run` (the service) and `make test` (the whole suite).
# Each creates .venv and installs what it needs; re-installs when pyproject.toml changes.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HASH := $(shell $(PYTHON) -c "import hashlib,sys;print(hashlib.sha1(open('pyproject.toml','rb').read()).hexdigest()[:10])")
RUN_STAMP := $(VENV)/.run-$(HASH)
DEV_STAMP := $(VENV)/.dev-$(HASH)

.PHONY: run test lint openapi bench bench-metrics bench-insights bench-integrity bench-webhooks fuzz clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(RUN_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	rm -f $(VENV)/.run-*; touch $@

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.dev-* $(VENV)/.run-*; touch $@ $(RUN_STAMP)

## run: serve the API on http://127.0.0.1:8000 (embedded PostgreSQL unless FEEDBACK_DATABASE_URL)
run: $(RUN_STAMP)
	$(BIN)/feedback-api serve $(ARGS)

## test: lint, type-check and run every test (FEEDBACK_TEST_DATABASE_URL or embedded PostgreSQL)
test: lint
	$(BIN)/pytest $(PYTEST_ARGS)

lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

## openapi: regenerate the committed contract
openapi: $(RUN_STAMP)
	$(BIN)/feedback-api openapi

## bench: measure ingest (see docs/benchmarks.md)
bench: $(DEV_STAMP)
	$(BIN)/python bench/ingest.py $(ARGS)

## bench-metrics: ten million responses, metrics through the API vs raw SQL (docs/benchmarks.md)
bench-metrics: $(DEV_STAMP)
	$(BIN)/python bench/metrics.py $(ARGS)

## bench-insights: re-classify 1M comments on one worker, then the insight reports (docs/benchmarks.md)
bench-insights: $(DEV_STAMP)
	$(BIN)/python bench/insights.py $(ARGS)

## bench-integrity: detectors' precision and recall on injected attacks (docs/benchmarks.md)
bench-integrity: $(DEV_STAMP)
	$(BIN)/python bench/integrity.py $(ARGS)

## bench-webhooks: delivery throughput and lag (see docs/benchmarks.md)
bench-webhooks: $(DEV_STAMP)
	$(BIN)/python bench/webhooks.py $(ARGS)

## fuzz: Schemathesis, every check, against a running API (docs/errors.md, "The contract, fuzzed")
##       make fuzz KEY=fbk_sk_… [URL=http://127.0.0.1:8000] [ARGS="--max-examples 200"]
URL ?= http://127.0.0.1:8000
fuzz: $(DEV_STAMP)
	SCHEMATHESIS_HOOKS=tests.contract_checks $(BIN)/schemathesis run $(URL)/openapi.json \
	  -H "Authorization: Bearer $(KEY)" --checks all \
	  --exclude-checks positive_data_acceptance $(ARGS)

clean:
	rm -rf $(VENV) .feedback-data .mypy_cache .ruff_cache .pytest_cache
