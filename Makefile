# storefront-graphql: every target installs what it needs first. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
UV_VERSION := 0.13.9
UV := .uv/bin/uv
BIN := .venv/bin
HOST ?= 127.0.0.1
PORT ?= 8000
# uvicorn drops a WebSocket frame over this before buffering it: the same cap as MAX_BODY_BYTES (1 MiB).
WS_MAX_SIZE ?= 1048576
NODE_AUDITS := tests/node
CLIENTS_TS := clients/typescript
CLIENTS_PY := clients/python
export UV_PROJECT_ENVIRONMENT := $(CURDIR)/.venv

.PHONY: help install browser node migrate seed run worker scheduler test lint format typecheck importlint pytest mutation schema schema-check schema-baseline migration bench serve

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(UV):
	$(PYTHON) -m venv .uv
	.uv/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

install: $(UV) ## Install the locked dependencies into .venv
	$(UV) sync --frozen --python $(PYTHON) --quiet
	$(BIN)/python -m api.graphiql

migrate: install ## Apply database migrations (DATABASE_URL, or the embedded SQLite file)
	$(BIN)/alembic upgrade head

seed: migrate ## Load the demo data (development only; idempotent)
	$(BIN)/python -m scripts.seed

run: migrate ## Serve on :8000 with GraphiQL; seeds demo data in development
	@if [ "$${APP_ENV:-development}" = "development" ]; then $(BIN)/python -m scripts.seed; fi
	$(BIN)/uvicorn --factory api.app:create_app --host $(HOST) --port $(PORT) --no-proxy-headers --ws-max-size $(WS_MAX_SIZE)

# Refuse before starting when no Redis is configured (taskiq would restart a worker that exits, forever).
NEEDS_REDIS = $(BIN)/python -c "import sys; from api.settings import get_settings; \
	sys.exit('REDIS_URL is not set: without it \`make run\` runs the tasks in-process' if get_settings().redis_url is None else 0)"

worker: migrate ## Run a task worker (REDIS_URL required; without it `make run` runs the tasks in-process)
	@$(NEEDS_REDIS)
	$(BIN)/taskiq worker api.task_worker:broker --workers 1 --no-configure-logging --shutdown-timeout 25

scheduler: migrate ## Run the scheduler of the periodic jobs: exactly one per deployment (REDIS_URL required)
	@$(NEEDS_REDIS)
	$(BIN)/taskiq scheduler api.task_worker:scheduler --no-configure-logging

test: install browser node clients lint typecheck importlint schema-check pytest ## Lint, type-check and run the whole suite

browser: ## Install headless Chromium (Debian package) for the GraphiQL browser test
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

node: $(NODE_AUDITS)/node_modules/.package-lock.json ## Install the pinned graphql-http audit suite (tests/node)

# npm ci rewrites node_modules/.package-lock.json: reinstalled only when it is missing or the lock changed.
# Node.js and npm come from Debian's packages when missing (`make install` needs neither).
$(NODE_AUDITS)/node_modules/.package-lock.json: $(NODE_AUDITS)/package-lock.json $(NODE_AUDITS)/package.json | npm
	npm ci --prefix $(NODE_AUDITS) --no-audit --no-fund --loglevel=error

npm: ## Install Node.js and npm (Debian packages) when missing: the test suite's JavaScript clients need them
	@command -v npm >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm; }

.PHONY: npm clients codegen

clients: $(CLIENTS_TS)/node_modules/.package-lock.json $(CLIENTS_PY)/.venv/requirements.txt ## Install the codegen tools of the example clients (clients/typescript, clients/python)

$(CLIENTS_TS)/node_modules/.package-lock.json: $(CLIENTS_TS)/package-lock.json $(CLIENTS_TS)/package.json | npm
	npm ci --prefix $(CLIENTS_TS) --no-audit --no-fund --loglevel=error

# ariadne-codegen pins an older graphql-core than the server's: it gets an environment of its own,
# synced only when its lock changed (the copy of the lock in .venv is the stamp).
$(CLIENTS_PY)/.venv/requirements.txt: $(CLIENTS_PY)/requirements.txt | $(UV)
	$(UV) venv --quiet --allow-existing --python $(PYTHON) $(CLIENTS_PY)/.venv
	$(UV) pip sync --quiet --python $(CLIENTS_PY)/.venv/bin/python $<
	cp $< $@

codegen: install clients ## Generate the TypeScript types, the Python client and the trusted-documents manifest from the SDL and examples/operations
	cd $(CLIENTS_TS) && node_modules/.bin/graphql-codegen --config codegen.ts --errors-only
	rm -rf $(CLIENTS_PY)/generated/storefront_client && mkdir -p $(CLIENTS_PY)/generated
	cd $(CLIENTS_PY) && .venv/bin/python -m ariadne_codegen client --config pyproject.toml >/dev/null
	$(BIN)/python -m scripts.trusted_documents

lint: install ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install ## Apply ruff fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: install ## mypy --strict
	$(BIN)/mypy .

importlint: install ## Check the layering contracts
	$(BIN)/lint-imports

pytest: install browser node clients ## Run the tests (TEST_DATABASE_URL selects PostgreSQL; default SQLite)
	$(BIN)/pytest -m "not alone" --cov --cov-report=term
	@# Stall measurements run on their own, untraced: a coverage tracer slows every callback several-fold.
	$(BIN)/pytest -m alone -n 0 --no-cov

mutation: install ## Mutation testing of the unit of work, the services' write paths and validation (slow; not part of `test`)
	$(BIN)/mutmut run --max-children 1
	$(BIN)/mutmut results

schema: install ## Regenerate schema/schema.graphql from the code
	$(BIN)/python -m schema.export

schema-check: install ## Fail on a breaking change to the SDL not acknowledged in schema/acknowledged-changes.toml
	$(BIN)/python -m scripts.schema_check

schema-baseline: install ## Publish the contract: the current SDL becomes schema/baseline.graphql, acknowledgements emptied
	$(BIN)/python -m scripts.schema_check --publish

migration: install ## Autogenerate a migration: make migration name=add_thing
	@test -n "$(name)" || (echo "usage: make migration name=<slug>" && exit 2)
	$(BIN)/alembic revision --autogenerate -m "$(name)"

bench: install ## The benchmark of record (PostgreSQL; see bench/README.md)
	$(MAKE) -C bench run

serve: install ## Production stack here: migrate, then gunicorn with gunicorn.conf.py (DATABASE_URL, REDIS_URL)
	@if [ -z "$${DATABASE_URL:-}" ]; then \
		echo "make serve: DATABASE_URL is not set (e.g. DATABASE_URL=postgresql://user:pass@host:5432/storefront)" >&2; \
		exit 2; \
	fi
	@if [ -z "$${REDIS_URL:-}" ]; then \
		echo "make serve: REDIS_URL is not set: each worker keeps its own rate-limit counters" >&2; \
	fi
	$(BIN)/alembic upgrade head
	exec $(BIN)/gunicorn -c gunicorn.conf.py
