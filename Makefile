# bugtracker: one Makefile for the whole workspace. `make help` lists the targets.

MODULES      := platform eventbus auth project comment notif gateway devstack e2e
WIRE_MODULES := auth project comment notif
SERVICES     := auth project comment notif gateway
WIRE         := go run github.com/google/wire/cmd/wire@v0.7.0
GOLANGCI_VERSION := 2.15.0
GOLANGCI     := $(shell go env GOPATH)/bin/golangci-lint

# Real servers the tests use (the machine's loopback defaults; override as needed).
# They are passed to the test commands only: `make run` must not see REDIS_URL, or it
# would use that Redis instead of the embedded one.
TEST_REDIS_URL    ?= redis://127.0.0.1:6379/0
TEST_POSTGRES_URL ?= postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable
TEST_MYSQL_URL    ?= root@tcp(127.0.0.1:3306)/
FERRETDB_ADDR     ?= 127.0.0.1:27017
TEST_MONGO_URI    ?= mongodb://$(FERRETDB_ADDR)/
TEST_ENV := REDIS_URL='$(TEST_REDIS_URL)' POSTGRES_URL='$(TEST_POSTGRES_URL)' \
	MYSQL_URL='$(TEST_MYSQL_URL)' MONGO_URI='$(TEST_MONGO_URI)'

GO_TEST_FLAGS ?= -race -count=1

.PHONY: help run build test servers check-generate check-compose generate vet lint test-modules tidy clean bench-events bench-gateway bench-notif

help: ## List the targets.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

run: build ## Start the whole system on :8080 with embedded Redis and FerretDB (Ctrl-C stops it).
	./bin/devstack

build: ## Build every service binary and the launcher into ./bin.
	@mkdir -p bin
	@for s in $(SERVICES); do go -C $$s build -o ../bin/$$s ./cmd/$$s || exit 1; done
	go -C devstack build -o ../bin/devstack ./cmd/devstack
	go -C eventbus build -o ../bin/eventctl ./cmd/eventctl

test: servers check-generate check-compose vet lint test-modules ## Every test against the real servers (starts them if down).

servers: ## Make sure PostgreSQL, MariaDB, Redis and a FerretDB answer on loopback.
	bash scripts/ensure-servers.sh
	FERRETDB_ADDR=$(FERRETDB_ADDR) bash scripts/ferretdb.sh start

generate: ## Regenerate Wire injectors (wire_gen.go).
	@for m in $(WIRE_MODULES); do (cd $$m && GOWORK=off $(WIRE) gen ./service/) || exit 1; done

check-generate: ## Fail if a committed wire_gen.go differs from what Wire generates.
	@set -e; tmp=$$(mktemp -d); \
	for m in $(WIRE_MODULES); do cp $$m/service/wire_gen.go $$tmp/$$m.go; done; \
	$(MAKE) --no-print-directory generate >/dev/null; \
	for m in $(WIRE_MODULES); do \
	  if ! cmp -s $$tmp/$$m.go $$m/service/wire_gen.go; then \
	    diff -u $$tmp/$$m.go $$m/service/wire_gen.go || true; \
	    echo "$$m/service/wire_gen.go is stale: run 'make generate' and commit it"; exit 1; \
	  fi; \
	done; rm -rf $$tmp; echo "wire_gen.go up to date"

check-compose: ## Validate docker-compose.yml when docker-compose is installed (no engine needed).
	@if command -v docker-compose >/dev/null; then \
	  CURSOR_SECRET=compose-check-0123456789abcdef0123456789 docker-compose -f docker-compose.yml config -q && echo "docker-compose.yml valid"; \
	else echo "docker-compose not installed: docker-compose.yml not validated (apt-get install docker-compose)"; fi

vet: ## Build and vet every module inside the workspace and alone (GOWORK=off).
	go build $(addprefix ./,$(addsuffix /...,$(MODULES)))
	go vet $(addprefix ./,$(addsuffix /...,$(MODULES)))
	@for m in $(MODULES); do (cd $$m && GOWORK=off go vet ./...) || exit 1; done

lint: ## golangci-lint (config in .golangci.yml) on every module; installs v$(GOLANGCI_VERSION) once.
	@$(GOLANGCI) version 2>/dev/null | grep -q "version $(GOLANGCI_VERSION)" || \
	  go install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@v$(GOLANGCI_VERSION)
	@for m in $(MODULES); do (cd $$m && GOWORK=off $(GOLANGCI) run ./...) || exit 1; done

test-modules: ## Run each module's tests on its own (GOWORK=off), as a user of that module would.
	@for m in $(MODULES); do echo "== $$m"; (cd $$m && $(TEST_ENV) GOWORK=off go test $(GO_TEST_FLAGS) ./...) || exit 1; done

bench-events: ## Event bus figures on the real Redis and PostgreSQL (relay+consumer vs redis-benchmark XADD, vs a naive loop, latency at 500/s).
	cd eventbus && $(TEST_ENV) GOWORK=off go run ./cmd/eventbench

bench-notif: servers ## A page of 20 of a user's 1,000 notifications at 16 clients, through the gateway beside notif directly: req/s, p50, p99.
	$(TEST_ENV) go -C e2e test -tags bench -run TestLoadListNotifications -count=1 -v .

tidy: ## go mod tidy in every module.
	@for m in $(MODULES); do (cd $$m && GOWORK=off go mod tidy) || exit 1; done

bench-gateway: ## Gateway vs direct vs a bare fasthttp proxy with wrk (real auth on PostgreSQL + Redis): req/s, p50, p99, CPU/request, ratios; c=1 added p50 from a paired client.
	@command -v wrk >/dev/null || apt-get install -y wrk || (apt-get update && apt-get install -y wrk)
	bash scripts/ensure-servers.sh
	@mkdir -p bin
	go -C auth build -o ../bin/auth ./cmd/auth
	go -C gateway build -o ../bin/gateway ./cmd/gateway
	go -C gateway build -o ../bin/gatewaybench ./cmd/gatewaybench
	POSTGRES_URL='$(TEST_POSTGRES_URL)' REDIS_URL='$(TEST_REDIS_URL)' ./bin/gatewaybench -bin bin

clean: ## Remove build output and local state (./bin, ./data, ./.tmp).
	rm -rf bin data .tmp
