# Subsidy ledger. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

MODULES   := proto events projections services
BIN       := $(CURDIR)/bin
BUF       := $(BIN)/buf
GO        ?= go
PKGS      := $(foreach m,$(MODULES),./$(m)/...)

.PHONY: help
help: ## list the targets
	@awk 'BEGIN{FS=":.*## "} /^[a-zA-Z_-]+:.*## /{printf "  %-16s %s\n",$$1,$$2}' $(MAKEFILE_LIST)

NATS_SERVER := $(BIN)/nats-server

$(NATS_SERVER): services/go.mod services/go.sum
	cd services && $(GO) build -o $(NATS_SERVER) github.com/nats-io/nats-server/v2

$(BUF): proto/tools/go.mod proto/tools/go.sum
	cd proto/tools && GOWORK=off $(GO) build -o $(BUF) github.com/bufbuild/buf/cmd/buf

.PHONY: tools
tools: $(BUF) ## build the pinned tools (buf) from the module cache

.PHONY: generate
generate: $(BUF) ## regenerate Go code from proto/
	cd proto && $(BUF) generate

.PHONY: schema-baseline
schema-baseline: $(BUF) ## deliberately accept the current schema as the breaking-change baseline
	cd proto && $(BUF) build -o baseline/subsidy.binpb

.PHONY: check
check: $(BUF) ## gofmt, vet, buf lint + breaking, generated code up to date, each module builds alone, deployments
	@out=$$(gofmt -l $(MODULES) | grep -v '\.pb\.go$$' || true); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	cd proto && $(BUF) lint
	cd proto && $(BUF) breaking --against baseline/subsidy.binpb
	@tmp=$$(mktemp -d); cp -r proto/gen $$tmp/gen; \
	  (cd proto && $(BUF) generate) && \
	  if ! diff -r $$tmp/gen proto/gen >/dev/null; then echo "generated code is stale: run 'make generate' and commit"; rm -rf $$tmp; exit 1; fi; rm -rf $$tmp
	@for m in $(MODULES); do (cd $$m && GOWORK=off $(GO) build ./... ) || { echo "module $$m does not build with GOWORK=off"; exit 1; }; done
	@# One version of each dependency: every module that builds a package of a
	@# dependency (tests included) builds the same version of it.
	@for m in $(MODULES); do (cd $$m && GOWORK=off $(GO) list -deps -test -f '{{with .Module}}{{.Path}} {{.Version}}{{end}}' ./... | sort -u); done | \
	  awk 'NF==2 {v[$$1]=v[$$1] " " $$2} END {bad=0; for (m in v) {n=split(v[m],a," "); for(i=2;i<=n;i++) if (a[i]!=a[1]) {print "modules disagree on " m ":" v[m]; bad=1; break}} exit bad}'
	$(MAKE) --no-print-directory check-deployments
	@echo "check: ok"

.PHONY: fix
fix: ## apply gofmt and regenerate
	gofmt -w $(MODULES)
	$(MAKE) generate

CHROMIUM ?= /usr/bin/chromium

.PHONY: test-deps
test-deps: $(NATS_SERVER) ## install what the tests need: nats-server (built from the pinned module), Debian's chromium
	@test -x $(CHROMIUM) || { echo "installing Debian's chromium for the dashboard test"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || \
	  { echo "could not install chromium: run as root, or set CHROMIUM"; exit 1; }; }

.PHONY: test
test: test-deps ## run every module's tests (integration tests start bin/nats-server; the dashboard test drives headless chromium)
	LEDGER_NATS_SERVER_BIN=$(NATS_SERVER) LEDGER_CHROMIUM=$(CHROMIUM) LEDGER_REQUIRE_CHROMIUM=1 $(GO) test -count=1 $(PKGS)

FUZZTIME ?= 60s
FUZZ_TARGETS := ./events/person:FuzzValidateID ./events/rules:FuzzDecodeDecide ./events/rules:FuzzRestoreWorld ./services/api:FuzzQueryParameters ./services/ingest:FuzzUnnamed

