# IMS developer commands. Everything runs from .venv; nothing needs activating.
# `make run` and `make test` are all a fresh clone needs (Python 3.11+ and make).

.DEFAULT_GOAL := help

VENV := .venv
PY := $(VENV)/bin/python
# requirements-dev.txt includes requirements.txt; fall back to the latter if it is absent.
REQUIREMENTS := $(firstword $(wildcard requirements-dev.txt) requirements.txt)
# The first Python 3.11+ on PATH; override with `make PYTHON=/path/to/python3.12 install`.
PYTHON ?= $(shell for p in python3.14 python3.13 python3.12 python3.11 python3; do \
	$$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1 && { command -v $$p; break; }; done)
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=
BENCH_ARGS ?=
PUSH_BENCH_ARGS ?=

.PHONY: help install run test lint format bench clean

help: ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 10

install: $(VENV)/.installed ## create .venv and install the pinned dependencies

$(PY):
	@test -n "$(PYTHON)" || { echo "Python 3.11 or newer is needed on PATH (or pass PYTHON=...)" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(PY) requirements.txt $(wildcard requirements-dev.txt)
	$(PY) -m pip install --quiet -r $(REQUIREMENTS)
	@touch $@

run: install ## migrate, create the demo users and a VAPID key, then serve daphne + Celery worker + beat on 127.0.0.1:8000 (Ctrl-C stops all)
	DJANGO_DEBUG=1 $(PY) manage.py migrate --no-input
	DJANGO_DEBUG=1 $(PY) manage.py create_demo_users --base-url http://$(HOST):$(PORT)
	@# Web Push works out of the box: a VAPID key in var/, made once, never replaced.
	DJANGO_DEBUG=1 $(PY) manage.py vapid_keys generate --write --keep-existing
	VENV=$(VENV) HOST=$(HOST) PORT=$(PORT) bin/run-dev

test: install lint ## lint, then run the whole test suite (PYTEST_ARGS="..." to pass options)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: install ## ruff check, ruff format --check, and mypy (messaging/ and notifications/)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: install ## apply ruff format and ruff's safe fixes
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: install ## run the benchmarks: bench/run.py (BENCH_ARGS="...") then bench/push.py (PUSH_BENCH_ARGS="..."); see docs/benchmarks.md
	$(PY) bench/run.py $(BENCH_ARGS)
	$(PY) bench/push.py $(PUSH_BENCH_ARGS)

clean: ## delete local state and caches: var/ (database, broker, beat schedule), bench scratch, caches; keeps .venv
	rm -rf var bench/.var bench/.var-push .pytest_cache .ruff_cache .mypy_cache
	find . -path ./$(VENV) -prune -o -type d -name __pycache__ -exec rm -rf {} +
