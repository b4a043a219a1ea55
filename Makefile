# rotator — make demo | make test (see README.md)
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
export SAM_CLI_TELEMETRY := 0
export AWS_EC2_METADATA_DISABLED := true

.PHONY: demo test lint unit integration template mariadb mysql postgresql clean

# rotator-client (client/, docs/applications.md) is its own distribution; the tests,
# the soak and the fault matrix's application use it from the same venv.
$(VENV)/.installed: pyproject.toml client/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]" -e "./client[pymysql,sqlalchemy]"
	touch $@

venv: $(VENV)/.installed

# The database servers the integration tests start privately: MariaDB's binaries
# (apt), and MySQL from a Debian sid chroot in /var/cache/rotator (~1 minute the
# first time; skipped when ROTATOR_MYSQL_DSN names a MySQL of your own).
mariadb:
	@scripts/ensure_mariadb.sh

mysql:
	@scripts/ensure_mysql.sh

# PostgreSQL 15 (Debian 12's) and 18 (Debian sid's, in a chroot of its own,
# /var/cache/rotator/postgresql-sid; ~2 minutes the first time), built before the
# integration tier starts, so that no two xdist workers build the chroot at once.
postgresql:
	@scripts/ensure_postgresql.sh

lint: venv
	$(VENV)/bin/ruff check src client tests scripts bench
	$(VENV)/bin/ruff format --check src client tests scripts bench
	$(VENV)/bin/mypy

# -- the test tiers ------------------------------------------------------------------
# make unit (tests/unit: fakes and moto, no server; well under a minute), make integration
# (tests/integration: private MariaDB and MySQL servers with TLS, every engine), make template
# (tests/template: the SAM template, its build, checkov, cfn-lint, the policy simulator);
# make test = lint + all three in one pytest run (the README's and CI's command).
# WORKERS pytest-xdist workers (default 2, the machine's cores; 0: none): each worker starts
# its own private servers, so no two cases share a server's accounts; sam build runs once
# per run, shared by the workers. --dist loadfile keeps a file's cases on one worker: its
# module fixtures (the fault matrix's own servers, checkov's report) are made once, where
# worksteal made them again on each worker and after each steal (measured: checkov 3x).
# ROTATOR_MYSQL_DSN names one server: no workers then.
# BASETEMP=/tmp/pt-x keeps concurrent runs from emptying each other's temp dirs (the
# workers use BASETEMP/popen-gwN). PYTEST_ARGS for more: make unit PYTEST_ARGS="-k lock".
WORKERS ?= $(if $(ROTATOR_MYSQL_DSN),0,2)
BASETEMP ?=
PYTEST_ARGS ?=
PYTEST = $(VENV)/bin/pytest -q $(if $(filter-out 0,$(WORKERS)),-n $(WORKERS) --dist loadfile) \
	$(if $(BASETEMP),--basetemp=$(BASETEMP)) $(PYTEST_ARGS)
TEMPLATE_TOOLS := sam-venv checkov-venv runtime-venv policy-simulator

test: venv mariadb mysql postgresql lint $(TEMPLATE_TOOLS)
	$(PYTEST) tests/unit tests/integration tests/template

unit: venv
	$(PYTEST) tests/unit

integration: venv mariadb mysql postgresql
	$(PYTEST) tests/integration

template: venv mariadb $(TEMPLATE_TOOLS)
	$(PYTEST) tests/template

# make demo DB=mysql: the same rotations on MySQL; DB=postgresql (15) or DB=postgresql18: on PostgreSQL.
DB ?= mariadb
demo: venv $(if $(filter postgresql%,$(DB)),postgresql,$(DB))
	$(PY) scripts/demo.py --db $(DB)

# What a rotation costs (bench/perf.py, docs/performance.md): a private MariaDB and
# moto on 127.0.0.1 only. One section: make bench BENCH_ARGS="--only rotation".
.PHONY: bench
bench: venv
	$(PY) -m bench.perf $(BENCH_ARGS)

# Rotation under live application load (bench/soak.py, docs/reliability.md): 100
# rotations per mode (alternating users; single user, with dual passwords on MySQL)
# on a private MariaDB and a private MySQL, while two rotator-client instances of four
# workers run transactions; moto on 127.0.0.1 only. Smaller: make soak
# SOAK_ARGS="--server mariadb --mode alternating --rotations 20 --apps 1 --workers 2".
.PHONY: soak
soak: venv
	$(PY) -m bench.soak $(SOAK_ARGS)

