# The README's two commands: `make tour` and `make test`.
VENV ?= .venv
export WORKBENCH_VENV := $(VENV)

.PHONY: tour test install install-dev lint bench

tour: install
	$(VENV)/bin/workbench tour

test: install-dev
	$(VENV)/bin/ruff check workbench tests benchmarks labs notebooks scripts
	$(VENV)/bin/mypy
	$(VENV)/bin/python -m pytest

install:
	./scripts/install.sh

install-dev:
	./scripts/install.sh dev

lint: install-dev
	$(VENV)/bin/ruff check workbench tests benchmarks labs notebooks scripts
	$(VENV)/bin/mypy

bench: install-dev
	$(VENV)/bin/python benchmarks/gateway_overhead.py
