# Liaison's two commands: `make demo` and `make test`. Everything they need is installed
# from the project's own files: the venv from constraints.txt, Apache Kafka from Maven
# Central through deploy/local/pom.xml.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.installed-bench

.PHONY: help install browser broker cluster topics demo test bench chaos check lint typecheck stop lock clean

help:
	@echo "make demo   - set up, start the local Kafka broker, run the quick-start scenario"
	@echo "make test   - set up, start the broker, run every test, ruff and mypy --strict"
	@echo "make bench  - measure Liaison's parts, and the pipeline against its floors (BENCHMARKS.md)"
	@echo "make chaos  - the long seeded fault run on a secured three-broker cluster (RELIABILITY.md)"
	@echo "make stop   - stop the local broker"

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Liaison needs Python 3.11 or newer (set PYTHON=...)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

# The dashboard's end-to-end test drives Debian's chromium (LIAISON_CHROMIUM overrides the
# path): installed with apt-get when missing, or `make test` stops saying what to install.
# Playwright never downloads a browser (never `playwright install`).
browser:
	@deploy/local/ensure-chromium.sh

broker: install
	$(BIN)/liaison broker start

# A secured three-node cluster (TLS, SASL/SCRAM, ACLs) on loopback, for development.
cluster: install
	$(BIN)/liaison cluster start

topics: broker
	$(BIN)/liaison topics apply

demo: topics
	$(BIN)/liaison demo

test: browser broker
	@rm -f .coverage .coverage.*
	$(BIN)/coverage run -m pytest
	@$(BIN)/coverage combine --quiet
	$(BIN)/coverage report
	$(MAKE) check

# matplotlib for the benchmark's chart: installed only for `make bench`.
$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev,bench]'
	@touch $(BENCH_STAMP)

# Speed and memory are measured here, never in the test suite. The pipeline's figures
# against their floors, its JSON and chart go to bench/results/ (BENCHMARKS.md).
bench: broker $(BENCH_STAMP)
	$(BIN)/python -m tests.benchmarks.bench
	$(BIN)/python -m tests.benchmarks.pipeline

# The long fault schedule: its own cluster, publishers, routers, the audit service, faults,
# then the checker. Results go in RELIABILITY.md.
chaos: install
	$(BIN)/python -m tests.chaos --seed 7 --duration 600 --events 5000

check: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

stop:
	@if [ -x $(BIN)/liaison ]; then $(BIN)/liaison broker stop; $(BIN)/liaison cluster stop; fi

# Refresh constraints.txt from a clean venv resolved against pyproject.toml.
lock:
	rm -rf .venv-lock
	$(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install --quiet --disable-pip-version-check '.[dev,bench]'
	( echo "# Exact versions for every install (make uses: pip install -c constraints.txt)."; \
	  echo "# Regenerate with: make lock"; \
	  .venv-lock/bin/python -m pip freeze --exclude liaison ) > constraints.txt
	rm -rf .venv-lock

clean: stop
	rm -rf $(VENV) .liaison .mypy_cache .ruff_cache .pytest_cache .hypothesis .coverage
