# Ringlet. `make run` runs the daemon; `make test` installs what the tests
# need (as root) and runs them all.
GO      ?= go
PKG     := github.com/neullabs/ringlet
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X $(PKG)/version.Version=$(VERSION)
BIN     := bin/ringlet

.PHONY: all build run test deps node-deps check lint tidy bench fuzz clean

all: build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/ringlet

# The daemon with its defaults: 127.0.0.1:8765, token created on first run.
run: build
	./$(BIN) daemon --stay-alive

# Installs missing system packages when run as root; otherwise lists them.
deps:
	@.ci/deps

# The npm packages of the client tests in test/node (the provider SDKs and
# Claude Code) and test/mcpnode (the MCP SDK and reference MCP servers), at
# the versions in their package-lock.json.
# npm ci runs again whenever a package-lock.json is newer than what is
# installed (npm's own record in node_modules/.package-lock.json).
node-deps: test/node/node_modules/.package-lock.json test/mcpnode/node_modules/.package-lock.json

test/%/node_modules/.package-lock.json: test/%/package-lock.json
	npm ci --prefix test/$* --no-audit --no-fund

check:
	@test -z "$$(gofmt -l .)" || { echo "gofmt needed on:"; gofmt -l .; exit 1; }
	$(GO) vet ./...
	GOOS=darwin $(GO) build ./...

# golangci-lint at the version pinned in tools/go.mod (a module of its
# own, so its dependencies stay out of Ringlet's), with .golangci.yml.
bin/golangci-lint: tools/go.mod tools/go.sum
	$(GO) -C tools build -o ../bin/golangci-lint github.com/golangci/golangci-lint/v2/cmd/golangci-lint

lint: bin/golangci-lint
	bin/golangci-lint run ./...

# go mod tidy must have nothing to change, here or in tools/.
tidy:
	$(GO) mod tidy -diff
	$(GO) -C tools mod tidy -diff

# Lint, tidy and the dependency test (internal/deptest) run with the rest.
test: deps node-deps check lint tidy
	$(GO) test -race -count=1 -timeout 15m ./...

# Each benchmark measures its baseline in the same run and prints the ratio.
bench: deps
	$(GO) test -run '^$$' -bench . -benchtime 2s -count 1 ./gateway
	$(GO) test -run '^$$' -bench 'Redactor|NewSecrets' -count 1 ./provider
	$(GO) test -run '^$$' -bench . -benchtime 50000x -count 1 ./audit/auditlog
	$(GO) test -run '^$$' -bench 'Startup|FirstRequest' -benchtime 15x -count 1 ./test/bench
	$(GO) test -run '^$$' -bench 'ProxyProcess' -benchtime 4000x -count 1 ./test/bench

# A short run of every fuzz target; `go test -fuzz` on one for longer.
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime 15s $$pkg || exit 1; \
	  done; \
	done

clean:
	rm -rf bin
