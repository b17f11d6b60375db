# mynet: build, run and test. `make test` is the one command CI runs (see .ci/run).
SHELL := /bin/bash
SRC := $(shell find src -name '*.ts')

.PHONY: all deps build run test lint typecheck clean

all: build

deps:
	./scripts/install-deps.sh

node_modules: package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch node_modules

dist/main.js: node_modules $(SRC) tsconfig.json tsconfig.build.json
	npm run -s build
	@touch dist/main.js

build: dist/main.js

# Runs the plugin in the foreground as a legacy plugin on /run/docker/plugins/mynet.sock
# (override with MYNET_SOCKET); `docker network create -d mynet` then reaches it.
run: build
	exec node dist/main.js

# Everything, on a fresh machine: installs what is missing, then lint, types, unit, host, e2e.
test: deps
	npm test

lint: node_modules
	npx eslint .

typecheck: node_modules
	npx tsc -p tsconfig.json --noEmit

clean:
	rm -rf dist
