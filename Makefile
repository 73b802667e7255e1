# Everyday commands.  `make run` and `make test` set everything up on first use:
# a virtualenv in .venv (reinstalled when pyproject.toml changes), the Node
# test client in node_modules (reinstalled when package-lock.json changes) and
# the JavaScript client's workspace in clients/js/node_modules (reinstalled
# when clients/js/package-lock.json changes).

PYTHON ?= python3
PYTEST_ARGS ?=
#: Where `make run` (default port 8000) and `make conformance` (3000) listen.
HOST ?= 127.0.0.1
run: PORT ?= 8000
conformance: PORT ?= 3000
#: The ASGI server of `make run` and `make conformance`: uvicorn as production
#: runs it (docs/deployment.md), or daphne (`make run SERVER=daphne`).
SERVER ?= uvicorn

VENV := .venv
VENV_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
JS_DIR := clients/js
JS_STAMP := $(JS_DIR)/node_modules/.installed

.PHONY: run test js-test example conformance lint install bench browser

install: $(VENV_STAMP) $(NODE_STAMP) $(JS_STAMP)

$(VENV_STAMP): pyproject.toml
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	@echo "Installing Python dependencies into $(VENV)..."
	@$(VENV)/bin/python -m pip install -qq -e '.[test]'
	@touch $@

$(NODE_STAMP): package-lock.json
	@echo "Installing the Node test client (npm ci)..."
	@npm ci --no-audit --no-fund --loglevel=error
	@touch $@

$(JS_STAMP): $(JS_DIR)/package-lock.json
	@echo "Installing the JavaScript client's workspace (npm ci in $(JS_DIR))..."
	@cd $(JS_DIR) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# Production's protocol and flags (docs/deployment.md, "Why uvicorn") for one
# local process: uvloop, httptools, the corked WebSocket protocol, no access
# log (request paths carry Parlant tokens); a short graceful shutdown for Ctrl-C.
# tests/integration/test_make_run.py checks them against the documented command.
UVICORN_SERVE = $(VENV)/bin/uvicorn chatsite.asgi:application --host $(HOST) --port $(PORT) \
	--loop uvloop --http httptools --ws channels_socketio.transport.uvicorn_websocket:CorkedWebSocketProtocol \
	--ws-per-message-deflate false --lifespan off --no-access-log --timeout-graceful-shutdown 3
DAPHNE_SERVE = $(VENV)/bin/daphne -b $(HOST) -p $(PORT) --access-log /dev/null chatsite.asgi:application
SERVE = $(if $(filter daphne,$(SERVER)),$(DAPHNE_SERVE),$(UVICORN_SERVE))
ifeq ($(filter uvicorn daphne,$(SERVER)),)
$(error SERVER must be uvicorn or daphne, not '$(SERVER)')
endif

run: install
	@$(VENV)/bin/python manage.py migrate --noinput
	@$(VENV)/bin/python manage.py setup_demo
	@echo "Open http://$(HOST):$(PORT)/ and log in as demo/demo (or guest/guest); the widget for other sites: docs/widget.md. Serving with $(SERVER)."
	@exec $(SERVE)

# Browser tests drive Debian's Chromium (playwright cannot download browsers
# here); installed when missing and we may, otherwise those tests say so.
browser:
	@command -v chromium >/dev/null || [ "$$(id -u)" != 0 ] || \
		(echo "Installing Debian's chromium for the browser tests..." && apt-get update -qq && \
		 DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)

# The JavaScript client: Vitest unit tests, the generated types' check and the type test.
js-test: $(JS_STAMP)
	cd $(JS_DIR) && npm test

# The engine's tests run first, alone: no Django application of ours (channels_socketio/tests/conftest.py).
test: install browser js-test
	$(VENV)/bin/python -m pytest -p no:django -W ignore::pytest.PytestConfigWarning channels_socketio/tests $(PYTEST_ARGS)
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

#: The React example app (clients/js/example) at http://127.0.0.1:5173/, against `make run` on :8000.
example: $(JS_STAMP)
	cd $(JS_DIR) && npm run example

#: Servers and load generator above other processes (needs root; ignored otherwise).
BENCH_ARGS ?= --nice -5

bench: install
	@$(VENV)/bin/python -m pip install -qq -e '.[bench]'
	$(VENV)/bin/python bench/run.py $(BENCH_ARGS)

conformance: $(VENV_STAMP)
	@echo "Conformance mode: Socket.IO at http://$(HOST):$(PORT)/socket.io/, bare Engine.IO echo at http://$(HOST):$(PORT)/engine.io/ ($(SERVER))"
	@CHAT_CONFORMANCE=1 exec $(SERVE)

lint: $(VENV_STAMP)
	$(VENV)/bin/ruff check .
