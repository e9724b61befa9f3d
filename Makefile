# The two commands of the quick start: `make demo` and `make test`.
# Both create .venv with the machine's python3 when it is missing and (re)install the project
# only when pyproject.toml changed, so a second run starts at once.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint postgres clean audit

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
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

test: lint postgres
	$(BIN)/pytest

# Known vulnerabilities in the installed dependency set (pip-audit against PyPI). `make test` runs the
# same check but skips it, saying so, when PyPI's vulnerability data cannot be reached; here that fails.
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
