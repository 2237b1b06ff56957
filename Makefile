# Strata's build. `make run` starts a local cluster, `make test` runs every
# test on a fresh machine: it installs the real servers the tests need
# (S3 gateway, Prometheus, ...) from the Go module proxy into .tools/ once.

SHELL := /bin/bash
GO    ?= go

TOOLS_DIR ?= $(CURDIR)/.tools
VERSITYGW_VERSION  := v1.8.0
PROMETHEUS_VERSION := v0.316.0

VERSITYGW  := $(TOOLS_DIR)/versitygw-$(VERSITYGW_VERSION)/versitygw
PROMETHEUS := $(TOOLS_DIR)/prometheus-$(PROMETHEUS_VERSION)/prometheus

# The integration tests find the binaries they start through these.
export STRATA_TEST_BIN        := $(CURDIR)/bin/strata
export STRATA_TEST_VERSITYGW  := $(VERSITYGW)
export STRATA_TEST_PROMETHEUS := $(PROMETHEUS)
# The bucket web UI tests load its pages in a real headless Chromium.
export STRATA_TEST_CHROMIUM   ?= /usr/bin/chromium

GO_SOURCES := $(shell find . -name '*.go' -not -path './.tools/*' 2>/dev/null) go.mod go.sum
TEST_TIMEOUT ?= 40m

.PHONY: all build run test test-unit bench tools fuzz clean test-thanos chromium

all: build

build: bin/strata

bin/strata: $(GO_SOURCES)
	$(GO) build -o $@ ./cmd/strata

run: build
	./bin/strata dev

tools: $(VERSITYGW) $(PROMETHEUS)

$(VERSITYGW):
	mkdir -p $(dir $@)
	GOBIN=$(dir $@) GOFLAGS=-mod=mod $(GO) install github.com/versity/versitygw/cmd/versitygw@$(VERSITYGW_VERSION)

$(PROMETHEUS):
	mkdir -p $(dir $@)
	GOBIN=$(dir $@) GOFLAGS=-mod=mod $(GO) install github.com/prometheus/prometheus/cmd/prometheus@$(PROMETHEUS_VERSION)

# Thanos, for the test that runs a real, unmodified Thanos Query against
# block builders' StoreAPI (`make test-thanos`). Not in `make tools`: a
# cold build is long on two cores. Thanos' go.mod has replace directives,
# which `go install pkg@version` refuses, so the module is downloaded and
# built as a main module, with the newer Go it asks for (fetched by the go
# command through GOTOOLCHAIN) and the build tags of Thanos' own release
# builds: slicelabels, without which its zero-copy labels are corrupt.
THANOS_VERSION   := v0.42.5
THANOS_TOOLCHAIN := go1.27.3
THANOS           := $(TOOLS_DIR)/thanos-$(THANOS_VERSION)/thanos

$(THANOS):
	mkdir -p $(dir $@)
	set -e; src=$$(mktemp -d); cd $$src; \
	GOFLAGS=-mod=mod $(GO) mod download github.com/thanos-io/thanos@$(THANOS_VERSION); \
	cp -r "$$($(GO) env GOMODCACHE)/github.com/thanos-io/thanos@$(THANOS_VERSION)/." .; chmod -R u+w .; \
	GOTOOLCHAIN=$(THANOS_TOOLCHAIN) GOFLAGS=-mod=mod $(GO) build -tags netgo,slicelabels \
	  -ldflags '-X github.com/prometheus/common/version.Version=$(patsubst v%,%,$(THANOS_VERSION))' -o $@ ./cmd/thanos; \
	cd /; rm -rf $$src

test-thanos: $(THANOS)
	STRATA_TEST_THANOS=$(THANOS) STRATA_TEST_REQUIRE_TOOLS=1 $(GO) test -count=1 -run '^TestThanos' -v ./blockbuilder/storeapi/

# Debian's chromium, for the web UI tests; not a Go module, so apt installs
# it (the package lists are refreshed only when the first try fails).
chromium:
	@if [ ! -x /usr/bin/chromium ]; then \
	  SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  $$SUDO apt-get install -y chromium || { $$SUDO apt-get update && $$SUDO apt-get install -y chromium; }; \
	fi

# Unit and integration tests against real processes, then a short run of
# every fuzz target.
test: build tools chromium
	STRATA_TEST_REQUIRE_TOOLS=1 $(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...
	$(MAKE) fuzz FUZZTIME=10s

test-unit:
	$(GO) test -count=1 -short ./...

FUZZTIME ?= 10s
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz' || true); do \
	    echo "fuzz $$pkg $$f ($(FUZZTIME))"; \
	    $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

# `make bench` runs every scenario as real processes loaded by strata
# loadgen and writes bench/results/ (results.md, results.png, results.json,
# CPU and heap profiles); about 20 minutes as set here on two cores, sized
# by BENCH_SERIES, BENCH_DURATION and BENCH_SCENARIOS (e.g. `make bench
# BENCH_SERIES=10000,100000 BENCH_DURATION=15s` for a quick look).
# `make bench-micro` runs the per-sample microbenchmarks of the hot path.
BENCH_SERIES    ?= 10000,100000,1000000
BENCH_DURATION  ?= 30s
BENCH_SCENARIOS ?= blockbuilder,dev,router
BENCH_FLAGS     ?=
BENCH_MICRO_PKGS ?= ./remotewrite/ ./shard/ ./functions/ ./blockbuilder/ ./loadgen/

.PHONY: bench-micro

bench: build
	$(GO) run ./bench/cmd/strata-bench -bin $(CURDIR)/bin/strata -out bench/results \
	  -series $(BENCH_SERIES) -duration $(BENCH_DURATION) -scenarios $(BENCH_SCENARIOS) $(BENCH_FLAGS)

bench-micro:
	mkdir -p bench/results
	set -o pipefail; { echo "# $$(date -u +%FT%TZ), load average $$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null): wall-clock timings, inflated on a busy machine"; \
	  $(GO) test -run '^$$' -bench . -benchmem $(BENCH_MICRO_PKGS); } | tee bench/results/micro.txt

clean:
	rm -rf bin
