# svc: the two commands a newcomer needs are `make run` and `make test`.
GO      ?= go
BIN     := bin
PKGS    := ./...

.PHONY: run test vet lint build bench clean

run: ## run the example service with no flags (admin 4010, public 8010, private 8011)
	$(GO) run ./cmd/example-service

build:
	$(GO) build -o $(BIN)/ ./cmd/...

test: vet ## vet + race tests; installs nothing but Go modules
	$(GO) test -race -count=1 -timeout 9m $(PKGS)

vet:
	$(GO) mod download
	$(GO) vet $(PKGS)
	@test -z "$$(gofmt -l .)" || { echo "gofmt needed:"; gofmt -l .; exit 1; }

bench: ## benchmarks quoted in docs/benchmarks.md
	$(GO) test -run '^$$' -bench . -benchmem -count 6 ./... | tee $(BIN)/bench.txt

clean:
	rm -rf $(BIN)
