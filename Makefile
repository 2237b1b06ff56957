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
PROMTOOL   := $(TOOLS_DIR)/promtool-$(PROMETHEUS_VERSION)/promtool

# VictoriaMetrics single node, a baseline of `make bench` only (not a test
# tool): the benchmark measures it beside Strata in the same run.
VICTORIAMETRICS_VERSION := v1.151.0
VICTORIAMETRICS         := $(TOOLS_DIR)/victoria-metrics-$(VICTORIAMETRICS_VERSION)/victoria-metrics

# Senders of the e2e sender matrix besides Prometheus: vmagent (which
# negotiates its own protocol before falling back to remote-write 1.0 and
# sends labels in exposition order) and an OpenTelemetry Collector (whose
# exporter translates OTLP into remote-write), built from tools/otelcol, a
# module of its own that pins the collector's versions.
VMAGENT_VERSION := $(VICTORIAMETRICS_VERSION)
VMAGENT         := $(TOOLS_DIR)/vmagent-$(VMAGENT_VERSION)/vmagent
OTELCOL_VERSION := $(shell awk '$$1 == "go.opentelemetry.io/collector/otelcol" && $$2 ~ /^v/ { print $$2; exit }' tools/otelcol/go.mod)
OTELCOL         := $(TOOLS_DIR)/otelcol-$(OTELCOL_VERSION)/otelcol

# The AWS Lambda Runtime Interface Emulator runs the router's Lambda
# bootstrap locally for its test, as Lambda's provided runtimes would.
AWS_LAMBDA_RIE_VERSION := v0.0.0-20261030222936-bef5c4ba774d
AWS_LAMBDA_RIE         := $(TOOLS_DIR)/aws-lambda-rie-$(AWS_LAMBDA_RIE_VERSION)/aws-lambda-rie

# Thanos, unmodified: Query against block builders' StoreAPI, Store
# Gateway and Compactor over the bucket of the end-to-end and reliability
# tests. A cold build takes about 7 minutes on two cores, once, in `make
# tools` with the others.
THANOS_VERSION   := v0.42.5
THANOS_TOOLCHAIN := go1.27.3
THANOS           := $(TOOLS_DIR)/thanos-$(THANOS_VERSION)/thanos

# staticcheck, the linter `make test` runs, with its default checks: bugs,
# simplifications, unused code, deprecated APIs, and the style checks that
# are not a matter of taste. No finding is silenced.
STATICCHECK_VERSION := v0.8.2
STATICCHECK         := $(TOOLS_DIR)/staticcheck-$(STATICCHECK_VERSION)/staticcheck

# The chart tests install into a real kube-apiserver with etcd, built from
# tools/kube (a module of its own, which pins the versions), and use helm.
HELM_VERSION := v3.22.0
KUBE_VERSION := $(shell awk '$$1 == "k8s.io/kubernetes" && $$2 ~ /^v/ { print $$2; exit }' tools/kube/go.mod)
ETCD_VERSION := $(shell awk '$$1 == "go.etcd.io/etcd/server/v3" && $$2 ~ /^v/ { print $$2; exit }' tools/kube/go.mod)
KUBE_MAJOR   := $(patsubst v%,%,$(word 1,$(subst ., ,$(KUBE_VERSION))))
KUBE_MINOR   := $(word 2,$(subst ., ,$(KUBE_VERSION)))

HELM           := $(TOOLS_DIR)/helm-$(HELM_VERSION)/helm
KUBE_APISERVER := $(TOOLS_DIR)/kube-$(KUBE_VERSION)/kube-apiserver
KUBECTL        := $(TOOLS_DIR)/kube-$(KUBE_VERSION)/kubectl
ETCD           := $(TOOLS_DIR)/etcd-$(ETCD_VERSION)/etcd

# Without these, helm assumes Kubernetes 1.20 and kubectl reports v0.0.0,
# which fails the kubeVersion checks of charts and of kubectl itself.
HELM_LDFLAGS := -X helm.sh/helm/v3/internal/version.version=$(HELM_VERSION) \
	$(foreach p,helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules,-X $(p).k8sVersionMajor=$(KUBE_MAJOR) -X $(p).k8sVersionMinor=$(KUBE_MINOR))
KUBE_LDFLAGS := $(foreach p,k8s.io/component-base/version k8s.io/client-go/pkg/version,\
	-X $(p).gitVersion=$(KUBE_VERSION) -X $(p).gitMajor=$(KUBE_MAJOR) -X $(p).gitMinor=$(KUBE_MINOR) -X $(p).gitTreeState=clean)

