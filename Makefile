# The two commands of the README:
#   make demo   installs everything into .venv, fetches the default data and runs the pipeline on it
#   make test   installs everything into .venv (and the Debian packages the tests drive), runs the suite
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(abspath $(VENV))/bin
STAMP := $(VENV)/.installed
WEB_STAMP := web/node_modules/.distill-built

# Telemetry off for every tool we drive; the package sets these too, the Makefile covers the CLIs.
export DO_NOT_TRACK := 1
export DVC_NO_ANALYTICS := 1
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export ORT_DISABLE_TELEMETRY := 1
export GX_ANALYTICS_ENABLED := false
export HF_HUB_DISABLE_TELEMETRY := 1
# No model hub here: the default teacher encoder ships inside a PyPI package.
export HF_HUB_OFFLINE ?= 1
export PREFECT_HOME ?= $(abspath .prefect)
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS ?= 90
# dvc.yaml stages call `python`: make it the venv's.
export PATH := $(BIN):$(PATH)

.PHONY: demo demo-drift test install web system-deps llm-local-install llm-local lock clean
demo: install
	$(BIN)/distill demo

# After `make demo`: shifted traffic, the monitor's breach, and the retrain its drift trigger starts.
demo-drift: install
	$(BIN)/distill demo --drift

test: install system-deps llm-local-install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The real LLM teacher the tests start: llama-server built from the pinned llama-cpp-python sdist (about
# 6-9 minutes on 2 cores, once) and Gemma 3 270M, both cached in .cache/tools (DISTILL_TOOLS_DIR).
llm-local-install: install
	$(BIN)/distill llm-local install

# examples/llm-local end to end: start the server on 127.0.0.1:8080, dvc repro in build/llm-local, stop.
llm-local: llm-local-install
	$(BIN)/distill llm-local example

# Debian packages the tests drive for real (PostgreSQL, promtool, chromium, wrk, a C++ toolchain), when missing.
system-deps:
	bash scripts/system-deps.sh

install: $(STAMP) $(WEB_STAMP)

# The student's web page (web/, served by `distill serve` at /demo/): npm packages from web/package-lock.json,
# then the Vite build into web/dist. ONNXRUNTIME_NODE_INSTALL=skip: onnxruntime-node (the benchmark's Node.js
# runtime) would fetch CUDA binaries from NuGet; its CPU build ships in the npm package.
web: $(WEB_STAMP)

$(WEB_STAMP): web/package.json web/package-lock.json web/vite.config.js web/index.html $(wildcard web/src/*) $(wildcard web/public/*) $(wildcard web/scripts/*)
	@command -v npm >/dev/null || { echo "npm not found: the web page needs Node.js >= 20.19 and npm"; exit 1; }
	cd web && ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund --loglevel=error
	cd web && npm run --silent build -- --logLevel warn
	touch $@

# torch first, pinned: it is the CPU build on this machine kind; the rest from the lock file.
$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -r requirements.lock
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $(STAMP)

# Re-resolve the lock file after changing dependencies in pyproject.toml.
lock:
	$(BIN)/python -m pip freeze --exclude-editable | sed 's/^torch==\(.*\)+cpu$$/torch==\1/' > requirements.lock

clean:
	rm -rf $(VENV) .prefect .pytest_cache web/node_modules web/dist
