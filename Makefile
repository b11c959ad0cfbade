# Realtor MLOps. `make demo` runs it, `make test` tests it; both run the idempotent `make setup` first.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
REQUIREMENTS := requirements-dev.txt constraints.txt $(wildcard */requirements.txt */*/requirements.txt)

.PHONY: setup system-packages services databases test demo lint bench-model bench-ingest bench-serving

setup: system-packages $(VENV)/.installed services databases

system-packages:
	scripts/install-system-packages.sh

# Reinstalls only when a requirements file changed.
$(VENV)/.installed: $(REQUIREMENTS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -r requirements-dev.txt -c constraints.txt
	touch $@

services:
	scripts/system-services.sh start

databases:
	scripts/create-local-databases.sh

test: setup
	$(BIN)/python -m pytest

demo: setup
	$(BIN)/python scripts/demo.py $(DEMO_ARGS)

bench-ingest: setup
	$(BIN)/python Servidor1/pipeline/bench_ingest.py

bench-model:
	PYTHONPATH=. $(BIN)/python Servidor1/pipeline/bench_model.py

# ~2-3 minutes: its own MLflow server and model, then three servers one after another.
bench-serving: setup
	PYTHONPATH=.:Servidor1/pipeline $(BIN)/python Servidor3/bench_serving.py $(BENCH_SERVING_ARGS)

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