# The integration tests find the binaries they start through these.
export STRATA_TEST_BIN        := $(CURDIR)/bin/strata
export STRATA_TEST_VERSITYGW  := $(VERSITYGW)
export STRATA_TEST_PROMETHEUS := $(PROMETHEUS)
export STRATA_TEST_PROMTOOL   := $(PROMTOOL)
export STRATA_TEST_VMAGENT    := $(VMAGENT)
export STRATA_TEST_OTELCOL    := $(OTELCOL)
export STRATA_TEST_AWS_LAMBDA_RIE := $(AWS_LAMBDA_RIE)
export STRATA_TEST_THANOS     := $(THANOS)
# The bucket web UI tests load its pages in a real headless Chromium.
export STRATA_TEST_CHROMIUM   ?= /usr/bin/chromium
export STRATA_TEST_HELM           := $(HELM)
export STRATA_TEST_KUBE_APISERVER := $(KUBE_APISERVER)
export STRATA_TEST_KUBECTL        := $(KUBECTL)
export STRATA_TEST_ETCD           := $(ETCD)

GO_SOURCES := $(shell find . -name '*.go' -not -path './.tools/*' 2>/dev/null) go.mod go.sum
TEST_TIMEOUT ?= 40m

.PHONY: all build run test fmt-check lint race test-unit bench tools fuzz clean chaos test-thanos chromium image

all: build

build: bin/strata

# GO_TAGS adds build tags: `make build GO_TAGS=gcs` links objstore's native
# GCS client (see bucket/providers.go for why it is not in by default).
GO_TAGS ?=
bin/strata: $(GO_SOURCES)
	$(GO) build -tags '$(GO_TAGS)' -o $@ ./cmd/strata

run: build
	./bin/strata dev

tools: $(VERSITYGW) $(PROMETHEUS) $(VMAGENT) $(OTELCOL) $(HELM) $(KUBE_APISERVER) $(KUBECTL) $(ETCD)

$(VERSITYGW):
	mkdir -p $(dir $@)
	GOBIN=$(dir $@) GOFLAGS=-mod=mod $(GO) install github.com/versity/versitygw/cmd/versitygw@$(VERSITYGW_VERSION)

$(PROMETHEUS):
	mkdir -p $(dir $@)
	GOBIN=$(dir $@) GOFLAGS=-mod=mod $(GO) install github.com/prometheus/prometheus/cmd/prometheus@$(PROMETHEUS_VERSION)

# promtool checks and unit-tests the alerts of monitoring/; `make
# monitoring` writes the rules, dashboards and runbook it defines.
tools: $(PROMTOOL)

$(PROMTOOL):
	mkdir -p $(dir $@)
	GOBIN=$(dir $@) GOFLAGS=-mod=mod $(GO) install github.com/prometheus/prometheus/cmd/promtool@$(PROMETHEUS_VERSION)

.PHONY: monitoring
monitoring:
	$(GO) run ./monitoring/cmd/gen

$(VICTORIAMETRICS):
	mkdir -p $(dir $@)
	GOBIN=$(dir $@) GOFLAGS=-mod=mod $(GO) install github.com/VictoriaMetrics/VictoriaMetrics/app/victoria-metrics@$(VICTORIAMETRICS_VERSION)

$(VMAGENT):
	mkdir -p $(dir $@)
	GOBIN=$(dir $@) GOFLAGS=-mod=mod $(GO) install github.com/VictoriaMetrics/VictoriaMetrics/app/vmagent@$(VMAGENT_VERSION)

# Rebuilt when tools/otelcol changes (a version bump changes the path too).
# The release goes into the binary as ocb's builds have it: the collector
# reports it, and its exporter writes it into every series it sends.
$(OTELCOL): tools/otelcol/go.mod tools/otelcol/go.sum tools/otelcol/main.go
	mkdir -p $(dir $@)
	cd tools/otelcol && CGO_ENABLED=0 $(GO) build -ldflags '-X main.version=$(patsubst v%,%,$(OTELCOL_VERSION))' -o $@ .

tools: $(AWS_LAMBDA_RIE) $(THANOS) $(STATICCHECK)

$(STATICCHECK):
	mkdir -p $(dir $@)
	GOBIN=$(dir $@) GOFLAGS=-mod=mod $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

$(AWS_LAMBDA_RIE):
	mkdir -p $(dir $@)
	GOBIN=$(dir $@) GOFLAGS=-mod=mod $(GO) install github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@$(AWS_LAMBDA_RIE_VERSION)

# `make lambda` builds the router as an AWS Lambda function for the
# provided.al2023 runtime: bin/lambda/strata-lambda-{amd64,arm64}.zip, each
# with the `bootstrap` of cmd/strata-lambda at its root. LAMBDA_FILES adds
# files next to it (name=path ..., e.g. LAMBDA_FILES=hashrings.json=deploy/hashrings.json,
# then STRATA_HASHRINGS_FILE=hashrings.json in the function's environment).
LAMBDA_ARCHS ?= amd64 arm64
LAMBDA_FILES ?=

