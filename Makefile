# The two commands of the quick start: `make demo` and `make test`.
# Set-up is idempotent and cached: the virtual env is rebuilt only when pyproject.toml
# changes, Neo4j's jars are fetched once into ~/.cache/knobs.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export KNOBS_HOME ?= $(CURDIR)/.knobs

.PHONY: setup demo test soak check lint typecheck imports pytest bench services-up services-down clean

setup: $(STAMP) .system-deps
	@$(BIN)/knobs services install

# Debian packages the project runs: PostgreSQL (event-store backend) and a Java 17
# runtime for Neo4j. Installed only when missing.
.system-deps:
	@bash scripts/ensure-system-packages.sh

# The llm extra needs llama-cpp-python compiled (about 6 minutes on 2 cores): built once for a
# portable instruction set into ~/.cache/knobs/wheels (scripts/build-llama-wheel.sh says why), so
# a new clone or a reinstall takes seconds.
$(STAMP): pyproject.toml scripts/build-llama-wheel.sh
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (Python 3.11)"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip setuptools wheel
	@bash scripts/build-llama-wheel.sh $(BIN)
	$(BIN)/pip install --quiet -e '.[workers,dev,bench,adapters,llm]'
	@touch $(STAMP)

demo: setup
	@$(BIN)/knobs demo

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy events graph services workers

imports: $(STAMP)
	$(BIN)/lint-imports

pytest: setup
	$(BIN)/pytest

check: lint typecheck imports

test: setup check pytest

# The fault matrix and the hostile-input suites at their full counts (tests/faults.py); `make test`
# runs the same rows with reduced counts.
soak: setup
	KNOBS_SOAK=1 $(BIN)/pytest -m faults -p no:cacheprovider

bench: setup
	$(BIN)/python -m bench.ingest
	$(BIN)/python -m bench.rank
	$(BIN)/python -m bench.influence
	$(BIN)/python -m bench.distill
	$(BIN)/python -m bench.dashboard
	$(BIN)/python -m bench.load

services-up: setup
	$(BIN)/knobs services up

services-down: $(STAMP)
	$(BIN)/knobs services down

clean:
	-$(BIN)/knobs services down
	rm -rf $(VENV) .knobs
