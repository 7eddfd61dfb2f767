# tsrun — `make help` lists the targets.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := build

PREFIX ?= /usr/local
CC ?= cc
CFLAGS_NATIVE := -O2 -g -fPIC -std=gnu11 -Wall -Wextra -Werror -fno-strict-aliasing -D_GNU_SOURCE
NATIVE_SRC := $(filter-out %_test.c %_fuzz.c,$(wildcard native-helpers/*.c))
NATIVE_HDR := $(wildcard native-helpers/*.h)
TS_SRC := $(shell find spec runtime shim supervisor scripts -name '*.ts' 2>/dev/null)
ESBUILD := node_modules/.bin/esbuild
APT_PACKAGES := busybox-static build-essential libseccomp2 runc
STAMP := build/.stamp

.PHONY: help deps build native gen check-generated typecheck test test-unit test-native test-root demo install uninstall bench clean lint

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | sort

deps: node_modules/.package-lock.json ## install apt and npm dependencies when missing
	@missing=(); for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing+=($$p); done; \
	if [ $${#missing[@]} -gt 0 ]; then \
	  echo "installing: $${missing[*]}"; \
	  if [ "$$(id -u)" != 0 ]; then echo "need root to apt-get install $${missing[*]}" >&2; exit 1; fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$${missing[@]}" >/dev/null; \
	fi

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error

build/gen-plan-header.cjs: scripts/gen-plan-header.ts runtime/plan/ops.ts | node_modules/.package-lock.json
	@mkdir -p build
	$(ESBUILD) scripts/gen-plan-header.ts --bundle --platform=node --format=cjs --log-level=warning --outfile=$@

gen: build/gen-plan-header.cjs ## regenerate native-helpers/plan_ops.h from runtime/plan/ops.ts
	node build/gen-plan-header.cjs > native-helpers/plan_ops.h

check-generated: build/gen-plan-header.cjs ## fail when plan_ops.h is stale
	@node build/gen-plan-header.cjs | diff -u native-helpers/plan_ops.h - \
	  || { echo "native-helpers/plan_ops.h is stale: run 'make gen'" >&2; exit 1; }

native: build/libtsrun.so ## build the C helper

build/libtsrun.so: $(NATIVE_SRC) $(NATIVE_HDR)
	@mkdir -p build
	$(CC) $(CFLAGS_NATIVE) -shared -o $@ $(NATIVE_SRC)

typecheck: node_modules/.package-lock.json ## tsc --noEmit (strict)
	node_modules/.bin/tsc -p tsconfig.json

bin/tsrun: $(TS_SRC) node_modules/.package-lock.json
	@mkdir -p bin
	$(ESBUILD) runtime/cli/main.ts --bundle --platform=node --target=node20 --format=cjs \
	  --external:koffi --log-level=warning --banner:js='#!/usr/bin/env node' \
	  --define:TSRUN_COMMIT='"$(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"' --outfile=$@
	chmod 0755 $@

# tsrund, tsrun-shim and tsctl: one bundled file each; native addons stay external, .proto files are inlined as text.
BUNDLE_FLAGS := --bundle --platform=node --target=node20 --format=cjs --external:koffi --external:better-sqlite3 \
  --loader:.proto=text --log-level=warning --banner:js='\#!/usr/bin/env node' \
  --define:TSRUN_COMMIT='"$(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"'
PROTO_SRC := $(shell find shim supervisor -name '*.proto' 2>/dev/null)

bin/tsrund: $(TS_SRC) $(PROTO_SRC) node_modules/.package-lock.json
	@mkdir -p bin
	$(ESBUILD) supervisor/main.ts $(BUNDLE_FLAGS) --outfile=$@
	chmod 0755 $@

bin/tsrun-shim: $(TS_SRC) $(PROTO_SRC) node_modules/.package-lock.json
	@mkdir -p bin
	$(ESBUILD) shim/main.ts $(BUNDLE_FLAGS) --outfile=$@
	chmod 0755 $@

bin/tsctl: $(TS_SRC) $(PROTO_SRC) node_modules/.package-lock.json
	@mkdir -p bin
	$(ESBUILD) supervisor/tsctl/main.ts $(BUNDLE_FLAGS) --outfile=$@
	chmod 0755 $@

BINS := bin/tsrun $(if $(wildcard supervisor/main.ts),bin/tsrund) $(if $(wildcard shim/main.ts),bin/tsrun-shim) $(if $(wildcard supervisor/tsctl/main.ts),bin/tsctl)

build: deps check-generated native $(BINS) ## compile the C helper, tsrun, tsrund, tsrun-shim and tsctl into bin/

test-native: build/decode_test ## the C decoder's TAP test
	build/decode_test

build/decode_test: native-helpers/decode_test.c native-helpers/plan.c native-helpers/plan.h native-helpers/plan_ops.h
	@mkdir -p build
	$(CC) $(filter-out -fPIC,$(CFLAGS_NATIVE)) -o $@ native-helpers/decode_test.c native-helpers/plan.c

test: build typecheck ## run every test (unit, native, and integration as root); ends with "N passed, M failed"
	bash scripts/run-tests.sh

demo: build ## build a busybox bundle and run it with tsrun
	bash scripts/demo.sh

install: build ## install bin/tsrun into $(PREFIX)/bin
	rm -rf $(PREFIX)/lib/tsrun && mkdir -p $(PREFIX)/lib/tsrun/bin $(PREFIX)/lib/tsrun/build $(PREFIX)/bin
	cp bin/tsrun $(PREFIX)/lib/tsrun/bin/ && cp build/libtsrun.so $(PREFIX)/lib/tsrun/build/
	mkdir -p $(PREFIX)/lib/tsrun/node_modules && cp -r node_modules/koffi node_modules/@koromix $(PREFIX)/lib/tsrun/node_modules/
	ln -sf $(PREFIX)/lib/tsrun/bin/tsrun $(PREFIX)/bin/tsrun

uninstall: ## remove what install put in $(PREFIX)
	rm -rf $(PREFIX)/lib/tsrun $(PREFIX)/bin/tsrun

clean: ## remove build outputs
	rm -rf build bin
