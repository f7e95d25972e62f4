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

.PHONY: install browser demo demo-incremental test test-fast lint format bench faults image clean-state help uv-bootstrap

help:
	@echo "make demo     install if needed, seed the heart data across 4 hospitals, train a federated model"
	@echo "make demo-incremental  the demo, then promote, new rows at two hospitals, retrain, promote only if better"
	@echo "make test     install if needed and run the whole suite (slow tests included)"
	@echo "make lint     ruff check + format check"
	@echo "make bench    orchestration overhead and aggregation throughput"
	@echo "make faults   inject each fault into real runs; print what was lost, duplicated, kept consistent"

uv-bootstrap:
	@python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --user --quiet "uv>=0.5" \
		|| python3 -m pip install --quiet "uv>=0.5"

.venv/.installed: pyproject.toml uv.lock | $(UV_BOOTSTRAP)
	$(UV) sync --frozen --compile-bytecode
	@touch $@

install: .venv/.installed

# Debian's Chromium: the report test opens a task's HTML report headless and screenshots it.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "installing Debian's chromium (the report's browser test)"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium >/dev/null; }

demo: install
	$(RUN) edgefed demo

demo-incremental: install
	$(RUN) edgefed demo --incremental

test: install browser
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

# Each fault injected into real embedded runs; prints fault | what happened | lost | duplicated | consistent.
faults: install
	$(RUN) python -m tests.faults.suite

# The step image (images/README.md). PUSH=1: every platform of PLATFORMS, pushed as one manifest list tagged
# <version> and <version>-<gitsha>. Otherwise the host platform only, loaded into the local engine: `--load`
# cannot hold a multi-platform image.
IMAGE ?= ghcr.io/edgefed/edgefed-step
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml | head -n 1)
TAG ?= $(VERSION)
PLATFORMS ?= linux/amd64,linux/arm64
HOST_PLATFORM ?= linux/$(subst x86_64,amd64,$(subst aarch64,arm64,$(shell uname -m)))
REVISION := $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
IMAGE_BUILD := docker buildx build -f images/Dockerfile --build-arg VERSION=$(VERSION) --build-arg REVISION=$(REVISION)

image:
	@docker buildx version >/dev/null 2>&1 || { echo "docker buildx not found: make image needs a Docker engine with buildx; the Dockerfile is checked offline by \`make test\` (hadolint)" >&2; exit 1; }
	@if [ "$(TAG)" = latest ]; then echo "make image: TAG=latest is never published; manifests name <version> or <version>-<gitsha>" >&2; exit 1; fi
ifeq ($(PUSH),1)
	@git diff --quiet HEAD -- || { echo "make image PUSH=1: uncommitted changes; the tag $(TAG)-$(shell git rev-parse --short=12 HEAD 2>/dev/null) would not name what was built" >&2; exit 1; }
	$(IMAGE_BUILD) --platform $(PLATFORMS) -t $(IMAGE):$(TAG) -t $(IMAGE):$(TAG)-$(shell git rev-parse --short=12 HEAD) --push .
else
	@echo "make image: building $(HOST_PLATFORM) only, loaded as $(IMAGE):$(TAG) (PUSH=1 builds $(PLATFORMS) and pushes)"
	$(IMAGE_BUILD) --platform $(HOST_PLATFORM) -t $(IMAGE):$(TAG) --load .
endif

clean-state:
	$(RUN) edgefed store stop || true
	rm -rf "$${EDGEFED_HOME:-$$HOME/.local/state/edgefed}"
