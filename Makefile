# tsrun — `make help` lists the targets.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := build

PREFIX ?= /usr/local
CC ?= cc
CFLAGS_NATIVE := -O2 -g -fPIC -std=gnu11 -Wall -Wextra -Werror -fno-strict-aliasing -D_GNU_SOURCE
NATIVE_SRC := $(filter-out %_test.c %_fuzz.c %_main.c native-helpers/addon%.c native-helpers/noclone3.c,$(wildcard native-helpers/*.c))
# build/tsrun-stage, the sealed stage every clone of the helper execs (native-helpers/stage.h): the
# child's code without the runtime's side (exported API, spawn, bpf), linked static.
STAGE_SRC := native-helpers/stage_main.c $(filter-out native-helpers/api.c native-helpers/spawn.c native-helpers/stage.c native-helpers/bpf.c,$(NATIVE_SRC))
NATIVE_HDR := $(wildcard native-helpers/*.h)
TS_SRC := $(shell find spec runtime shim supervisor scripts -name '*.ts' 2>/dev/null)
ESBUILD := node_modules/.bin/esbuild
# esbuild's flags, plus zod without its translations (scripts/bundle.cjs)
BUNDLE = "$(NODE_BIN)" scripts/bundle.cjs
APT_PACKAGES := busybox-static build-essential libseccomp2 runc
# tsrund's networking runs Debian's CNI plugins, which drive iptables.
APT_PACKAGES += containernetworking-plugins iptables
# What the end-to-end tests need: the engines they drive tsrun with (and crun for comparisons);
# `script` (bsdutils); catatonit as the CRI test's pause process; a real registry, skopeo and
# htpasswd (apache2-utils) for the registry tests.
# make lint's tools, and clang with its libFuzzer runtime for the decoder's fuzz target.
LINT_APT_PACKAGES := shellcheck clang-format
FUZZ_APT_PACKAGES := clang libclang-rt-14-dev
TEST_APT_PACKAGES := containerd podman conmon docker.io crun bsdutils catatonit docker-registry skopeo apache2-utils
STAMP := build/.stamp
NODE_BIN := $(shell readlink -f "$$(command -v node)")
# build/tsrun.node is the C helper as a Node-API addon (native-helpers/addon.c), the one way the
# runtime reaches it (docs/native-helper.md). It needs only node_api.h: the napi_* symbols come
# from the node binary at load time, so no node-gyp and no link against libnode.
# NODE_INCLUDE is the directory holding node_api.h: beside the node on $PATH (official tarballs,
# nvm), or Debian's /usr/include/node.
NODE_INCLUDE ?= $(patsubst %/node_api.h,%,$(firstword $(wildcard $(dir $(NODE_BIN))../include/node/node_api.h /usr/include/node/node_api.h /usr/local/include/node/node_api.h)))

.PHONY: help deps deps-test deps-lint apt-install build native gen check-generated typecheck lint fuzz test test-unit test-native test-root demo install uninstall bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | sort

deps: ## install apt and npm dependencies when missing (apt first: npm builds better-sqlite3 with g++)
	@$(MAKE) -s apt-install PACKAGES="$(APT_PACKAGES)"
	@$(MAKE) -s $(LOCK_STAMP)

deps-test: deps ## also install the engines the end-to-end tests use (containerd, podman, docker.io, crun)
	@$(MAKE) -s apt-install PACKAGES="$(TEST_APT_PACKAGES)"

deps-lint: ## install shellcheck, clang-format and clang's libFuzzer runtime when missing
	@$(MAKE) -s apt-install PACKAGES="$(LINT_APT_PACKAGES) $(FUZZ_APT_PACKAGES)"

apt-install:
	@missing=(); for p in $(PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing+=($$p); done; \
	if [ $${#missing[@]} -gt 0 ]; then \
	  echo "installing: $${missing[*]}"; \
	  if [ "$$(id -u)" != 0 ]; then echo "need root to apt-get install $${missing[*]}" >&2; exit 1; fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$${missing[@]}" >/dev/null; \
	fi

# npm ci runs when package-lock.json's content changed since the last install, not when its
# mtime is newer (a fresh checkout or a git worktree sharing node_modules would reinstall, and
# npm ci empties the directory first). The stamp holds the lock file's hash; it is rewritten
# only by an install, so its mtime moves only then and the targets below rebuild only then.
LOCK_STAMP := node_modules/.tsrun-lock
$(LOCK_STAMP): FORCE
	@want=$$(sha256sum package-lock.json | cut -c1-64); \
	if [ "$$(cat $@ 2>/dev/null)" != "$$want" ] || [ ! -x node_modules/.bin/tsc ]; then \
	  npm ci --no-audit --no-fund --loglevel=error && echo "$$want" > $@; \
	fi

FORCE:

# Generated files (scripts/gen.ts lists them): plan_ops.h from runtime/plan/ops.ts; tsrun.h,
# addon_exports.h and runtime/native/native-lib.ts from runtime/native/exports.ts; the proto
# descriptor supervisor/proto/descriptor.ts from supervisor/proto/schema.ts.
GEN_SRC := scripts/gen.ts scripts/gen-plan-header.ts scripts/gen-native.ts runtime/plan/ops.ts runtime/native/exports.ts runtime/cli/startup/launcher.ts runtime/cli/verbs.ts scripts/gen-proto.ts $(wildcard supervisor/proto/*-schema.ts) supervisor/proto/schema.ts
build/gen.cjs: $(GEN_SRC) | $(LOCK_STAMP)
	@mkdir -p build
	$(ESBUILD) scripts/gen.ts --bundle --platform=node --format=cjs --log-level=warning --outfile=$@

gen: build/gen.cjs ## regenerate plan_ops.h, tsrun.h, addon_exports.h and native-lib.ts from their definitions
	node build/gen.cjs

check-generated: build/gen.cjs ## fail when a generated file is stale
	@node build/gen.cjs --check

native: build/tsrun.node build/tsrun-stage ## build the C helper (the tsrun.node addon and the sealed stage)

build/tsrun-stage: $(STAGE_SRC) $(NATIVE_HDR)
	@mkdir -p build
	@test -e "$$($(CC) -print-file-name=libc.a)" || { echo "build/tsrun-stage is linked static: install libc6-dev (libc.a)" >&2; exit 1; }
	$(CC) $(filter-out -fPIC -g,$(CFLAGS_NATIVE)) -static -s -o $@.tmp $(STAGE_SRC)
	mv $@.tmp $@

# Built beside and renamed into place: a tsrun running meanwhile keeps its mapping of the old file.
build/tsrun.node: native-helpers/addon.c $(NATIVE_SRC) $(NATIVE_HDR)
	@mkdir -p build
	@test -n "$(NODE_INCLUDE)" || { echo "build/tsrun.node needs Node's node_api.h: install node's headers (Debian: libnode-dev) or set NODE_INCLUDE=<dir>" >&2; exit 1; }
	$(CC) $(CFLAGS_NATIVE) -I$(NODE_INCLUDE) -shared -o $@.tmp native-helpers/addon.c $(NATIVE_SRC)
	mv $@.tmp $@

typecheck: $(LOCK_STAMP) ## tsc --noEmit (strict)
	node_modules/.bin/tsc -p tsconfig.json

# The rules of docs/style.md a machine can check, and the layers of CONTRIBUTING.md (eslint.config.mjs).
# The last check keeps the repository standing alone: no tracked file names a path outside it
# (the pattern is written so that it does not match this Makefile itself).
LINT_SH := scripts/*.sh runtime/cli/startup/launcher.sh supervisor/tsctl/startup/launcher.sh .ci/run
LINT_C := $(filter-out native-helpers/plan_ops.h native-helpers/tsrun.h native-helpers/addon_exports.h,$(wildcard native-helpers/*.c native-helpers/*.h))
lint: typecheck ## typecheck, ESLint (style and layer rules), shellcheck, clang-format check, no paths outside the repo
	node_modules/.bin/eslint --max-warnings=0 .
	shellcheck $(LINT_SH)
	clang-format --dry-run --Werror $(LINT_C)
	@if git grep -nIE '/(w)ork/|\.\./(s)hared'; then echo "lint: the files above name a path outside the repository" >&2; exit 1; fi

# bin/tsrun: the CLI's start-up machinery, runtime/cli/startup/README.md. A launcher (written from
# runtime/cli/startup/launcher.sh with the verb lists of runtime/cli/verbs.ts) for two bundles, each
# with a V8 startup snapshot: bin/tsrun-lifecycle.{js,blob} (the lifecycle verbs) and
# bin/tsrun.{js,blob} (everything). bin/tsrun.blob-node records the building node's mtime.
# --snapshot-require (scripts/bundle.cjs) gives the bundles a `require` that works in the snapshot
# builder. Whitespace is minified: every byte of source is in the snapshot. A bundle the builder
# cannot snapshot leaves no blob: tsrun still works, started plainly.
# --no-rehash-snapshot (built and run with it; V8 refuses a snapshot whose flags differ): V8
# otherwise re-hashes every string and hash table of the snapshot with a fresh random seed at each
# start. The cost: every tsrun run of one build shares the seed that build baked in, which anyone
# who can read bin/tsrun.blob can learn, so crafted keys in a config.json could make tsrun's own
# JSON parsing of it slow (hash flooding: CPU time of that one command, nothing more). So the
# blobs are 0600: only root can learn the seed; other users' tsrun runs the plain bundle, with a
# seed per process (as TSRUN_NO_SNAPSHOT=1 does for anyone).
SNAPSHOT_FLAGS := --no-rehash-snapshot
CLI_BUNDLE_FLAGS := --bundle --platform=node --target=node20 --format=cjs --minify-whitespace --external:koffi --log-level=warning --snapshot-require \
  --define:TSRUN_COMMIT='"$(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"'
LAUNCHER := runtime/cli/startup/launcher.sh

bin/tsrun: $(TS_SRC) $(LAUNCHER) scripts/bundle.cjs build/gen.cjs $(LOCK_STAMP)
	@mkdir -p bin
	$(BUNDLE) runtime/cli/startup/entry.ts $(CLI_BUNDLE_FLAGS) --outfile=bin/tsrun.js.tmp
	$(BUNDLE) runtime/cli/startup/entry-lifecycle.ts $(CLI_BUNDLE_FLAGS) --external:yargs --outfile=bin/tsrun-lifecycle.js.tmp
	@# Files are built beside and renamed into place: a tsrun starting meanwhile reads either blob whole.
	mv bin/tsrun.js.tmp bin/tsrun.js
	mv bin/tsrun-lifecycle.js.tmp bin/tsrun-lifecycle.js
	rm -f bin/tsrun.blob.tmp bin/tsrun-lifecycle.blob.tmp bin/tsrun.blob-node.tmp
	"$(NODE_BIN)" $(SNAPSHOT_FLAGS) --snapshot-blob bin/tsrun.blob.tmp --build-snapshot bin/tsrun.js \
	  && "$(NODE_BIN)" $(SNAPSHOT_FLAGS) --snapshot-blob bin/tsrun-lifecycle.blob.tmp --build-snapshot bin/tsrun-lifecycle.js \
	  && chmod 0600 bin/tsrun.blob.tmp bin/tsrun-lifecycle.blob.tmp \
	  && touch -r "$(NODE_BIN)" bin/tsrun.blob-node.tmp \
	  || { rm -f bin/tsrun.blob.tmp bin/tsrun-lifecycle.blob.tmp; echo "warning: no startup snapshot for bin/tsrun.js: tsrun will start slowly" >&2; }
	node build/gen.cjs launcher $(LAUNCHER) "$(NODE_BIN)" "" > $@.tmp && chmod 0755 $@.tmp
	if [ -e bin/tsrun.blob.tmp ]; then mv bin/tsrun.blob.tmp bin/tsrun.blob && mv bin/tsrun-lifecycle.blob.tmp bin/tsrun-lifecycle.blob \
	  && mv bin/tsrun.blob-node.tmp bin/tsrun.blob-node; \
	  else rm -f bin/tsrun.blob bin/tsrun-lifecycle.blob bin/tsrun.blob-node; fi
	@# Smoke test of both bundles through the launcher: an entry point that runs nothing exits 0 silently.
	@v=$$(./$@.tmp --version 2>&1); case "$$v" in "tsrun version "*) ;; *) echo "bin/tsrun --version printed '$$v'" >&2; rm -f $@.tmp; exit 1;; esac
	@v=$$(./$@.tmp --root /nonexistent-tsrun-root state smoke-test 2>&1 || true); case "$$v" in *"container does not exist"*) ;; *) echo "bin/tsrun state of a missing container printed '$$v'" >&2; rm -f $@.tmp; exit 1;; esac
	mv $@.tmp $@

# tsrund, tsrun-shim and tsctl: one bundled file each; native addons stay external, .proto files are inlined as text.
# Whitespace and comments go: node keeps a script's whole source in the heap of every process
# (every shim), and a single non-ASCII character in a comment doubles it (two-byte string).
BUNDLE_FLAGS := --bundle --platform=node --target=node20 --format=cjs --minify-whitespace --external:koffi --external:better-sqlite3 \
  --loader:.proto=text --log-level=warning --banner:js='\#!/usr/bin/env -S -u NODE_EXTRA_CA_CERTS node' \
  --define:TSRUN_COMMIT='"$(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"'
PROTO_SRC := $(shell find shim supervisor -name '*.proto' 2>/dev/null)

bin/tsrund: $(TS_SRC) $(PROTO_SRC) scripts/bundle.cjs $(LOCK_STAMP)
	@mkdir -p bin
	$(BUNDLE) supervisor/main.ts $(BUNDLE_FLAGS) --outfile=$@
	chmod 0755 $@

bin/tsrun-shim: $(TS_SRC) $(PROTO_SRC) scripts/bundle.cjs $(LOCK_STAMP)
	@mkdir -p bin
	$(BUNDLE) shim/main.ts $(BUNDLE_FLAGS) --outfile=$@
	chmod 0755 $@

# bin/tsctl: a launcher (supervisor/tsctl/startup/launcher.sh) for bin/tsctl.js, started from its V8
# startup snapshot bin/tsctl.blob as bin/tsrun is (above: --snapshot-require, --no-rehash-snapshot
# and mode 0600 for the same reasons, the building node's mtime on bin/tsctl.blob-node); the
# builder runs supervisor/tsctl/startup/entry.ts's warm-up. No blob: the launcher runs the plain bundle.
TSCTL_LAUNCHER := supervisor/tsctl/startup/launcher.sh
TSCTL_BUNDLE_FLAGS := --bundle --platform=node --target=node20 --format=cjs --minify-whitespace --external:koffi --external:better-sqlite3 \
  --loader:.proto=text --log-level=warning --snapshot-require \
  --define:TSRUN_COMMIT='"$(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"'

bin/tsctl: $(TS_SRC) $(PROTO_SRC) $(TSCTL_LAUNCHER) scripts/bundle.cjs $(LOCK_STAMP)
	@mkdir -p bin
	$(BUNDLE) supervisor/tsctl/startup/entry.ts $(TSCTL_BUNDLE_FLAGS) --outfile=bin/tsctl.js.tmp
	@# node gives a snapshot's code no dynamic import(): a command would fail only when it reached one
	@if grep -q '[^A-Za-z0-9_$$.]import(' bin/tsctl.js.tmp; then echo "bin/tsctl.js: a dynamic import() (use a static one): $$(grep -o '.\{40\}[^A-Za-z0-9_$$.]import(.\{40\}' bin/tsctl.js.tmp | head -1)" >&2; rm -f bin/tsctl.js.tmp; exit 1; fi
	mv bin/tsctl.js.tmp bin/tsctl.js
	rm -f bin/tsctl.blob.tmp bin/tsctl.blob-node.tmp
	"$(NODE_BIN)" $(SNAPSHOT_FLAGS) --snapshot-blob bin/tsctl.blob.tmp --build-snapshot bin/tsctl.js \
	  && chmod 0600 bin/tsctl.blob.tmp && touch -r "$(NODE_BIN)" bin/tsctl.blob-node.tmp \
	  || { rm -f bin/tsctl.blob.tmp bin/tsctl.blob-node.tmp; echo "warning: no startup snapshot for bin/tsctl.js: tsctl will start slowly" >&2; }
	sed -e 's|@NODE@|$(NODE_BIN)|' -e 's|@DIR@||' $(TSCTL_LAUNCHER) > $@.tmp && chmod 0755 $@.tmp
	if [ -e bin/tsctl.blob.tmp ]; then mv bin/tsctl.blob.tmp bin/tsctl.blob && mv bin/tsctl.blob-node.tmp bin/tsctl.blob-node; \
	  else rm -f bin/tsctl.blob bin/tsctl.blob-node; fi
	@v=$$(./$@.tmp --version 2>&1); case "$$v" in "tsctl version "*) ;; *) echo "bin/tsctl --version printed '$$v'" >&2; rm -f $@.tmp; exit 1;; esac
	mv $@.tmp $@

BINS := bin/tsrun $(if $(wildcard supervisor/main.ts),bin/tsrund) $(if $(wildcard shim/main.ts),bin/tsrun-shim) $(if $(wildcard supervisor/tsctl/main.ts),bin/tsctl)

build: deps check-generated native $(BINS) ## compile the C helper, tsrun, tsrund, tsrun-shim and tsctl into bin/

test-native: build/decode_test ## the C decoder's TAP test
	build/decode_test

build/decode_test: native-helpers/decode_test.c native-helpers/plan.c native-helpers/plan.h native-helpers/plan_ops.h
	@mkdir -p build
	$(CC) $(filter-out -fPIC,$(CFLAGS_NATIVE)) -o $@ native-helpers/decode_test.c native-helpers/plan.c

# A test tool: runs a command with clone3 answering ENOSYS (the helper's clone + cgroup.procs fallback).
build/noclone3: native-helpers/noclone3.c
	@mkdir -p build
	$(CC) $(filter-out -fPIC,$(CFLAGS_NATIVE)) -o $@ native-helpers/noclone3.c

test-unit: $(LOCK_STAMP) build/decode_test ## unit tests and the C decoder's test: no root, no apt, no engines
	npx --no-install tap --disable-coverage --allow-empty-coverage test/unit
	build/decode_test

# The decoder's libFuzzer target, with the seed plans encoded from test/fixtures/spec/good.
build/decode_fuzz: native-helpers/decode_fuzz.c native-helpers/plan.c native-helpers/plan.h native-helpers/plan_ops.h
	@mkdir -p build
	clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -D_GNU_SOURCE -o $@ native-helpers/decode_fuzz.c native-helpers/plan.c

build/fuzz-seeds: scripts/fuzz-seeds.ts $(TS_SRC) $(wildcard test/fixtures/spec/good/*.json) | $(LOCK_STAMP)
	@mkdir -p build
	$(ESBUILD) scripts/fuzz-seeds.ts --bundle --platform=node --format=cjs --log-level=warning --outfile=build/fuzz-seeds.cjs
	rm -rf $@ && node build/fuzz-seeds.cjs $@

fuzz: build/decode_fuzz build/fuzz-seeds ## fuzz the plan decoder for FUZZ_SECONDS (25) from seed plans; prints one TAP line
	bash scripts/fuzz.sh

test: deps-test deps-lint build build/noclone3 build/decode_fuzz build/fuzz-seeds typecheck ## run every test (lint, unit, native, fuzz, and integration as root); ends with "N passed, M failed"
	bash scripts/run-tests.sh

demo: build ## build a busybox bundle and run it with tsrun
	bash scripts/demo.sh

# bin/tsrun is a launcher: bin/tsrun.js, bin/tsrun-lifecycle.js and their snapshots (cp -p keeps the
# timestamp the launcher checks), and so is bin/tsctl (bin/tsctl.js and its snapshot); build/tsrun.node is the helper, and tsrun-stage (beside it, where
# the helper looks for it) the sealed stage its clones exec. koffi binds libseccomp and libc.
INSTALL_BINS := tsrun tsrund tsrun-shim tsctl
install: build ## install tsrun, tsrund, tsrun-shim and tsctl into $(PREFIX)/lib/tsrun, linked from $(PREFIX)/bin
	rm -rf $(PREFIX)/lib/tsrun && mkdir -p $(PREFIX)/lib/tsrun/bin $(PREFIX)/lib/tsrun/build $(PREFIX)/bin
	cp -p bin/tsrun bin/tsrun.js bin/tsrun-lifecycle.js $(PREFIX)/lib/tsrun/bin/ \
	  && { [ ! -e bin/tsrun.blob ] || cp -p bin/tsrun.blob bin/tsrun-lifecycle.blob bin/tsrun.blob-node $(PREFIX)/lib/tsrun/bin/; }
	for b in tsrund tsrun-shim tsctl; do [ ! -e bin/$$b ] || cp -p bin/$$b $(PREFIX)/lib/tsrun/bin/; done
	[ ! -e bin/tsctl.js ] || cp -p bin/tsctl.js $(PREFIX)/lib/tsrun/bin/
	[ ! -e bin/tsctl.blob ] || cp -p bin/tsctl.blob bin/tsctl.blob-node $(PREFIX)/lib/tsrun/bin/
	cp build/tsrun.node build/tsrun-stage $(PREFIX)/lib/tsrun/build/
	mkdir -p $(PREFIX)/lib/tsrun/seccomp && cp test/fixtures/seccomp/docker-default.json $(PREFIX)/lib/tsrun/seccomp/default.json
	mkdir -p $(PREFIX)/lib/tsrun/node_modules
	cp -r node_modules/koffi node_modules/@koromix node_modules/better-sqlite3 node_modules/bindings node_modules/file-uri-to-path $(PREFIX)/lib/tsrun/node_modules/
	for b in $(INSTALL_BINS); do [ ! -e $(PREFIX)/lib/tsrun/bin/$$b ] || ln -sf $(PREFIX)/lib/tsrun/bin/$$b $(PREFIX)/bin/$$b; done
	@# $(PREFIX)/bin/tsrun: the launcher with its directory written in, so no readlink runs per call.
	node build/gen.cjs launcher $(LAUNCHER) "$(NODE_BIN)" "$(PREFIX)/lib/tsrun/bin" > $(PREFIX)/bin/tsrun.tmp \
	  && chmod 0755 $(PREFIX)/bin/tsrun.tmp && mv -f $(PREFIX)/bin/tsrun.tmp $(PREFIX)/bin/tsrun
	@# $(PREFIX)/bin/tsctl likewise: tsctl's launcher with its directory written in.
	[ ! -e bin/tsctl.js ] || { sed -e 's|@NODE@|$(NODE_BIN)|' -e 's|@DIR@|$(PREFIX)/lib/tsrun/bin|' $(TSCTL_LAUNCHER) > $(PREFIX)/bin/tsctl.tmp \
	  && chmod 0755 $(PREFIX)/bin/tsctl.tmp && mv -f $(PREFIX)/bin/tsctl.tmp $(PREFIX)/bin/tsctl; }

uninstall: ## remove what install put in $(PREFIX)
	rm -rf $(PREFIX)/lib/tsrun
	for b in $(INSTALL_BINS); do rm -f $(PREFIX)/bin/$$b; done

# Sections live in bench/sections/ (index.ts lists them); BENCH_ARGS e.g. '--runs 50 --sections cli'.
BENCH_SRC := $(shell find bench -name '*.ts' 2>/dev/null)

build/bench.cjs: $(BENCH_SRC) $(LOCK_STAMP)
	@mkdir -p build
	$(ESBUILD) bench/main.ts --bundle --platform=node --target=node20 --format=cjs --log-level=warning --outfile=$@

bench: deps native bin/tsrun $(filter bin/tsrund bin/tsrun-shim,$(BINS)) build/bench.cjs ## tsrun beside runc and crun, tsrund beside containerd, interleaved (as root); writes bench/RESULTS.md
	node build/bench.cjs $(BENCH_ARGS)

clean: ## remove build outputs
	rm -rf build bin

# The native tsrun-shim (shim/native/, docs/native-shim.md): a small C monitor per container,
# used by tsrund with `"shim": "native"`. Built with the C helper (`make native`).
SHIM_NATIVE_SRC := shim/native/shim.c shim/native/proto.c
LINT_C += $(wildcard shim/native/*.c shim/native/*.h)
native: build/tsrun-shim
# It links the plan executor (the helper's sources without the addon) for SPAWN_PLAN; its clones
# exec build/tsrun-stage beside it, as the addon's do. Static, as the stage: no dynamic loader
# work on the critical path of every Tasks/Create.
build/tsrun-shim: $(SHIM_NATIVE_SRC) shim/native/proto.h $(NATIVE_SRC) $(NATIVE_HDR)
	@mkdir -p build
	$(CC) $(filter-out -fPIC,$(CFLAGS_NATIVE)) -static -Inative-helpers -o $@.tmp $(SHIM_NATIVE_SRC) $(NATIVE_SRC)
	mv $@.tmp $@

test-unit: test-native-shim
test-native-shim: build/shim_proto_test ## the native shim's control-frame decoder test (TAP)
	build/shim_proto_test
build/shim_proto_test: shim/native/proto_test.c shim/native/proto.c shim/native/proto.h
	@mkdir -p build
	$(CC) $(filter-out -fPIC,$(CFLAGS_NATIVE)) -o $@ shim/native/proto_test.c shim/native/proto.c

# The control-frame decoder's libFuzzer target; `make fuzz-shim` runs it for FUZZ_SECONDS (25).
build/shim_proto_fuzz: shim/native/proto_fuzz.c shim/native/proto.c shim/native/proto.h
	@mkdir -p build
	clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -D_GNU_SOURCE -o $@ shim/native/proto_fuzz.c shim/native/proto.c
build/shim-fuzz-seeds: build/shim_proto_test
	rm -rf $@ && mkdir -p $@ && build/shim_proto_test --seeds $@
fuzz-shim: build/shim_proto_fuzz build/shim-fuzz-seeds ## fuzz the native shim's control-frame decoder; prints one TAP line
	FUZZ_TARGET=build/shim_proto_fuzz FUZZ_SEEDS=build/shim-fuzz-seeds FUZZ_WHAT='native shim control-frame decoder' bash scripts/fuzz.sh
.PHONY: test-native-shim fuzz-shim
