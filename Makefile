# edgefed: `make demo` and `make test` do all set-up on a fresh machine.
SHELL := /bin/bash
# uv from PATH; otherwise through the Python that runs make (`python3 -m uv`), installing it from PyPI
# first if needed: the only tool this project bootstraps by itself.
UV ?= $(shell command -v uv 2>/dev/null)
ifeq ($(UV),)
UV := python3 -m uv
UV_BOOTSTRAP := uv-bootstrap
endif
RUN := $(UV) run --frozen
PYTEST_ARGS ?=

.PHONY: install demo test test-fast lint format bench image clean-state help uv-bootstrap

help:
	@echo "make demo     install if needed, seed the heart data across 4 hospitals, train a federated model"
	@echo "make test     install if needed and run the whole suite (slow tests included)"
	@echo "make lint     ruff check + format check"
	@echo "make bench    orchestration overhead and aggregation throughput"

uv-bootstrap:
	@python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --user --quiet "uv>=0.5" \
		|| python3 -m pip install --quiet "uv>=0.5"

.venv/.installed: pyproject.toml uv.lock | $(UV_BOOTSTRAP)
	$(UV) sync --frozen
	@touch $@

install: .venv/.installed

demo: install
	$(RUN) edgefed demo

test: install
	$(RUN) pytest $(PYTEST_ARGS)

test-fast: install
	$(RUN) pytest -m "not slow" $(PYTEST_ARGS)

lint: install
	$(RUN) ruff check .
	$(RUN) ruff format --check .

format: install
	$(RUN) ruff format .
	$(RUN) ruff check --fix .

bench: install
	$(RUN) python tests/bench/bench.py

image:
	DOCKER_BUILDKIT=1 docker build -f images/Dockerfile --build-arg REVISION=$$(git rev-parse HEAD) -t edgefed-step:dev .

clean-state:
	$(RUN) edgefed store stop || true
	rm -rf "$${EDGEFED_HOME:-$$HOME/.local/state/edgefed}"