.PHONY: fuzz
fuzz: ## run every fuzz target for FUZZTIME each (a duration, or Nx executions; CI runs 100000x each: a duration can expire during the seed-corpus baseline on a loaded machine)
	@for t in $(FUZZ_TARGETS); do pkg=$${t%%:*}; fn=$${t##*:}; echo "fuzz $$fn ($$pkg, $(FUZZTIME))"; \
	  $(GO) test -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; done

CRASHES ?= 100

.PHONY: crash-soak
crash-soak: test-deps ## not in CI: the crash test with CRASHES (100) SIGKILLs of ledgerd during ingest
	LEDGER_CRASHES=$(CRASHES) LEDGER_NATS_SERVER_BIN=$(NATS_SERVER) $(GO) test -count=1 -timeout 60m -run TestCrashRecovery -v ./services/ledgerd/

.PHONY: nats-server
nats-server: $(NATS_SERVER) ## build nats-server from the pinned module into bin/

RUN_TRAINEES   ?= 3500
RUN_PACE       ?= 10ms
RUN_HEAD_START ?= 11000
RUN_YEAR       ?= 2026

.PHONY: build
build: ## build ledgerd, ledgerctl and ledgerbench into bin/
	$(GO) build -o $(BIN)/ ./services/cmd/ledgerd ./services/cmd/ledgerctl ./services/cmd/ledgerbench

# Demo keys, made once under data/ (never committed): the person-key HMAC
# secret shared by ledgerd and the simulator (so that ID-number lookups
# match), and the personal-data vault's master key.
DEMO_KEYS := data/demo-person.key data/demo-vault.key

$(DEMO_KEYS):
	@mkdir -p data && (umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > $@.tmp) && mv $@.tmp $@ && echo "made a random demo key in $@"

DEMO_FLAGS := --demo --data-dir data --person-key-file data/demo-person.key --vault-key-file data/demo-vault.key

.PHONY: run
run: build $(DEMO_KEYS) ## start ledgerd on its embedded defaults (./data, NATS 127.0.0.1:4222, http://127.0.0.1:8080/dashboard/) with the simulator feeding it a year at demo pace
	@trap 'kill $$pid 2>/dev/null; wait $$pid 2>/dev/null' EXIT INT TERM; \
	$(BIN)/ledgerd $(DEMO_FLAGS) --log-level warn & pid=$$!; \
	until curl -sf http://127.0.0.1:8080/healthz >/dev/null; do sleep 0.5; kill -0 $$pid 2>/dev/null || exit 1; done; \
	echo; echo "ledgerd is up. Open http://127.0.0.1:8080/dashboard/ and watch $(RUN_TRAINEES) trainees' year fill up"; \
	echo "(API under http://127.0.0.1:8080/v1/, metrics at /metrics; Ctrl-C stops both)."; echo; \
	$(BIN)/ledgerctl simulate --nats-url nats://127.0.0.1:4222 --key-file data/demo-person.key --trainees $(RUN_TRAINEES) --pace $(RUN_PACE) --head-start $(RUN_HEAD_START) --seed 1 --year $(RUN_YEAR) && \
	echo "the simulated year is published; ledgerd keeps running until Ctrl-C (dashboard: http://127.0.0.1:8080/dashboard/)"; wait $$pid

.PHONY: run-ledgerd
run-ledgerd: build $(DEMO_KEYS) ## start ledgerd alone on its embedded defaults (publish facts yourself: ledgerctl publish --key-file data/demo-person.key, or the nats CLI)
	$(BIN)/ledgerd $(DEMO_FLAGS)

.PHONY: clean
clean: ## remove bin/ and the demo data in ./data
	rm -rf $(BIN) data

BENCHTIME  ?= 1s
BENCHFLAGS ?=

.PHONY: bench
WRK := /usr/bin/wrk

bench: ## benchmark: go test -bench in events/bolt, then the ledgerbench table (store, ingest, projections with query latency under wrk, ...) of figures beside same-run baselines (BENCHTIME, BENCHFLAGS)
	@test -x $(WRK) || { echo "installing Debian's wrk for the query-latency figures"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null) || \
	  { echo "could not install wrk: run as root"; exit 1; }; }
	$(GO) test -run '^$$' -bench . -benchtime $(BENCHTIME) ./events/bolt/
	$(GO) run ./services/cmd/ledgerbench $(BENCHFLAGS)

SOAK_RATE     ?= 5000
SOAK_DURATION ?= 10m
SOAK_FLAGS    ?=

.PHONY: soak
soak: ## not in CI: sustained durable ingest at SOAK_RATE facts/s (5000; bulk feeds in atomic batches, the rest single publishes) for SOAK_DURATION (10m) with queries running; reports throughput, p99 latency and ledgerd's memory every 10s and a summary (SOAK_FLAGS: see ledgerbench soak -h)
	$(GO) run ./services/cmd/ledgerbench soak -rate $(SOAK_RATE) -duration $(SOAK_DURATION) $(SOAK_FLAGS)

# Deployment files (deployments/): checked offline, no Docker engine or
# cluster needed. promtool comes from Debian's prometheus package (installed
# here if missing; CI runs as root). The Go checks are their own modules,
# outside go.work (GOWORK=off), so their loaders' dependencies stay out of
# the workspace.
PROMTOOL       ?= promtool
DEPLOY_MODULES := deployments/validate deployments/probe

.PHONY: check-deployments
check-deployments: ## deployments/: promtool check/test, compose + kustomize (strict k8s types), Grafana and alert metric names vs ledgerd's, NATS config, Dockerfile
	@command -v $(PROMTOOL) >/dev/null || { echo "installing promtool (Debian package prometheus)"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; }
	$(PROMTOOL) check config --syntax-only deployments/prometheus/prometheus.yml deployments/prometheus/prometheus.k8s.yml
	$(PROMTOOL) check rules deployments/prometheus/rules/*.yml
	$(PROMTOOL) test rules deployments/prometheus/tests/*.yml
	@out=$$(gofmt -l $(DEPLOY_MODULES)); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	@for m in $(DEPLOY_MODULES); do (cd $$m && GOWORK=off $(GO) vet ./... && GOWORK=off $(GO) test -count=1 ./...) || exit 1; done
	@echo "check-deployments: ok"

.PHONY: test-esdb
test-esdb: ## run the store conformance suite against the real EventStoreDB/KurrentDB 22.10+ at LEDGER_ESDB_URL (fails if it is unset or the test does not pass; `make test` covers only the stand-in)
	@if [ -z "$$LEDGER_ESDB_URL" ]; then \
	  echo "test-esdb: NOT TESTED: set LEDGER_ESDB_URL to a disposable EventStoreDB/KurrentDB 22.10+, e.g. LEDGER_ESDB_URL='esdb://localhost:2113?tls=false'" >&2; exit 1; fi
	@out=$$(mktemp); trap 'rm -f $$out' EXIT; \
	  $(GO) test -count=1 -v -run '^TestRealEventStoreDB$$' ./events/esdb/ 2>&1 | tee $$out; \
	  grep -q -- '^--- PASS: TestRealEventStoreDB ' $$out || { echo "test-esdb: TestRealEventStoreDB did not pass (it failed or was skipped)" >&2; exit 1; }
