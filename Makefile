# mynet: build, run and test. `make test` is the one command CI runs (see .ci/run).
SHELL := /bin/bash
SRC := $(shell find src -name '*.ts')

.PHONY: all deps build run test test-e2e bench lint typecheck clean

all: build

deps:
	./scripts/install-deps.sh

# npm's own record of the install is the stamp (scripts/install-deps.sh tests the same file), so
# make and the install script agree on whether an install is due.
node_modules/.package-lock.json: package-lock.json
	npm install --no-audit --no-fund --loglevel=error
	@touch $@

dist/main.js: node_modules/.package-lock.json $(SRC) tsconfig.json tsconfig.build.json
	npm run -s build
	@touch dist/main.js

build: dist/main.js

# Runs the plugin in the foreground as a legacy plugin on /run/docker/plugins/mynet.sock
# (override with MYNET_SOCKET); `docker network create -d mynet` then reaches it.
run: build
	exec node dist/main.js

# Everything, on a fresh machine: installs what is missing, then lint, types, unit, and then the
# host tier alongside the e2e tier once per engine (dockerd 20.10, 26.1, 28.5 from Debian's
# archive, all three at once, each in namespaces of its own: scripts/engines.sh).
# MYNET_ENGINES=28.5 make test runs the e2e tier on that engine only. It ends with each part's time
# and result (scripts/test.sh).
test: deps
	npm test

# The e2e tier alone, on the engines of MYNET_ENGINES (default all three).
test-e2e: build
	./scripts/engines.sh test

# Every benchmark in bench/, one after another (about 20 minutes; figures in BENCHMARKS.md).
bench: deps build
	npm run bench

lint: node_modules/.package-lock.json
	npm run -s lint

typecheck: node_modules/.package-lock.json
	npx tsc -p tsconfig.json --noEmit

clean:
	rm -rf dist

# ---- The managed plugin (docker plugin create/enable/push) -----------------------------------
# `make plugin-install` is the one command: base images if missing, image, bundle, install.
# Managed, the driver is named mynet:latest (-d mynet:latest --ipam-driver mynet:latest).
PLUGIN_NAME ?= mynet
PLUGIN_TAG ?= latest
PLUGIN_DIR ?= plugin
PLUGIN_IMAGE ?= mynet-plugin-rootfs:$(PLUGIN_TAG)
# Base images: made locally by scripts/base-image.sh (no registry needed); where a registry is
# reachable, e.g. BUILD_IMAGE=node:20-bookworm-slim RUNTIME_IMAGE=node:20-bookworm-slim.
BUILD_IMAGE ?= mynet-base/node20-build:bookworm
RUNTIME_IMAGE ?= mynet-base/node20:bookworm
# Host directories the plugin mounts (they must exist; plugin-install makes them).
STATE_DIR ?= /var/lib/mynet
ADMIN_DIR ?= /run/mynet
PLUGIN_SETTINGS ?=
REGISTRY ?=
# PLUGIN_IMAGE_TAR=FILE: `make plugin` loads that `docker save` of the image instead of building
# it; BUILD_NETWORK=host: docker build --network host (scripts/plugin.sh).
PLUGIN_IMAGE_TAR ?=
BUILD_NETWORK ?=
PLUGIN_ENV = PLUGIN_NAME='$(PLUGIN_NAME)' PLUGIN_TAG='$(PLUGIN_TAG)' PLUGIN_DIR='$(PLUGIN_DIR)' \
  PLUGIN_IMAGE='$(PLUGIN_IMAGE)' BUILD_IMAGE='$(BUILD_IMAGE)' RUNTIME_IMAGE='$(RUNTIME_IMAGE)' \
  STATE_DIR='$(STATE_DIR)' ADMIN_DIR='$(ADMIN_DIR)' PLUGIN_SETTINGS='$(PLUGIN_SETTINGS)' REGISTRY='$(REGISTRY)' \
  PLUGIN_IMAGE_TAR='$(PLUGIN_IMAGE_TAR)' BUILD_NETWORK='$(BUILD_NETWORK)'

.PHONY: base-images plugin plugin-install plugin-push

base-images:
	BASE_BUILD_IMAGE='$(BUILD_IMAGE)' BASE_RUNTIME_IMAGE='$(RUNTIME_IMAGE)' ./scripts/base-image.sh

# plugin/rootfs (exported from the image the Dockerfile builds) + plugin/config.json.
plugin:
	$(PLUGIN_ENV) ./scripts/plugin.sh build

# Replaces an installed $(PLUGIN_NAME) (disable -f, rm), then creates and enables the new one.
plugin-install: plugin
	$(PLUGIN_ENV) ./scripts/plugin.sh install

# make plugin-push REGISTRY=host:port [PLUGIN_TAG=0.1.0]
plugin-push: plugin
	$(PLUGIN_ENV) ./scripts/plugin.sh push