# The zips are written anew each time (the same inputs give the same
# bytes), so that a change of LAMBDA_FILES alone is never missed.
.PHONY: lambda
lambda: $(foreach a,$(LAMBDA_ARCHS),bin/lambda/$(a)/bootstrap)
	set -e; for a in $(LAMBDA_ARCHS); do \
	  $(GO) run ./cmd/strata-lambda/lambdazip -o bin/lambda/strata-lambda-$$a.zip bootstrap=bin/lambda/$$a/bootstrap $(LAMBDA_FILES); \
	done

# lambda.norpc leaves out the RPC mode only the retired go1.x runtime used.
# The bootstraps stay beside the zips (for aws-lambda-rie, or an image).
bin/lambda/%/bootstrap: $(GO_SOURCES)
	CGO_ENABLED=0 GOOS=linux GOARCH=$* $(GO) build -tags lambda.norpc -trimpath -ldflags '-s -w' -o $@ ./cmd/strata-lambda

# Thanos' go.mod has replace directives, which `go install pkg@version`
# refuses, so the module is downloaded and built as a main module, with
# the newer Go it asks for (fetched by the go command through GOTOOLCHAIN)
# and the build tags of Thanos' own release builds: slicelabels, without
# which its zero-copy labels are corrupt.
$(THANOS):
	mkdir -p $(dir $@)
	set -e; src=$$(mktemp -d); cd $$src; \
	GOTOOLCHAIN=$(THANOS_TOOLCHAIN) GOFLAGS=-mod=mod $(GO) mod download github.com/thanos-io/thanos@$(THANOS_VERSION); \
	cp -r "$$($(GO) env GOMODCACHE)/github.com/thanos-io/thanos@$(THANOS_VERSION)/." .; chmod -R u+w .; \
	GOTOOLCHAIN=$(THANOS_TOOLCHAIN) GOFLAGS=-mod=mod $(GO) build -tags netgo,slicelabels \
	  -ldflags '-X github.com/prometheus/common/version.Version=$(patsubst v%,%,$(THANOS_VERSION))' -o $@ ./cmd/thanos; \
	cd /; rm -rf $$src

# The Thanos Query test alone.
test-thanos: $(THANOS)
	STRATA_TEST_REQUIRE_TOOLS=1 $(GO) test -count=1 -run '^TestThanos' -v ./blockbuilder/storeapi/

$(HELM):
	mkdir -p $(dir $@)
	GOBIN=$(dir $@) GOFLAGS=-mod=mod CGO_ENABLED=0 $(GO) install -ldflags '$(HELM_LDFLAGS)' helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)

# A cold build of these takes several minutes on two cores.
$(KUBE_APISERVER) $(KUBECTL):
	mkdir -p $(dir $@)
	cd tools/kube && CGO_ENABLED=0 $(GO) build -ldflags '$(KUBE_LDFLAGS)' -o $@ k8s.io/kubernetes/cmd/$(notdir $@)

$(ETCD):
	mkdir -p $(dir $@)
	cd tools/kube && CGO_ENABLED=0 $(GO) build -o $@ go.etcd.io/etcd/server/v3

# The container image the Helm chart runs by default. Not part of `make
# test`: this machine may have no Docker engine.
# Its default name is the chart's default image (tag: the chart's appVersion).
IMAGE_TAG ?= $(shell awk '$$1 == "appVersion:" { gsub(/"/, "", $$2); print $$2 }' helm/strata/Chart.yaml)
IMAGE     ?= stratametrics/strata:$(IMAGE_TAG)
image:
	@command -v docker >/dev/null 2>&1 || { echo "make image: docker is not installed; install Docker (or build the Dockerfile with another OCI builder)" >&2; exit 1; }
	@docker info >/dev/null 2>&1 || { echo "make image: docker is installed but no Docker engine answers (docker info failed); start the Docker daemon" >&2; exit 1; }
	docker build --build-arg VERSION=$(IMAGE_TAG) -t $(IMAGE) .

# Debian's chromium, for the web UI tests; not a Go module, so apt installs
# it (the package lists are refreshed only when the first try fails).
chromium:
	@if [ ! -x /usr/bin/chromium ]; then \
	  SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  $$SUDO apt-get install -y chromium || { $$SUDO apt-get update && $$SUDO apt-get install -y chromium; }; \
	fi

