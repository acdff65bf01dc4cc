# kubetrail — build, demo, tests, benchmarks.
GO        ?= go
BIN       := bin/kubetrail
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
FUZZTIME  ?= 10s
# Fuzz targets as package:Func; CI runs each for FUZZTIME.
FUZZ      := ./filter:FuzzParse ./k8saudit:FuzzReader ./k8saudit:FuzzDecodeEventList ./agentpb:FuzzDecode ./spool:FuzzRecover

.PHONY: all build ui ui-test ui-e2e ui-screenshots demo test unit fuzz e2e bench bench-ui bench-scale generate docs vet clean

all: build

build: ui
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/kubetrail

# The web interface (web/: React, TypeScript, Vite). npm installs exactly what
# web/package-lock.json pins; the build goes to ui/dist/app, which the binary
# embeds (package ui). Rebuilt only when its sources change.
WEB_DEPS := web/node_modules/.package-lock.json
WEB_SRC  := $(shell find web/src web/index.html web/vite.config.ts web/tsconfig.json web/package.json -type f 2>/dev/null)
UI_APP   := ui/dist/app/index.html

ui: $(UI_APP)

$(WEB_DEPS): web/package-lock.json
	cd web && npm ci --no-audit --no-fund
	@touch $@

$(UI_APP): $(WEB_DEPS) $(WEB_SRC)
	cd web && npm run build

# The interface's component tests (Vitest, jsdom).
ui-test: $(WEB_DEPS)
	cd web && npm test

# The explorer in a real browser: Playwright (web/e2e/*.e2e.ts) drives Debian's
# headless Chromium (/usr/bin/chromium, or KT_CHROMIUM; never a downloaded
# browser) against a `kubetrail demo` the tests start on a free port (2h of
# history) and stop at the end. Screenshots, traces of failures and the demo's
# log go to web/e2e/artifacts. ui-screenshots also refreshes docs/screenshots.
PLAYWRIGHT := ./node_modules/.bin/playwright
ui-e2e: build
	cd web && ./node_modules/.bin/tsc -p e2e/tsconfig.json && $(PLAYWRIGHT) test

ui-screenshots: build
	cd web && KT_E2E_DOCS=1 $(PLAYWRIGHT) test

# The main job: a server on the embedded store, fed by a simulated cluster.
demo: build
	$(BIN) demo

# Everything CI checks: vet, generated files up to date, unit and integration
# tests (real DuckDB on disk, real HTTP), a short run of every fuzz target, the
# explorer's browser tests on the demo, and the end-to-end test on a real cluster.
test: vet docs-check ui-test unit fuzz ui-e2e e2e

vet: ui
	$(GO) vet ./...

unit:
	$(GO) test -count=1 ./...

fuzz:
	@set -e; for t in $(FUZZ); do \
		pkg=$${t%%:*}; fn=$${t##*:}; \
		echo "fuzz $$pkg $$fn for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) $$pkg; \
	done

# End to end on a real single-node Kubernetes on this machine (root): etcd,
# kube-apiserver and kubelet (built from e2e/cluster, cached in
# KUBETRAIL_E2E_CACHE, default ~/.cache/kubetrail-e2e; the first build takes minutes),
# containerd, and kubetrail's server and agent; users' kubectl exec and cp found
# through the CLI. Skips without root or tools, except under CI=true.
e2e:
	bash e2e/deps.sh
	$(GO) test -tags e2e -count=1 -v -timeout 45m ./e2e/

# Benchmarks: the sensor's cost to a workload (root; against auditd where it is
# installed), ingest through POST /api/v1/events into DuckDB on disk, and query
# latency (p50) and bytes per event on a stored trail of BENCH_EVENTS events
# (10M and 50M are the sizes we report; trails are cached in $$TMPDIR/kubetrail-bench),
# and the precision and recall of session attribution on the simulator; then the
# explorer's speed (bench-ui).
BENCH_EVENTS ?= 1000000
bench:
	$(GO) test -run '^$$' -bench BenchmarkOverhead -benchtime 5x ./ebpf/
	$(GO) test -run '^$$' -bench BenchmarkSustained -benchtime 1x ./agent/
	$(GO) test -run '^$$' -bench BenchmarkIngest -benchtime 1x -timeout 1h ./http/
	KUBETRAIL_BENCH_EVENTS=$(BENCH_EVENTS) $(GO) test -run '^$$' -bench BenchmarkQueries -benchtime 20x -timeout 3h ./duckdb/
	$(GO) test -run '^$$' -bench BenchmarkAttribution -benchtime 1x -timeout 1h ./duckdb/
	$(GO) test -run '^$$' -bench BenchmarkEvaluate -benchtime 3x ./policy/
	$(MAKE) bench-ui

# The explorer's speed on a large trail: the BENCH_UI_EVENTS benchmark trail
# (cached in $$TMPDIR/kubetrail-bench; built as BenchmarkQueries builds it when
# missing) copied into a fresh data dir and served by `kubetrail server` with no
# retention, and the activity page over the trail's day in headless Chromium:
# first render, scope and time changes (p50, max) against their goals, with the
# API's share of each (web/e2e/bench-ui.bench.ts).
BENCH_UI_EVENTS ?= 10000000
bench-ui: build
	@trail="$${KUBETRAIL_BENCH_DIR:-$${TMPDIR:-/tmp}/kubetrail-bench}/trail-v3-$(BENCH_UI_EVENTS).duckdb"; \
	if [ ! -f "$$trail" ]; then \
		echo "building $$trail (once; it is kept)"; \
		KUBETRAIL_BENCH_EVENTS=$(BENCH_UI_EVENTS) $(GO) test -run '^$$' -bench BenchmarkQueries -benchtime 1x -timeout 3h ./duckdb/ || exit 1; \
	fi; \
	cd web && KT_BENCH_TRAIL="$$trail" BENCH_UI_EVENTS=$(BENCH_UI_EVENTS) $(PLAYWRIGHT) test -c e2e/bench.config.ts

generate:
	cd agentpb && protoc --go_out=. --go_opt=paths=source_relative agent.proto
	$(GO) generate ./ebpf
	$(MAKE) docs

docs: build
	$(BIN) fields -o markdown > docs/fields.md

docs-check: build
	@$(BIN) fields -o markdown | diff -u docs/fields.md - || (echo "docs/fields.md is stale: run 'make docs'"; exit 1)

clean:
	rm -rf bin web/e2e/artifacts
