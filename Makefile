# svc: the two commands a newcomer needs are `make run` and `make test`.
GO      ?= go
BIN     := bin
PKGS    := ./...

.PHONY: run test vet lint build bench bench-gate clean etcd registry-demo proof fuzz

run: ## run the example service with no flags (admin 4010, public 8010, private 8011)
	$(GO) build -o $(BIN)/example-service ./cmd/example-service
	exec $(BIN)/example-service

build:
	$(GO) build -o $(BIN)/ ./cmd/...

test: lint ## lint + race tests + short fuzzing; needs only Go (etcd runs embedded, staticcheck comes from the module proxy)
	$(GO) test -race -count=1 -timeout 9m $(PKGS)
	$(MAKE) fuzz

fuzz: ## short fuzzing of uri-spec expansion, config flattening and access-line encoding
# Execution counts, not durations: go1.26's fuzz coordinator can fail a
# duration-bounded run with a bare "context deadline exceeded" at the
# -fuzztime boundary (golang/go#75804, fixed in go1.27).
	$(GO) test -run '^$$' -fuzz '^FuzzExpand$$' -fuzztime 50000x -fuzzminimizetime 100x ./registry/
	$(GO) test -run '^$$' -fuzz '^FuzzParseJSON$$' -fuzztime 100000x -fuzzminimizetime 100x ./config/
	$(GO) test -run '^$$' -fuzz '^FuzzEncode$$' -fuzztime 100000x -fuzzminimizetime 100x ./internal/accesslog/

proof: ## the proof under load and faults (about 2.5 minutes); report in bin/proof.md, see docs/reliability.md
	@mkdir -p $(BIN)
	$(GO) vet -tags proof ./internal/proof/
	$(GO) test -tags proof -run '^TestProof$$' -count=1 -v -timeout 15m ./internal/proof/ -args -proof.out=$(CURDIR)/$(BIN)/proof.md

vet:
	$(GO) mod download
	$(GO) vet $(PKGS)

lint: vet ## go vet, gofmt, go mod tidy and staticcheck (pinned by the tool directive in go.mod)
	@test -z "$$(gofmt -l .)" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	$(GO) mod tidy -diff
	$(GO) tool staticcheck $(PKGS)

bench: ## benchmarks quoted in docs/benchmarks.md
	$(GO) test -run '^$$' -bench . -benchmem -count 6 ./... | tee $(BIN)/bench.txt

bench-gate: ## svc against the fair baseline (throughput, startup, idle RSS); needs wrk; not part of make test, see docs/benchmarks.md
	$(GO) run ./internal/bench/gate $(GATEFLAGS)

etcd: $(BIN)/etcd ## the etcd server, built from the Go module proxy at the version pinned in go.mod

$(BIN)/etcd: go.mod
	$(GO) build -o $(BIN)/etcd go.etcd.io/etcd/server/v3

registry-demo: $(BIN)/etcd build ## a real etcd and two example-service instances registered in it
	./tools/registry-demo.sh

clean:
	rm -rf $(BIN)
