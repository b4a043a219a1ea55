# rotator — make demo | make test (see README.md)
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
export SAM_CLI_TELEMETRY := 0
export AWS_EC2_METADATA_DISABLED := true

.PHONY: demo test lint unit integration mariadb clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

venv: $(VENV)/.installed

mariadb:
	@scripts/ensure_mariadb.sh

lint: venv
	$(VENV)/bin/ruff check src tests scripts
	$(VENV)/bin/ruff format --check src tests scripts
	$(VENV)/bin/mypy

test: venv mariadb lint
	$(VENV)/bin/pytest -q

unit: venv
	$(VENV)/bin/pytest -q tests/unit

integration: venv mariadb
	$(VENV)/bin/pytest -q tests/integration

demo: venv mariadb
	$(PY) scripts/demo.py

# What a rotation costs (bench/perf.py, docs/performance.md): a private MariaDB and
# moto on 127.0.0.1 only. One section: make bench BENCH_ARGS="--only rotation".
.PHONY: bench
bench: venv
	$(PY) -m bench.perf $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache
