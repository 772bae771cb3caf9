# pixport: `make run` starts everything, `make test` runs the whole suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PROTOS := $(shell find proto -name '*.proto')
GENERATED := server/pixport/v1/import_service_pb2.py build/pixport.pb build/openapi.json
BUF := node_modules/.bin/buf

.PHONY: run test unit e2e protos lint typecheck buf-lint buf-breaking bench postgres-check clean browser

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

$(GENERATED): $(STAMP) $(PROTOS) gateway/protos.py gateway/openapi.py
	$(BIN)/python -m gateway.protos

protos: $(GENERATED)

# PostgreSQL's server binaries are needed unless DATABASE_URL points at a database.
postgres-check:
	@if [ -z "$$DATABASE_URL" ] && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 \
	    && ! command -v initdb >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "pixport: installing PostgreSQL (apt-get install postgresql)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	  else \
	    echo "pixport: PostgreSQL server not found. Install it (sudo apt-get install postgresql)" \
	         "or set DATABASE_URL." >&2; exit 1; \
	  fi; \
	fi

# The web console's browser test drives Debian's Chromium and its driver (never a downloaded browser).
browser:
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "pixport: installing chromium and chromium-driver (apt-get)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	  else \
	    echo "pixport: the console test needs /usr/bin/chromium and /usr/bin/chromedriver:" \
	         "sudo apt-get install chromium chromium-driver" >&2; exit 1; \
	  fi; \
	fi

run: $(GENERATED) postgres-check
	exec $(BIN)/pixport up

test: $(GENERATED) postgres-check buf-lint buf-breaking browser lint typecheck
	$(BIN)/python -m pytest -q

unit: $(GENERATED)
	$(BIN)/python -m pytest -q tests/unit

e2e: $(GENERATED) postgres-check browser
	$(BIN)/python -m pytest -q tests/e2e

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(GENERATED)
	$(BIN)/mypy

$(BUF):
	npm install --no-save --silent @bufbuild/buf

buf-lint: $(BUF) $(STAMP)
	$(BIN)/python -m gateway.buf_lint

# Against the previous commit of main (PIXPORT_BREAKING_AGAINST=<rev> overrides); see gateway/buf_breaking.py.
buf-breaking: $(BUF) $(STAMP)
	$(BIN)/python -m gateway.buf_breaking

# The whole system in one run (own stack, own photos); QUICK=1 for a shorter run. Last line: one JSON object.
bench: $(GENERATED) postgres-check
	PYTHONPATH=server:. $(BIN)/python -m bench.run $(if $(QUICK),--quick)

clean:
	rm -rf build server/pixport/v1 .pytest_cache .mypy_cache .ruff_cache