# The hashes of the Lambda artifact's wheels (src/requirements-lambda.txt, installed with
# --require-hashes by src/Makefile): after changing a pin, relock, review, commit.
.PHONY: lock-lambda
lock-lambda: venv
	$(PY) scripts/lock_lambda_requirements.py

# -- SAM application (template.yaml, src/Makefile, events/, docs/deploy.md) ---------
# aws-sam-cli and checkov pin conflicting versions (boto3, click, packaging), and
# the runtime emulation must hold only what Lambda's python3.13 runtime has: each
# gets its own virtualenv. make build ARCH=x86_64 for an x86_64 function.
.PHONY: sam-venv checkov-venv runtime-venv build validate
SAM_VENV := .venv-sam
CHECKOV_VENV := .venv-checkov
RUNTIME_VENV := .venv-runtime
SAM := $(SAM_VENV)/bin/sam
ARCH ?= arm64
SAM_CLI_VERSION := 1.170.0
CHECKOV_VERSION := 3.3.30
AWSLAMBDARIC_VERSION := 4.2.2
# Lambda runs python3.13: the runtime venv uses the first python3.13 that runs
# (pyenv's included), else python3, on which the smoke test still runs.
RUNTIME_PYTHON ?= $(shell for p in python3.13 $$HOME/.pyenv/versions/3.13*/bin/python3.13 python3; do \
	"$$p" -c "" >/dev/null 2>&1 && { command -v "$$p"; break; }; done)

$(SAM_VENV)/.installed-$(SAM_CLI_VERSION):
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install -q --upgrade pip
	$(SAM_VENV)/bin/pip install -q "aws-sam-cli==$(SAM_CLI_VERSION)"
	touch $@

sam-venv: $(SAM_VENV)/.installed-$(SAM_CLI_VERSION)

$(CHECKOV_VENV)/.installed-$(CHECKOV_VERSION):
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install -q --upgrade pip
	$(CHECKOV_VENV)/bin/pip install -q "checkov==$(CHECKOV_VERSION)"
	touch $@

checkov-venv: $(CHECKOV_VENV)/.installed-$(CHECKOV_VERSION)

# Lambda's runtime client and the boto3 the python3.13 runtime provides: what the
# built artifact runs on in tests/template/test_events.py.
$(RUNTIME_VENV)/.installed-$(AWSLAMBDARIC_VERSION):
	@test -n "$(RUNTIME_PYTHON)" || { echo "no python3.13 or python3 found" >&2; exit 1; }
	$(RUNTIME_PYTHON) -m venv $(RUNTIME_VENV)
	$(RUNTIME_VENV)/bin/pip install -q --upgrade pip
	$(RUNTIME_VENV)/bin/pip install -q "awslambdaric==$(AWSLAMBDARIC_VERSION)" "boto3>=1.35"
	touch $@

runtime-venv: $(RUNTIME_VENV)/.installed-$(AWSLAMBDARIC_VERSION)

# No Docker, no python3.13 needed: src/Makefile cross-installs manylinux wheels.
build: sam-venv runtime-venv
	ROTATOR_ARCH=$(ARCH) PYTHON="$(CURDIR)/$(SAM_VENV)/bin/python" PYC_PYTHON="$(CURDIR)/$(RUNTIME_VENV)/bin/python" \
		$(SAM) build --parameter-overrides Architecture=$(ARCH)

validate: sam-venv checkov-venv
	$(SAM) validate --lint
	$(SAM_VENV)/bin/cfn-lint template.yaml
	CKV_SKIP_PACKAGE_UPDATE_CHECK=true $(CHECKOV_VENV)/bin/checkov --file template.yaml \
		--framework cloudformation --skip-download --compact --quiet

# The policy evaluator of tests/template/test_decisions.py: npm @cloud-copilot/iam-simulate
# (AGPL-3.0), test-only, pinned by tests/policy-simulator/package-lock.json and
# installed into its ignored node_modules; never part of the Lambda artifact.
# Node.js and npm come from Debian when the machine has none.
.PHONY: policy-simulator
POLICY_SIMULATOR := tests/policy-simulator
$(POLICY_SIMULATOR)/node_modules/.installed: $(POLICY_SIMULATOR)/package-lock.json
	@command -v npm >/dev/null || { apt-get update -q && apt-get install -y -q nodejs npm; }
	npm ci --prefix $(POLICY_SIMULATOR) --no-audit --no-fund --ignore-scripts --loglevel=error
	touch $@

policy-simulator: $(POLICY_SIMULATOR)/node_modules/.installed


clean:
	rm -rf $(VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache
	rm -rf $(SAM_VENV) $(CHECKOV_VENV) $(RUNTIME_VENV) $(POLICY_SIMULATOR)/node_modules
