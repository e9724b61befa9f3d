# The two commands of the quick start: `make demo` and `make test`.
# Both create .venv with the machine's python3 when it is missing and (re)install the project
# only when pyproject.toml changed, so a second run starts at once.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint postgres clean audit

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv --upgrade-deps $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@touch $(STAMP)

# The local stack (see `stokline up --help`): Prefect, both sandboxes, receiver, worker. Ctrl-C stops it.
demo: $(STAMP)
	$(BIN)/stokline up

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# PostgreSQL's server binaries: the suite starts its own throwaway server (tests/pg.py). Installed
# from Debian's packages when missing and run as root (CI), else it says what to install.
postgres:
	@bash scripts/ensure-postgres

# The suite's files run on TEST_WORKERS processes (pytest-xdist; a file's tests stay together, so
# its module fixtures start once); the slowest tests are listed at the end.
TEST_WORKERS ?= 4
test: lint postgres
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile --durations=15

# Known vulnerabilities in the installed dependency set (pip-audit against PyPI, and PyPI's project
# JSON for packages at their latest release where per-version data is not served). `make test` runs
# the same check: it fails on a known vulnerability, and skips, naming them, when some packages could
# not be audited; here that fails too.
audit: $(STAMP)
	STOKLINE_AUDIT_REQUIRED=1 $(BIN)/pytest -q -rs tests/security/test_dependency_audit.py

# Benchmarks, on demand only (see benchmarks/README.md): each prints its table and writes
# benchmarks/results/<name>.json, then a summary of every target. The full set takes a while
# (the stock pass at SHOPLINE's real 4 requests/s alone is minutes); bench-quick is a reduced size.
.PHONY: bench bench-quick
bench: $(STAMP)
	$(BIN)/python -m benchmarks.run_all

bench-quick: $(STAMP)
	$(BIN)/python -m benchmarks.run_all --quick

# The reliability campaign (benchmarks/chaos/): the whole stack under hostile faults, its worker
# and receiver killed mid-batch, then the invariants; about 25 minutes, exit 1 if one fails.
# `make test` runs a reduced, in-process version (tests/chaos/).
.PHONY: chaos
chaos: $(STAMP)
	$(BIN)/python -m benchmarks.chaos

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .stokline
