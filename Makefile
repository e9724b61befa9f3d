# The two commands of the quick start: `make demo` and `make test`.
# Both create .venv with the machine's python3 when it is missing and (re)install the project
# only when pyproject.toml changed, so a second run starts at once.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint clean

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

test: lint
	$(BIN)/pytest

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .stokline