# Formatting first (cheap), then unit and integration tests against real
# processes, the objstore file again in a build with native GCS, then a
# short run of every fuzz target.
test: fmt-check build tools chromium lint
	STRATA_TEST_REQUIRE_TOOLS=1 $(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...
	$(GO) test -count=1 -tags gcs -run 'ObjstoreFile' ./bucket/
	$(MAKE) race
	$(MAKE) fuzz

lint: $(STATICCHECK)
	$(STATICCHECK) ./...

# The race detector over the packages with shared state on the write
# path, in -short mode (the tests that start whole clusters of processes
# ran above without it; under the detector they would take most of CI's
# time for little more coverage).
RACE_PACKAGES := ./functions/... ./shard/... ./remotewrite/... ./validation/... ./otlp/... ./blockbuilder/... ./loadgen/... \
	./internal/backoff/... ./internal/filewatch/... ./internal/security/... ./internal/envconfig/...
race:
	$(GO) test -count=1 -race -short $(RACE_PACKAGES)

fmt-check:
	@out=$$("$$($(GO) env GOROOT)/bin/gofmt" -l $$($(GO) list -f '{{.Dir}}' ./...)); \
	  if [ -n "$$out" ]; then echo "not gofmt-formatted (run gofmt -w):" >&2; echo "$$out" >&2; exit 1; fi

test-unit:
	$(GO) test -count=1 -short ./...

# A count of executions, not a duration: with a duration, Go 1.26's fuzz
# coordinator can report its own deadline as a failure ("context deadline
# exceeded", no failing input) when a worker is mid-run as time is up
# (golang/go#75804, fixed in Go 1.27). 20000 runs take 2 to 25 s a target
# on two cores.
FUZZTIME ?= 20000x
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz' || true); do \
	    echo "fuzz $$pkg $$f ($(FUZZTIME))"; \
	    $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

# `make bench` runs every scenario as real processes loaded by strata
# loadgen and writes bench/results/ (results.md, results.svg, results.json,
# CPU and heap profiles); about 17 minutes as set here on two
# cores, sized by BENCH_SERIES, BENCH_DURATION and BENCH_SCENARIOS (e.g.
# `make bench BENCH_SERIES=10000,100000 BENCH_DURATION=15s` for a quick
# look). The baselines, VictoriaMetrics and Prometheus under the same load,
# run at BENCH_BASELINE_SERIES only: the anchors' 100k series, at which
# they scale the targets to this machine. The variants, -unsorted (labels
# sent out of order) and -relabel (the router relabeling every series with
# loadgen.RelabelRules), run at 100k series only too, beside their base
# scenarios; -variant-series in BENCH_FLAGS sets others. The -otlp scenarios (otlp
# for the block builder) send the same series as OTLP/HTTP metrics, to
# Strata and to the baselines' OTLP receivers; they add some 10 minutes.
# The tenants scenario spreads the series of a block builder over 1,000
# tenants (-tenants in BENCH_FLAGS), each request one tenant's, beside
# tenants-1: one tenant sent requests of the same size.
# The restart scenario (restart) loads the block builder, then Prometheus,
# with 3 rounds over 1M series in one tenant (-restart-series and
# -restart-rounds in BENCH_FLAGS), kills, restarts, stops gracefully and
# restarts each, timing every start to ready; it adds some 2 minutes.
# `make bench-micro` runs the per-sample microbenchmarks of the hot path.
BENCH_SERIES          ?= 10000,100000,1000000
BENCH_BASELINE_SERIES ?= 100000
BENCH_DURATION        ?= 30s
BENCH_SCENARIOS       ?= blockbuilder,blockbuilder-unsorted,dev,router,router-unsorted,router-relabel,router6,victoriametrics,prometheus,otlp,router-otlp,victoriametrics-otlp,prometheus-otlp,tenants,tenants-1,restart
BENCH_FLAGS           ?=
BENCH_MICRO_PKGS ?= ./remotewrite/ ./validation/ ./shard/ ./functions/ ./blockbuilder/ ./otlp/ ./loadgen/

.PHONY: bench-micro

# The reliability tests for longer: each fault (outage, downtime) lasts
# CHAOS_SCALE times as long as in `make test`.
CHAOS_SCALE ?= 20
chaos: build tools
	STRATA_TEST_REQUIRE_TOOLS=1 STRATA_CHAOS_SCALE=$(CHAOS_SCALE) $(GO) test -count=1 -v -timeout 3h ./internal/chaos/

bench: build $(PROMETHEUS) $(VICTORIAMETRICS)
	$(GO) run ./bench/cmd/strata-bench -bin $(CURDIR)/bin/strata -out bench/results \
	  -prometheus $(PROMETHEUS) -victoriametrics $(VICTORIAMETRICS) \
	  -series $(BENCH_SERIES) -baseline-series $(BENCH_BASELINE_SERIES) \
	  -duration $(BENCH_DURATION) -scenarios $(BENCH_SCENARIOS) $(BENCH_FLAGS)

bench-micro:
	mkdir -p bench/results
	set -o pipefail; { echo "# $$(date -u +%FT%TZ), load average $$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null): wall-clock timings, inflated on a busy machine"; \
	  $(GO) test -run '^$$' -bench . -benchmem $(BENCH_MICRO_PKGS); } | tee bench/results/micro.txt

clean:
	rm -rf bin
