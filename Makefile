# Two commands set zhidu up on a fresh clone: `make demo` and `make test`.
SHELL := /bin/bash
VENV ?= .venv
BIN := $(VENV)/bin
# The first interpreter that is Python 3.11 or 3.12 (durable-rules does not import on 3.13).
PYTHON ?= $(shell for p in python3.12 python3.11 python3; do \
	  $$p -c 'import sys; sys.exit(not ((3, 11) <= sys.version_info[:2] < (3, 13)))' 2>/dev/null && { echo $$p; break; }; done)
DEMO_DIR ?= out/demo

.PHONY: demo test lint bench clean venv

$(BIN)/python:
	@test -n "$(PYTHON)" || { echo "zhidu needs Python 3.11 or 3.12 on PATH" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $@

venv: $(VENV)/.installed

demo: venv
	$(BIN)/zhidu demo --dir $(DEMO_DIR)

test: venv
	$(BIN)/python -m pytest -q -p no:cacheprovider -n auto

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: venv
	$(BIN)/python -m tests.bench

clean:
	rm -rf $(VENV) out .pytest_cache .mypy_cache .ruff_cache zhidu.db
