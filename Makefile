# Realtor MLOps. `make demo` runs it, `make test` tests it; both run the idempotent `make setup` first.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
REQUIREMENTS := requirements-dev.txt constraints.txt $(wildcard */requirements.txt */*/requirements.txt)

.PHONY: setup system-packages services databases test test-system demo lint bench-model bench-ingest bench-serving render load-test

CHECKOV_VENV := .venv-checkov

setup: system-packages $(VENV)/.installed $(CHECKOV_VENV)/.installed services databases

system-packages:
	scripts/install-system-packages.sh

# Reinstalls only when a requirements file changed.
$(VENV)/.installed: $(REQUIREMENTS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -r requirements-dev.txt -c constraints.txt
	touch $@

# checkov's own pins would fight the project's lock, so it gets a venv of its own.
$(CHECKOV_VENV)/.installed: requirements-checkov.txt
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install -q -r requirements-checkov.txt
	touch $@

services:
	scripts/system-services.sh start

databases:
	scripts/create-local-databases.sh

# `make test` includes the three-node system test's main flow (~2 min); `make test-system` runs
# it with every fault (~6 min). Both as root: tests/README.md, "Three-node system test".
test: setup
	$(BIN)/python -m pytest

test-system: setup
	REALTOR_SYSTEM_FULL=1 $(BIN)/python -m pytest -m system -s tests/system

demo: setup
	$(BIN)/python scripts/demo.py $(DEMO_ARGS)

bench-ingest: setup
	$(BIN)/python Servidor1/pipeline/bench_ingest.py

bench-model:
	PYTHONPATH=. $(BIN)/python Servidor1/pipeline/bench_model.py

# Headless Locust run against a running inference API; CSV and HTML reports in LOAD_TEST_REPORTS.
# Fails when the SLO is missed: LOCUST_P95_SLO_MS and LOCUST_MAX_FAILURE_RATIO override the
# locustfile's defaults, e.g. `make load-test LOCUST_USERS=50 LOCUST_P95_SLO_MS=300`.
LOCUST_HOST ?= http://127.0.0.1:8000
LOCUST_USERS ?= 20
LOCUST_SPAWN_RATE ?= 5
LOCUST_RUN_TIME ?= 1m
LOAD_TEST_REPORTS ?= .local/load-test

load-test:
	mkdir -p $(LOAD_TEST_REPORTS)
	$(BIN)/locust -f Servidor3/locust/locustfile.py --headless --host $(LOCUST_HOST) \
		--users $(LOCUST_USERS) --spawn-rate $(LOCUST_SPAWN_RATE) --run-time $(LOCUST_RUN_TIME) \
		--csv $(LOAD_TEST_REPORTS)/load-test --html $(LOAD_TEST_REPORTS)/load-test.html

# ~2-3 minutes: its own MLflow server and model, then three servers one after another.
bench-serving: setup
	PYTHONPATH=.:Servidor1/pipeline $(BIN)/python Servidor3/bench_serving.py $(BENCH_SERVING_ARGS)

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Rewrites each overlay's files generated from topology.yaml, then renders every overlay into
# .local/rendered/<node>.yaml with the venv's kubectl (the machine's /usr/bin/kubectl may differ).
render: $(VENV)/.installed
	$(BIN)/python scripts/render-topology.py
	mkdir -p .local/rendered
	for overlay in Servidor*/k8s/overlays/*/; do \
	  $(BIN)/kubectl kustomize $$overlay > .local/rendered/$$(basename $$overlay).yaml || exit 1; \
	done
